"""items_batch and handles through the real HTTP sandbox, with CatalogApi as the client."""

import json

import pytest

from resources.meta.catalog import CatalogApi, CatalogWaitTimeout, chunk_requests
from resources.meta.errors import (
    GraphAuthError,
    GraphNotFound,
    GraphPayloadTooLarge,
    GraphThrottled,
    GraphValidationError,
)
from resources.meta.transport import GraphClient


def item(retailer_id: str, **overrides) -> dict:
    data = {
        "id": retailer_id,
        "title": f"Trail shoe {retailer_id}",
        "description": "A light shoe for long trails.",
        "availability": "in stock",
        "condition": "new",
        "price": "89.90 EUR",
        "link": f"https://shop.example/p/{retailer_id}",
        "image_link": f"https://shop.example/i/{retailer_id}.jpg",
        "brand": "Acme",
    }
    return data | overrides


def create(*items: dict) -> list[dict]:
    return [{"method": "CREATE", "data": data} for data in items]


@pytest.fixture
def shop(onboard, sandbox):
    profile = onboard("acme")
    token = sandbox.state.shops["acme"].token
    graph = GraphClient("acme", token, base_url=sandbox.url, sleep=lambda _: None)
    yield profile, CatalogApi(graph, profile.catalog_id)
    graph.close()


def run_batch(catalog: CatalogApi, requests: list[dict], **kwargs):
    handles = catalog.items_batch(requests, **kwargs)
    statuses = catalog.wait_for_handles(handles, poll_interval=0, sleep=lambda _: None)
    return statuses[handles[0]]


def test_handle_moves_through_states_and_applies_only_at_the_end(shop, sandbox_admin):
    """A handle reports scheduled, then dispatched, then finished; items appear when it ends."""
    _, catalog = shop
    [handle] = catalog.items_batch(create(item("SKU-1"), item("SKU-2")))

    seen = [catalog.batch_status(handle).status for _ in range(3)]

    assert seen == ["scheduled", "dispatched", "finished"]
    assert sandbox_admin.catalog_items("acme")["count"] == 2


def test_update_is_partial_and_delete_removes(shop, sandbox_admin):
    _, catalog = shop
    run_batch(catalog, create(item("SKU-1"), item("SKU-2")))

    status = run_batch(
        catalog,
        [
            {"method": "UPDATE", "data": {"id": "SKU-1", "price": "79.90 EUR"}},
            {"method": "DELETE", "data": {"id": "SKU-2"}},
        ],
    )

    assert status.status == "finished" and status.errors_total_count == 0
    items = sandbox_admin.catalog_items("acme")["items"]
    assert [i["retailer_id"] for i in items] == ["SKU-1"]
    assert items[0]["data"]["price"] == "79.90 EUR"
    assert items[0]["data"]["title"] == "Trail shoe SKU-1"  # untouched by the partial update


def test_invalid_records_are_reported_and_not_persisted(shop, sandbox_admin):
    """Per-record rules: required fields, enums, price format and minor units, lengths."""
    _, catalog = shop
    bad = [
        item("NO-AVAIL", availability=None),
        item("BAD-ENUM", condition="mint"),
        item("BAD-PRICE", price="€89.90"),
        item("TOO-PRECISE", price="89.901 EUR"),
        item("LONG", title="x" * 201),
        item("BAD-SALE", sale_price="99.00 EUR"),
    ]
    bad[0].pop("availability")
    result = catalog.send_items_batch(create(item("GOOD"), *bad))
    status = catalog.wait_for_handles(result.handles, poll_interval=0, sleep=lambda _: None)[
        result.handles[0]
    ]

    assert sorted(status.ids_of_invalid_requests) == sorted(d["id"] for d in bad)
    assert {e.line for e in status.errors} == {1, 2, 3, 4, 5, 6}
    assert any("availability" in e.message for e in status.errors if e.id == "NO-AVAIL")
    assert {v.retailer_id for v in result.validation_status} == {d["id"] for d in bad}
    assert [i["retailer_id"] for i in sandbox_admin.catalog_items("acme")["items"]] == ["GOOD"]


def test_zero_decimal_currency_refuses_cents(shop):
    _, catalog = shop
    status = run_batch(
        catalog, create(item("JPY-OK", price="1200 JPY"), item("JPY-BAD", price="12.50 JPY"))
    )
    assert status.ids_of_invalid_requests == ["JPY-BAD"]


def test_unknown_field_is_a_warning_and_the_item_is_kept(shop, sandbox_admin):
    _, catalog = shop
    result = catalog.send_items_batch(create(item("SKU-W", unknown_field="x")))
    assert "unrecognised field: 'unknown_field'" in result.validation_status[0].warnings[0].message
    status = catalog.wait_for_handles(result.handles, poll_interval=0, sleep=lambda _: None)
    assert next(iter(status.values())).warnings_total_count == 1
    assert sandbox_admin.catalog_items("acme")["count"] == 1


def test_item_id_may_not_equal_an_item_group_id(shop):
    _, catalog = shop
    run_batch(catalog, create(item("RED-42", item_group_id="SHOE")))
    status = run_batch(catalog, create(item("SHOE")))
    assert status.ids_of_invalid_requests == ["SHOE"]


def test_update_of_missing_item_without_upsert_is_refused(shop, sandbox_admin):
    _, catalog = shop
    status = run_batch(catalog, [{"method": "UPDATE", "data": item("GHOST")}], allow_upsert=False)
    assert status.ids_of_invalid_requests == ["GHOST"]
    assert sandbox_admin.catalog_items("acme")["count"] == 0

    status = run_batch(catalog, [{"method": "UPDATE", "data": item("GHOST")}])
    assert status.errors_total_count == 0
    assert sandbox_admin.catalog_items("acme")["count"] == 1


def test_request_count_and_payload_limits(shop, sandbox_admin):
    """Past the record limit -> code 100; past the byte limit -> code 1 'reduce the amount'."""
    _, catalog = shop
    sandbox_admin.catalog_settings(max_batch_requests=3, max_batch_bytes=2000)

    with pytest.raises(GraphValidationError) as too_many:
        catalog.items_batch(create(*(item(f"S{n}") for n in range(4))))
    assert too_many.value.code == 100

    with pytest.raises(GraphPayloadTooLarge) as too_big:
        catalog.items_batch(create(item("BIG", description="d" * 3000)))
    assert too_big.value.code == 1 and "reduce the amount of data" in too_big.value.message


def test_chunk_requests_respects_count_and_bytes():
    records = create(*(item(f"S{n}") for n in range(7)))
    one = len(json.dumps(records[0], separators=(",", ":"))) + 1

    by_count = list(chunk_requests(records, max_requests=3))
    by_bytes = list(chunk_requests(records, max_bytes=2 + one * 2))

    assert [len(c) for c in by_count] == [3, 3, 1]
    assert [len(c) for c in by_bytes] == [2, 2, 2, 1]
    assert [r for c in by_bytes for r in c] == records


def test_partial_batch_failure_rejects_a_share_with_reason(shop, sandbox_admin):
    _, catalog = shop
    sandbox_admin.set_catalog_faults(
        "acme", partial_failure_share=0.5, partial_failure_reason="boom"
    )

    status = run_batch(catalog, create(*(item(f"S{n}") for n in range(10))))

    assert len(status.ids_of_invalid_requests) == 5
    assert {e.message for e in status.errors} == {"boom"}
    stored = {i["retailer_id"] for i in sandbox_admin.catalog_items("acme")["items"]}
    assert stored.isdisjoint(status.ids_of_invalid_requests) and len(stored) == 5


def test_handle_ending_in_error_applies_nothing(shop, sandbox_admin):
    _, catalog = shop
    sandbox_admin.set_catalog_faults("acme", handle_error=True)

    status = run_batch(catalog, create(item("S1"), item("S2")))

    assert status.status == "error" and status.failed_whole
    assert sorted(status.ids_of_invalid_requests) == ["S1", "S2"]
    assert sandbox_admin.catalog_items("acme")["count"] == 0


def test_wait_for_handles_times_out_naming_open_handles(shop, sandbox_admin):
    _, catalog = shop
    sandbox_admin.catalog_settings(batch_handle_steps=50)
    ticks = iter(range(1000))
    handles = catalog.items_batch(create(item("S1")))

    with pytest.raises(CatalogWaitTimeout) as timeout:
        catalog.wait_for_handles(
            handles, poll_interval=1, timeout=3, sleep=lambda _: None, clock=lambda: next(ticks)
        )

    assert timeout.value.pending == handles
    assert timeout.value.statuses[handles[0]].status in ("scheduled", "dispatched", "started")


def test_handle_finishes_by_the_sandbox_clock(shop, sandbox_admin):
    _, catalog = shop
    sandbox_admin.catalog_settings(batch_handle_steps=50, step_seconds=30)
    [handle] = catalog.items_batch(create(item("S1")))

    sandbox_admin.advance_clock(3600)

    assert sandbox_admin.catalog_items("acme")["count"] == 1  # applied without a poll
    assert catalog.batch_status(handle).status == "finished"


def test_unknown_handle_is_an_error(shop):
    _, catalog = shop
    with pytest.raises(GraphValidationError):
        catalog.batch_status("not-a-handle")


def test_shop_token_cannot_reach_another_shops_catalog(onboard, sandbox):
    acme, other = onboard("acme"), onboard("other")
    token = sandbox.state.shops["acme"].token
    with GraphClient("acme", token, base_url=sandbox.url, sleep=lambda _: None) as graph:
        with pytest.raises(GraphNotFound) as denied:
            list(CatalogApi(graph, other.catalog_id).list_products())
    assert (denied.value.code, denied.value.subcode) == (100, 33)
    assert acme.catalog_id != other.catalog_id


def test_bad_token_is_190(onboard, sandbox):
    profile = onboard("acme")
    with GraphClient("acme", "EAAbogus", base_url=sandbox.url, sleep=lambda _: None) as graph:
        with pytest.raises(GraphAuthError) as denied:
            CatalogApi(graph, profile.catalog_id).items_batch(create(item("S1")))
    assert denied.value.code == 190


def test_catalog_batch_rate_limit_is_80014_with_regain_time(shop, sandbox_admin):
    """Past the per-catalog batch calls per minute: 80014, and the client waits as told."""
    profile, catalog = shop
    sandbox_admin.catalog_settings(batch_calls_per_minute=1)
    catalog.items_batch(create(item("S1")))
    sleeps: list[float] = []
    catalog.graph.sleep = sleeps.append

    with pytest.raises(GraphThrottled) as throttled:
        catalog.items_batch(create(item("S2")))

    assert throttled.value.code == 80014
    assert len(sleeps) == catalog.graph.retry.max_attempts - 1
    assert all(60 <= s <= 66 for s in sleeps)  # estimated_time_to_regain_access: 1 minute
    sandbox_admin.advance_clock(61)
    assert catalog.items_batch(create(item("S2")))

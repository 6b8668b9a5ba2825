"""Feeds and upload sessions through the real HTTP sandbox, with CatalogApi as the client."""

import csv
import io

import pytest

from resources.meta.catalog import CatalogApi, CatalogWaitTimeout
from resources.meta.errors import GraphNotFound
from resources.meta.transport import GraphClient

COLUMNS = (
    "id", "title", "description", "availability", "condition", "price", "link", "image_link",
    "brand",
)  # fmt: skip


def row(retailer_id: str, **overrides) -> dict:
    data = {
        "id": retailer_id,
        "title": f"Tent {retailer_id}",
        "description": "Two-person tent, 1.9 kg.",
        "availability": "in stock",
        "condition": "new",
        "price": "249.00 EUR",
        "link": f"https://shop.example/p/{retailer_id}",
        "image_link": f"https://shop.example/i/{retailer_id}.jpg",
        "brand": "Acme",
    }
    return data | overrides


def feed_file(rows: list[dict], delimiter: str = ",", columns=COLUMNS) -> bytes:
    out = io.StringIO()
    writer = csv.DictWriter(
        out, fieldnames=list(columns), delimiter=delimiter, extrasaction="ignore"
    )
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue().encode()


@pytest.fixture
def catalog(onboard, sandbox):
    profile = onboard("acme")
    graph = GraphClient("acme", sandbox.state.shops["acme"].token, base_url=sandbox.url)
    yield CatalogApi(graph, profile.catalog_id)
    graph.close()


def upload(catalog: CatalogApi, feed_id: str, content: bytes, update_only=False, name="f.csv"):
    session_id = catalog.upload_feed(feed_id, content, name, update_only=update_only)
    return session_id, catalog.wait_for_upload(session_id, poll_interval=0, sleep=lambda _: None)


def retailer_ids(sandbox_admin) -> list[str]:
    return sorted(i["retailer_id"] for i in sandbox_admin.catalog_items("acme")["items"])


def test_create_feed_and_ensure_feed_reuses_it(catalog):
    feed_id = catalog.ensure_feed("primary")
    assert catalog.ensure_feed("primary") == feed_id
    assert [f.name for f in catalog.list_feeds()] == ["primary"]


def test_replace_upload_deletes_items_missing_from_the_file(catalog, sandbox_admin):
    feed_id = catalog.create_feed("primary")
    _, first = upload(catalog, feed_id, feed_file([row("A"), row("B"), row("C")]))
    assert (first.num_detected_items, first.num_persisted_items) == (3, 3)

    _, second = upload(catalog, feed_id, feed_file([row("A"), row("C", price="199.00 EUR")]))

    assert second.num_deleted_items == 1
    assert retailer_ids(sandbox_admin) == ["A", "C"]
    prices = {
        i["retailer_id"]: i["data"]["price"] for i in sandbox_admin.catalog_items("acme")["items"]
    }
    assert prices["C"] == "199.00 EUR"


def test_update_only_upload_keeps_missing_items_and_takes_partial_rows(catalog, sandbox_admin):
    feed_id = catalog.create_feed("primary")
    upload(catalog, feed_id, feed_file([row("A"), row("B")]))

    partial = feed_file(
        [{"id": "A", "availability": "out of stock"}], columns=("id", "availability")
    )
    _, session = upload(catalog, feed_id, partial, update_only=True)

    assert session.num_deleted_items == 0 and session.num_persisted_items == 1
    items = {i["retailer_id"]: i["data"] for i in sandbox_admin.catalog_items("acme")["items"]}
    assert sorted(items) == ["A", "B"]
    assert items["A"]["availability"] == "out of stock" and items["A"]["title"] == "Tent A"


def test_upload_errors_group_fatal_rows_with_samples(catalog, sandbox_admin):
    feed_id = catalog.create_feed("primary")
    rows = [
        row("OK"),
        row("NOPRICE", price=""),
        row("BADPRICE", price="12,00 EUR"),
        row("DUP"),
        row("DUP"),
    ]
    session_id, session = upload(catalog, feed_id, feed_file(rows, delimiter="\t"), name="f.tsv")

    assert (session.num_detected_items, session.num_invalid_items) == (5, 4)
    errors = catalog.upload_errors(session_id)
    by_summary = {e.summary: e for e in errors}
    missing = by_summary["A required field is missing: price."]
    assert missing.is_fatal and [s.retailer_id for s in missing.samples] == ["NOPRICE"]
    assert missing.samples[0].row_number == 3  # header is row 1
    assert {s.retailer_id for s in by_summary["Duplicate id"].samples} == {"DUP"}
    assert retailer_ids(sandbox_admin) == ["OK"]
    assert catalog.upload_errors(session_id, error_priority="MEDIUM") == []


def test_unreadable_file_is_one_fatal_error(catalog):
    feed_id = catalog.create_feed("primary")
    session_id, session = upload(catalog, feed_id, b"title,price\nx,1 EUR\n")
    [error] = catalog.upload_errors(session_id)
    assert error.is_fatal and "id" in error.description
    assert session.num_persisted_items == 0


def test_url_upload_reads_a_hosted_file_or_fails_fetching(catalog, sandbox_admin):
    feed_id = catalog.create_feed("primary")
    sandbox_admin.host_feed_file("https://files.example/feed.csv", feed_file([row("U1")]).decode())

    ok = catalog.wait_for_upload(
        catalog.upload_feed_url(feed_id, "https://files.example/feed.csv"), poll_interval=0
    )
    missing_id = catalog.upload_feed_url(feed_id, "https://files.example/missing.csv")
    catalog.wait_for_upload(missing_id, poll_interval=0)

    assert ok.num_persisted_items == 1 and retailer_ids(sandbox_admin) == ["U1"]
    assert catalog.upload_errors(missing_id)[0].summary == "Feed could not be fetched"


def test_slow_upload_session_polls_and_session_list(catalog, sandbox_admin):
    feed_id = catalog.create_feed("primary")
    sandbox_admin.set_catalog_faults("acme", extra_upload_polls=3)
    session_id = catalog.upload_feed(feed_id, feed_file([row("A")]), "f.csv")

    states = [catalog.upload_session(session_id).is_done for _ in range(5)]

    assert states == [False, False, False, False, True]
    assert [s.id for s in catalog.list_uploads(feed_id)] == [session_id]


def test_wait_for_upload_times_out(catalog, sandbox_admin):
    feed_id = catalog.create_feed("primary")
    sandbox_admin.set_catalog_faults("acme", extra_upload_polls=100)
    session_id = catalog.upload_feed(feed_id, feed_file([row("A")]), "f.csv")
    ticks = iter(range(100))
    with pytest.raises(CatalogWaitTimeout) as timeout:
        catalog.wait_for_upload(
            session_id, poll_interval=1, timeout=2, sleep=lambda _: None, clock=lambda: next(ticks)
        )
    assert timeout.value.pending == [session_id]


def test_another_shops_feed_is_invisible(onboard, sandbox, catalog):
    other = onboard("other")
    with GraphClient("other", sandbox.state.shops["other"].token, base_url=sandbox.url) as graph:
        feed_id = CatalogApi(graph, other.catalog_id).create_feed("theirs")
    with pytest.raises(GraphNotFound):
        catalog.upload_feed(feed_id, feed_file([row("A")]), "f.csv")

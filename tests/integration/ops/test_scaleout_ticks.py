"""Ticks that stay bounded at 1,000 shops, and the batched catalog job.

The orders ticks that call Meta per shop (meta_changes_sensor, created_orders_sweep_schedule) poll
in rotation on a thread pool until a time budget is spent; the shops left over are deferred, named
in the skip reason and visited first on the next tick. Time is never measured here: a fake clock
decides when the budget runs out, or a negative budget defers everything.
"""

import itertools
import json
from datetime import timedelta

import dagster as dg
import pytest
from sqlalchemy import select

from pipelines.catalog.generator import write_shopify_csv
from pipelines.ops.scaleout import (
    batch_run_config,
    batch_run_requests,
    catalog_batch_job,
    mapping_keys,
)
from pipelines.orders.schedules import (
    SWEEP_STREAM,
    created_orders_sweep_schedule,
    least_recently_swept,
)
from pipelines.orders.sensors import meta_changes_sensor, poll_shops, rotate
from pipelines.resources import MetasyncResource
from resources.db.orders_tables import order_watermarks
from resources.shops import ShopStatus

CATALOG_CONFIG = {
    "poll_interval_seconds": 0.0,
    "product_url_template": "https://shop.example/products/{handle}?p={product_id}",
    "default_brand": "Acme Outdoor",
}


def ticking_clock(step: float = 1.0):
    """Every reading is `step` later than the one before."""
    counter = itertools.count()
    return lambda: next(counter) * step


# -- the rotation and the bounded poll ---------------------------------------------------------


def test_rotate_starts_at_the_cursor_shop_and_wraps():
    shops = ["c", "a", "d", "b"]
    assert rotate(shops, None) == ["a", "b", "c", "d"]
    assert rotate(shops, "c") == ["c", "d", "a", "b"]
    # The cursor's shop left the registry: start at the next one.
    assert rotate(shops, "bb") == ["c", "d", "a", "b"]
    assert rotate(shops, "z") == ["a", "b", "c", "d"]


def test_poll_defers_the_tail_once_the_budget_is_spent():
    # Readings: 0 (deadline 2.5), then 1, 2 for the first two shops, 3 > 2.5 for the rest.
    polls = poll_shops(["a", "b", "c", "d"], str.upper, 2.5, workers=1, clock=ticking_clock())
    assert polls.results == {"a": "A", "b": "B"}
    assert polls.deferred == ["c", "d"]
    assert polls.visited == ["a", "b"]


def test_one_shops_error_is_recorded_and_the_others_are_polled():
    def poll(shop_id: str) -> int:
        if shop_id == "b":
            raise RuntimeError("Meta said no")
        return len(shop_id)

    polls = poll_shops(["a", "b", "cc"], poll, 60.0, workers=2)
    assert polls.results == {"a": 1, "cc": 2}
    assert polls.errors == {"b": "RuntimeError: Meta said no"}
    assert polls.deferred == []


def test_every_shop_is_visited_within_a_few_ticks_of_rotation():
    """Two shops per tick over five shops: three ticks visit all of them, in order."""
    shops = [f"s{n}" for n in range(5)]
    cursor, seen = None, []
    for _ in range(3):
        polls = poll_shops(rotate(shops, cursor), str, 2.5, workers=1, clock=ticking_clock())
        seen += polls.visited
        cursor = polls.deferred[0] if polls.deferred else None
    assert seen[:5] == shops


# -- meta_changes_sensor and the sweep against the sandbox ------------------------------------


@pytest.fixture
def order_shops_world(onboard, metasync_db, sandbox_admin):
    for shop_id in ("acme", "bolt", "cozy"):
        onboard(shop_id)
    return MetasyncResource(database_url=metasync_db.url)


def test_meta_changes_sensor_defers_shops_past_its_budget_and_starts_there_next(
    order_shops_world, monkeypatch
):
    metasync = order_shops_world
    monkeypatch.setenv("METASYNC_ORDERS_TICK_BUDGET_SECONDS", "-1")
    with dg.build_sensor_context(resources={"metasync": metasync}, cursor=None) as context:
        skip = meta_changes_sensor(context)
        cursor = json.loads(context.cursor)
    assert isinstance(skip, dg.SkipReason)
    assert "0 of 3 eligible shops polled" in skip.skip_message
    assert "3 shops deferred to the next tick (time budget): acme, bolt, cozy" in skip.skip_message
    assert cursor == {"next": "acme", "deferred": ["acme", "bolt", "cozy"]}

    monkeypatch.setenv("METASYNC_ORDERS_TICK_BUDGET_SECONDS", "30")
    with dg.build_sensor_context(
        resources={"metasync": metasync}, cursor=json.dumps({"next": "bolt"})
    ) as context:
        skip = meta_changes_sensor(context)
        cursor = json.loads(context.cursor)
    assert "3 of 3 eligible shops polled" in skip.skip_message
    assert cursor == {"next": None, "deferred": []}


def test_meta_changes_sensor_reports_a_shops_rejected_token_and_polls_the_rest(
    order_shops_world, sandbox_admin
):
    sandbox_admin.expire_token("bolt")
    with dg.build_sensor_context(resources={"metasync": order_shops_world}) as context:
        skip = meta_changes_sensor(context)
    assert "3 of 3 eligible shops polled" in skip.skip_message
    assert "bolt: GraphAuthError" in skip.skip_message


def test_sweep_requests_stale_orders_and_rotates_least_recently_swept_first(
    order_shops_world, sandbox_admin, sandbox, monkeypatch
):
    metasync = order_shops_world
    (placed,) = sandbox_admin.place_orders(
        "bolt", [{"items": [{"retailer_id": "A", "quantity": 1, "price": "5.00"}]}]
    )
    later = sandbox.state.now() + timedelta(hours=1)  # the order has been CREATED for an hour

    monkeypatch.setenv("METASYNC_ORDERS_TICK_BUDGET_SECONDS", "-1")
    with dg.build_schedule_context(
        resources={"metasync": metasync}, scheduled_execution_time=later
    ) as context:
        skip = created_orders_sweep_schedule(context)
    assert "3 shops deferred to the next tick (time budget)" in skip.skip_message
    db = metasync.db()
    with db.begin() as conn:
        assert conn.execute(select(order_watermarks)).all() == []  # nothing was swept

    monkeypatch.setenv("METASYNC_ORDERS_TICK_BUDGET_SECONDS", "30")
    with dg.build_schedule_context(
        resources={"metasync": metasync}, scheduled_execution_time=later
    ) as context:
        [request] = created_orders_sweep_schedule(context)
    assert request.tags["shop"] == "bolt"
    assert placed["id"] in json.dumps(request.run_config)
    with db.begin() as conn:
        swept = conn.execute(
            select(order_watermarks.c.shop_id).where(order_watermarks.c.stream == SWEEP_STREAM)
        ).scalars()
        assert sorted(swept) == ["acme", "bolt", "cozy"]

    # A newly registered shop was never swept: it goes first next time.
    assert least_recently_swept(db, ["acme", "bolt", "cozy", "dune"])[0] == "dune"


# -- the batched catalog job -------------------------------------------------------------------


def test_mapping_keys_are_valid_and_unique():
    keys = mapping_keys(["shop-a", "shop_a", "b.c"])
    assert keys == ["shop_a", "shop_a__1", "b_c"]


def test_batch_requests_carry_at_most_the_batch_size_and_keep_their_keys():
    shops = [f"s{n:02d}" for n in range(7)]
    first = batch_run_requests(shops, "stock_price", "20260301T1015", batch_size=3)
    again = batch_run_requests(shops, "stock_price", "20260301T1015", batch_size=3)
    assert [len(r.run_config["ops"]["fan_out_batch"]["config"]["shop_ids"]) for r in first] == [
        3,
        3,
        1,
    ]
    assert [r.run_key for r in first] == [r.run_key for r in again]
    assert len({r.run_key for r in first}) == 3
    for request in first:
        assert dg.validate_run_config(catalog_batch_job, request.run_config)


def test_batch_syncs_every_shop_and_a_failing_shop_stops_no_other(
    onboard, metasync_db, tmp_path, sandbox_admin
):
    shops = ["acme", "bolt", "cozy", "dune"]
    for n, shop_id in enumerate(shops):
        store = tmp_path / f"{shop_id}.csv"
        write_shopify_csv(store, seed=n, products=3)
        onboard(shop_id, source_location=str(store))
    (tmp_path / "cozy.csv").unlink()  # cozy's store export is gone: its sync fails
    metasync = MetasyncResource(database_url=metasync_db.url)
    metasync.registry().set_status("dune", ShopStatus.PAUSED, "holiday closure")
    config = batch_run_config(shops, "delta")
    config["ops"]["sync_batch_shop"]["config"] = CATALOG_CONFIG

    result = catalog_batch_job.execute_in_process(
        run_config=config, resources={"metasync": metasync}, raise_on_error=False
    )

    assert not result.success  # the run fails, after every other shop had its turn
    synced = result.output_for_node("sync_batch_shop")
    assert {r["shop_id"]: r["ok"] for r in synced.values()} == {
        "acme": True,
        "bolt": True,
        "cozy": False,
    }
    assert "cozy" in next(
        e.event_specific_data.error.message
        for e in result.all_events
        if e.event_type_value == "STEP_FAILURE"
    )
    for shop_id in ("acme", "bolt"):
        assert sandbox_admin.catalog_items(shop_id)["count"] > 0
    assert sandbox_admin.catalog_items("cozy")["count"] == 0
    assert sandbox_admin.catalog_items("dune")["count"] == 0  # paused: skipped with its reason
    skipped = result.output_for_node("fan_out_batch", "skipped")
    assert "holiday closure" in skipped["dune"]

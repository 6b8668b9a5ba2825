"""The intake sensor and job: cursor, run keys, run config, fan-out, skips with reasons."""

import json

import dagster as dg

from pipelines.orders.definitions import defs
from pipelines.orders.jobs import ingest_orders_job, ingest_run_config
from pipelines.orders.ops import mapping_key
from pipelines.orders.resources import OmsResource
from pipelines.orders.sensors import new_orders_sensor
from pipelines.resources import MetasyncResource
from resources.shops import ShopStatus
from tests.integration.orders.conftest import meta_state


def _evaluate(metasync, cursor=None):
    with dg.build_sensor_context(cursor=cursor, resources={"metasync": metasync}) as context:
        result = new_orders_sensor(context)
        return result, context.cursor


def test_sensor_requests_one_run_per_shop_batch_and_moves_its_watermark(
    onboard, metasync, place_order
):
    onboard("acme")
    onboard("offsite", onsite_orders=False)
    ids = sorted(place_order()["id"] for _ in range(3))

    result, _ = _evaluate(metasync)

    assert isinstance(result, dg.SensorResult)
    [request] = result.run_requests
    assert request.tags["shop"] == "acme"
    config = request.run_config["ops"]["plan_order_intake"]["config"]
    assert sorted(config["order_ids"]) == ids
    assert "token" not in json.dumps(request.run_config).lower()
    assert dg.validate_run_config(ingest_orders_job, request.run_config)

    cursor = json.loads(result.cursor)
    assert set(cursor) == {"acme"} and sorted(cursor["acme"]["seen"]) <= ids

    # The same tick again: nothing new, so a skip that says why, naming the skipped shop.
    again, _ = _evaluate(metasync, cursor=result.cursor)
    assert isinstance(again, dg.SkipReason)
    assert "offsite: no onsite_orders capability" in again.skip_message

    # A new order after the watermark gets its own run with a different run key.
    newer = place_order()["id"]
    third, _ = _evaluate(metasync, cursor=result.cursor)
    [request2] = third.run_requests
    assert request2.run_config["ops"]["plan_order_intake"]["config"]["order_ids"] == [newer]
    assert request2.run_key != request.run_key


def test_sensor_skips_paused_shops_with_their_reason(onboard, metasync, registry, place_order):
    onboard("acme")
    place_order()
    registry.set_status("acme", ShopStatus.PAUSED, "seller asked for a pause")
    result, _ = _evaluate(metasync)
    assert isinstance(result, dg.SkipReason)
    assert "seller asked for a pause" in result.skip_message


def test_ingest_job_fans_out_per_order_and_acknowledges(
    onboard, metasync, oms, place_order, sandbox_admin
):
    onboard("acme")
    ids = [place_order()["id"] for _ in range(3)]
    resources = {"metasync": metasync, "oms": OmsResource(database_url=oms.url)}

    result = ingest_orders_job.execute_in_process(
        run_config=ingest_run_config("acme", ids), resources=resources, tags={"shop": "acme"}
    )

    assert result.success
    imported = result.output_for_node("import_order")
    assert set(imported) == {mapping_key(i) for i in ids}
    for order_id in ids:
        assert meta_state(sandbox_admin, "acme", order_id)["order"]["order_status"]["state"] == (
            "IN_PROGRESS"
        )
    # Two overlapping runs over the same orders: each order is imported once.
    rerun = ingest_orders_job.execute_in_process(
        run_config=ingest_run_config("acme", ids), resources=resources, tags={"shop": "acme"}
    )
    assert rerun.success
    assert len(oms.orders_for("acme")) == 3


def test_mapping_keys_are_safe_and_distinct():
    assert mapping_key("12345") == "12345"
    odd = [mapping_key("a-b"), mapping_key("a_b"), mapping_key("a.b")]
    assert len(set(odd)) == 3
    assert all(key.replace("_", "").isalnum() for key in odd)


def test_orders_definitions_load():
    dg.Definitions.validate_loadable(
        dg.Definitions.merge(
            defs,
            dg.Definitions(resources={"metasync": MetasyncResource(), "oms": OmsResource()}),
        )
    )

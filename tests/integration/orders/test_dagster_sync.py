"""The OMS-changes and Meta-changes sensors and their jobs."""

import dagster as dg

from pipelines.orders.intake import run_order_intake
from pipelines.orders.jobs import pull_meta_changes_job, push_order_changes_job
from pipelines.orders.resources import OmsResource
from pipelines.orders.sensors import meta_changes_sensor, oms_changes_sensor
from resources.oms import EventLine
from tests.integration.orders.conftest import meta_state


def test_oms_changes_sensor_and_push_job_ship_on_meta(
    onboard, metasync, oms, place_order, sandbox_admin
):
    onboard("acme")
    placed = place_order(items=[{"retailer_id": "A", "quantity": 2, "price": "9.99"}])
    run_order_intake(metasync, oms, "acme")
    order = oms.find_order("acme", "meta", placed["id"])
    line = order.lines[0]
    oms.ship(order.order_id, [EventLine(line.line_id, 1)], "UPS", "P1")
    oms.ship(order.order_id, [EventLine(line.line_id, 1)], "UPS", "P2")
    resources = {"metasync": metasync, "oms": OmsResource(database_url=oms.url)}

    with dg.build_sensor_context(resources=resources) as context:
        [request] = oms_changes_sensor(context)
    assert request.tags["shop"] == "acme"
    assert dg.validate_run_config(push_order_changes_job, request.run_config)

    result = push_order_changes_job.execute_in_process(
        run_config=request.run_config, resources=resources, tags=request.tags
    )
    assert result.success
    assert meta_state(sandbox_admin, "acme", placed["id"])["order"]["order_status"]["state"] == (
        "COMPLETED"
    )
    with dg.build_sensor_context(resources=resources) as context:
        skip = oms_changes_sensor(context)
    assert isinstance(skip, dg.SkipReason)


def test_meta_changes_sensor_requests_a_pull_only_when_meta_changed_something(
    onboard, metasync, oms, place_order, sandbox_admin
):
    onboard("acme")
    placed = place_order(items=[{"retailer_id": "A", "quantity": 2, "price": "9.99"}])
    run_order_intake(metasync, oms, "acme")
    resources = {"metasync": metasync, "oms": OmsResource(database_url=oms.url)}
    with dg.build_sensor_context(resources={"metasync": metasync}) as context:
        assert isinstance(meta_changes_sensor(context), dg.SkipReason)

    item_id = oms.find_order("acme", "meta", placed["id"]).lines[0].external_line_id
    sandbox_admin.call(
        "POST",
        f"/shops/acme/orders/{placed['id']}/meta_cancel",
        json={"items": [{"item_id": item_id, "quantity": 1}]},
    )
    with dg.build_sensor_context(resources={"metasync": metasync}) as context:
        [request] = meta_changes_sensor(context)
    result = pull_meta_changes_job.execute_in_process(
        run_config=request.run_config, resources=resources, tags=request.tags
    )
    assert result.success
    assert oms.find_order("acme", "meta", placed["id"]).lines[0].qty_cancelled == 1
    # The watermark moved: the same Meta change does not trigger another pull.
    with dg.build_sensor_context(resources={"metasync": metasync}) as context:
        assert isinstance(meta_changes_sensor(context), dg.SkipReason)

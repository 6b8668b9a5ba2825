"""Order intake against the live sandbox: import once, acknowledge with the OMS reference."""

import dagster as dg

from pipelines.orders.intake import run_order_intake
from pipelines.orders.ledger import OrderLedger
from pipelines.signals.definitions import capi_purchase_events_job
from pipelines.signals.outbox import pending_count
from tests.integration.orders.conftest import meta_state


def test_new_orders_are_imported_acknowledged_and_queued_for_capi(
    onboard, metasync, oms, place_order, sandbox_admin
):
    onboard("acme")
    first = place_order()
    second = place_order(items=[{"retailer_id": "SKU-2", "quantity": 3, "price": "5.00"}])

    summary = run_order_intake(metasync, oms, "acme")

    assert (summary.imported, summary.acknowledged, summary.issues) == (2, 2, 0)
    for placed in (first, second):
        state = meta_state(sandbox_admin, "acme", placed["id"])
        assert state["order"]["order_status"]["state"] == "IN_PROGRESS"
        oms_order = oms.find_order("acme", "meta", placed["id"])
        assert state["order"].get("merchant_order_id") == oms_order.reference
        assert oms_order.status == "processing"
    again = run_order_intake(metasync, oms, "acme")
    assert again.listed == 0
    assert OrderLedger(metasync.db()).count_by_state("acme") == {"acknowledged": 2}


def test_capi_job_sends_queued_purchases_to_the_sandbox(onboard, metasync, oms, place_order):
    onboard("acme")
    place_order()
    run_order_intake(metasync, oms, "acme")
    assert pending_count(metasync.db(), "acme") == 1
    result = capi_purchase_events_job.execute_in_process(resources={"metasync": metasync})
    assert result.success
    assert pending_count(metasync.db(), "acme") == 0
    [materialization] = [
        e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT
    ]
    assert materialization.event_specific_data.metadata["events_sent"].value == 1

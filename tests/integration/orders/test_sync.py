"""OMS -> Meta and Meta -> OMS against the live sandbox: exact money, one effect per change."""

from decimal import Decimal

import pytest

from pipelines.orders.intake import orders_context, run_order_intake
from pipelines.orders.mapping import plan_refund
from pipelines.orders.sync import pending_changes, pull_meta_changes, push_order_changes
from resources.oms import EventLine
from tests.integration.orders.conftest import meta_state

DISCOUNTED_ORDER = {
    "items": [
        {"retailer_id": "SKU-A", "quantity": 1, "price": "30.00"},
        {"retailer_id": "SKU-B", "quantity": 2, "price": "10.00"},
        {"retailer_id": "SKU-C", "quantity": 1, "price": "10.00"},
    ],
    "order_discounts": [{"amount": "10.00", "campaign_name": "TEN", "coupon_code": "TEN"}],
    "shipping_price": "4.90",
    "free_shipping_sponsor": "merchant",
}


@pytest.fixture
def imported(onboard, metasync, oms, place_order):
    onboard("acme")
    placed = place_order(**DISCOUNTED_ORDER)
    run_order_intake(metasync, oms, "acme")
    return oms.find_order("acme", "meta", placed["id"])


def _push(metasync, oms):
    with orders_context(metasync, oms, "acme") as ctx:
        return push_order_changes(ctx, pending_changes(ctx))


def _meta(sandbox_admin, order_id):
    return meta_state(sandbox_admin, "acme", order_id)


def test_refunding_one_item_at_a_time_refunds_exactly_what_was_paid(
    imported, metasync, oms, sandbox_admin
):
    order = imported
    for line in order.lines:
        oms.ship(order.order_id, [EventLine(line.line_id, quantity=line.quantity)], "UPS",
                 f"1Z{line.line_id}")  # fmt: skip
    assert _push(metasync, oms).synced == 3
    assert _meta(sandbox_admin, order.external_ref)["order"]["order_status"]["state"] == "COMPLETED"

    refunded = []
    for line in order.lines:
        for _ in range(line.quantity):
            current = oms.get_order(order.order_id)
            planned = plan_refund(current, {line.line_id: 1})
            oms.refund(order.order_id, planned, reason_code="BUYERS_REMORSE")
            refunded.append(planned[0].amount)
            summary = _push(metasync, oms)
            assert summary.synced == 1, summary.details

    # Every line refunded to the cent: 30 + 20 + 10 less the 10.00 order discount.
    assert sum(refunded) == Decimal("50.00")
    internal = _meta(sandbox_admin, order.external_ref)["internal"]
    meta_refunded_minor = sum(item["refunded_amount"] for item in internal["items"])
    oms_refunded = sum(line.refunded_amount for line in oms.get_order(order.order_id).lines)
    assert oms_refunded == Decimal("50.00")
    assert meta_refunded_minor == 5000  # the sandbox counts minor units


def test_a_shipment_split_into_two_parcels_is_two_meta_shipments(
    imported, metasync, oms, sandbox_admin
):
    order = imported
    b = order.lines[1]
    oms.ship(order.order_id, [EventLine(order.lines[0].line_id, 1), EventLine(b.line_id, 1)],
             "UPS", "PARCEL-1")  # fmt: skip
    second = oms.ship(order.order_id, [EventLine(b.line_id, 1)], "DHL", "PARCEL-2")
    oms.update_tracking(second, "DHL", "PARCEL-2B")
    summary = _push(metasync, oms)
    assert summary.synced == 3, summary.details

    with orders_context(metasync, oms, "acme") as ctx:
        shipments = ctx.api.list_shipments(order.external_ref)
    tracking = sorted(s.tracking_info.tracking_number for s in shipments)
    assert tracking == ["PARCEL-1", "PARCEL-2B"]
    state = _meta(sandbox_admin, order.external_ref)
    assert state["order"]["order_status"]["state"] == "IN_PROGRESS"  # SKU-C is still open
    assert _push(metasync, oms).synced == 0  # nothing left to send


def test_a_crash_after_meta_applied_a_refund_replays_the_key_and_refunds_once(
    imported, metasync, oms, sandbox_admin, monkeypatch
):
    order = imported
    a = order.lines[0]
    oms.ship(order.order_id, [EventLine(a.line_id, 1)], "UPS", "1ZA")
    _push(metasync, oms)
    oms.refund(order.order_id, plan_refund(oms.get_order(order.order_id), {a.line_id: 1}),
               reason_code="DAMAGED_GOODS")  # fmt: skip

    # Meta applies the refund, then the process dies before metasync records the success.
    from resources.db.outbox import GraphWriteOutbox

    def crash(self, key, response):
        raise RuntimeError("process killed")

    monkeypatch.setattr(GraphWriteOutbox, "mark_succeeded", crash)
    with pytest.raises(RuntimeError):
        _push(metasync, oms)
    monkeypatch.undo()

    # And the answer of the replay is lost once more (applied, then a 500): still one refund.
    sandbox_admin.add_fault(kind="apply_then_500", path_pattern="refunds", method="POST", times=1)
    assert _push(metasync, oms).synced == 1
    with orders_context(metasync, oms, "acme") as ctx:
        refunds = ctx.api.list_refunds(order.external_ref)
    assert len(refunds) == 1
    assert refunds[0].items[0].refund_subtotal.amount == Decimal("25.00")


def test_meta_side_cancellations_and_refunds_reach_the_oms_once(
    imported, metasync, oms, sandbox_admin
):
    order = imported
    a, b, c = order.lines
    oms.ship(order.order_id, [EventLine(a.line_id, 1)], "UPS", "1ZA")
    oms.cancel(order.order_id, [EventLine(b.line_id, 1)], reason_code="OUT_OF_STOCK")
    _push(metasync, oms)
    sandbox_admin.call(
        "POST", f"/shops/acme/orders/{order.external_ref}/meta_cancel",
        json={"items": [{"item_id": c.external_line_id, "quantity": 1}]},
    )  # fmt: skip
    sandbox_admin.call(
        "POST", f"/shops/acme/orders/{order.external_ref}/meta_refund",
        json={"items": [{"item_id": a.external_line_id,
                         "item_refund_amount": {"amount": "10.00", "currency": "EUR"}}]},
    )  # fmt: skip

    for _ in range(2):  # the second pull finds nothing new
        with orders_context(metasync, oms, "acme") as ctx:
            pull_meta_changes(ctx)
    after = oms.get_order(order.order_id)
    assert after.line(c.line_id).qty_cancelled == 1  # Meta's cancellation, once
    assert after.line(b.line_id).qty_cancelled == 1  # ours, not echoed back as Meta's
    assert len(oms.refunds_for(order.order_id)) == 1
    [refund] = oms.refunds_for(order.order_id)
    assert (refund.origin, refund.items_amount) == ("meta", Decimal("10.00"))
    assert oms.changes_for("acme")[-1].kind != "refund"  # never echoed back to Meta

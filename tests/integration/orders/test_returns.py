"""A buyer's return, end to end: opened on Meta, pulled into the OMS, accepted there, the
decision pushed to Meta, and the refund for it linked to Meta's return id."""

from decimal import Decimal

from pipelines.orders.intake import orders_context, run_order_intake
from pipelines.orders.mapping import plan_refund
from pipelines.orders.sync import pending_changes, pull_meta_changes, push_order_changes
from resources.oms import EventLine

ORDER = {
    "items": [
        {"retailer_id": "SKU-A", "quantity": 2, "price": "20.00"},
        {"retailer_id": "SKU-B", "quantity": 1, "price": "15.00"},
    ],
    "shipping_price": "4.90",
}


def _push(metasync, oms):
    with orders_context(metasync, oms, "acme") as ctx:
        return push_order_changes(ctx, pending_changes(ctx))


def _pull(metasync, oms):
    with orders_context(metasync, oms, "acme") as ctx:
        return pull_meta_changes(ctx)


def test_buyer_return_is_pulled_accepted_and_refunded_with_its_return_id(
    onboard, metasync, oms, place_order, sandbox_admin
):
    onboard("acme")
    placed = place_order(**ORDER)
    run_order_intake(metasync, oms, "acme")
    order = oms.find_order("acme", "meta", placed["id"])
    a, b = order.lines
    oms.ship(order.order_id, [EventLine(a.line_id, 2), EventLine(b.line_id, 1)], "UPS", "1Z1")
    assert _push(metasync, oms).synced == 1

    opened = sandbox_admin.open_return(
        "acme", placed["id"], [{"item_id": a.external_line_id, "quantity": 1,
                                "reason": "DAMAGED"}], message="arrived broken",
    )  # fmt: skip

    # Meta -> OMS: the return arrives once, as requested, with its lines and reason.
    assert _pull(metasync, oms).returns == 1
    assert _pull(metasync, oms).returns == 0
    [ret] = oms.returns_for(order.order_id)
    assert (ret.external_ref, ret.status, ret.reason) == (opened["id"], "requested", "DAMAGED")
    assert [(line.line_id, line.quantity) for line in ret.lines] == [(a.line_id, 1)]

    # OMS -> Meta: accept, then refund the returned unit against the return.
    oms.decide_return(ret.return_id, accept=True)
    refund_lines = plan_refund(oms.get_order(order.order_id), {a.line_id: 1})
    oms.refund(order.order_id, refund_lines, reason_code="DAMAGED_GOODS",
               return_id=ret.return_id)  # fmt: skip
    summary = _push(metasync, oms)
    assert summary.synced == 2, summary.details

    with orders_context(metasync, oms, "acme") as ctx:
        [meta_return] = ctx.api.list_returns(placed["id"])
        [meta_refund] = ctx.api.list_refunds(placed["id"])
    assert meta_return.merchant_return_id == f"oms_ret_{ret.return_id}"
    assert meta_return.return_status == "REFUNDED"  # accepted, then settled by the refund
    # Meta's refund listing does not document return_id; the sandbox's own record shows it.
    internal = sandbox_admin.order_state("acme", placed["id"])["internal"]
    assert internal["refund_return_ids"] == [opened["id"]]
    assert meta_refund.items[0].refund_subtotal.amount == Decimal("20.00")

    # Our refund is not pulled back as Meta's doing, and nothing is left to push.
    assert _pull(metasync, oms).refunds == 0
    assert len(oms.refunds_for(order.order_id)) == 1
    assert _push(metasync, oms).synced == 0


def test_a_declined_return_is_pushed_and_not_refunded(
    onboard, metasync, oms, place_order, sandbox_admin
):
    onboard("acme")
    placed = place_order(**ORDER)
    run_order_intake(metasync, oms, "acme")
    order = oms.find_order("acme", "meta", placed["id"])
    b = order.lines[1]
    oms.ship(order.order_id, [EventLine(b.line_id, 1)], "UPS", "1Z2")
    _push(metasync, oms)
    sandbox_admin.open_return("acme", placed["id"], [{"item_id": b.external_line_id}])
    _pull(metasync, oms)
    [ret] = oms.returns_for(order.order_id)

    oms.decide_return(ret.return_id, accept=False)
    assert _push(metasync, oms).synced == 1

    with orders_context(metasync, oms, "acme") as ctx:
        [meta_return] = ctx.api.list_returns(placed["id"])
        assert ctx.api.list_refunds(placed["id"]) == []
    assert meta_return.return_status == "DISAPPROVED"
    assert oms.get_return(ret.return_id).status == "declined"

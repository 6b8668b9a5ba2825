"""OrdersApi against the live sandbox: listing, acknowledgement, shipments, cancellations,
refunds with offers, idempotency."""

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest

from resources.meta.errors import GraphError
from resources.meta.orders import OrdersApi, OrdersRequestError
from resources.meta.orders_models import (
    CancelItem,
    Money,
    OrderAck,
    RefundItem,
    ShipmentItem,
    TrackingInfo,
)


@pytest.fixture
def shop(usd_shop):
    profile, graph = usd_shop
    return profile, OrdersApi(graph, cms_id=profile.cms_id, page_id=profile.page_id)


def place(sandbox_admin, **order) -> str:
    answer = sandbox_admin.call("POST", "/shops/acme/orders", json={"orders": [order]})
    return answer["orders"][0]["id"]


def internal(sandbox_admin, order_id):
    return sandbox_admin.call("GET", f"/shops/acme/orders/{order_id}")["internal"]


TWO_LINES = {
    "items": [
        {"retailer_id": "A", "quantity": 3, "price": "10.00", "tax_rate": "0.10"},
        {"retailer_id": "B", "quantity": 1, "price": "5.00", "tax_rate": "0.10"},
    ],
    "shipping_price": "4.90",
}


def test_list_pages_filters_and_watermark(shop, sandbox_admin):
    """All CREATED orders come back across pages; updated_after leaves out older ones."""
    _, api = shop
    sandbox_admin.call("POST", "/shops/acme/orders", json={"generate": {"count": 7, "seed": 3}})
    orders = list(api.list_orders(limit=3))
    assert len(orders) == 7 and len({o.id for o in orders}) == 7
    assert all(o.state == "CREATED" and o.items for o in orders)

    sandbox_admin.advance_clock(120)
    watermark = datetime.now(UTC) + timedelta(seconds=60)
    newer = place(sandbox_admin, **TWO_LINES)
    after = [o.id for o in api.list_orders(updated_after=watermark)]
    assert after == [newer]
    assert list(api.list_orders(states=("IN_PROGRESS",))) == []
    assert list(api.list_orders(filters=["has_cancellations"])) == []


def test_ack_single_batch_and_limits(shop, sandbox_admin):
    _, api = shop
    first, second = place(sandbox_admin, **TWO_LINES), place(sandbox_admin, **TWO_LINES)
    result = api.acknowledge_order(first, "OMS-1", idempotency_key="ack-1")
    assert result.state == "IN_PROGRESS"
    assert api.get_order(first).merchant_order_id == "OMS-1"

    results = api.acknowledge_orders(
        [OrderAck(order_id=second, merchant_order_reference="OMS-2"), OrderAck(order_id="999")],
        idempotency_key="batch-1",
    )
    assert [r.ok for r in results] == [True, False]
    assert results[1].error.error_code == 2361003
    again = api.acknowledge_orders([OrderAck(order_id=first)], idempotency_key="batch-2")
    assert again[0].error.error_code == 2361009

    with pytest.raises(OrdersRequestError):
        api.acknowledge_orders([OrderAck(order_id=str(n)) for n in range(101)], "batch-3")
    # The sandbox refuses it too, for callers that skip the client's check.
    with pytest.raises(GraphError) as refused:
        api.graph.post(
            f"{api.page_id}/acknowledge_orders",
            {"idempotency_key": "raw", "orders": [{"id": str(n)} for n in range(101)]},
        )
    assert refused.value.code == 100


def test_partial_shipment_in_two_parcels_completes_order(shop, sandbox_admin):
    _, api = shop
    order_id = place(sandbox_admin, **TWO_LINES)
    api.acknowledge_order(order_id, "OMS-3", "ack-3")
    ups = TrackingInfo(carrier="UPS", tracking_number="1Z1")
    api.create_shipment(order_id, [ShipmentItem(retailer_id="A", quantity=2)], ups, "p1", "s-1")
    assert api.get_order(order_id).state == "IN_PROGRESS"

    with pytest.raises(GraphError) as duplicate:
        api.create_shipment(order_id, None, ups, "p2", "s-2")
    assert duplicate.value.code == 2382045
    with pytest.raises(GraphError):
        api.create_shipment(
            order_id,
            [ShipmentItem(retailer_id="A", quantity=2)],
            TrackingInfo(carrier="fedex", tracking_number="F2"),
            "p2",
            "s-3",
        )

    fedex = TrackingInfo(carrier="fedex", tracking_number="F2")
    api.create_shipment(order_id, None, fedex, "p2", "s-4")
    shipments = api.list_shipments(order_id)
    assert [sum(i.quantity for i in s.items) for s in shipments] == [2, 2]
    assert api.get_order(order_id).state == "COMPLETED"
    payments = api.payments(order_id)
    assert len(payments) == 2 and all(p.captured for p in payments)
    # Tax captured over the two parcels adds up to the estimate exactly.
    items = api.get_order(order_id).items
    for item in items:
        assert item.tax_details.captured_tax.total_tax == item.tax_details.estimated_tax

    api.update_shipment(
        order_id,
        TrackingInfo(carrier="DHL", tracking_number="D9"),
        "u-1",
        external_shipment_id="p2",
    )
    assert api.list_shipments(order_id)[1].tracking_info.tracking_number == "D9"


def test_cancellations_partial_then_full(shop, sandbox_admin):
    _, api = shop
    order_id = place(sandbox_admin, **TWO_LINES)
    api.acknowledge_order(order_id, None, "ack-4")
    api.cancel_order(
        order_id,
        "c-1",
        items=[CancelItem(retailer_id="A", quantity=1)],
        reason_code="OUT_OF_STOCK",
        restock_items=True,
    )
    assert internal(sandbox_admin, order_id)["items"][0]["cancelled"] == 1
    assert [
        o.id for o in api.list_orders(states=("IN_PROGRESS",), filters=["has_cancellations"])
    ] == [order_id]

    api.create_shipment(
        order_id,
        [ShipmentItem(retailer_id="A", quantity=1)],
        TrackingInfo(carrier="UPS", tracking_number="X1"),
        None,
        "s-5",
    )
    with pytest.raises(GraphError) as shipped:
        api.cancel_order(order_id, "c-2", items=[CancelItem(retailer_id="A", quantity=2)])
    assert shipped.value.code == 1818215
    api.cancel_order(order_id, "c-3")
    state = internal(sandbox_admin, order_id)
    assert [(i["shipped"], i["cancelled"]) for i in state["items"]] == [(1, 2), (0, 1)]
    assert api.get_order(order_id).state == "COMPLETED"
    with pytest.raises(GraphError) as done:
        api.cancel_order(order_id, "c-4")
    assert done.value.code == 1818214
    assert len(api.list_cancellations(order_id)) == 2


def test_refunds_item_by_item_with_order_discount_and_free_shipping(shop, sandbox_admin):
    """Order-level 1.01 off split over lines; refunding each line's available amount refunds
    exactly what was paid, then nothing more can be refunded."""
    _, api = shop
    order_id = place(
        sandbox_admin,
        items=[
            {"retailer_id": "A", "quantity": 2, "price": "0.78"},
            {"retailer_id": "B", "quantity": 1, "price": "0.72"},
        ],
        order_discounts=[{"amount": "1.01", "campaign_name": "$1.01 off"}],
        shipping_price="3.00",
        free_shipping_sponsor="merchant",
    )
    api.acknowledge_order(order_id, None, "ack-5")
    api.create_shipment(
        order_id, None, TrackingInfo(carrier="UPS", tracking_number="R1"), "r1", "s-6"
    )
    order = api.get_order(order_id)
    shares = {i.retailer_id: i.promotion_details[0].applied_amount.amount for i in order.items}
    assert sum(shares.values()) == Decimal("1.01")
    assert order.estimated_payment_details.subtotal.shipping.amount == Decimal("0")
    paid = order.estimated_payment_details.total_amount.amount
    assert paid == Decimal("2.28") - Decimal("1.01")

    with pytest.raises(GraphError):  # quantity refunds are refused with order-level offers
        api.refund_order(order_id, "f-0", items=[RefundItem(retailer_id="A", quantity=1)])

    refunded = Decimal(0)
    for n, item in enumerate(order.items):
        available = item.amount_available_for_refund
        assert (
            available.amount
            == item.price_per_unit.amount * item.quantity - shares[item.retailer_id]
        )
        api.refund_order(
            order_id,
            f"f-{n + 1}",
            reason_code="BUYERS_REMORSE",
            items=[RefundItem(item_id=item.id, item_refund_amount=available)],
        )
        refunded += available.amount
    assert refunded == paid
    assert sum(r.refund_amount.amount for r in api.list_refunds(order_id)) == paid
    with pytest.raises(GraphError) as nothing_left:
        api.refund_order(
            order_id,
            "f-9",
            items=[
                RefundItem(item_id=order.items[0].id, item_refund_amount=Money.of("0.01", "USD"))
            ],
        )
    assert nothing_left.value.code == 2382319


def test_refund_more_than_paid_and_before_capture(shop, sandbox_admin):
    _, api = shop
    order_id = place(sandbox_admin, **TWO_LINES)
    with pytest.raises(GraphError) as uncharged:
        api.refund_order(order_id, "g-0")
    assert uncharged.value.code == 1818107
    api.acknowledge_order(order_id, None, "ack-6")
    api.create_shipment(
        order_id, None, TrackingInfo(carrier="UPS", tracking_number="G1"), None, "s-7"
    )
    with pytest.raises(GraphError) as too_much:
        api.refund_order(
            order_id,
            "g-1",
            items=[RefundItem(retailer_id="B", item_refund_amount=Money.of("5.01", "USD"))],
        )
    assert too_much.value.code == 2382023
    with pytest.raises(GraphError) as shipping:
        api.refund_order(
            order_id,
            "g-2",
            items=[RefundItem(retailer_id="B", quantity=1)],
            shipping=Money.of("4.91", "USD"),
        )
    assert shipping.value.code == 2382022
    api.refund_order(
        order_id,
        "g-3",
        items=[RefundItem(retailer_id="B", quantity=1)],
        shipping=Money.of("4.90", "USD"),
    )
    (refund,) = api.list_refunds(order_id)
    assert refund.refund_amount.amount == Decimal("5.00") + Decimal("0.50") + Decimal("4.90")


def test_idempotent_replay_and_conflict(shop, sandbox_admin):
    _, api = shop
    order_id = place(sandbox_admin, **TWO_LINES)
    api.acknowledge_order(order_id, None, "ack-7")
    tracking = TrackingInfo(carrier="UPS", tracking_number="I1")
    item = [ShipmentItem(retailer_id="A", quantity=1)]
    api.create_shipment(order_id, item, tracking, "i1", "same-key")
    api.create_shipment(order_id, item, tracking, "i1", "same-key")
    assert internal(sandbox_admin, order_id)["shipments"] == 1
    with pytest.raises(GraphError) as conflict:
        api.create_shipment(
            order_id, [ShipmentItem(retailer_id="A", quantity=2)], tracking, "i1", "same-key"
        )
    assert conflict.value.code == 100
    assert internal(sandbox_admin, order_id)["items"][0]["shipped"] == 1


def test_returns_accept_and_refund(shop, sandbox_admin):
    _, api = shop
    order_id = place(sandbox_admin, **TWO_LINES)
    api.acknowledge_order(order_id, None, "ack-8")
    api.create_shipment(
        order_id, None, TrackingInfo(carrier="UPS", tracking_number="T1"), None, "s-8"
    )
    opened = sandbox_admin.call(
        "POST",
        f"/shops/acme/orders/{order_id}/returns",
        json={"items": [{"retailer_id": "B", "reason": "TOO_SMALL"}]},
    )
    (ret,) = api.list_returns(order_id)
    assert ret.id == opened["id"] and ret.return_status == "REQUESTED"
    api.update_return(ret.id, "ACCEPT_RETURN", "rt-1", merchant_return_id="RMA-1")
    api.refund_order(
        order_id,
        "rt-2",
        items=[RefundItem(retailer_id="B", quantity=1)],
        reason_code="REFUND_FOR_RETURN",
        return_id=ret.id,
    )
    (ret,) = api.list_returns(order_id)
    assert ret.return_status == "REFUNDED" and ret.merchant_return_id == "RMA-1"


def test_processing_orders_and_meta_side_cancellation(shop, sandbox_admin):
    """Orders wait in FB_PROCESSING until the clock passes; a Meta-side cancellation shows up
    under state=COMPLETED with has_cancellations, as the Meta-changes poll expects."""
    _, api = shop
    sandbox_admin.configure_orders(processing_seconds=600)
    order_id = place(sandbox_admin, **TWO_LINES)
    assert list(api.list_orders()) == []
    assert [o.id for o in api.list_orders(states=("FB_PROCESSING",))] == [order_id]
    sandbox_admin.advance_clock(601)
    assert [o.id for o in api.list_orders()] == [order_id]

    sandbox_admin.meta_cancel("acme", order_id)
    found = api.list_orders(states=("COMPLETED",), filters=["HAS_CANCELLATIONS"])
    assert [o.id for o in found] == [order_id]
    (cancellation,) = api.list_cancellations(order_id)
    assert cancellation.cancel_reason.reason_code == "CANCEL_REASON_OTHER"

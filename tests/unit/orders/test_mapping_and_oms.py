"""Meta order -> OMS order mapping, and the reference OMS's rules and outbox."""

from decimal import Decimal

import pytest

from pipelines.orders.mapping import (
    ImportIssueCode,
    OrderImportError,
    cancellation_write,
    draft_from_meta_order,
    plan_refund,
    refund_write,
    shipment_write,
)
from resources.meta.orders_models import MetaOrder
from resources.oms import EventLine, OmsAdapter, OmsError
from resources.oms.models import OmsOrderStatus, OrderSource


def money(amount: str, currency: str = "EUR") -> dict:
    return {"amount": amount, "currency": currency}


def meta_order(order_id: str = "1001", **overrides) -> MetaOrder:
    """Three items, a 10.00 seller-funded order-level discount, free shipping funded by Meta."""
    payload = {
        "id": order_id,
        "order_status": {"state": "CREATED"},
        "created": "2026-03-01T10:00:00+00:00",
        "last_updated": "2026-03-01T10:05:00+00:00",
        "buyer_details": {"name": "Ada", "email": "ada@example.com"},
        "selected_shipping_option": {
            "name": "Standard",
            "price": money("0.00"),
            "promotion_details": {
                "data": [
                    {
                        "promotion_id": "ship1",
                        "applied_amount": money("4.90"),
                        "sponsor": "facebook",
                        "target_granularity": "item_level",
                    }
                ]
            },
        },
        "estimated_payment_details": {
            "subtotal": {"items": money("60.00"), "shipping": money("0.00")},
            "tax": money("9.50"),
            "total_amount": money("59.50"),
        },
        "items": {
            "data": [
                {"id": "it1", "retailer_id": "SKU-A", "quantity": 1,
                 "price_per_unit": money("30.00")},
                {"id": "it2", "retailer_id": "SKU-B", "quantity": 2,
                 "price_per_unit": money("10.00")},
                {"id": "it3", "retailer_id": "SKU-C", "quantity": 1,
                 "price_per_unit": money("10.00")},
            ]
        },
        "promotion_details": {
            "data": [
                {
                    "promotion_id": "p10",
                    "applied_amount": money("10.00"),
                    "sponsor": "merchant",
                    "target_granularity": "order_level",
                    "coupon_code": "TEN",
                }
            ]
        },
    }  # fmt: skip
    payload.update(overrides)
    return MetaOrder.model_validate(payload)


@pytest.fixture
def oms(isolated_state) -> OmsAdapter:
    adapter = OmsAdapter(f"sqlite:///{isolated_state / 'oms.db'}")
    adapter.create_schema()
    return adapter


def test_order_level_discount_is_allocated_and_free_shipping_kept_explicit():
    draft = draft_from_meta_order("acme", meta_order())
    shares = [line.order_discount for line in draft.lines]
    assert shares == [Decimal("5.00"), Decimal("3.33"), Decimal("1.67")]
    assert sum(shares) == Decimal("10.00")
    shipping = [d for d in draft.discounts if d.granularity == "shipping"]
    assert [(d.amount, d.sponsor) for d in shipping] == [(Decimal("4.90"), "meta")]
    assert draft.shipping_total == 0
    assert draft.grand_total == Decimal("59.50")


def test_metas_own_line_split_wins_when_it_adds_up():
    order = meta_order()
    items = [item.model_dump(mode="json") for item in order.items]
    split = {"it1": "4.00", "it2": "4.00", "it3": "2.00"}
    for item in items:
        item["promotion_details"] = [
            {"promotion_id": "p10", "applied_amount": money(split[item["id"]]),
             "sponsor": "merchant", "target_granularity": "order_level"}
        ]  # fmt: skip
    draft = draft_from_meta_order("acme", meta_order(items=items))
    assert [line.order_discount for line in draft.lines] == [
        Decimal("4.00"), Decimal("4.00"), Decimal("2.00")
    ]  # fmt: skip


@pytest.mark.parametrize(
    ("items", "code"),
    [
        ([], ImportIssueCode.NO_ITEMS),
        ([{"id": "x", "quantity": 1, "price_per_unit": money("1.00")}],
         ImportIssueCode.MISSING_RETAILER_ID),
        ([{"id": "x", "retailer_id": "A", "quantity": 0, "price_per_unit": money("1.00")}],
         ImportIssueCode.BAD_QUANTITY),
        ([{"id": "x", "retailer_id": "A", "quantity": 1, "price_per_unit": money("1.00")},
          {"id": "y", "retailer_id": "B", "quantity": 1, "price_per_unit": money("1.00", "USD")}],
         ImportIssueCode.CURRENCY_MISMATCH),
    ],
)  # fmt: skip
def test_unimportable_orders_fail_with_a_code(items, code):
    with pytest.raises(OrderImportError) as caught:
        draft_from_meta_order("acme", meta_order(items=items, promotion_details=[]))
    assert caught.value.code == code


def test_import_is_idempotent_per_shop_and_meta_order(oms):
    draft = draft_from_meta_order("acme", meta_order())
    first = oms.import_order(draft)
    again = oms.import_order(draft)
    assert first.created and not again.created
    assert again.order_id == first.order_id
    assert len(oms.orders_for("acme")) == 1
    other_shop = oms.import_order(draft_from_meta_order("other", meta_order()))
    assert other_shop.order_id != first.order_id


def test_ship_cancel_refund_rules_and_the_outbox(oms):
    order = oms.get_order(oms.import_order(draft_from_meta_order("acme", meta_order())).order_id)
    a, b, c = order.lines
    oms.ship(order.order_id, [EventLine(b.line_id, quantity=1)], "UPS", "T1")
    oms.ship(order.order_id, [EventLine(b.line_id, quantity=1)], "UPS", "T2")
    with pytest.raises(OmsError):
        oms.ship(order.order_id, [EventLine(b.line_id, quantity=1)], "UPS", "T3")
    with pytest.raises(OmsError):
        oms.refund(order.order_id, [EventLine(a.line_id, 1, Decimal("1"))], reason_code="X")
    oms.cancel(order.order_id, [EventLine(c.line_id, quantity=1)], reason_code="OUT_OF_STOCK")
    oms.ship(order.order_id, [EventLine(a.line_id, quantity=1)], "DHL", "T4")
    assert oms.get_order(order.order_id).status == OmsOrderStatus.COMPLETED

    kinds = [change.kind for change in oms.changes_for("acme")]
    assert kinds == ["shipment", "shipment", "cancellation", "shipment"]


def test_changes_of_orders_not_from_meta_are_not_listed(oms):
    draft = draft_from_meta_order("acme", meta_order())
    web = oms.import_order(
        draft.__class__(**{**draft.__dict__, "source": OrderSource.WEB, "external_ref": "w1"})
    )
    line = oms.get_order(web.order_id).lines[0]
    oms.ship(web.order_id, [EventLine(line.line_id, quantity=1)], "UPS", "W1")
    assert oms.changes_for("acme") == []


def test_refunding_unit_by_unit_returns_the_net_paid_and_payloads_use_amounts(oms):
    order_id = oms.import_order(draft_from_meta_order("acme", meta_order())).order_id
    order = oms.get_order(order_id)
    b = order.lines[1]
    oms.ship(order_id, [EventLine(b.line_id, quantity=2)], "UPS", "T1")
    amounts = []
    for _ in range(2):
        order = oms.get_order(order_id)
        planned = plan_refund(order, {b.line_id: 1})
        refund_id = oms.refund(order_id, planned, reason_code="BUYERS_REMORSE")
        write = refund_write(order, oms.get_refund(refund_id))
        amounts.append(write.arguments["items"][0].item_refund_amount.amount)
    assert amounts == [Decimal("8.34"), Decimal("8.33")]
    assert sum(amounts) == Decimal("20.00") - Decimal("3.33")
    assert oms.get_order(order_id).lines[1].refunded_amount == Decimal("16.67")
    with pytest.raises(Exception):  # noqa: B017 - nothing left to refund on the line
        plan_refund(oms.get_order(order_id), {b.line_id: 1})


def test_writes_address_items_by_metas_line_id(oms):
    order_id = oms.import_order(draft_from_meta_order("acme", meta_order())).order_id
    order = oms.get_order(order_id)
    shipment_id = oms.ship(order_id, [EventLine(order.lines[0].line_id, quantity=1)], "ups", "Z")
    write = shipment_write(oms.get_order(order_id), oms.get_shipment(shipment_id))
    assert write.meta_order_id == "1001"
    assert write.body()["items"] == [{"item_id": "it1", "quantity": 1}]
    assert write.body()["external_shipment_id"] == f"oms_shp_{shipment_id}"
    cancellation_id = oms.cancel(order_id, reason_code="CUSTOMER_REQUESTED")
    cancel = cancellation_write(oms.get_order(order_id), oms.get_cancellation(cancellation_id))
    assert cancel.arguments["items"] is None  # the whole remaining order

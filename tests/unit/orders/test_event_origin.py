"""Matching a Meta cancellation or refund to the request metasync recorded for it."""

from decimal import Decimal

from pipelines.orders.event_origin import matches, refund_signature
from pipelines.orders.mapping import MetaWrite
from resources.meta.orders_models import MetaCancellation, MetaRefund, Money, RefundItem


def _refund_write(**items) -> MetaWrite:
    return MetaWrite("refund", "o1", {
        "items": [RefundItem(item_id="it1", quantity=1),
                  RefundItem(item_id="it2", item_refund_amount=Money.of("7.50", "EUR"))],
        "shipping": Money.of("4.90", "EUR"), "reason_code": "DAMAGED_GOODS", **items,
    })  # fmt: skip


def _meta_refund(it1_quantity=1, it2_amount="7.50", shipping="4.90", reason="DAMAGED_GOODS"):
    return MetaRefund.model_validate({
        "id": "r1",
        "items": {"data": [
            {"id": "it1", "retailer_id": "A", "quantity": it1_quantity,
             "refund_subtotal": {"amount": "12.00", "currency": "EUR"}},
            {"id": "it2", "retailer_id": "B",
             "refund_subtotal": {"amount": it2_amount, "currency": "EUR"}},
        ]},
        "refund_reason": {"reason_code": reason},
        "refund_amount": {"amount": "0", "currency": "EUR", "shipping": shipping},
    })  # fmt: skip


def test_a_refund_matches_only_the_same_units_amounts_shipping_and_reason():
    signature = refund_signature(_refund_write())
    assert matches("refund", signature, _meta_refund())
    assert not matches("refund", signature, _meta_refund(it1_quantity=2))
    assert not matches("refund", signature, _meta_refund(it2_amount="7.49"))
    assert not matches("refund", signature, _meta_refund(shipping="0.00"))
    assert not matches("refund", signature, _meta_refund(reason="FACEBOOK_INITIATED"))


def test_a_cancellation_matches_by_units_per_line():
    signature = {"items": {"it1": 2}, "reason_code": "OUT_OF_STOCK"}

    def cancellation(quantity, item_id="it1"):
        return MetaCancellation.model_validate({
            "id": "c1", "items": {"data": [{"id": item_id, "quantity": quantity}]},
            "cancel_reason": {"reason_code": "OUT_OF_STOCK"},
        })  # fmt: skip

    assert matches("cancellation", signature, cancellation(2))
    assert not matches("cancellation", signature, cancellation(1))
    assert not matches("cancellation", signature, cancellation(2, item_id="it9"))
    assert Decimal(refund_signature(_refund_write(shipping=None))["shipping"]) == 0

"""Rendering of orders and their edges as Graph JSON, and `fields=` selection.

Everything is rendered in full, then trimmed to what `fields` asks for (nested selection like
`items{id,retailer_id}` included), falling back to Meta's default fields per object kind.
"""

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sandbox.core.errors import InvalidParameter
from sandbox.orders.allocation import format_minor
from sandbox.orders.models import (
    Cancellation,
    Item,
    Order,
    Payment,
    Promotion,
    Refund,
    Return,
    Shipment,
)

Selection = dict[str, "Selection | None"]
# Renders the finance transactions belonging to one payment (given by the finance domain).
TransactionsOf = Callable[[Payment], list[dict[str, Any]]]

ORDER_DEFAULTS = ("id", "order_status", "created", "last_updated")
ITEM_DEFAULTS = ("id", "retailer_id", "product_id", "quantity", "price_per_unit")
SHIPMENT_DEFAULTS = ("id", "external_shipment_id", "items", "tracking_info")
# Edges whose element defaults are "everything" are absent from this table.
NESTED_DEFAULTS: dict[str, tuple[str, ...]] = {
    "items": ITEM_DEFAULTS,
    "order": ORDER_DEFAULTS,
    "order_details": ORDER_DEFAULTS,
    "shipments": SHIPMENT_DEFAULTS,
}


def parse_fields(text: str | None) -> Selection | None:
    """'id,items{id,quantity},x' -> {'id': None, 'items': {'id': None, 'quantity': None}, ...}"""
    if not text:
        return None
    text = str(text).strip().strip('"').strip("'")
    selection, position = _parse_level(text, 0)
    if position != len(text):
        raise InvalidParameter(f"(#100) Syntax error in fields at character {position}")
    return selection


def _parse_level(text: str, position: int) -> tuple[Selection, int]:
    selection: Selection = {}
    name = ""
    while position < len(text):
        char = text[position]
        if char == "{":
            sub, position = _parse_level(text, position + 1)
            if position >= len(text) or text[position] != "}":
                raise InvalidParameter("(#100) Syntax error in fields: unbalanced braces")
            selection[name.strip()] = sub
            name = ""
        elif char == "}":
            break
        elif char == ",":
            if name.strip():
                selection[name.strip()] = None
            name = ""
        else:
            name += char
        position += 1
    if name.strip():
        selection[name.strip()] = None
    return selection, position


def project(
    full: dict[str, Any], selection: Selection | None, defaults: tuple[str, ...] | None
) -> dict[str, Any]:
    """Keep the selected (else default) fields of `full`, always with its id."""
    if selection is None:
        if defaults is None:
            return full
        selection = {name: None for name in defaults}
    result: dict[str, Any] = {}
    if "id" in full:
        result["id"] = full["id"]
    for name, sub in selection.items():
        if name not in full or full[name] is None:
            continue
        value = full[name]
        nested_defaults = NESTED_DEFAULTS.get(name)
        if isinstance(value, dict) and isinstance(value.get("data"), list):
            rows = [project(row, sub, nested_defaults) for row in value["data"]]
            result[name] = {"data": rows}
        elif isinstance(value, dict) and (sub is not None or nested_defaults):
            result[name] = project(value, sub, nested_defaults)
        else:
            result[name] = value
    return result


def parse_time(value: Any, name: str) -> datetime | None:
    """Unix seconds (as Meta documents) or an ISO-8601 string (as Graph also takes)."""
    if value in (None, ""):
        return None
    text = str(value).strip()
    try:
        return datetime.fromtimestamp(int(text), UTC)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidParameter(f"(#100) {name} must be a Unix timestamp or ISO-8601") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def money(units: int, currency: str) -> dict[str, str]:
    return {"amount": format_minor(units, currency), "currency": currency}


def timestamp(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def edge(rows: list[dict[str, Any]]) -> dict[str, Any]:
    return {"data": rows}


# -- orders ---------------------------------------------------------------------------------------


def render_order(order: Order, transactions: TransactionsOf | None = None) -> dict[str, Any]:
    c = order.currency
    body: dict[str, Any] = {
        "id": order.id,
        "order_status": {"state": order.state},
        "created": timestamp(order.created),
        "last_updated": timestamp(order.last_updated),
        "channel": order.channel,
        "ship_by_date": order.ship_by_date,
        "shipping_address": order.shipping_address,
        "selected_shipping_option": render_shipping_option(order),
        "estimated_payment_details": {
            "subtotal": {
                "items": money(order.items_subtotal(), c),
                "shipping": money(order.shipping_net, c),
            },
            "tax": money(order.estimated_tax(), c),
            "total_amount": money(order.total_amount(), c),
            "tax_remitted": order.tax_remitted,
            "facebook_paid_amount": money(order.discount_total("facebook"), c),
            "buyer_paid_amount": money(order.total_amount() - order.discount_total("facebook"), c),
        },
        "is_group_buy": False,
        "is_test_order": order.is_test_order,
        "contains_bopis_items": False,
        "items": edge([render_item(order, item) for item in order.items]),
        "promotion_details": edge(render_order_promotions(order)),
        "shipments": edge([render_shipment(order, s) for s in order.shipments]),
        "cancellations": edge([render_cancellation(order, x) for x in order.cancellations]),
        "refunds": edge([render_refund(order, r) for r in order.refunds]),
        "payments": edge([render_payment(order, p, transactions) for p in order.payments]),
    }
    if order.merchant_order_id:
        body["merchant_order_id"] = order.merchant_order_id
    if order.state != "FB_PROCESSING":
        # Buyer details are withheld while Meta is still processing (orders.md §2.1).
        body["buyer_details"] = order.buyer
    return body


def render_shipping_option(order: Order) -> dict[str, Any]:
    option = order.shipping_option
    shipping_promotions = [p for p in order.promotions.values() if p.target == "shipping"]
    return {
        "name": option["name"],
        "price": money(order.shipping_price, order.currency),
        "calculated_tax": money(0, order.currency),
        "estimated_shipping_time": {"min_days": option["min_days"], "max_days": option["max_days"]},
        "promotion_details": edge(
            [render_promotion(p, p.amount, order.currency) for p in shipping_promotions]
        ),
    }


def render_promotion(promotion: Promotion, amount: int, currency: str) -> dict[str, Any]:
    body = {
        "promotion_id": promotion.promotion_id,
        "campaign_name": promotion.campaign_name,
        "applied_amount": money(amount, currency),
        "applied_after_tax": promotion.applied_after_tax,
        "sponsor": promotion.sponsor,
        "target_granularity": promotion.granularity,
    }
    if promotion.retailer_id:
        body["retailer_id"] = promotion.retailer_id
    if promotion.coupon_code:
        body["coupon_code"] = promotion.coupon_code
    return body


def render_order_promotions(order: Order) -> list[dict[str, Any]]:
    """Aggregated per original offer (orders.md §11.1)."""
    return [render_promotion(p, p.amount, order.currency) for p in order.promotions.values()]


def render_item(order: Order, item: Item) -> dict[str, Any]:
    c = order.currency
    promotions = [
        render_promotion(order.promotions[pid], amount, c) for pid, amount in item.item_promotions
    ] + [
        render_promotion(order.promotions[pid], share, c)
        for pid, share in item.order_allocations.items()
    ]
    return {
        "id": item.id,
        "retailer_id": item.retailer_id,
        "product_id": item.product_id,
        "quantity": item.quantity,
        "price_per_unit": money(item.unit_price, c),
        "product_name": item.product_name,
        "tax_details": {
            "estimated_tax": money(item.estimated_tax, c),
            "captured_tax": {"total_tax": money(item.captured_tax, c)},
        },
        "status": {
            "in_progress": item.open_quantity,
            "fulfilled": item.shipped,
            "cancelled": item.cancelled,
            "refunded": item.refunded_quantity,
        },
        "amount_available_for_refund": money(item.refundable_amount(), c),
        "promotion_details": edge(promotions),
        "selected_shipping_option": render_shipping_option(order),
    }


def render_shipment(order: Order, shipment: Shipment) -> dict[str, Any]:
    rows = []
    for item_id, quantity, tax in shipment.items:
        item = order.item(item_id)
        rows.append(
            {
                "id": item.id,
                "retailer_id": item.retailer_id,
                "product_id": item.product_id,
                "quantity": quantity,
                "tax": {"final_tax": money(tax, order.currency)},
            }
        )
    body: dict[str, Any] = {
        "id": shipment.id,
        "items": edge(rows),
        "tracking_info": shipment.tracking,
    }
    if shipment.external_shipment_id:
        body["external_shipment_id"] = shipment.external_shipment_id
    return body


def _allocations(allocations: dict[str, int], currency: str) -> list[dict[str, Any]]:
    return [
        {"promotion_id": pid, "allocation_amount": money(amount, currency)}
        for pid, amount in allocations.items()
    ]


def render_cancellation(order: Order, cancellation: Cancellation) -> dict[str, Any]:
    rows = []
    for item_id, quantity, allocations in cancellation.items:
        item = order.item(item_id)
        row = {
            "id": item.id,
            "retailer_id": item.retailer_id,
            "product_id": item.product_id,
            "quantity": quantity,
        }
        if allocations:
            row["promotion_allocations"] = _allocations(allocations, order.currency)
        rows.append(row)
    reason = {
        k: v
        for k, v in {
            "reason_code": cancellation.reason_code,
            "reason_description": cancellation.reason_description,
        }.items()
        if v
    }
    return {"id": cancellation.id, "items": edge(rows), "cancel_reason": reason}


def render_refund(order: Order, refund: Refund) -> dict[str, Any]:
    c = order.currency
    rows = []
    for item_id, quantity, subtotal, _tax in refund.items:
        item = order.item(item_id)
        row: dict[str, Any] = {
            "id": item.id,
            "retailer_id": item.retailer_id,
            "product_id": item.product_id,
            "refund_subtotal": money(subtotal, c),
        }
        if quantity is not None:
            row["quantity"] = quantity
        rows.append(row)
    reason = {"reason_code": refund.reason_code}
    if refund.reason_text:
        reason["reason_text"] = refund.reason_text
    # Tax is reported positive and total = subtotal + shipping + tax - deductions (Meta's own
    # example is inconsistent about the sign, orders.md §9.4).
    amount = money(refund.total, c) | {
        "subtotal": format_minor(refund.subtotal, c),
        "shipping": format_minor(refund.shipping, c),
        "tax": format_minor(refund.tax, c),
        "total": format_minor(refund.total, c),
    }
    body = {
        "id": refund.id,
        "items": edge(rows),
        "refund_reason": reason,
        "refund_amount": amount,
    }
    if refund.return_id:
        body["return_id"] = refund.return_id
    return body


def render_payment(
    order: Order, payment: Payment, transactions: TransactionsOf | None = None
) -> dict[str, Any]:
    c = order.currency
    shipments = {s.id: s for s in order.shipments}
    body: dict[str, Any] = {
        "id": payment.id,
        "subtotal": {
            "items": money(payment.items_subtotal, c),
            "shipping": money(payment.shipping, c),
        },
        "tax": money(payment.tax, c),
        "tax_remitted": order.tax_remitted,
        "total_amount": money(payment.total, c),
        "shipments": edge(
            [
                {"id": sid, "external_shipment_id": shipments[sid].external_shipment_id}
                for sid in payment.shipment_ids
                if sid in shipments
            ]
        ),
        "items": edge(
            [
                {
                    "id": item_id,
                    "quantity": quantity,
                    "promotion_allocations": _allocations(allocations, c),
                }
                for item_id, quantity, allocations in payment.items
            ]
        ),
    }
    if payment.captured:
        # Missing while the capture is pending: such payments can't be refunded (§13.4).
        body["transaction_details"] = edge(transactions(payment) if transactions else [])
    return body


def render_return(ret: Return, order: Order) -> dict[str, Any]:
    return {
        "id": ret.id,
        "return_status": ret.status,
        "return_message": ret.message,
        "merchant_return_id": ret.merchant_return_id,
        "item_return_quantities": [{"key": k, "value": v} for k, v in ret.quantities.items()],
        "item_return_reasons": [{"key": k, "value": v} for k, v in ret.reasons.items()],
        "items": edge([render_item(order, order.item(k)) for k in ret.quantities]),
        "order": {
            "id": order.id,
            "order_status": {"state": order.state},
            "created": timestamp(order.created),
            "last_updated": timestamp(order.last_updated),
        },
    }

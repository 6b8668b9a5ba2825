"""Meta orders to OMS orders, and OMS changes to Meta writes. Pure: no database, no HTTP.

    draft = draft_from_meta_order("acme", meta_order)      # raises OrderImportError(code, reason)
    lines = plan_refund(oms_order, {line_id: 1})            # exact net amounts per line
    write = refund_write(oms_order, oms_refund)             # what to send to /{order}/refunds

Prices, taxes, shipping and discounts come from the order payload only, never from the current
catalog: the buyer paid what Meta charged at checkout.
"""

from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum
from typing import Any

from pipelines.orders.promotions import (
    Allocation,
    Discount,
    Granularity,
    OrderLine,
    PricedLine,
    PromotionError,
    Sponsor,
    price_order,
    refundable_amount,
    to_minor,
)
from resources.meta.orders_models import (
    CancelItem,
    MetaOrder,
    MetaOrderItem,
    Money,
    PromotionDetail,
    RefundDeduction,
    RefundItem,
    ShipmentItem,
    TrackingInfo,
)
from resources.oms.models import (
    ZERO,
    Cancellation,
    DraftDiscount,
    DraftLine,
    EventLine,
    LineAllocation,
    OmsLine,
    OmsOrder,
    OrderDraft,
    OrderSource,
    Refund,
    Shipment,
)


class ImportIssueCode(StrEnum):
    """Why an order could not be imported; policies key on these codes, never on text."""

    NO_ITEMS = "no_items"
    MISSING_RETAILER_ID = "missing_retailer_id"
    BAD_QUANTITY = "bad_quantity"
    MISSING_PRICE = "missing_price"
    CURRENCY_MISMATCH = "currency_mismatch"
    DISCOUNT_INCONSISTENT = "discount_inconsistent"
    UNKNOWN_SKU = "unknown_sku"


class OrderImportError(ValueError):
    def __init__(self, code: ImportIssueCode, reason: str) -> None:
        super().__init__(f"{code}: {reason}")
        self.code = code
        self.reason = reason


def draft_from_meta_order(shop_id: str, order: MetaOrder) -> OrderDraft:
    """The OMS order for a Meta order, or OrderImportError saying which rule it broke."""
    items = _checked_items(order)
    currency = items[0].price_per_unit.currency

    lines, discounts = [], []
    for item in items:
        item_level = [p for p in item.promotion_details if not p.is_order_level]
        item_discounts = tuple(_discount(p, Granularity.ITEM_LEVEL, item.id) for p in item_level)
        discounts.extend(item_discounts)
        lines.append(
            OrderLine(
                item.id, item.retailer_id, item.quantity, item.price_per_unit.amount, item_discounts
            )  # fmt: skip
        )

    order_level = _order_level_discounts(order, items)
    shipping_discounts = [_discount(p, Granularity.SHIPPING, None) for p in _shipping_promos(order)]
    discounts.extend(order_level + shipping_discounts)
    shipping = _shipping_charged(order, currency)
    try:
        priced = price_order(
            lines, order_level + shipping_discounts, currency=currency, shipping_charged=shipping
        )
    except PromotionError as exc:
        raise OrderImportError(ImportIssueCode.DISCOUNT_INCONSISTENT, str(exc)) from exc
    priced = _prefer_metas_line_split(priced, items, order_level, currency)

    draft_lines = tuple(
        _draft_line(item, priced_line) for item, priced_line in zip(items, priced, strict=True)
    )
    return OrderDraft(
        shop_id=shop_id,
        source=OrderSource.META,
        external_ref=order.id,
        currency=currency,
        lines=draft_lines,
        discounts=tuple(_draft_discount(d) for d in discounts),
        shipping_total=shipping,
        shipping_discount_total=sum((d.amount for d in shipping_discounts), ZERO),
        tax_total=_order_tax(order, items, currency),
        buyer_name=order.buyer_details.name if order.buyer_details else None,
        buyer_email=order.buyer_details.email if order.buyer_details else None,
        buyer_marketing_opt_in=bool(
            order.buyer_details and order.buyer_details.email_remarketing_option
        ),
        shipping_address=(
            order.shipping_address.model_dump(exclude_none=True) if order.shipping_address else None
        ),
        shipping_method=_shipping_option_name(order),
        channel=order.channel,
        placed_at=order.created,
    )


def _checked_items(order: MetaOrder) -> list[MetaOrderItem]:
    if not order.items:
        raise OrderImportError(ImportIssueCode.NO_ITEMS, f"order {order.id} has no items")
    currencies = set()
    for item in order.items:
        if not item.retailer_id:
            raise OrderImportError(
                ImportIssueCode.MISSING_RETAILER_ID, f"item {item.id} has no retailer_id"
            )
        if not item.quantity or item.quantity <= 0:
            raise OrderImportError(
                ImportIssueCode.BAD_QUANTITY, f"item {item.id} has quantity {item.quantity}"
            )
        if item.price_per_unit is None:
            raise OrderImportError(ImportIssueCode.MISSING_PRICE, f"item {item.id} has no price")
        currencies.add(item.price_per_unit.currency)
    if len(currencies) > 1:
        raise OrderImportError(
            ImportIssueCode.CURRENCY_MISMATCH, f"items in several currencies: {sorted(currencies)}"
        )
    return list(order.items)


def _discount(promo: PromotionDetail, granularity: Granularity, line_id: str | None) -> Discount:
    return Discount(
        promotion_id=promo.promotion_id or promo.retailer_id or promo.campaign_name or "unknown",
        amount=promo.applied_amount.amount if promo.applied_amount else ZERO,
        granularity=granularity,
        sponsor=Sponsor.from_meta(promo.sponsor),
        campaign_name=promo.campaign_name or "",
        coupon_code=promo.coupon_code,
        offer_id=promo.retailer_id,
        applied_after_tax=bool(promo.applied_after_tax),
        line_id=line_id,
    )


def _order_level_discounts(order: MetaOrder, items: list[MetaOrderItem]) -> list[Discount]:
    """Order-level discounts, one per offer: from the order's aggregate when Meta sent it,
    otherwise summed from the items' shares."""
    aggregate = [p for p in order.promotion_details if p.is_order_level]
    if aggregate:
        return [_discount(p, Granularity.ORDER_LEVEL, None) for p in aggregate]
    totals: dict[str, Discount] = {}
    for item in items:
        for promo in item.promotion_details:
            if not promo.is_order_level:
                continue
            share = _discount(promo, Granularity.ORDER_LEVEL, None)
            known = totals.get(share.promotion_id)
            totals[share.promotion_id] = (
                share
                if known is None
                else Discount(**{**known.__dict__, "amount": known.amount + share.amount})
            )
    return list(totals.values())


def _prefer_metas_line_split(priced, items, order_level, currency):
    """Meta's own split of an order-level discount wins over ours when Meta sent one that adds
    up; ours (largest remainder) is used when Meta sent only the order total."""
    by_id = {d.promotion_id: d for d in order_level}
    meta_split: dict[str, dict[str, Decimal]] = {}
    for item in items:
        for promo in item.promotion_details:
            if promo.is_order_level and promo.applied_amount is not None:
                key = promo.promotion_id or promo.retailer_id or promo.campaign_name or "unknown"
                meta_split.setdefault(key, {})[item.id] = promo.applied_amount.amount
    usable = {
        pid: split
        for pid, split in meta_split.items()
        if pid in by_id
        and to_minor(sum(split.values(), ZERO), currency) == to_minor(by_id[pid].amount, currency)
    }
    if not usable:
        return priced.lines
    lines = []
    for line in priced.lines:
        allocations = [a for a in line.allocations if a.promotion_id not in usable]
        for pid, split in usable.items():
            if split.get(line.line_id):
                allocations.append(Allocation(pid, by_id[pid].sponsor, split[line.line_id]))
        lines.append(PricedLine(**{**line.__dict__, "allocations": tuple(allocations)}))
    return tuple(lines)


def _shipping_promos(order: MetaOrder) -> list[PromotionDetail]:
    option = order.selected_shipping_option
    return list(option.promotion_details) if option else []


def _shipping_charged(order: MetaOrder, currency: str) -> Decimal:
    payment = order.estimated_payment_details
    if payment and payment.subtotal and payment.subtotal.shipping:
        return _same_currency(payment.subtotal.shipping, currency)
    option = order.selected_shipping_option
    if option and option.price:
        return _same_currency(option.price, currency)
    return ZERO


def _shipping_option_name(order: MetaOrder) -> str | None:
    if order.selected_shipping_option:
        return order.selected_shipping_option.name
    for item in order.items:
        if item.selected_shipping_option and item.selected_shipping_option.name:
            return item.selected_shipping_option.name
    return None


def _order_tax(order: MetaOrder, items: list[MetaOrderItem], currency: str) -> Decimal:
    payment = order.estimated_payment_details
    if payment and payment.tax:
        return _same_currency(payment.tax, currency)
    return sum((_item_tax(item, currency) for item in items), ZERO)


def _item_tax(item: MetaOrderItem, currency: str) -> Decimal:
    details = item.tax_details
    if details and details.estimated_tax:
        return _same_currency(details.estimated_tax, currency)
    return ZERO


def _same_currency(money: Money, currency: str) -> Decimal:
    if money.currency != currency:
        raise OrderImportError(
            ImportIssueCode.CURRENCY_MISMATCH, f"{money.currency} amount in a {currency} order"
        )
    return money.amount


def _draft_line(item: MetaOrderItem, line: PricedLine) -> DraftLine:
    currency = item.price_per_unit.currency
    return DraftLine(
        external_line_id=item.id,
        sku=item.retailer_id,
        name=item.product_name,
        quantity=line.quantity,
        unit_price=line.unit_price,
        item_discount=line.item_discount_total,
        order_discount=line.funded_by(Sponsor.SELLER),
        meta_funded_discount=line.funded_by(Sponsor.META),
        tax=_item_tax(item, currency),
        allocations=tuple(
            LineAllocation(a.promotion_id, str(a.sponsor), a.amount) for a in line.allocations
        ),
    )


def _draft_discount(discount: Discount) -> DraftDiscount:
    return DraftDiscount(
        promotion_id=discount.promotion_id,
        granularity=str(discount.granularity),
        sponsor=str(discount.sponsor),
        amount=discount.amount,
        offer_id=discount.offer_id,
        campaign_name=discount.campaign_name or None,
        coupon_code=discount.coupon_code,
        applied_after_tax=discount.applied_after_tax,
        external_line_id=discount.line_id,
    )


# -- refunds --------------------------------------------------------------------------------------


def priced_line(line: OmsLine) -> PricedLine:
    """An OMS line seen by the promotions arithmetic."""
    return PricedLine(
        line_id=str(line.line_id),
        retailer_id=line.sku,
        quantity=line.quantity,
        unit_price=line.unit_price,
        gross=line.unit_price * line.quantity,
        item_discount_total=line.item_discount,
        allocations=tuple(
            Allocation(a.promotion_id, Sponsor(a.sponsor), a.amount) for a in line.allocations
        ),
    )


def plan_refund(order: OmsOrder, quantities: dict[int, int]) -> list[EventLine]:
    """Refund lines for whole units: each returns exactly the net paid for those units."""
    planned = []
    for line_id, quantity in sorted(quantities.items()):
        line = order.line(line_id)
        amount = refundable_amount(
            priced_line(line),
            quantity=quantity,
            already_refunded_quantity=line.qty_refunded,
            currency=order.currency,
        )
        planned.append(EventLine(line_id, quantity=quantity, amount=amount))
    return planned


# -- OMS changes as Meta writes --------------------------------------------------------------------


@dataclass(frozen=True)
class MetaWrite:
    """One Graph write for one OMS change: the action names the idempotency key's verb."""

    action: str
    meta_order_id: str
    arguments: dict[str, Any] = field(default_factory=dict)

    def body(self) -> dict[str, Any]:
        """A JSON-able form of the arguments, hashed by the outbox to spot a changed request."""
        return {key: _jsonable(value) for key, value in sorted(self.arguments.items())}


def _jsonable(value: Any) -> Any:
    if hasattr(value, "to_graph"):
        return value.to_graph()
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, Decimal):
        return str(value)
    return value


def _item_ref(order: OmsOrder, line_id: int) -> dict[str, str]:
    """Meta's line id when we have it (Buy-X-Get-Y orders may hold a product twice)."""
    line = order.line(line_id)
    return (
        {"item_id": line.external_line_id} if line.external_line_id else {"retailer_id": line.sku}
    )


def shipment_write(order: OmsOrder, shipment: Shipment) -> MetaWrite:
    return MetaWrite(
        "shipment",
        order.external_ref,
        {
            "items": [
                ShipmentItem(**_item_ref(order, e.line_id), quantity=e.quantity)
                for e in shipment.lines
            ],
            "tracking": TrackingInfo(
                carrier=shipment.carrier,
                tracking_number=shipment.tracking_number,
                shipping_method_name=shipment.shipping_method,
            ),
            "external_shipment_id": shipment.external_shipment_id,
        },
    )


def tracking_update_write(
    order: OmsOrder, shipment: Shipment, details: dict[str, Any]
) -> MetaWrite:
    return MetaWrite(
        "tracking_update",
        order.external_ref,
        {
            "external_shipment_id": shipment.external_shipment_id,
            "tracking": TrackingInfo(
                carrier=details["carrier"],
                tracking_number=details["tracking_number"],
                shipping_method_name=details.get("shipping_method"),
            ),
        },
    )


def cancellation_write(order: OmsOrder, cancellation: Cancellation) -> MetaWrite:
    items = (
        None
        if cancellation.full_order
        else [
            CancelItem(**_item_ref(order, e.line_id), quantity=e.quantity)
            for e in cancellation.lines
        ]  # fmt: skip
    )
    return MetaWrite(
        "cancellation",
        order.external_ref,
        {
            "items": items,
            "reason_code": cancellation.reason_code or "CANCEL_REASON_OTHER",
            "reason_description": cancellation.reason_description,
            "restock_items": cancellation.restock,
        },
    )


def _has_order_level_discount(line) -> bool:
    """Order-level shares of either sponsor; item-level offers are already in the unit price."""
    return bool(line.allocations) or line.order_discount != 0 or line.meta_funded_discount != 0


def refund_write(order: OmsOrder, refund: Refund, meta_return_id: str | None = None) -> MetaWrite:
    """Whole units by quantity where the line carries no order-level discount; by amount where
    it carries one of either sponsor (Meta takes only amounts there, orders.md §9.3). A refund for a
    buyer's return names Meta's return id, so Meta closes that return as refunded."""
    items = []
    for event_line in refund.lines:
        line = order.line(event_line.line_id)
        by_quantity = event_line.quantity and not _has_order_level_discount(line)
        items.append(
            RefundItem(**_item_ref(order, line.line_id), quantity=event_line.quantity)
            if by_quantity
            else RefundItem(
                **_item_ref(order, line.line_id),
                item_refund_amount=Money.of(event_line.amount, order.currency),
            )
        )
    deductions = (
        [RefundDeduction(deduction_amount=Money.of(refund.deduction_amount, order.currency))]
        if refund.deduction_amount
        else []
    )
    return MetaWrite(
        "refund",
        order.external_ref,
        {
            "items": items,
            "shipping": Money.of(refund.shipping_amount, order.currency)
            if refund.shipping_amount
            else None,
            "deductions": deductions,
            "reason_code": refund.reason_code,
            "reason_text": refund.reason_text,
        }
        # Only when set: the outbox hashes the body, and refunds recorded before this field
        # existed must keep their hash.
        | ({"return_id": meta_return_id} if meta_return_id else {}),
    )

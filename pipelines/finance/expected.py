"""What the OMS expects Meta to settle, per Meta order: the `ExpectedOrder` side of reconciling.

    expected = expected_orders_from_oms(OmsAdapter.from_settings(), "acme")

Meta charges the buyer when units ship (orders.md §13.5), so only shipped units count. Amounts
for part of a line follow Meta's cumulative truncation in minor units (orders.md §11.3):
`floor(total * shipped / quantity)`, the whole total once every unit shipped.
"""

from collections.abc import Iterable
from datetime import date
from decimal import ROUND_FLOOR, Decimal

from sqlalchemy import func, select, union_all

from pipelines.finance.money import ZERO, exponent
from pipelines.finance.reconcile import ExpectedOrder
from resources.oms.adapter import OmsAdapter
from resources.oms.models import OmsLine, OmsOrder, OrderSource, Refund
from resources.oms.schema import oms_refunds, oms_shipments


def charged_share(total: Decimal, shipped: int, quantity: int, currency: str) -> Decimal:
    """The part of a line amount that belongs to its shipped units (Meta's truncation rule)."""
    if quantity <= 0 or shipped <= 0:
        return ZERO
    if shipped >= quantity:
        return total
    step = Decimal(1).scaleb(-exponent(currency))
    return (total * shipped / quantity).quantize(step, rounding=ROUND_FLOOR)


def expected_order(
    order: OmsOrder, refunds: Iterable[Refund], last_activity: date | None
) -> ExpectedOrder:
    """One OMS order as the amounts Meta should have charged and refunded."""
    currency = order.currency
    lines = order.lines
    shipped_any = any(line.qty_shipped for line in lines)
    return ExpectedOrder(
        order_id=order.external_ref or order.reference,
        currency=currency,
        items=sum((line.unit_price * line.qty_shipped for line in lines), ZERO),
        # TODO(finance-shipping): Meta charges flat shipping on the first shipment and prorates
        # per-item profiles; the OMS keeps one order total, so all of it counts once shipped.
        shipping=(order.shipping_total - order.shipping_discount_total) if shipped_any else ZERO,
        tax=_charged(lines, "tax", currency),
        seller_discount=_charged(lines, "order_discount", currency),
        meta_discount=_charged(lines, "meta_funded_discount", currency),
        # TODO(finance-refund-tax): OMS refunds are pre-tax; when Meta refunds the tax as well the
        # order shows the refunded tax as a difference until the OMS records refunded tax.
        refunds=sum((refund.total_amount for refund in refunds), ZERO),
        merchant_order_id=order.reference,
        last_activity=last_activity,
    )


def _charged(lines: Iterable[OmsLine], attribute: str, currency: str) -> Decimal:
    # TODO(finance-allocation-order): Meta allocates per event (shipments and cancellations in
    # the order they happened); with only line counters we assume shipments came first.
    return sum(
        (
            charged_share(getattr(line, attribute), line.qty_shipped, line.quantity, currency)
            for line in lines
        ),
        ZERO,
    )


def expected_orders_from_oms(oms: OmsAdapter, shop_id: str) -> list[ExpectedOrder]:
    """Every Meta-sourced OMS order of the shop, as ExpectedOrder."""
    orders = oms.orders_for(shop_id, source=str(OrderSource.META))
    activity = _last_activity(oms, [order.order_id for order in orders])
    return [
        expected_order(order, oms.refunds_for(order.order_id), activity.get(order.order_id))
        for order in orders
    ]


def _last_activity(oms: OmsAdapter, order_ids: list[int]) -> dict[int, date]:
    """Day of the last shipment or refund per OMS order, for Meta's reporting lag."""
    # TODO(oms-api): read through an OmsAdapter method once it exposes event timestamps; until
    # then this reads the reference OMS tables directly (read-only).
    if not order_ids:
        return {}
    events = union_all(
        select(oms_shipments.c.order_id, oms_shipments.c.created_at.label("at")).where(
            oms_shipments.c.order_id.in_(order_ids)
        ),
        select(oms_refunds.c.order_id, oms_refunds.c.created_at.label("at")).where(
            oms_refunds.c.order_id.in_(order_ids)
        ),
    ).subquery()
    query = select(events.c.order_id, func.max(events.c.at)).group_by(events.c.order_id)
    with oms.engine.begin() as conn:
        rows = conn.execute(query).all()
    return {order_id: _as_date(at) for order_id, at in rows if at is not None}


def _as_date(value) -> date:
    # SQLite hands back MAX() of a datetime column as text.
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value.date()

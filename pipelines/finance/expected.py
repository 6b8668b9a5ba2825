"""What the OMS expects Meta to settle, per Meta order: the `ExpectedOrder` side of reconciling.

    expected = expected_orders_from_oms(OmsAdapter.from_settings(), "acme")

Meta charges the buyer when units ship (orders.md §13.5), so only shipped units count. Amounts
for part of a line follow Meta's cumulative truncation in minor units (orders.md §11.3):
`floor(total * shipped / quantity)`, the whole total once every unit shipped.
"""

from collections.abc import Iterable
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal

from sqlalchemy import func, select, union_all

from pipelines.finance.money import ZERO, exponent
from pipelines.finance.reconcile import ExpectedOrder
from resources.oms.adapter import OmsAdapter
from resources.oms.models import OmsLine, OmsOrder, OrderSource, Refund
from resources.oms.schema import oms_event_lines, oms_refunds, oms_shipments


def charged_share(total: Decimal, shipped: int, quantity: int, currency: str) -> Decimal:
    """The part of a line amount that belongs to its shipped units (Meta's truncation rule)."""
    if quantity <= 0 or shipped <= 0:
        return ZERO
    if shipped >= quantity:
        return total
    step = Decimal(1).scaleb(-exponent(currency))
    return (total * shipped / quantity).quantize(step, rounding=ROUND_FLOOR)


#: (event kind, units) per OMS line, in the order the events happened.
LineEvents = dict[int, list[tuple[str, int]]]


def shipped_share(
    total: Decimal, quantity: int, events: Iterable[tuple[str, int]], currency: str
) -> Decimal:
    """The part of a line amount Meta allocates to shipments, replaying shipments and
    cancellations in event order: after k of Q units the cumulative allocation is
    floor(total * k / Q), the whole total at k = Q (orders.md §11.3)."""
    step = Decimal(1).scaleb(-exponent(currency))

    def cumulative(units: int) -> Decimal:
        if units >= quantity:
            return total
        return (total * units / quantity).quantize(step, rounding=ROUND_FLOOR)

    shipped, done = ZERO, 0
    for kind, units in events:
        share = cumulative(done + units) - cumulative(done)
        done += units
        if kind == "shipment":
            shipped += share
    return shipped


def expected_order(
    order: OmsOrder,
    refunds: Iterable[Refund],
    last_activity: date | None,
    events: LineEvents | None = None,
) -> ExpectedOrder:
    """One OMS order as the amounts Meta should have charged and refunded."""
    currency = order.currency
    lines = order.lines
    events = events or {}
    shipped_any = any(line.qty_shipped for line in lines)
    return ExpectedOrder(
        order_id=order.external_ref or order.reference,
        currency=currency,
        items=sum((line.unit_price * line.qty_shipped for line in lines), ZERO),
        # TODO(finance-shipping): Meta charges flat shipping on the first shipment and prorates
        # per-item profiles; the OMS keeps one order total, so all of it counts once shipped.
        shipping=(order.shipping_total - order.shipping_discount_total) if shipped_any else ZERO,
        # TODO(finance-captured-tax): Meta computes the tax captured per shipment itself (it may
        # differ from the pro-rata estimate by cents, orders.md §5.2); the OMS has only the line
        # estimate, prorated here. A partial shipment can show a cent of tax difference.
        tax=_charged(lines, "tax", currency, {}),
        seller_discount=_charged(lines, "order_discount", currency, events),
        meta_discount=_charged(lines, "meta_funded_discount", currency, events),
        refunds=sum((refund.total_amount for refund in refunds), ZERO),
        refunded_tax=sum((_refunded_tax(line, currency, events) for line in lines), ZERO),
        merchant_order_id=order.reference,
        last_activity=last_activity,
    )


def _refunded_tax(line: OmsLine, currency: str, events: LineEvents) -> Decimal:
    """Tax following the refunded share of the line's captured base, rounded half up (the OMS
    records refunds before tax; Meta refunds the tax in proportion)."""
    if not line.refunded_amount:
        return ZERO
    captured_tax = charged_share(line.tax, line.qty_shipped, line.quantity, currency)
    discount = _charged([line], "order_discount", currency, events)
    captured_base = line.unit_price * line.qty_shipped - discount
    if captured_base <= 0:
        return ZERO
    step = Decimal(1).scaleb(-exponent(currency))
    share = captured_tax * min(line.refunded_amount, captured_base) / captured_base
    return share.quantize(step, rounding=ROUND_HALF_UP)


def _charged(
    lines: Iterable[OmsLine], attribute: str, currency: str, events: LineEvents
) -> Decimal:
    total = ZERO
    for line in lines:
        amount = getattr(line, attribute)
        if line.line_id in events:
            total += shipped_share(amount, line.quantity, events[line.line_id], currency)
        else:
            # Without the event history, assume the shipments came before any cancellation.
            total += charged_share(amount, line.qty_shipped, line.quantity, currency)
    return total


def expected_orders_from_oms(oms: OmsAdapter, shop_id: str) -> list[ExpectedOrder]:
    """Every Meta-sourced OMS order of the shop, as ExpectedOrder."""
    orders = oms.orders_for(shop_id, source=str(OrderSource.META))
    activity = _last_activity(oms, [order.order_id for order in orders])
    events = _line_events(oms, [line.line_id for order in orders for line in order.lines])
    return [
        expected_order(
            order,
            oms.refunds_for(order.order_id),
            activity.get(order.order_id),
            {line.line_id: events[line.line_id] for line in order.lines if line.line_id in events},
        )
        for order in orders
    ]


def _line_events(oms: OmsAdapter, line_ids: list[int]) -> LineEvents:
    """Shipments and cancellations per line, in the order the OMS recorded them."""
    # TODO(oms-api): read through an OmsAdapter method once it exposes event history.
    if not line_ids:
        return {}
    query = (
        select(oms_event_lines.c.line_id, oms_event_lines.c.event_kind, oms_event_lines.c.quantity)
        .where(
            oms_event_lines.c.line_id.in_(line_ids),
            oms_event_lines.c.event_kind.in_(["shipment", "cancellation"]),
        )
        .order_by(oms_event_lines.c.event_line_id)
    )
    events: LineEvents = {}
    with oms.engine.begin() as conn:
        for line_id, kind, quantity in conn.execute(query):
            events.setdefault(line_id, []).append((kind, quantity or 0))
    return events


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

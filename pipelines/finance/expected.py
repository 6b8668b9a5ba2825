"""What the OMS expects Meta to settle, per Meta order: the `ExpectedOrder` side of reconciling.

    expected = expected_orders_from_oms(OmsAdapter.from_settings(), "acme")

Meta charges the buyer when units ship (orders.md §13.5), so only shipped units count. Amounts
for part of a line follow Meta's cumulative truncation in minor units (orders.md §11.3):
`floor(total * shipped / quantity)`, the whole total once every unit shipped.
"""

from collections.abc import Iterable
from datetime import date
from decimal import ROUND_FLOOR, ROUND_HALF_UP, Decimal
from typing import Any

from sqlalchemy import Connection, Select, func, select, union_all

from pipelines.finance.money import ZERO, exponent
from pipelines.finance.reconcile import ExpectedOrder
from resources.oms.adapter import OmsAdapter
from resources.oms.models import OmsLine, OmsOrder, OrderSource, Refund
from resources.oms.schema import (
    oms_event_lines,
    oms_order_lines,
    oms_orders,
    oms_refunds,
    oms_shipments,
)


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
    total = sum((refund.total_amount for refund in refunds), ZERO)
    return _expected(order, total, last_activity, events)


def _expected(
    order: OmsOrder, refunded: Decimal, last_activity: date | None, events: LineEvents | None
) -> ExpectedOrder:
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
        refunds=refunded,
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


def expected_orders_from_oms(
    oms: OmsAdapter, shop_id: str, only: list[int] | None = None
) -> list[ExpectedOrder]:
    """Every Meta-sourced OMS order of the shop (or only those OMS order ids), as ExpectedOrder.

    Read set-based: one query per OMS table for the whole shop (not one per order), so a shop
    with a million orders takes seconds. The OMS tables are read directly (read-only).
    """
    # TODO(oms-api): read through OmsAdapter methods once it offers bulk reads of a shop's
    # orders, refunds and event history.
    source = str(OrderSource.META)
    where = [oms_orders.c.shop_id == shop_id, oms_orders.c.source == source]
    if only is not None:
        where.append(oms_orders.c.order_id.in_(list(only)))
    mine = select(oms_orders.c.order_id).where(*where)
    with oms.engine.begin() as conn:
        order_rows = conn.execute(
            select(oms_orders).where(*where).order_by(oms_orders.c.order_id)
        ).all()
        lines = _lines_by_order(conn, mine)
        refunded = _refunded_by_order(conn, mine)
        events = _line_events(conn, mine)
        activity = _last_activity(conn, mine)
    expected = []
    for row in order_rows:
        order = _order(row, lines.get(row.order_id, ()))
        order_events = {
            line.line_id: events[line.line_id] for line in order.lines if line.line_id in events
        }
        expected.append(
            _expected(
                order, refunded.get(row.order_id, ZERO), activity.get(row.order_id), order_events
            )
        )
    return expected


def _order(row: Any, lines: tuple[OmsLine, ...]) -> OmsOrder:
    return OmsOrder(
        order_id=row.order_id, reference=row.reference, shop_id=row.shop_id, source=row.source,
        external_ref=row.external_ref, status=row.status, currency=row.currency,
        items_total=row.items_total, order_discount_total=row.order_discount_total,
        meta_funded_discount_total=row.meta_funded_discount_total,
        shipping_total=row.shipping_total, shipping_discount_total=row.shipping_discount_total,
        tax_total=row.tax_total, grand_total=row.grand_total, buyer_name=row.buyer_name,
        buyer_email=row.buyer_email, buyer_marketing_opt_in=row.buyer_marketing_opt_in,
        shipping_address=row.shipping_address, placed_at=row.placed_at, lines=lines,
    )  # fmt: skip


def _lines_by_order(conn: Connection, orders: Select) -> dict[int, tuple[OmsLine, ...]]:
    """Lines per order, in position order (allocations are not needed for the expected side)."""
    query = (
        select(oms_order_lines)
        .where(oms_order_lines.c.order_id.in_(orders))
        .order_by(oms_order_lines.c.order_id, oms_order_lines.c.position)
    )
    by_order: dict[int, list[OmsLine]] = {}
    for r in conn.execute(query):
        by_order.setdefault(r.order_id, []).append(
            OmsLine(
                r.line_id, r.position, r.external_line_id, r.sku, r.name, r.quantity,
                r.unit_price, r.item_discount, r.order_discount, r.meta_funded_discount, r.tax,
                r.qty_shipped, r.qty_cancelled, r.qty_refunded, r.refunded_amount,
            )
        )  # fmt: skip
    return {order_id: tuple(lines) for order_id, lines in by_order.items()}


def _refunded_by_order(conn: Connection, orders: Select) -> dict[int, Decimal]:
    """Sum of refund totals per order, added up exactly in Python (text on SQLite)."""
    query = select(oms_refunds.c.order_id, oms_refunds.c.total_amount).where(
        oms_refunds.c.order_id.in_(orders)
    )
    totals: dict[int, Decimal] = {}
    for order_id, amount in conn.execute(query):
        totals[order_id] = totals.get(order_id, ZERO) + amount
    return totals


def _line_events(conn: Connection, orders: Select) -> LineEvents:
    """Shipments and cancellations per line, in the order the OMS recorded them."""
    lines = select(oms_order_lines.c.line_id).where(oms_order_lines.c.order_id.in_(orders))
    query = (
        select(oms_event_lines.c.line_id, oms_event_lines.c.event_kind, oms_event_lines.c.quantity)
        .where(
            oms_event_lines.c.line_id.in_(lines),
            oms_event_lines.c.event_kind.in_(["shipment", "cancellation"]),
        )
        .order_by(oms_event_lines.c.event_line_id)
    )
    events: LineEvents = {}
    for line_id, kind, quantity in conn.execute(query):
        events.setdefault(line_id, []).append((kind, quantity or 0))
    return events


def _last_activity(conn: Connection, orders: Select) -> dict[int, date]:
    """Day of the last shipment or refund per OMS order, for Meta's reporting lag."""
    events = union_all(
        select(oms_shipments.c.order_id, oms_shipments.c.created_at.label("at")).where(
            oms_shipments.c.order_id.in_(orders)
        ),
        select(oms_refunds.c.order_id, oms_refunds.c.created_at.label("at")).where(
            oms_refunds.c.order_id.in_(orders)
        ),
    ).subquery()
    query = select(events.c.order_id, func.max(events.c.at)).group_by(events.c.order_id)
    return {order_id: _as_date(at) for order_id, at in conn.execute(query) if at is not None}


def _as_date(value) -> date:
    # SQLite hands back MAX() of a datetime column as text.
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value.date()

"""The adapter to the reference OMS: import marketplace orders, record what the warehouse does.

    oms = OmsAdapter.from_settings()           # its own database (METASYNC_OMS_DATABASE_URL)
    result = oms.import_order(draft)           # idempotent on (shop, source, external_ref)
    shipment_id = oms.ship(result.order_id, [EventLine(line_id, quantity=1)], "UPS", "1Z...")
    for change in oms.changes_for("acme", after_change_id=0):
        ...                                     # what to tell the marketplace, oldest first

Every user operation (ship, update tracking, cancel, refund, decide a return) writes its row and
its `oms_changes` outbox row in one transaction. Changes the marketplace itself made (recorded
with `origin="meta"`) get no outbox row: they must never be echoed back.
"""

import logging
from collections.abc import Iterable
from decimal import Decimal
from typing import Any

from sqlalchemy import Connection, and_, func, select, update
from sqlalchemy.exc import IntegrityError

from resources.db import create_database_engine
from resources.db.types import utcnow
from resources.oms.models import (
    ZERO,
    Cancellation,
    ChangeKind,
    DraftDiscount,
    EventLine,
    ImportResult,
    LineAllocation,
    OmsChange,
    OmsError,
    OmsLine,
    OmsOrder,
    OmsOrderStatus,
    OrderDraft,
    OrderSource,
    Refund,
    Return,
    ReturnState,
    Shipment,
)
from resources.oms.schema import (
    oms_cancellations,
    oms_changes,
    oms_event_lines,
    oms_line_allocations,
    oms_metadata,
    oms_order_discounts,
    oms_order_lines,
    oms_orders,
    oms_refunds,
    oms_returns,
    oms_shipments,
)
from resources.settings import get_settings

logger = logging.getLogger(__name__)


class OmsAdapter:
    def __init__(self, url: str) -> None:
        self.url = url
        self.engine = create_database_engine(url)

    @classmethod
    def from_settings(cls) -> "OmsAdapter":
        adapter = cls(get_settings().resolved_oms_database_url())
        adapter.create_schema()
        return adapter

    def create_schema(self) -> None:
        oms_metadata.create_all(self.engine)

    def dispose(self) -> None:
        self.engine.dispose()

    # -- orders ---------------------------------------------------------------------------------

    def import_order(self, draft: OrderDraft) -> ImportResult:
        """Create the order unless (shop, source, external_ref) exists; either way return it.

        Two overlapping runs may both try: the unique constraint lets one insert win, and the
        loser reads the winner's row instead of failing.
        """
        existing = self._find_ids(draft.shop_id, draft.source, draft.external_ref)
        if existing is not None:
            return ImportResult(*existing, created=False)
        try:
            with self.engine.begin() as conn:
                order_id = _insert_order(conn, draft)
        except IntegrityError:
            existing = self._find_ids(draft.shop_id, draft.source, draft.external_ref)
            if existing is None:
                raise
            return ImportResult(*existing, created=False)
        logger.info(
            "shop %s: OMS order %s from %s %s",
            draft.shop_id,
            _ref(order_id),
            draft.source,
            draft.external_ref,
        )
        return ImportResult(order_id, _ref(order_id), created=True)

    def find_order(self, shop_id: str, source: str, external_ref: str) -> OmsOrder | None:
        ids = self._find_ids(shop_id, source, external_ref)
        return None if ids is None else self.get_order(ids[0])

    def get_order(self, order_id: int) -> OmsOrder:
        with self.engine.begin() as conn:
            return _load_order(conn, order_id)

    def set_status(self, order_id: int, status: OmsOrderStatus) -> None:
        with self.engine.begin() as conn:
            conn.execute(
                update(oms_orders)
                .where(oms_orders.c.order_id == order_id)
                .values(status=str(status), updated_at=utcnow())
            )

    def mark_acknowledged(self, order_id: int) -> None:
        """Meta's guidance: a pending order starts processing once its acknowledgement held."""
        with self.engine.begin() as conn:
            conn.execute(
                update(oms_orders)
                .where(
                    oms_orders.c.order_id == order_id,
                    oms_orders.c.status == str(OmsOrderStatus.PENDING),
                )
                .values(status=str(OmsOrderStatus.PROCESSING), updated_at=utcnow())
            )

    def orders_for(self, shop_id: str, source: str | None = None) -> list[OmsOrder]:
        query = select(oms_orders.c.order_id).where(oms_orders.c.shop_id == shop_id)
        if source:
            query = query.where(oms_orders.c.source == source)
        with self.engine.begin() as conn:
            ids = conn.execute(query.order_by(oms_orders.c.order_id)).scalars().all()
            return [_load_order(conn, order_id) for order_id in ids]

    # -- what the seller's people do (each writes an outbox change) -------------------------------

    def ship(
        self,
        order_id: int,
        lines: Iterable[EventLine],
        carrier: str,
        tracking_number: str,
        shipping_method: str | None = None,
    ) -> int:
        """One parcel with one tracking number; several parcels are several calls."""
        lines = list(lines)
        with self.engine.begin() as conn:
            order = _load_order(conn, order_id)
            _require_open_order(order)
            _require_open_units(order, lines, "ship")
            now = utcnow()
            shipment_id = conn.execute(
                oms_shipments.insert().values(
                    order_id=order_id,
                    carrier=carrier,
                    tracking_number=tracking_number,
                    shipping_method=shipping_method,
                    created_at=now,
                    updated_at=now,
                )
            ).inserted_primary_key[0]
            # The external shipment id is ours, fixed for life: Meta updates tracking by it.
            conn.execute(
                update(oms_shipments)
                .where(oms_shipments.c.shipment_id == shipment_id)
                .values(external_shipment_id=f"oms_shp_{shipment_id}")
            )
            _insert_event_lines(conn, "shipment", shipment_id, lines)
            for event_line in lines:
                _bump_line(conn, event_line.line_id, qty_shipped=event_line.quantity)
            _refresh_status(conn, order_id)
            _append_change(conn, order, ChangeKind.SHIPMENT, shipment_id)
        return shipment_id

    def update_tracking(
        self,
        shipment_id: int,
        carrier: str,
        tracking_number: str,
        shipping_method: str | None = None,
    ) -> None:
        with self.engine.begin() as conn:
            shipment = _load_shipment(conn, shipment_id)
            order = _load_order(conn, shipment.order_id)
            conn.execute(
                update(oms_shipments)
                .where(oms_shipments.c.shipment_id == shipment_id)
                .values(
                    carrier=carrier,
                    tracking_number=tracking_number,
                    shipping_method=shipping_method,
                    updated_at=utcnow(),
                )
            )
            # The change carries the new tracking itself: a later update must not rewrite
            # what an earlier, not yet synced change will send.
            details = {
                "carrier": carrier,
                "tracking_number": tracking_number,
                "shipping_method": shipping_method,
            }
            _append_change(conn, order, ChangeKind.TRACKING_UPDATE, shipment_id, details)

    def cancel(
        self,
        order_id: int,
        lines: Iterable[EventLine] | None = None,
        *,
        reason_code: str = "CANCEL_REASON_OTHER",
        reason_description: str | None = None,
        restock: bool = True,
    ) -> int:
        """Cancel some open units, or (lines=None) every open unit of the order."""
        with self.engine.begin() as conn:
            order = _load_order(conn, order_id)
            _require_open_order(order)
            full = lines is None
            lines = _open_units(order) if full else list(lines)
            cancellation_id = _record_cancellation(
                conn, order, lines, reason_code, reason_description, restock, full, "oms", None
            )
            _append_change(conn, order, ChangeKind.CANCELLATION, cancellation_id)
        return cancellation_id

    def refund(
        self,
        order_id: int,
        lines: Iterable[EventLine],
        *,
        reason_code: str,
        reason_text: str | None = None,
        shipping_amount: Decimal = ZERO,
        deduction_amount: Decimal = ZERO,
        return_id: int | None = None,
    ) -> int:
        """Refund shipped units: each line gives the units refunded and the amount, pre-tax.

        The amount is the caller's decision (the OMS does not price discounts); it may never
        exceed what is left to refund on the line.
        """
        lines = list(lines)
        with self.engine.begin() as conn:
            order = _load_order(conn, order_id)
            refund_id = _record_refund(
                conn,
                order,
                lines,
                reason_code,
                reason_text,
                shipping_amount,
                deduction_amount,
                return_id,
                "oms",
                None,
            )
            _append_change(conn, order, ChangeKind.REFUND, refund_id)
        return refund_id

    def decide_return(self, return_id: int, *, accept: bool) -> None:
        with self.engine.begin() as conn:
            ret = _load_return(conn, return_id)
            if ret.status != ReturnState.REQUESTED:
                raise OmsError(f"return {return_id} was already decided ({ret.status})")
            order = _load_order(conn, ret.order_id)
            state = ReturnState.ACCEPTED if accept else ReturnState.DECLINED
            conn.execute(
                update(oms_returns)
                .where(oms_returns.c.return_id == return_id)
                .values(status=str(state), decided_at=utcnow())
            )
            _append_change(
                conn, order, ChangeKind.RETURN_DECISION, return_id, {"decision": str(state)}
            )

    # -- what the marketplace did (no outbox change: never echoed back) ---------------------------

    def record_marketplace_cancellation(
        self,
        order_id: int,
        external_ref: str,
        lines: list[EventLine],
        reason_code: str | None,
        reason_description: str | None,
    ) -> int | None:
        """Apply a cancellation made on the marketplace; None if it was applied before."""
        with self.engine.begin() as conn:
            if _exists(conn, oms_cancellations, order_id, external_ref):
                return None
            order = _load_order(conn, order_id)
            return _record_cancellation(
                conn,
                order,
                lines,
                reason_code,
                reason_description,
                False,
                False,
                "meta",
                external_ref,
            )

    def record_marketplace_refund(
        self,
        order_id: int,
        external_ref: str,
        lines: list[EventLine],
        reason_code: str,
        reason_text: str | None,
        shipping_amount: Decimal = ZERO,
    ) -> int | None:
        with self.engine.begin() as conn:
            if _exists(conn, oms_refunds, order_id, external_ref):
                return None
            order = _load_order(conn, order_id)
            return _record_refund(
                conn,
                order,
                lines,
                reason_code,
                reason_text,
                shipping_amount,
                ZERO,
                None,
                "meta",
                external_ref,
                check_shipped=False,
            )

    def record_marketplace_return(
        self,
        order_id: int,
        external_ref: str,
        lines: list[EventLine],
        reason: str | None,
        message: str | None,
    ) -> int | None:
        with self.engine.begin() as conn:
            exists = conn.execute(
                select(oms_returns.c.return_id).where(
                    oms_returns.c.order_id == order_id, oms_returns.c.external_ref == external_ref
                )
            ).first()
            if exists:
                return None
            order = _load_order(conn, order_id)
            for event_line in lines:
                order.line(event_line.line_id)
            return_id = conn.execute(
                oms_returns.insert().values(
                    order_id=order_id,
                    external_ref=external_ref,
                    status=str(ReturnState.REQUESTED),
                    reason=reason,
                    message=message,
                    created_at=utcnow(),
                )
            ).inserted_primary_key[0]
            _insert_event_lines(conn, "return", return_id, lines)
            return return_id

    # -- the outbox -----------------------------------------------------------------------------

    def changes_for(
        self,
        shop_id: str,
        *,
        after_change_id: int = 0,
        source: str = OrderSource.META,
        limit: int = 500,
    ) -> list[OmsChange]:
        """Changes on orders from `source`, oldest first. Other orders' changes never appear."""
        query = (
            select(oms_changes)
            .join(oms_orders, oms_orders.c.order_id == oms_changes.c.order_id)
            .where(
                oms_changes.c.shop_id == shop_id,
                oms_changes.c.change_id > after_change_id,
                oms_orders.c.source == str(source),
            )
            .order_by(oms_changes.c.change_id)
            .limit(limit)
        )
        with self.engine.begin() as conn:
            return [_to_change(row) for row in conn.execute(query)]

    def get_changes(self, change_ids: Iterable[int]) -> list[OmsChange]:
        ids = list(change_ids)
        with self.engine.begin() as conn:
            rows = conn.execute(
                select(oms_changes)
                .where(oms_changes.c.change_id.in_(ids))
                .order_by(oms_changes.c.change_id)
            )
            return [_to_change(row) for row in rows]

    def get_shipment(self, shipment_id: int) -> Shipment:
        with self.engine.begin() as conn:
            return _load_shipment(conn, shipment_id)

    def get_cancellation(self, cancellation_id: int) -> Cancellation:
        with self.engine.begin() as conn:
            row = _one(conn, oms_cancellations, "cancellation_id", cancellation_id)
            lines = _event_lines(conn, "cancellation", cancellation_id)
        return Cancellation(
            row.cancellation_id,
            row.order_id,
            row.reason_code,
            row.reason_description,
            row.restock,
            row.full_order,
            row.origin,
            lines,
        )

    def get_refund(self, refund_id: int) -> Refund:
        with self.engine.begin() as conn:
            row = _one(conn, oms_refunds, "refund_id", refund_id)
            lines = _event_lines(conn, "refund", refund_id)
        return Refund(
            row.refund_id,
            row.order_id,
            row.reason_code,
            row.reason_text,
            row.items_amount,
            row.shipping_amount,
            row.deduction_amount,
            row.total_amount,
            row.full_refund,
            row.return_id,
            row.origin,
            lines,
        )

    def get_return(self, return_id: int) -> Return:
        with self.engine.begin() as conn:
            return _load_return(conn, return_id)

    def refunds_for(self, order_id: int) -> list[Refund]:
        with self.engine.begin() as conn:
            ids = (
                conn.execute(
                    select(oms_refunds.c.refund_id)
                    .where(oms_refunds.c.order_id == order_id)
                    .order_by(oms_refunds.c.refund_id)
                )
                .scalars()
                .all()
            )
        return [self.get_refund(refund_id) for refund_id in ids]

    def returns_for(self, order_id: int) -> list[Return]:
        with self.engine.begin() as conn:
            ids = (
                conn.execute(
                    select(oms_returns.c.return_id).where(oms_returns.c.order_id == order_id)
                )
                .scalars()
                .all()
            )
            return [_load_return(conn, return_id) for return_id in ids]

    def _find_ids(self, shop_id: str, source: str, external_ref: str | None):
        if external_ref is None:
            return None
        with self.engine.begin() as conn:
            row = conn.execute(
                select(oms_orders.c.order_id, oms_orders.c.reference).where(
                    oms_orders.c.shop_id == shop_id,
                    oms_orders.c.source == str(source),
                    oms_orders.c.external_ref == external_ref,
                )
            ).first()
        return None if row is None else (row.order_id, row.reference)


# -- helpers (all take an open transaction) ----------------------------------------------------


def _ref(order_id: int) -> str:
    return f"OMS-{order_id:08d}"


def _insert_order(conn: Connection, draft: OrderDraft) -> int:
    now = utcnow()
    order_id = conn.execute(
        oms_orders.insert().values(
            shop_id=draft.shop_id,
            source=str(draft.source),
            external_ref=draft.external_ref,
            status=str(OmsOrderStatus.PENDING),
            currency=draft.currency,
            items_total=draft.items_total,
            order_discount_total=draft.order_discount_total,
            meta_funded_discount_total=draft.meta_funded_discount_total,
            shipping_total=draft.shipping_total,
            shipping_discount_total=draft.shipping_discount_total,
            tax_total=draft.tax_total,
            grand_total=draft.grand_total,
            buyer_name=draft.buyer_name,
            buyer_email=draft.buyer_email,
            buyer_marketing_opt_in=draft.buyer_marketing_opt_in,
            shipping_address=draft.shipping_address,
            shipping_method=draft.shipping_method,
            channel=draft.channel,
            placed_at=draft.placed_at,
            created_at=now,
            updated_at=now,
        )
    ).inserted_primary_key[0]
    conn.execute(
        update(oms_orders).where(oms_orders.c.order_id == order_id).values(reference=_ref(order_id))
    )
    for position, line in enumerate(draft.lines, start=1):
        line_id = conn.execute(
            oms_order_lines.insert().values(
                order_id=order_id,
                position=position,
                external_line_id=line.external_line_id,
                sku=line.sku,
                name=line.name,
                quantity=line.quantity,
                unit_price=line.unit_price,
                item_discount=line.item_discount,
                order_discount=line.order_discount,
                meta_funded_discount=line.meta_funded_discount,
                tax=line.tax,
                qty_shipped=0,
                qty_cancelled=0,
                qty_refunded=0,
                refunded_amount=ZERO,
            )
        ).inserted_primary_key[0]
        for allocation in line.allocations:
            conn.execute(
                oms_line_allocations.insert().values(
                    line_id=line_id,
                    promotion_id=allocation.promotion_id,
                    sponsor=allocation.sponsor,
                    amount=allocation.amount,
                )
            )
    for discount in draft.discounts:
        conn.execute(
            oms_order_discounts.insert().values(
                order_id=order_id,
                promotion_id=discount.promotion_id,
                offer_id=discount.offer_id,
                campaign_name=discount.campaign_name,
                coupon_code=discount.coupon_code,
                granularity=discount.granularity,
                sponsor=discount.sponsor,
                amount=discount.amount,
                applied_after_tax=discount.applied_after_tax,
                external_line_id=discount.external_line_id,
            )
        )
    return order_id


def _load_order(conn: Connection, order_id: int) -> OmsOrder:
    row = _one(conn, oms_orders, "order_id", order_id)
    line_rows = conn.execute(
        select(oms_order_lines)
        .where(oms_order_lines.c.order_id == order_id)
        .order_by(oms_order_lines.c.position)
    ).all()
    allocations: dict[int, list[LineAllocation]] = {}
    if line_rows:
        for alloc in conn.execute(
            select(oms_line_allocations).where(
                oms_line_allocations.c.line_id.in_([r.line_id for r in line_rows])
            )
        ):
            allocations.setdefault(alloc.line_id, []).append(
                LineAllocation(alloc.promotion_id, alloc.sponsor, alloc.amount)
            )
    lines = tuple(
        OmsLine(
            r.line_id,
            r.position,
            r.external_line_id,
            r.sku,
            r.name,
            r.quantity,
            r.unit_price,
            r.item_discount,
            r.order_discount,
            r.meta_funded_discount,
            r.tax,
            r.qty_shipped,
            r.qty_cancelled,
            r.qty_refunded,
            r.refunded_amount,
            tuple(sorted(allocations.get(r.line_id, []), key=lambda a: a.promotion_id)),
        )
        for r in line_rows
    )
    discounts = tuple(
        DraftDiscount(
            d.promotion_id,
            d.granularity,
            d.sponsor,
            d.amount,
            d.offer_id,
            d.campaign_name,
            d.coupon_code,
            d.applied_after_tax,
            d.external_line_id,
        )
        for d in conn.execute(
            select(oms_order_discounts)
            .where(oms_order_discounts.c.order_id == order_id)
            .order_by(oms_order_discounts.c.discount_id)
        )
    )
    return OmsOrder(
        row.order_id,
        row.reference,
        row.shop_id,
        row.source,
        row.external_ref,
        row.status,
        row.currency,
        row.items_total,
        row.order_discount_total,
        row.meta_funded_discount_total,
        row.shipping_total,
        row.shipping_discount_total,
        row.tax_total,
        row.grand_total,
        row.buyer_name,
        row.buyer_email,
        row.buyer_marketing_opt_in,
        row.shipping_address,
        row.placed_at,
        lines,
        discounts,
    )


def _one(conn: Connection, table, key: str, value: int):
    row = conn.execute(select(table).where(table.c[key] == value)).first()
    if row is None:
        raise OmsError(f"no {table.name} row with {key}={value}")
    return row


def _require_open_order(order: OmsOrder) -> None:
    if order.status in (OmsOrderStatus.CANCELLED, OmsOrderStatus.COMPLETED):
        raise OmsError(f"order {order.reference} is {order.status}; nothing is left to change")


def _require_open_units(order: OmsOrder, lines: list[EventLine], verb: str, note: str = "") -> None:
    """Each line asks for at least one unit and no more than its open (not yet shipped or
    cancelled) units; `verb` and `note` word the error."""
    for event_line in lines:
        line = order.line(event_line.line_id)
        if not event_line.quantity or event_line.quantity > line.qty_open:
            raise OmsError(
                f"{order.reference} line {line.sku}: cannot {verb} {event_line.quantity}, "
                f"{line.qty_open} open{note}"
            )


def _open_units(order: OmsOrder) -> list[EventLine]:
    return [
        EventLine(line.line_id, quantity=line.qty_open) for line in order.lines if line.qty_open
    ]


def _insert_event_lines(conn: Connection, kind: str, event_id: int, lines: list[EventLine]):
    for event_line in lines:
        conn.execute(
            oms_event_lines.insert().values(
                event_kind=kind,
                event_id=event_id,
                line_id=event_line.line_id,
                quantity=event_line.quantity,
                amount=event_line.amount,
            )
        )


def _event_lines(conn: Connection, kind: str, event_id: int) -> tuple[EventLine, ...]:
    rows = conn.execute(
        select(oms_event_lines)
        .where(oms_event_lines.c.event_kind == kind, oms_event_lines.c.event_id == event_id)
        .order_by(oms_event_lines.c.event_line_id)
    )
    return tuple(EventLine(r.line_id, r.quantity, r.amount) for r in rows)


def _bump_line(conn: Connection, line_id: int, **increments: Any) -> None:
    columns = oms_order_lines.c
    values = {name: columns[name] + amount for name, amount in increments.items() if amount}
    if values:
        conn.execute(update(oms_order_lines).where(columns.line_id == line_id).values(**values))


def _refresh_status(conn: Connection, order_id: int) -> None:
    """Completed when every unit is shipped or cancelled; cancelled when none was shipped."""
    totals = conn.execute(
        select(
            func.sum(oms_order_lines.c.quantity),
            func.sum(oms_order_lines.c.qty_shipped),
            func.sum(oms_order_lines.c.qty_cancelled),
        ).where(oms_order_lines.c.order_id == order_id)
    ).one()
    quantity, shipped, cancelled = (int(v or 0) for v in totals)
    if shipped + cancelled < quantity:
        return
    status = OmsOrderStatus.CANCELLED if shipped == 0 else OmsOrderStatus.COMPLETED
    conn.execute(
        update(oms_orders)
        .where(oms_orders.c.order_id == order_id)
        .values(status=str(status), updated_at=utcnow())
    )


def _append_change(
    conn: Connection,
    order: OmsOrder,
    kind: ChangeKind,
    ref_id: int,
    details: dict[str, Any] | None = None,
) -> int:
    return conn.execute(
        oms_changes.insert().values(
            order_id=order.order_id,
            shop_id=order.shop_id,
            kind=str(kind),
            ref_id=ref_id,
            details=details,
            created_at=utcnow(),
        )
    ).inserted_primary_key[0]


def _record_cancellation(
    conn, order, lines, reason_code, reason_description, restock, full, origin, external_ref
) -> int:
    _require_open_units(order, lines, "cancel", note=" (shipped units are refunded, not cancelled)")
    cancellation_id = conn.execute(
        oms_cancellations.insert().values(
            order_id=order.order_id,
            reason_code=reason_code,
            reason_description=reason_description,
            restock=restock,
            full_order=full,
            origin=origin,
            external_ref=external_ref,
            created_at=utcnow(),
        )
    ).inserted_primary_key[0]
    _insert_event_lines(conn, "cancellation", cancellation_id, lines)
    for event_line in lines:
        _bump_line(conn, event_line.line_id, qty_cancelled=event_line.quantity)
    _refresh_status(conn, order.order_id)
    return cancellation_id


def _record_refund(
    conn,
    order,
    lines,
    reason_code,
    reason_text,
    shipping_amount,
    deduction_amount,
    return_id,
    origin,
    external_ref,
    *,
    check_shipped: bool = True,
) -> int:
    items_amount = ZERO
    for event_line in lines:
        line = order.line(event_line.line_id)
        if event_line.amount is None or event_line.amount < 0:
            raise OmsError(f"{order.reference} line {line.sku}: a refund line needs an amount")
        quantity = event_line.quantity or 0
        if check_shipped and quantity > line.qty_shipped - line.qty_refunded:
            raise OmsError(
                f"{order.reference} line {line.sku}: cannot refund {quantity} units, "
                f"{line.qty_shipped - line.qty_refunded} shipped and not yet refunded"
            )
        if event_line.amount > line.net_paid - line.refunded_amount:
            raise OmsError(
                f"{order.reference} line {line.sku}: refund {event_line.amount} exceeds the "
                f"{line.net_paid - line.refunded_amount} left to refund"
            )
        items_amount += event_line.amount
    if shipping_amount > order.shipping_total:
        raise OmsError(f"{order.reference}: shipping refund above the shipping charged")
    total = items_amount + shipping_amount - deduction_amount
    if total <= 0:
        raise OmsError(f"{order.reference}: a refund must return a positive amount")
    full = all(
        line.refunded_amount + sum((e.amount for e in lines if e.line_id == line.line_id), ZERO)
        >= line.net_paid
        for line in order.lines
    )
    refund_id = conn.execute(
        oms_refunds.insert().values(
            order_id=order.order_id,
            reason_code=reason_code,
            reason_text=reason_text,
            items_amount=items_amount,
            shipping_amount=shipping_amount,
            deduction_amount=deduction_amount,
            total_amount=total,
            full_refund=full,
            return_id=return_id,
            origin=origin,
            external_ref=external_ref,
            created_at=utcnow(),
        )
    ).inserted_primary_key[0]
    _insert_event_lines(conn, "refund", refund_id, lines)
    for event_line in lines:
        conn.execute(
            update(oms_order_lines)
            .where(oms_order_lines.c.line_id == event_line.line_id)
            .values(
                qty_refunded=oms_order_lines.c.qty_refunded + (event_line.quantity or 0),
                refunded_amount=_add_decimal(conn, event_line.line_id, event_line.amount),
            )
        )
    return refund_id


def _add_decimal(conn: Connection, line_id: int, amount: Decimal) -> Decimal:
    # Read-modify-write inside the caller's transaction: SQLite stores ExactDecimal as text, so
    # SQL arithmetic would go through floats.
    current = conn.execute(
        select(oms_order_lines.c.refunded_amount).where(oms_order_lines.c.line_id == line_id)
    ).scalar_one()
    return current + amount


def _exists(conn: Connection, table, order_id: int, external_ref: str) -> bool:
    return (
        conn.execute(
            select(table.c.order_id).where(
                and_(
                    table.c.order_id == order_id,
                    table.c.origin == "meta",
                    table.c.external_ref == external_ref,
                )
            )
        ).first()
        is not None
    )


def _load_shipment(conn: Connection, shipment_id: int) -> Shipment:
    row = _one(conn, oms_shipments, "shipment_id", shipment_id)
    return Shipment(
        row.shipment_id,
        row.order_id,
        row.external_shipment_id,
        row.carrier,
        row.tracking_number,
        row.shipping_method,
        _event_lines(conn, "shipment", shipment_id),
    )


def _load_return(conn: Connection, return_id: int) -> Return:
    row = _one(conn, oms_returns, "return_id", return_id)
    return Return(
        row.return_id,
        row.order_id,
        row.external_ref,
        row.status,
        row.reason,
        row.message,
        _event_lines(conn, "return", return_id),
    )


def _to_change(row) -> OmsChange:
    return OmsChange(
        row.change_id,
        row.order_id,
        row.shop_id,
        row.kind,
        row.ref_id,
        row.details or {},
        row.created_at,
    )

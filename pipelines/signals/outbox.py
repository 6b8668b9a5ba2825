"""The Conversions API outbox: enqueue Purchase events, send them in batches, mark them sent.

    enqueue_purchase(db, shop, order, meta_order_id="1001", meta_state="CREATED")
    summary = send_pending_events(db, conversions_api, "acme")

An event is marked `sent` only after Meta accepted the batch that carried it. A failed batch
leaves its events pending with a backoff (`next_attempt_at`); after `max_attempts` they become
`failed` with the last error. Meta rejects a whole batch when one event is older than 7 days, so
such events are set aside as `expired` before sending instead of sinking the batch.
"""

import logging
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError

from pipelines.signals.events import EventError, is_paid, purchase_event
from resources.db import MetasyncDatabase
from resources.db.signals_tables import capi_events
from resources.db.types import utcnow
from resources.meta.errors import GraphError
from resources.oms.models import OmsOrder
from resources.shops import ShopProfile

logger = logging.getLogger(__name__)

MAX_EVENTS_PER_REQUEST = 1000  # Meta's limit per /{pixel_id}/events call
MAX_EVENT_AGE = timedelta(days=7)


class EventSender(Protocol):
    def send_events(self, events: list[dict[str, Any]], test_event_code: str | None = None): ...


@dataclass
class SendSummary:
    shop_id: str
    sent: int = 0
    batches: int = 0
    failed_batches: int = 0
    expired: int = 0
    errors: list[str] = field(default_factory=list)


def enqueue_purchase(
    db: MetasyncDatabase,
    shop: ShopProfile,
    order: OmsOrder,
    *,
    meta_order_id: str,
    meta_state: str | None,
    event_time: datetime | None = None,
) -> str | None:
    """Add the order's Purchase event unless it is unpaid or already queued; returns its id."""
    if not is_paid(order, meta_state):
        logger.info("shop %s: no Purchase for unpaid order %s", shop.shop_id, meta_order_id)
        return None
    try:
        event = purchase_event(
            shop_id=shop.shop_id,
            order=order,
            meta_order_id=meta_order_id,
            event_time=event_time or order.placed_at or utcnow(),
        )
    except EventError as exc:
        logger.warning("shop %s: no Purchase for %s: %s", shop.shop_id, meta_order_id, exc)
        return None
    now = utcnow()
    try:
        with db.begin() as conn:
            conn.execute(
                capi_events.insert().values(
                    shop_id=shop.shop_id,
                    event_id=event["event_id"],
                    meta_order_id=meta_order_id,
                    pixel_id=shop.pixel_id,
                    event_name=event["event_name"],
                    event_time=datetime.fromtimestamp(event["event_time"], tz=now.tzinfo),
                    payload=event,
                    status="pending",
                    attempts=0,
                    created_at=now,
                )
            )
    except IntegrityError:
        return event["event_id"]  # queued by an earlier run: the event id is stable per order
    return event["event_id"]


def send_pending_events(
    db: MetasyncDatabase,
    sender: EventSender,
    shop_id: str,
    *,
    batch_size: int = MAX_EVENTS_PER_REQUEST,
    max_attempts: int = 8,
    test_event_code: str | None = None,
    now: datetime | None = None,
) -> SendSummary:
    """Send due events in batches of at most `batch_size`; one failed batch stops the rest of
    this call (Meta is likely down) and leaves everything pending for the next run."""
    now = now or utcnow()
    summary = SendSummary(shop_id)
    summary.expired = _expire_old_events(db, shop_id, now)
    due = _due_events(db, shop_id, now)
    for start in range(0, len(due), min(batch_size, MAX_EVENTS_PER_REQUEST)):
        batch = due[start : start + batch_size]
        ids = [row.event_id for row in batch]
        try:
            sender.send_events([row.payload for row in batch], test_event_code=test_event_code)
        except GraphError as exc:
            summary.failed_batches += 1
            summary.errors.append(str(exc))
            _record_failure(db, shop_id, batch, str(exc), now, max_attempts)
            break
        _mark_sent(db, shop_id, ids, now)
        summary.sent += len(ids)
        summary.batches += 1
    logger.info(
        "shop %s: %d Purchase events sent in %d batches, %d expired, %d failed batches",
        shop_id, summary.sent, summary.batches, summary.expired, summary.failed_batches,
    )  # fmt: skip
    return summary


def pending_count(db: MetasyncDatabase, shop_id: str) -> int:
    with db.begin() as conn:
        return len(
            conn.execute(
                select(capi_events.c.event_id).where(
                    capi_events.c.shop_id == shop_id, capi_events.c.status == "pending"
                )
            ).all()
        )


def _due_events(db: MetasyncDatabase, shop_id: str, now: datetime) -> list:
    with db.begin() as conn:
        return conn.execute(
            select(capi_events)
            .where(
                capi_events.c.shop_id == shop_id,
                capi_events.c.status == "pending",
                or_(capi_events.c.next_attempt_at.is_(None), capi_events.c.next_attempt_at <= now),
            )
            .order_by(capi_events.c.created_at, capi_events.c.event_id)
        ).all()


def _expire_old_events(db: MetasyncDatabase, shop_id: str, now: datetime) -> int:
    with db.begin() as conn:
        result = conn.execute(
            update(capi_events)
            .where(
                capi_events.c.shop_id == shop_id,
                capi_events.c.status == "pending",
                capi_events.c.event_time < now - MAX_EVENT_AGE,
            )
            .values(status="expired", last_error="older than Meta's 7-day event window")
        )
    return result.rowcount or 0


def _mark_sent(db: MetasyncDatabase, shop_id: str, event_ids: list[str], now: datetime) -> None:
    with db.begin() as conn:
        conn.execute(
            update(capi_events)
            .where(capi_events.c.shop_id == shop_id, capi_events.c.event_id.in_(event_ids))
            .values(status="sent", sent_at=now, attempts=capi_events.c.attempts + 1)
        )


def _record_failure(db, shop_id, batch, error: str, now: datetime, max_attempts: int) -> None:
    with db.begin() as conn:
        for row in batch:
            attempts = row.attempts + 1
            # Exponential backoff: 1, 2, 4 ... minutes, capped at six hours.
            delay = timedelta(minutes=min(2 ** (attempts - 1), 360))
            conn.execute(
                update(capi_events)
                .where(capi_events.c.shop_id == shop_id, capi_events.c.event_id == row.event_id)
                .values(
                    attempts=attempts,
                    last_error=error[:2000],
                    next_attempt_at=now + delay,
                    status="failed" if attempts >= max_attempts else "pending",
                )
            )

"""Reads and writes of metasync's order tables (order map, acks, issues, change sync, watermarks).

ledger = OrderLedger(db)
ledger.record_import("acme", "1001", oms_order_id=7, reference="OMS-00000007", ...)
ledger.unacknowledged("acme")        # what the SLA check reports
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from resources.db import MetasyncDatabase
from resources.db.orders_tables import (
    order_acks,
    order_change_sync,
    order_issues,
    order_map,
    order_watermarks,
)
from resources.db.types import utcnow


@dataclass(frozen=True)
class MappedOrder:
    shop_id: str
    meta_order_id: str
    oms_order_id: int | None
    merchant_order_reference: str | None
    state: str
    meta_created_at: datetime | None
    acknowledged_at: datetime | None


class OrderLedger:
    def __init__(self, db: MetasyncDatabase) -> None:
        self._db = db

    # -- order map ------------------------------------------------------------------------------

    def get(self, shop_id: str, meta_order_id: str) -> MappedOrder | None:
        return self._first_mapping(shop_id, order_map.c.meta_order_id == meta_order_id)

    def by_oms_order(self, shop_id: str, oms_order_id: int) -> MappedOrder | None:
        return self._first_mapping(shop_id, order_map.c.oms_order_id == oms_order_id)

    def _first_mapping(self, shop_id: str, condition) -> MappedOrder | None:
        with self._db.begin() as conn:
            row = conn.execute(
                select(order_map).where(order_map.c.shop_id == shop_id, condition)
            ).first()
        return None if row is None else _mapped(row)

    def upsert(self, shop_id: str, meta_order_id: str, **values: Any) -> None:
        """Insert or update one mapping; an acknowledged order never goes back to `imported`."""
        now = utcnow()
        with self._db.begin() as conn:
            row = conn.execute(
                select(order_map.c.state).where(
                    order_map.c.shop_id == shop_id, order_map.c.meta_order_id == meta_order_id
                )
            ).first()
            if row is None:
                conn.execute(
                    order_map.insert().values(
                        shop_id=shop_id, meta_order_id=meta_order_id, updated_at=now, **values
                    )
                )
                return
            if row.state == "acknowledged" and values.get("state") == "imported":
                values = {k: v for k, v in values.items() if k != "state"}
            conn.execute(
                update(order_map)
                .where(order_map.c.shop_id == shop_id, order_map.c.meta_order_id == meta_order_id)
                .values(updated_at=now, **values)
            )

    def unacknowledged(self, shop_id: str) -> list[MappedOrder]:
        with self._db.begin() as conn:
            rows = conn.execute(
                select(order_map)
                .where(order_map.c.shop_id == shop_id, order_map.c.state != "acknowledged")
                .order_by(order_map.c.meta_created_at)
            ).all()
        return [_mapped(row) for row in rows]

    def count_by_state(self, shop_id: str) -> dict[str, int]:
        with self._db.begin() as conn:
            rows = conn.execute(
                select(order_map.c.state, func.count())
                .where(order_map.c.shop_id == shop_id)
                .group_by(order_map.c.state)
            ).all()
        return {state: count for state, count in rows}

    # -- acknowledgements -----------------------------------------------------------------------

    def record_ack(
        self,
        shop_id: str,
        meta_order_id: str,
        key: str,
        reference: str | None,
        state: str | None,
        error_code: int | None,
        error_message: str | None,
    ) -> None:
        with self._db.begin() as conn:
            exists = conn.execute(
                select(order_acks.c.id).where(
                    order_acks.c.idempotency_key == key,
                    order_acks.c.meta_order_id == meta_order_id,
                )
            ).first()
            if exists:
                return
            conn.execute(
                order_acks.insert().values(
                    shop_id=shop_id,
                    meta_order_id=meta_order_id,
                    idempotency_key=key,
                    merchant_order_reference=reference,
                    state=state,
                    error_code=error_code,
                    error_message=error_message,
                    acked_at=utcnow(),
                )  # fmt: skip
            )

    def failed_ack_attempts(self, shop_id: str, meta_order_ids: list[str]) -> int:
        """How many acknowledgements of these orders failed: part of the next batch's key, so a
        retry after a failure gets a new key (Meta replays a key's failed result otherwise)."""
        with self._db.begin() as conn:
            rows = conn.execute(
                select(order_acks.c.meta_order_id, func.count())
                .where(
                    order_acks.c.shop_id == shop_id,
                    order_acks.c.meta_order_id.in_(meta_order_ids),
                    order_acks.c.error_code.is_not(None),
                )
                .group_by(order_acks.c.meta_order_id)
            ).all()
        return max((count for _, count in rows), default=0)

    # -- issues ---------------------------------------------------------------------------------

    def record_issue(
        self,
        shop_id: str,
        meta_order_id: str,
        code: str,
        reason: str,
        call_to_action: str,
        action_taken: str,
        admin_url: str | None = None,
    ) -> None:
        now = utcnow()
        with self._db.begin() as conn:
            row = conn.execute(
                select(order_issues.c.id).where(
                    order_issues.c.shop_id == shop_id,
                    order_issues.c.meta_order_id == meta_order_id,
                    order_issues.c.code == code,
                )
            ).first()
            if row:
                conn.execute(
                    update(order_issues)
                    .where(order_issues.c.id == row.id)
                    .values(last_seen=now, reason=reason, action_taken=action_taken)
                )
                return
            conn.execute(
                order_issues.insert().values(
                    shop_id=shop_id,
                    meta_order_id=meta_order_id,
                    code=code,
                    reason=reason,
                    call_to_action=call_to_action,
                    action_taken=action_taken,
                    admin_url=admin_url,
                    first_seen=now,
                    last_seen=now,
                )  # fmt: skip
            )

    def issues(self, shop_id: str) -> list[dict[str, Any]]:
        with self._db.begin() as conn:
            rows = conn.execute(
                select(order_issues)
                .where(order_issues.c.shop_id == shop_id, order_issues.c.resolved_at.is_(None))
                .order_by(order_issues.c.id)
            ).all()
        return [dict(row._mapping) for row in rows]

    # -- OMS change sync state ------------------------------------------------------------------

    def change_status(self, shop_id: str, change_id: int) -> dict[str, Any] | None:
        with self._db.begin() as conn:
            row = conn.execute(
                select(order_change_sync).where(
                    order_change_sync.c.shop_id == shop_id,
                    order_change_sync.c.oms_change_id == change_id,
                )
            ).first()
        return None if row is None else dict(row._mapping)

    def record_change(self, shop_id: str, change_id: int, **values: Any) -> None:
        now = utcnow()
        with self._db.begin() as conn:
            exists = conn.execute(
                select(order_change_sync.c.attempts).where(
                    order_change_sync.c.shop_id == shop_id,
                    order_change_sync.c.oms_change_id == change_id,
                )
            ).first()
            if exists is None:
                conn.execute(
                    order_change_sync.insert().values(
                        shop_id=shop_id, oms_change_id=change_id, updated_at=now, **values
                    )
                )
            else:
                conn.execute(
                    update(order_change_sync)
                    .where(
                        order_change_sync.c.shop_id == shop_id,
                        order_change_sync.c.oms_change_id == change_id,
                    )
                    .values(updated_at=now, **values)
                )

    def settled_change_ids(self, shop_id: str) -> set[int]:
        """Changes that need nothing more: synced, given up, skipped or handed to a person."""
        with self._db.begin() as conn:
            rows = conn.execute(
                select(order_change_sync.c.oms_change_id).where(
                    order_change_sync.c.shop_id == shop_id,
                    order_change_sync.c.status != "retry",
                )
            ).scalars()
            return set(rows)

    def highest_settled_prefix(self, shop_id: str) -> int:
        """The largest change id below which every change is settled (a cheap lower bound)."""
        with self._db.begin() as conn:
            retry_min = conn.execute(
                select(func.min(order_change_sync.c.oms_change_id)).where(
                    order_change_sync.c.shop_id == shop_id,
                    order_change_sync.c.status == "retry",
                )
            ).scalar()
            settled_max = conn.execute(
                select(func.max(order_change_sync.c.oms_change_id)).where(
                    order_change_sync.c.shop_id == shop_id
                )
            ).scalar()
        if retry_min is not None:
            return retry_min - 1
        return settled_max or 0

    # -- watermarks -----------------------------------------------------------------------------

    def watermark(self, shop_id: str, stream: str) -> datetime | None:
        with self._db.begin() as conn:
            return conn.execute(
                select(order_watermarks.c.watermark).where(
                    order_watermarks.c.shop_id == shop_id, order_watermarks.c.stream == stream
                )
            ).scalar()

    def set_watermark(self, shop_id: str, stream: str, watermark: datetime) -> None:
        """Move a watermark forward (never back)."""
        current = self.watermark(shop_id, stream)
        if current is not None and current >= watermark:
            return
        with self._db.begin() as conn:
            if current is None:
                conn.execute(
                    order_watermarks.insert().values(
                        shop_id=shop_id, stream=stream, watermark=watermark, updated_at=utcnow()
                    )
                )
            else:
                conn.execute(
                    update(order_watermarks)
                    .where(
                        order_watermarks.c.shop_id == shop_id, order_watermarks.c.stream == stream
                    )
                    .values(watermark=watermark, updated_at=utcnow())
                )


def _mapped(row) -> MappedOrder:
    return MappedOrder(
        row.shop_id, row.meta_order_id, row.oms_order_id, row.merchant_order_reference,
        row.state, row.meta_created_at, row.acknowledged_at,
    )  # fmt: skip

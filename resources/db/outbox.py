"""The outbox of Graph writes: a write's idempotency key is stored before the call is made.

    outbox = GraphWriteOutbox(db)
    key = idempotency_key("acme", "refund", order_id, local_refund_id)
    write = outbox.record_intent(key, shop_id="acme", action="refund", target_id=order_id,
                                 body=payload)
    if write.status != "succeeded":
        response = graph.post(..., idempotency_key=key)   # a rerun replays the same key
        outbox.mark_succeeded(key, response)

Because the key is derived from what the write does (never random, never the clock), a run that
crashed after Meta applied the write and before the local commit replays the same key, and Meta
answers with the original result instead of applying the effect twice.
"""

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select, update

from resources.db import MetasyncDatabase
from resources.db.schema import graph_writes
from resources.db.types import utcnow


def idempotency_key(shop_id: str, action: str, target_id: str, local_change_id: str) -> str:
    """A deterministic key for one effect: the same inputs always give the same key."""
    material = "\x1f".join((shop_id, action, str(target_id), str(local_change_id)))
    return f"ms-{hashlib.sha256(material.encode()).hexdigest()[:40]}"


def request_hash(body: Any) -> str:
    """A stable hash of a request body, to notice the same key reused for another body."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class GraphWrite:
    idempotency_key: str
    shop_id: str
    action: str
    target_id: str
    status: str
    attempts: int
    response: Any


class OutboxConflict(RuntimeError):
    """The same idempotency key was recorded earlier for a different request body."""


class GraphWriteOutbox:
    def __init__(self, db: MetasyncDatabase) -> None:
        self._db = db

    def record_intent(
        self, key: str, *, shop_id: str, action: str, target_id: str, body: Any
    ) -> GraphWrite:
        """Store the write (if new) and return its current row. Committed before returning."""
        body_hash = request_hash(body)
        with self._db.begin() as conn:
            row = conn.execute(
                select(graph_writes).where(graph_writes.c.idempotency_key == key)
            ).first()
            if row is None:
                conn.execute(
                    graph_writes.insert().values(
                        idempotency_key=key,
                        shop_id=shop_id,
                        action=action,
                        target_id=str(target_id),
                        request_hash=body_hash,
                        status="pending",
                        attempts=0,
                        created_at=utcnow(),
                    )
                )
                return GraphWrite(key, shop_id, action, str(target_id), "pending", 0, None)
        if row.request_hash != body_hash:
            raise OutboxConflict(
                f"idempotency key {key} ({action} on {target_id}) was recorded for another body; "
                "the local change id must change when the change does"
            )
        return _to_write(row)

    def mark_attempt(self, key: str) -> None:
        with self._db.begin() as conn:
            conn.execute(
                update(graph_writes)
                .where(graph_writes.c.idempotency_key == key)
                .values(attempts=graph_writes.c.attempts + 1)
            )

    def mark_succeeded(self, key: str, response: Any) -> None:
        self._finish(key, "succeeded", response=response)

    def mark_failed(self, key: str, error: str) -> None:
        self._finish(key, "failed", error=error)

    def get(self, key: str) -> GraphWrite | None:
        with self._db.begin() as conn:
            row = conn.execute(
                select(graph_writes).where(graph_writes.c.idempotency_key == key)
            ).first()
        return None if row is None else _to_write(row)

    def pending(self, shop_id: str) -> list[GraphWrite]:
        with self._db.begin() as conn:
            rows = conn.execute(
                select(graph_writes)
                .where(graph_writes.c.shop_id == shop_id, graph_writes.c.status == "pending")
                .order_by(graph_writes.c.created_at)
            ).all()
        return [_to_write(row) for row in rows]

    def _finish(self, key: str, status: str, *, response: Any = None, error: str | None = None):
        with self._db.begin() as conn:
            conn.execute(
                update(graph_writes)
                .where(graph_writes.c.idempotency_key == key)
                .values(status=status, response=response, error=error, completed_at=utcnow())
            )


def _to_write(row) -> GraphWrite:
    return GraphWrite(
        row.idempotency_key,
        row.shop_id,
        row.action,
        row.target_id,
        row.status,
        row.attempts,
        row.response,
    )

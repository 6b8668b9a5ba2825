"""Whose is a Meta cancellation or refund: one metasync pushed, or Meta's own (support, SLA)?

    record_intent(db, shop_id, key, meta_order_id, "refund", refund_signature(write))  # BEFORE
    ...push...
    intent_key = claim_matching_intent(db, shop_id, meta_order_id, "refund", meta_refund)

Meta answers our writes with {"success": true} and no id, and its events carry no initiator. So
each push first records what it asks for (items, quantities or amounts, shipping, reason code)
as an intent, and a Meta event found later is ours exactly when it matches an unclaimed intent of
the same order and kind that we did not give up on. Matching by content rather than by timing
means a crash between Meta applying our write and us claiming its id leaves nothing ambiguous: a
pull that runs first finds the pending intent and does not mistake our refund for Meta's, and a
Meta-side event appearing in the instant after our write is left for the pull.

Two events that ask for the very same thing are interchangeable: whichever is claimed, the counts
on both sides stay right.
"""

from decimal import Decimal
from typing import Any

from sqlalchemy import select, update

from pipelines.orders.mapping import MetaWrite
from resources.db import MetasyncDatabase
from resources.db.orders_tables import order_write_intents
from resources.db.schema import graph_writes
from resources.db.types import utcnow
from resources.meta.orders_models import MetaCancellation, MetaRefund
from resources.oms.models import Cancellation, OmsOrder

ZERO = Decimal("0")
_INTENT_KEY = order_write_intents.c.idempotency_key


def _item_key(ref: Any) -> str:
    """Meta's line id when we addressed the line by it, else `r:<retailer_id>`."""
    item_id = getattr(ref, "item_id", None)
    return str(item_id) if item_id else f"r:{ref.retailer_id}"


def cancellation_signature(order: OmsOrder, cancellation: Cancellation, write: MetaWrite) -> dict:
    """Units per line, from the OMS (a whole-order cancel names no items on the wire)."""
    items = {}
    for event_line in cancellation.lines:
        line = order.line(event_line.line_id)
        key = line.external_line_id or f"r:{line.sku}"
        items[key] = items.get(key, 0) + int(event_line.quantity or 0)
    return {"items": items, "reason_code": write.arguments.get("reason_code")}


def refund_signature(write: MetaWrite) -> dict:
    items: dict[str, dict[str, str | int]] = {}
    for item in write.arguments["items"] or []:
        if item.quantity:
            items[_item_key(item)] = {"quantity": int(item.quantity)}
        else:
            items[_item_key(item)] = {"amount": str(item.item_refund_amount.amount)}
    shipping = write.arguments.get("shipping")
    return {
        "items": items,
        "shipping": str(shipping.amount if shipping else ZERO),
        "reason_code": write.arguments.get("reason_code"),
    }


def _event_items(event: MetaCancellation | MetaRefund) -> dict[str, Any]:
    by_key: dict[str, Any] = {}
    for item in event.items:
        for key in (item.id, f"r:{item.retailer_id}" if item.retailer_id else None):
            if key:
                by_key[key] = item
    return by_key


def matches(kind: str, signature: dict, event: MetaCancellation | MetaRefund) -> bool:
    """Does the Meta event do exactly what the intent asked for?"""
    items = _event_items(event)
    wanted = signature["items"]
    if len(event.items) != len(wanted) or any(key not in items for key in wanted):
        return False
    if kind == "cancellation":
        reason = event.cancel_reason.reason_code if event.cancel_reason else None
        if reason and signature.get("reason_code") and reason != signature["reason_code"]:
            return False
        return all(items[key].quantity == quantity for key, quantity in wanted.items())
    reason = event.refund_reason.reason_code if event.refund_reason else None
    if reason and signature.get("reason_code") and reason != signature["reason_code"]:
        return False
    shipping = event.refund_amount.shipping if event.refund_amount else None
    if Decimal(signature["shipping"]) != (shipping or ZERO):
        return False
    for key, asked in wanted.items():
        item = items[key]
        if "quantity" in asked and item.quantity != asked["quantity"]:
            return False
        if "amount" in asked and (
            item.refund_subtotal is None or item.refund_subtotal.amount != Decimal(asked["amount"])
        ):
            return False
    return True


def record_intent(
    db: MetasyncDatabase, shop_id: str, key: str, meta_order_id: str, kind: str, signature: dict
) -> None:
    """Store what a push asks for, once per idempotency key, before the push is sent."""
    with db.begin() as conn:
        exists = conn.execute(
            select(order_write_intents.c.idempotency_key).where(
                order_write_intents.c.shop_id == shop_id,
                order_write_intents.c.idempotency_key == key,
            )
        ).first()
        if exists is None:
            conn.execute(
                order_write_intents.insert().values(
                    shop_id=shop_id,
                    idempotency_key=key,
                    meta_order_id=meta_order_id,
                    kind=kind,
                    signature=signature,
                    created_at=utcnow(),
                )  # fmt: skip
            )


def claim_matching_intent(
    db: MetasyncDatabase,
    shop_id: str,
    meta_order_id: str,
    kind: str,
    event: MetaCancellation | MetaRefund,
    prefer_key: str | None = None,
) -> str | None:
    """Claim the oldest unclaimed, not-failed intent the event matches (the pushing write's own
    first); its key, or None if the event is not ours."""
    with db.begin() as conn:
        rows = conn.execute(
            select(order_write_intents, graph_writes.c.status)
            .join(graph_writes, graph_writes.c.idempotency_key == _INTENT_KEY)
            .where(
                order_write_intents.c.shop_id == shop_id,
                order_write_intents.c.meta_order_id == meta_order_id,
                order_write_intents.c.kind == kind,
                order_write_intents.c.meta_event_id.is_(None),
                graph_writes.c.status != "failed",
            )
            .order_by(order_write_intents.c.created_at)
        ).all()  # fmt: skip
        rows.sort(key=lambda row: row.idempotency_key != prefer_key)
        for row in rows:
            if matches(kind, row.signature, event):
                conn.execute(
                    update(order_write_intents)
                    .where(
                        order_write_intents.c.shop_id == shop_id,
                        order_write_intents.c.idempotency_key == row.idempotency_key,
                        order_write_intents.c.meta_event_id.is_(None),
                    )
                    .values(meta_event_id=event.id)
                )
                return row.idempotency_key
    return None


def intent_claimed(db: MetasyncDatabase, shop_id: str, key: str) -> bool:
    with db.begin() as conn:
        claimed = conn.execute(
            select(order_write_intents.c.meta_event_id).where(
                order_write_intents.c.shop_id == shop_id,
                order_write_intents.c.idempotency_key == key,
            )
        ).scalar()
    return claimed is not None

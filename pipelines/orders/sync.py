"""Order state sync in both directions.

    with orders_context(metasync, oms, "acme") as ctx:
        push_order_changes(ctx, pending_changes(ctx))     # OMS -> Meta
        pull_meta_changes(ctx)                             # Meta -> OMS

OMS -> Meta: every OMS change (shipment, tracking update, cancellation, refund, return decision)
becomes one Graph write whose idempotency key is idempotency_key(shop, action, meta order id,
OMS change id), recorded in the Graph write outbox before the call. A rerun after a crash replays
the same key, so Meta applies each effect once. Changes of one order are sent in change order,
one at a time (Meta refuses concurrent writes on an order, 2361050). What to do when Meta refuses
is decided by pipelines/orders/policy.py from the error code.

Meta -> OMS: orders with cancellations or refunds changed since the shop's watermark, and
buyer-opened returns, are read back; every Meta event id not claimed by one of our own writes is
applied to the OMS as the marketplace's doing (recorded once, by its Meta id).
"""

import logging
from dataclasses import dataclass, field
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from pipelines.orders.event_origin import (
    cancellation_signature,
    claim_matching_intent,
    intent_claimed,
    record_intent,
    refund_signature,
)
from pipelines.orders.intake import OrdersContext
from pipelines.orders.mapping import (
    MetaWrite,
    cancellation_write,
    refund_write,
    shipment_write,
    tracking_update_write,
)
from pipelines.orders.policy import Decision, Outcome, decide
from resources.db.orders_tables import order_meta_events
from resources.db.outbox import idempotency_key
from resources.db.types import utcnow
from resources.meta.errors import GraphError
from resources.meta.orders_models import OrderFilter, OrderState, ReturnUpdateEvent
from resources.oms.models import ZERO, ChangeKind, EventLine, OmsChange, OmsOrder, OrderSource
from resources.shops import ShopStatus

logger = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
SETTLED = frozenset({"synced", "gave_up", "issue", "skipped"})


class ShopPaused(RuntimeError):
    """The shop's token was refused: the shop is paused, its other writes wait."""


@dataclass
class PushSummary:
    synced: int = 0
    retry: int = 0
    issues: int = 0
    gave_up: int = 0
    skipped: int = 0
    details: list[str] = field(default_factory=list)


def pending_changes(ctx: OrdersContext, limit: int = 500) -> list[OmsChange]:
    """OMS changes on Meta orders not settled yet, oldest first."""
    floor = ctx.ledger.highest_settled_prefix(ctx.shop_id)
    settled = ctx.ledger.settled_change_ids(ctx.shop_id)
    changes = ctx.oms.changes_for(ctx.shop_id, after_change_id=floor, limit=limit)
    return [c for c in changes if c.change_id not in settled]


def push_order_changes(ctx: OrdersContext, changes: list[OmsChange]) -> PushSummary:
    """Send changes grouped per order, each order's in change order; an order whose change must
    be retried stops there (a later change may depend on it)."""
    summary = PushSummary()
    by_order: dict[int, list[OmsChange]] = {}
    for change in sorted(changes, key=lambda c: c.change_id):
        by_order.setdefault(change.order_id, []).append(change)
    for order_changes in by_order.values():
        for change in order_changes:
            status = push_change(ctx, change)
            setattr(summary, status, getattr(summary, status) + 1)
            summary.details.append(f"{change.change_id}:{change.kind}:{status}")
            if status == "retry":
                break
    return summary


def push_change(ctx: OrdersContext, change: OmsChange) -> str:
    """Send one OMS change to Meta; returns its sync status (synced, retry, issue, ...)."""
    known = ctx.ledger.change_status(ctx.shop_id, change.change_id)
    if known and known["status"] in SETTLED:
        return "skipped"
    order = ctx.oms.get_order(change.order_id)
    if order.source != OrderSource.META or not order.external_ref:
        _settle(ctx, change, "", "none", "skipped", error="order did not come from Meta")
        return "skipped"
    mapped = ctx.ledger.get(ctx.shop_id, order.external_ref)
    if mapped is None or mapped.state != "acknowledged":
        # Meta refuses writes on an unacknowledged order; intake will get there first.
        _settle(ctx, change, order.external_ref, change.kind, "retry",
                error="order not acknowledged on Meta yet", known=known)  # fmt: skip
        return "retry"

    write = change_write(ctx, order, change)
    key = idempotency_key(ctx.shop_id, write.action, write.meta_order_id, str(change.change_id))
    recorded = ctx.outbox.record_intent(
        key, shop_id=ctx.shop_id, action=write.action, target_id=write.meta_order_id,
        body=write.body(),
    )  # fmt: skip
    _record_event_intent(ctx, order, change, write, key)
    if recorded.status != "succeeded":
        ctx.outbox.mark_attempt(key)
        try:
            response = _send(ctx, write, key)
        except GraphError as exc:
            return _refused(ctx, change, write, key, exc, known)
        ctx.outbox.mark_succeeded(key, response)
    # Reached after a fresh success, or on a rerun after a crash that came after Meta's answer.
    _claim_new_meta_events(ctx, write, key)
    _settle(ctx, change, write.meta_order_id, write.action, "synced", key=key, known=known)
    return "synced"


def change_write(ctx: OrdersContext, order: OmsOrder, change: OmsChange) -> MetaWrite:
    kind = ChangeKind(change.kind)
    if kind == ChangeKind.SHIPMENT:
        return shipment_write(order, ctx.oms.get_shipment(change.ref_id))
    if kind == ChangeKind.TRACKING_UPDATE:
        return tracking_update_write(order, ctx.oms.get_shipment(change.ref_id), change.details)
    if kind == ChangeKind.CANCELLATION:
        return cancellation_write(order, ctx.oms.get_cancellation(change.ref_id))
    if kind == ChangeKind.REFUND:
        refund = ctx.oms.get_refund(change.ref_id)
        return refund_write(order, refund, _meta_return_id(ctx, refund.return_id))
    ret = ctx.oms.get_return(change.ref_id)
    accepted = change.details.get("decision") == "accepted"
    return MetaWrite(
        "return_decision",
        order.external_ref,
        {
            "return_id": ret.external_ref,
            "update_event": ReturnUpdateEvent.ACCEPT_RETURN
            if accepted
            else ReturnUpdateEvent.DECLINE_RETURN,
            "merchant_return_id": f"oms_ret_{ret.return_id}",
        },
    )


def _meta_return_id(ctx: OrdersContext, oms_return_id: int | None) -> str | None:
    """Meta's id of the buyer's return an OMS refund settles (None: not a Meta return)."""
    if oms_return_id is None:
        return None
    return ctx.oms.get_return(oms_return_id).external_ref


def _send(ctx: OrdersContext, write: MetaWrite, key: str) -> dict:
    api, args, order_id = ctx.api, write.arguments, write.meta_order_id
    if write.action == "shipment":
        result = api.create_shipment(
            order_id, args["items"], args["tracking"], args["external_shipment_id"], key
        )
    elif write.action == "tracking_update":
        result = api.update_shipment(
            order_id, args["tracking"], key, external_shipment_id=args["external_shipment_id"]
        )
    elif write.action == "cancellation":
        result = api.cancel_order(
            order_id, key, items=args["items"], reason_code=args["reason_code"],
            reason_description=args["reason_description"], restock_items=args["restock_items"],
        )  # fmt: skip
    elif write.action == "refund":
        result = api.refund_order(
            order_id, key, items=args["items"], shipping=args["shipping"],
            deductions=args["deductions"], reason_code=args["reason_code"],
            reason_text=args["reason_text"], return_id=args.get("return_id"),
        )  # fmt: skip
    else:
        result = api.update_return(
            args["return_id"], str(args["update_event"]), key,
            merchant_return_id=args["merchant_return_id"],
        )  # fmt: skip
    return result.model_dump(mode="json", exclude_none=True)


def _refused(ctx, change, write: MetaWrite, key: str, error: GraphError, known) -> str:
    decision = decide(error)
    attempts = (known or {}).get("attempts", 0) + 1
    logger.warning(
        "shop %s: %s of order %s refused (%s): %s (%s)",
        ctx.shop_id, write.action, write.meta_order_id, error.code, decision.why, error.message,
    )  # fmt: skip
    if decision.outcome == Outcome.PAUSE_SHOP:
        ctx.ledger.record_change(
            ctx.shop_id, change.change_id, meta_order_id=write.meta_order_id,
            action=write.action, idempotency_key=key, status="retry", attempts=attempts,
            error_code=error.code, error_message=decision.why,
        )  # fmt: skip
        raise ShopPaused(f"shop {ctx.shop_id}: {decision.why}") from error
    if decision.outcome == Outcome.ALREADY_DONE:
        ctx.outbox.mark_succeeded(key, {"already_done": decision.why})
        _settle(ctx, change, write.meta_order_id, write.action, "synced", key=key, known=known,
                error=decision.why)  # fmt: skip
        return "synced"
    if decision.outcome in (Outcome.RETRY, Outcome.SERIALISE) and attempts < MAX_ATTEMPTS:
        _settle(ctx, change, write.meta_order_id, write.action, "retry", key=key, known=known,
                error=f"{decision.why}: {error}", code=error.code)  # fmt: skip
        return "retry"
    ctx.outbox.mark_failed(key, str(error))
    status = "gave_up" if decision.outcome == Outcome.GIVE_UP else "issue"
    _raise_issue(ctx, write, decision, error)
    # Keep Meta's own words (already free of secrets) beside our decision, for the runbook.
    _settle(ctx, change, write.meta_order_id, write.action, status, key=key, known=known,
            error=f"{decision.why}: {error}", code=error.code)  # fmt: skip
    return "gave_up" if status == "gave_up" else "issues"


_CALLS_TO_ACTION = {
    Outcome.REFUND_INSTEAD: "The items shipped already: refund them instead of cancelling",
    Outcome.ISSUE: "Check the order in Commerce Manager and correct it in the OMS",
    Outcome.GIVE_UP: "The change could not be sent to Meta; apply it in Commerce Manager",
    Outcome.RETRY: "Meta kept refusing the change; apply it in Commerce Manager",
    Outcome.SERIALISE: "Meta kept refusing the change; apply it in Commerce Manager",
}


def _raise_issue(ctx: OrdersContext, write: MetaWrite, decision: Decision, error: GraphError):
    ctx.ledger.record_issue(
        ctx.shop_id,
        write.meta_order_id,
        code=f"{write.action}_{error.code}",
        reason=decision.why,
        call_to_action=_CALLS_TO_ACTION.get(decision.outcome, _CALLS_TO_ACTION[Outcome.ISSUE]),
        action_taken=str(decision.outcome),
        admin_url=ctx.commerce_manager_url,
    )


def _settle(ctx, change, meta_order_id, action, status, *, key="", known=None, error=None,
            code=None) -> None:  # fmt: skip
    attempts = (known or {}).get("attempts", 0) + (0 if status == "synced" else 1)
    ctx.ledger.record_change(
        ctx.shop_id, change.change_id, meta_order_id=meta_order_id, action=action,
        idempotency_key=key, status=status, attempts=attempts, error_code=code,
        error_message=error,
    )  # fmt: skip
    if status == "retry" and ctx.shop.status != ShopStatus.ACTIVE:
        logger.info("shop %s is %s; change %s waits", ctx.shop_id, ctx.shop.status, change)


# -- Meta event ids: ours or Meta's -----------------------------------------------------------

_EVENT_KIND = {"cancellation": "cancellation", "refund": "refund"}


def _record_event_intent(ctx, order: OmsOrder, change: OmsChange, write: MetaWrite, key: str):
    """Before a cancellation or refund is sent: what it asks for (pipelines/orders/event_origin)."""
    kind = _EVENT_KIND.get(write.action)
    if kind is None:
        return
    signature = (
        cancellation_signature(order, ctx.oms.get_cancellation(change.ref_id), write)
        if kind == "cancellation"
        else refund_signature(write)
    )
    record_intent(ctx.db, ctx.shop_id, key, write.meta_order_id, kind, signature)


def _claim_new_meta_events(ctx: OrdersContext, write: MetaWrite, key: str) -> None:
    """After our cancellation or refund: the order's new Meta ids that match one of our recorded
    intents are ours; the others are Meta's, left for the pull to apply."""
    kind = _EVENT_KIND.get(write.action)
    if kind is None:
        return
    listed = (
        ctx.api.list_cancellations(write.meta_order_id)
        if kind == "cancellation"
        else ctx.api.list_refunds(write.meta_order_id)
    )
    known = _known_event_ids(ctx, kind)
    unmatched = []
    for event in listed:
        if event.id in known:
            continue
        if claim_matching_intent(ctx.db, ctx.shop_id, write.meta_order_id, kind, event, key):
            _remember_event(ctx, kind, event.id, write.meta_order_id, "metasync", None)
        else:
            unmatched.append(event)
    if len(unmatched) == 1 and not intent_claimed(ctx.db, ctx.shop_id, key):
        # Meta applied our write (it said so) yet renders it unlike what we asked: the one new
        # id is ours. Logged: it means the matching rules miss a way Meta reports events.
        logger.warning(
            "shop %s: %s %s of order %s did not match our request; claimed as ours",
            ctx.shop_id, kind, unmatched[0].id, write.meta_order_id,
        )  # fmt: skip
        _remember_event(ctx, kind, unmatched[0].id, write.meta_order_id, "metasync", None)


def _known_event_ids(ctx: OrdersContext, kind: str) -> set[str]:
    with ctx.db.begin() as conn:
        rows = conn.execute(
            select(order_meta_events.c.meta_event_id).where(
                order_meta_events.c.shop_id == ctx.shop_id, order_meta_events.c.kind == kind
            )
        ).scalars()
        return set(rows)


def _remember_event(ctx, kind, event_id, meta_order_id, origin, oms_ref_id) -> None:
    try:
        with ctx.db.begin() as conn:
            conn.execute(
                order_meta_events.insert().values(
                    shop_id=ctx.shop_id,
                    kind=kind,
                    meta_event_id=event_id,
                    meta_order_id=meta_order_id,
                    origin=origin,
                    oms_ref_id=oms_ref_id,
                    recorded_at=utcnow(),
                )  # fmt: skip
            )
    except IntegrityError:
        pass  # recorded by an overlapping run


# -- Meta -> OMS ---------------------------------------------------------------------------------


@dataclass
class PullSummary:
    orders_checked: int = 0
    cancellations: int = 0
    refunds: int = 0
    returns: int = 0
    not_ours: int = 0  # orders on Meta that metasync never imported
    errors: list[str] = field(default_factory=list)


WATERMARK_STREAM = "meta_changes"


def pull_meta_changes(ctx: OrdersContext) -> PullSummary:
    """Apply Meta-side cancellations, refunds and buyer returns to the OMS, each once."""
    summary = PullSummary()
    since = ctx.ledger.watermark(ctx.shop_id, WATERMARK_STREAM)
    after = since - timedelta(seconds=1) if since else None
    newest = since
    seen: dict[str, object] = {}
    for filter_ in (OrderFilter.HAS_CANCELLATIONS, OrderFilter.HAS_REFUNDS):
        for order in ctx.api.list_orders(
            states=(OrderState.IN_PROGRESS, OrderState.COMPLETED),
            updated_after=after,
            filters=[filter_],
            fields="id,order_status,last_updated",
        ):
            seen[order.id] = order
    for order_id, order in sorted(seen.items()):
        summary.orders_checked += 1
        _pull_order(ctx, order_id, summary)
        if order.last_updated and (newest is None or order.last_updated > newest):
            newest = order.last_updated
    _pull_returns(ctx, summary)
    if newest is not None and not summary.errors:
        ctx.ledger.set_watermark(ctx.shop_id, WATERMARK_STREAM, newest)
    return summary


def _pull_order(ctx: OrdersContext, meta_order_id: str, summary: PullSummary) -> None:
    mapped = ctx.ledger.get(ctx.shop_id, meta_order_id)
    if mapped is None or mapped.oms_order_id is None:
        summary.not_ours += 1
        return
    order = ctx.oms.get_order(mapped.oms_order_id)
    by_item = {line.external_line_id: line for line in order.lines}
    known_cancellations = _known_event_ids(ctx, "cancellation")
    for cancellation in ctx.api.list_cancellations(meta_order_id):
        if cancellation.id in known_cancellations:
            continue
        if claim_matching_intent(ctx.db, ctx.shop_id, meta_order_id, "cancellation", cancellation):
            # Ours, from a push whose run died before it claimed the id.
            _remember_event(ctx, "cancellation", cancellation.id, meta_order_id, "metasync", None)
            continue
        lines = [
            EventLine(by_item[item.id].line_id, quantity=item.quantity)
            for item in cancellation.items
            if item.id in by_item and item.quantity
        ]
        reason = cancellation.cancel_reason
        oms_id = ctx.oms.record_marketplace_cancellation(
            order.order_id, cancellation.id, lines,
            reason.reason_code if reason else None,
            reason.reason_description if reason else None,
        )  # fmt: skip
        _remember_event(ctx, "cancellation", cancellation.id, meta_order_id, "meta", oms_id)
        summary.cancellations += 1
    known_refunds = _known_event_ids(ctx, "refund")
    for refund in ctx.api.list_refunds(meta_order_id):
        if refund.id in known_refunds:
            continue
        if claim_matching_intent(ctx.db, ctx.shop_id, meta_order_id, "refund", refund):
            _remember_event(ctx, "refund", refund.id, meta_order_id, "metasync", None)
            continue
        lines = [
            EventLine(
                by_item[item.id].line_id,
                quantity=item.quantity,
                amount=item.refund_subtotal.amount if item.refund_subtotal else ZERO,
            )
            for item in refund.items
            if item.id in by_item
        ]
        shipping = refund.refund_amount.shipping if refund.refund_amount else None
        oms_id = ctx.oms.record_marketplace_refund(
            order.order_id, refund.id, lines,
            refund.refund_reason.reason_code if refund.refund_reason else "FACEBOOK_INITIATED",
            refund.refund_reason.reason_text if refund.refund_reason else None,
            shipping_amount=shipping or ZERO,
        )  # fmt: skip
        _remember_event(ctx, "refund", refund.id, meta_order_id, "meta", oms_id)
        summary.refunds += 1


def _pull_returns(ctx: OrdersContext, summary: PullSummary) -> None:
    """Buyer-opened returns of orders we hold, into the OMS as `requested`."""
    known = _known_event_ids(ctx, "return")
    for ret in ctx.api.list_shop_returns(statuses=["REQUESTED"]):
        if ret.id in known:
            continue
        meta_order_id = ret.order.id if ret.order else None
        mapped = ctx.ledger.get(ctx.shop_id, meta_order_id) if meta_order_id else None
        if mapped is None or mapped.oms_order_id is None:
            continue
        order = ctx.oms.get_order(mapped.oms_order_id)
        by_item = {line.external_line_id: line for line in order.lines}
        reasons = ret.reasons_by_item()
        lines = [
            EventLine(by_item[item_id].line_id, quantity=quantity)
            for item_id, quantity in ret.quantities_by_item().items()
            if item_id in by_item
        ]
        oms_id = ctx.oms.record_marketplace_return(
            order.order_id, ret.id, lines, ",".join(sorted(set(reasons.values()))) or None,
            ret.return_message,
        )  # fmt: skip
        _remember_event(ctx, "return", ret.id, meta_order_id, "meta", oms_id)
        summary.returns += 1

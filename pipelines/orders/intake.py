"""Order intake: import new Meta orders into the OMS, acknowledge them, queue their Purchase event.

    summary = run_order_intake(metasync, oms, "acme")        # what the demo and the sweep call
    with orders_context(metasync, oms, "acme") as ctx:        # what the Dagster ops call
        outcome = import_order_by_id(ctx, "1001")
        acknowledge(ctx, [outcome])

The OMS and metasync have different databases, so "the order and its mapping in one transaction"
is built from two idempotent steps: the OMS order carries (shop, source=meta, Meta order id) under
a unique constraint, and metasync's order map is upserted after it. A crash between the two is
healed by the rerun: `import_order` finds the existing OMS order and the map is written then.

Acknowledgement follows Meta's guidance (orders.md §6.2): the OMS order is created `pending`,
acknowledged with its OMS reference as `merchant_order_reference`, and only then moves to
`processing`. Batches hold at most 100 orders; a batch's idempotency key derives from the shop, its
sorted order ids and how many times these orders failed to acknowledge before (Meta replays a
key's failed answer, so a retry after a failure needs a new key).
"""

import logging
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from pydantic import ValidationError

from pipelines.orders.ledger import OrderLedger
from pipelines.orders.mapping import ImportIssueCode, OrderImportError, draft_from_meta_order
from pipelines.orders.policy import Outcome, decide, decide_code
from pipelines.resources import MetasyncResource
from pipelines.shops import runnable_shops
from pipelines.signals.outbox import enqueue_purchase
from resources.db import MetasyncDatabase
from resources.db.outbox import GraphWriteOutbox, idempotency_key
from resources.db.types import utcnow
from resources.meta.errors import GraphError
from resources.meta.orders import MAX_ACKS_PER_CALL, SUMMARY_ORDER_FIELDS, OrdersApi
from resources.meta.orders_models import AckResult, MetaOrder, OrderAck, OrderState
from resources.oms.adapter import OmsAdapter
from resources.shops import Capability, ShopProfile

logger = logging.getLogger(__name__)

COMMERCE_MANAGER_ORDERS = "https://www.facebook.com/commerce_manager/{cms_id}/orders"


@dataclass(frozen=True)
class IntakePolicy:
    """Decisions a shop owner may want differently; the defaults never act on Meta unasked."""

    ack_batch_size: int = MAX_ACKS_PER_CALL
    # Import problems for which the order is cancelled on Meta (logged) instead of held for a
    # person. Keyed by issue code, never by message text. Empty by default: hold everything.
    cancel_on_meta_for: frozenset[ImportIssueCode] = frozenset()
    cancel_reason_code: str = "CANCEL_REASON_OTHER"


@dataclass
class OrdersContext:
    """Everything the order functions need for one shop, opened once per op or run."""

    shop: ShopProfile
    db: MetasyncDatabase
    oms: OmsAdapter
    api: OrdersApi
    ledger: OrderLedger
    outbox: GraphWriteOutbox
    policy: IntakePolicy = field(default_factory=IntakePolicy)

    @property
    def shop_id(self) -> str:
        return self.shop.shop_id

    @property
    def commerce_manager_url(self) -> str:
        return COMMERCE_MANAGER_ORDERS.format(cms_id=self.shop.cms_id)


@contextmanager
def orders_context(
    metasync: MetasyncResource,
    oms: OmsAdapter,
    shop_id: str,
    policy: IntakePolicy | None = None,
) -> Iterator[OrdersContext]:
    shop = metasync.registry().get(shop_id)
    if not shop.cms_id:
        raise ValueError(f"shop {shop_id} has no commerce merchant settings id (cms_id)")
    db = metasync.db()
    with metasync.graph_for(shop_id) as graph:
        yield OrdersContext(
            shop=shop,
            db=db,
            oms=oms,
            api=OrdersApi(graph, cms_id=shop.cms_id, page_id=shop.page_id),
            ledger=OrderLedger(db),
            outbox=GraphWriteOutbox(db),
            policy=policy or IntakePolicy(),
        )


def order_shops(metasync: MetasyncResource, shop_ids: list[str]) -> tuple[list[str], dict]:
    """Shops that get order intake and sync now, and the reason each other shop is skipped."""
    runnable, skipped = runnable_shops(metasync, shop_ids)
    registry = metasync.registry()
    eligible = []
    for shop_id in runnable:
        shop = registry.get(shop_id)
        if not shop.has(Capability.ONSITE_ORDERS):
            skipped[shop_id] = "no onsite_orders capability (orders are taken off Meta)"
        elif not shop.cms_id:
            skipped[shop_id] = "no commerce merchant settings id registered"
        else:
            eligible.append(shop_id)
    return eligible, skipped


# -- import ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImportOutcome:
    meta_order_id: str
    status: str  # imported | existing | issue | skipped
    meta_state: str | None = None
    oms_order_id: int | None = None
    reference: str | None = None
    issue_code: str | None = None
    last_updated: datetime | None = None

    @property
    def needs_ack(self) -> bool:
        return self.reference is not None and self.meta_state == OrderState.CREATED

    @property
    def acked_on_meta(self) -> bool:
        return self.reference is not None and self.meta_state in (
            OrderState.IN_PROGRESS,
            OrderState.COMPLETED,
        )


def import_order_by_id(ctx: OrdersContext, meta_order_id: str) -> ImportOutcome:
    try:
        order = ctx.api.get_order(meta_order_id)
    except ValidationError as exc:
        return _record_malformed(ctx, meta_order_id, exc)
    return import_meta_order(ctx, order)


def _record_malformed(ctx: OrdersContext, meta_order_id: str, exc: ValidationError):
    """Meta's answer for the order is malformed: an issue with what is wrong; the order stays
    CREATED on Meta, so the next intake reads it again."""
    problems = "; ".join(
        f"{'.'.join(map(str, e['loc'])) or 'answer'}: {e['msg']}" for e in exc.errors()[:5]
    )
    logger.warning("shop %s: order %s malformed on Meta: %s", ctx.shop_id, meta_order_id, problems)
    ctx.ledger.record_issue(
        ctx.shop_id,
        meta_order_id,
        code="malformed_order",
        reason=f"Meta's answer for this order is malformed ({problems})",
        call_to_action="Nothing to do unless it persists: the next intake reads the order again",
        action_taken="held",
        admin_url=ctx.commerce_manager_url,
    )
    return ImportOutcome(meta_order_id, "issue", issue_code="malformed_order")


def import_meta_order(ctx: OrdersContext, order: MetaOrder) -> ImportOutcome:
    """Create the OMS order (once) and map it; an unimportable order becomes an order issue."""
    state = order.state
    if state == OrderState.FB_PROCESSING:
        # Meta may still cancel it and withholds buyer details; wait for CREATED.
        return ImportOutcome(order.id, "skipped", state, last_updated=order.last_updated)
    try:
        draft = draft_from_meta_order(ctx.shop_id, order)
    except OrderImportError as exc:
        return _hold_or_cancel(ctx, order, exc)

    result = ctx.oms.import_order(draft)
    ctx.ledger.upsert(
        ctx.shop_id,
        order.id,
        oms_order_id=result.order_id,
        merchant_order_reference=result.reference,
        state="imported",
        meta_created_at=order.created,
        meta_last_updated=order.last_updated,
        imported_at=utcnow(),
    )
    status = "imported" if result.created else "existing"
    return ImportOutcome(
        order.id, status, state, result.order_id, result.reference, None, order.last_updated
    )


def _hold_or_cancel(ctx: OrdersContext, order: MetaOrder, error: OrderImportError):
    cancel = error.code in ctx.policy.cancel_on_meta_for and order.state == OrderState.CREATED
    action = "held"
    if cancel:
        action = _cancel_unimportable(ctx, order.id, error)
    logger.warning(
        "shop %s: order %s not imported (%s); %s", ctx.shop_id, order.id, error.code, action
    )
    ctx.ledger.record_issue(
        ctx.shop_id,
        order.id,
        code=str(error.code),
        reason=error.reason,
        call_to_action=(
            "Fix the product data or cancel the order in Commerce Manager"
            if action == "held"
            else "The order was cancelled on Meta; check the buyer was informed"
        ),
        action_taken=action,
        admin_url=ctx.commerce_manager_url,
    )
    ctx.ledger.upsert(
        ctx.shop_id,
        order.id,
        state="issue" if action != "cancelled_on_meta" else "cancelled_on_meta",
        meta_created_at=order.created,
        meta_last_updated=order.last_updated,
    )
    return ImportOutcome(
        order.id, "issue", order.state, issue_code=str(error.code), last_updated=order.last_updated
    )


def _cancel_unimportable(ctx: OrdersContext, meta_order_id: str, error: OrderImportError) -> str:
    key = idempotency_key(ctx.shop_id, "cancel_unimportable", meta_order_id, str(error.code))
    body = {"reason_code": ctx.policy.cancel_reason_code, "issue": str(error.code)}
    write = ctx.outbox.record_intent(
        key, shop_id=ctx.shop_id, action="cancel_unimportable", target_id=meta_order_id, body=body
    )
    if write.status == "succeeded":
        return "cancelled_on_meta"
    try:
        ctx.api.cancel_order(
            meta_order_id,
            key,
            reason_code=ctx.policy.cancel_reason_code,
            reason_description="The order could not be processed",
        )
    except GraphError as exc:
        ctx.outbox.mark_failed(key, str(exc))
        return f"cancel_failed_{decide(exc).outcome}"
    ctx.outbox.mark_succeeded(key, {"success": True})
    return "cancelled_on_meta"


# -- acknowledgement -------------------------------------------------------------------------------


@dataclass
class AckSummary:
    acknowledged: list[str] = field(default_factory=list)
    failed: dict[str, int | None] = field(default_factory=dict)
    batches: int = 0


def acknowledge(ctx: OrdersContext, outcomes: Iterable[ImportOutcome]) -> AckSummary:
    """Acknowledge every imported CREATED order, in batches of at most 100, then queue its
    Purchase event. Orders already acknowledged by an earlier run are not sent again."""
    summary = AckSummary()
    todo = []
    for outcome in outcomes:
        mapped = ctx.ledger.get(ctx.shop_id, outcome.meta_order_id)
        if mapped and mapped.state == "imported" and outcome.acked_on_meta:
            # Meta applied an ack whose answer never came back (every retry lost it): only the
            # seller acknowledges, so this was ours; record it as if the answer had arrived.
            result = AckResult(id=outcome.meta_order_id, state=outcome.meta_state)
            _apply_ack_result(ctx, outcome, result, "ack-adopted", summary)
        elif outcome.needs_ack and not (mapped and mapped.state == "acknowledged"):
            todo.append(outcome)
    todo.sort(key=lambda o: o.meta_order_id)
    size = max(1, min(ctx.policy.ack_batch_size, MAX_ACKS_PER_CALL))
    for start in range(0, len(todo), size):
        _acknowledge_batch(ctx, todo[start : start + size], summary)
        summary.batches += 1
    return summary


def ack_batch_key(shop_id: str, meta_order_ids: list[str], attempt: int) -> str:
    """Deterministic key of one batch: the same orders (and attempt) give the same key."""
    return idempotency_key(
        shop_id, "acknowledge_orders", "batch", f"{sorted(meta_order_ids)}#{attempt}"
    )


def _acknowledge_batch(ctx: OrdersContext, batch: list[ImportOutcome], summary: AckSummary):
    ids = [o.meta_order_id for o in batch]
    acks = [OrderAck(order_id=o.meta_order_id, merchant_order_reference=o.reference) for o in batch]
    key = ack_batch_key(ctx.shop_id, ids, ctx.ledger.failed_ack_attempts(ctx.shop_id, ids))
    body = {"orders": [a.to_graph() for a in acks]}
    write = ctx.outbox.record_intent(
        key, shop_id=ctx.shop_id, action="acknowledge_orders", target_id="batch", body=body
    )
    if write.status == "succeeded" and write.response:
        results = [AckResult.model_validate(r) for r in write.response["orders"]]
    else:
        ctx.outbox.mark_attempt(key)
        try:
            results = ctx.api.acknowledge_orders(acks, idempotency_key=key)
        except GraphError as exc:
            ctx.outbox.mark_failed(key, str(exc))
            for order_id in ids:
                summary.failed[order_id] = exc.code
            logger.warning("shop %s: ack batch of %d failed: %s", ctx.shop_id, len(ids), exc)
            if decide(exc).outcome in (Outcome.RETRY, Outcome.SERIALISE, Outcome.PAUSE_SHOP):
                raise
            return
        ctx.outbox.mark_succeeded(
            key, {"orders": [r.model_dump(by_alias=True, exclude_none=True) for r in results]}
        )
    by_id = {r.order_id: r for r in results}
    for outcome in batch:
        _apply_ack_result(ctx, outcome, by_id.get(outcome.meta_order_id), key, summary)


def _apply_ack_result(ctx, outcome: ImportOutcome, result: AckResult | None, key, summary):
    order_id = outcome.meta_order_id
    if result is not None and result.ok:
        ctx.ledger.record_ack(
            ctx.shop_id, order_id, key, outcome.reference, result.state, None, None
        )
        ctx.ledger.upsert(ctx.shop_id, order_id, state="acknowledged", acknowledged_at=utcnow())
        ctx.oms.mark_acknowledged(outcome.oms_order_id)
        enqueue_purchase(
            ctx.db,
            ctx.shop,
            ctx.oms.get_order(outcome.oms_order_id),
            meta_order_id=order_id,
            meta_state=result.state,
        )
        summary.acknowledged.append(order_id)
        return
    code = result.error.error_code if result and result.error else None
    message = result.error.error_message if result and result.error else "missing from answer"
    ctx.ledger.record_ack(ctx.shop_id, order_id, key, outcome.reference, None, code, message)
    summary.failed[order_id] = code
    decision = decide_code(code)
    if decision.outcome == Outcome.ISSUE:
        ctx.ledger.record_issue(
            ctx.shop_id,
            order_id,
            code=f"ack_{code}",
            reason=decision.why,
            call_to_action="Check the order in Commerce Manager",
            action_taken="held",
            admin_url=ctx.commerce_manager_url,
        )
    logger.warning("shop %s: order %s not acknowledged: %s", ctx.shop_id, order_id, decision.why)


# -- listing ---------------------------------------------------------------------------------------


def list_created_orders(
    api: OrdersApi,
    updated_after: datetime | None = None,
    limit: int | None = None,
    *,
    fields: str = SUMMARY_ORDER_FIELDS,
    page_size: int | None = None,
    malformed: list[str] | None = None,
) -> list[MetaOrder]:
    """CREATED orders (summary fields, or `fields`), oldest change first, following every page
    (`page_size` orders a page; None: Graph's default of 25). Ids of orders listed malformed
    go to `malformed`."""
    orders = list(
        api.list_orders(
            states=(OrderState.CREATED,),
            updated_after=updated_after,
            fields=fields,
            limit=page_size,
            malformed=malformed,
        )
    )
    orders.sort(key=lambda o: (o.last_updated or datetime.min.replace(tzinfo=UTC), o.id))
    return orders[:limit] if limit else orders


@dataclass
class IntakeSummary:
    shop_id: str
    listed: int = 0
    imported: int = 0
    existing: int = 0
    issues: int = 0
    skipped: int = 0
    acknowledged: int = 0
    ack_failed: int = 0
    graph_calls: int = 0

    def as_metadata(self) -> dict[str, int | str]:
        return dict(self.__dict__)


def ingest_orders(ctx: OrdersContext, meta_order_ids: list[str]) -> IntakeSummary:
    """Import and acknowledge the given orders (each read fresh from Meta)."""
    summary = IntakeSummary(ctx.shop_id, listed=len(meta_order_ids))
    # Imported orders whose ack outcome was lost are no longer CREATED on Meta, so no listing
    # finds them again: read them back too, or their shipments would wait forever.
    stranded = [m.meta_order_id for m in ctx.ledger.unacknowledged(ctx.shop_id)
                if m.state == "imported"]  # fmt: skip
    outcomes = []
    for order_id in dict.fromkeys([*meta_order_ids, *stranded]):
        outcome = import_order_by_id(ctx, order_id)
        counter = "issues" if outcome.status == "issue" else outcome.status
        setattr(summary, counter, getattr(summary, counter) + 1)
        outcomes.append(outcome)
    acked = acknowledge(ctx, outcomes)
    summary.acknowledged = len(acked.acknowledged)
    summary.ack_failed = len(acked.failed)
    summary.graph_calls = ctx.api.graph.calls
    return summary


def run_order_intake(
    metasync: MetasyncResource,
    oms: OmsAdapter,
    shop_id: str,
    *,
    order_ids: list[str] | None = None,
    policy: IntakePolicy | None = None,
) -> IntakeSummary:
    """List the shop's CREATED orders (or take `order_ids`), import, acknowledge: the same
    logic the ingest_orders job runs, without Dagster."""
    with orders_context(metasync, oms, shop_id, policy) as ctx:
        if order_ids is not None:
            return ingest_orders(ctx, order_ids)
        malformed: list[str] = []  # read again one by one: an issue if still malformed
        listed = [o.id for o in list_created_orders(ctx.api, malformed=malformed)]
        return ingest_orders(ctx, [*listed, *malformed])


__all__ = [
    "IntakePolicy",
    "IntakeSummary",
    "acknowledge",
    "import_meta_order",
    "import_order_by_id",
    "ingest_orders",
    "order_shops",
    "orders_context",
    "run_order_intake",
]

"""Dagster ops of the orders pipeline: thin glue around pipelines/orders/intake.py and sync.py.

Each op opens what it needs for one shop, calls the plain function, and reports its numbers.
Tokens never travel in config: ops read them from the vault through MetasyncResource.
"""

import hashlib
import re

import dagster as dg

from pipelines.orders.intake import (
    ImportOutcome,
    acknowledge,
    import_order_by_id,
    order_shops,
    orders_context,
)
from pipelines.orders.resources import OmsResource
from pipelines.orders.sync import ShopPaused, pull_meta_changes, push_order_changes
from pipelines.resources import MetasyncResource
from resources.shops import ShopStatus

_MAPPING_KEY_UNSAFE = re.compile(r"[^A-Za-z0-9_]")


def mapping_key(value: str) -> str:
    """A DynamicOutput key (^[A-Za-z0-9_]+$) for any id; altered ids get a hash suffix so two
    different ids never share a key."""
    safe = _MAPPING_KEY_UNSAFE.sub("_", value)
    if safe == value and safe:
        return safe
    return f"{safe[:60]}_{hashlib.sha256(value.encode()).hexdigest()[:8]}"


class IngestOrdersConfig(dg.Config):
    """Which orders of which shop to import (ids only; never a token)."""

    shop_id: str
    order_ids: list[str]


@dg.op(out=dg.DynamicOut(tuple), tags={"kind": "orders"})
def plan_order_intake(
    context: dg.OpExecutionContext, config: IngestOrdersConfig, metasync: MetasyncResource
):
    """One output per order of an eligible shop; an ineligible shop yields nothing, with why."""
    eligible, skipped = order_shops(metasync, [config.shop_id])
    if not eligible:
        context.log.warning(f"shop {config.shop_id} skipped: {skipped[config.shop_id]}")
        context.add_output_metadata({"skipped": skipped[config.shop_id], "orders": 0})
        return
    ids = sorted(set(config.order_ids))
    context.log.info(f"shop {config.shop_id}: {len(ids)} orders to import")
    for order_id in ids:
        yield dg.DynamicOutput((config.shop_id, order_id), mapping_key=mapping_key(order_id))


@dg.op(
    retry_policy=dg.RetryPolicy(max_retries=3, delay=5, backoff=dg.Backoff.EXPONENTIAL),
    tags={"kind": "orders"},
)
def import_order(
    context: dg.OpExecutionContext,
    shop_and_order: tuple,
    metasync: MetasyncResource,
    oms: OmsResource,
) -> ImportOutcome:
    """Read the order from Meta and create it in the OMS (once: a rerun finds it)."""
    shop_id, order_id = shop_and_order
    with orders_context(metasync, oms.adapter(), shop_id) as ctx:
        outcome = import_order_by_id(ctx, order_id)
    context.log.info(f"shop {shop_id}: order {order_id} {outcome.status} {outcome.reference}")
    return outcome


@dg.op(
    retry_policy=dg.RetryPolicy(max_retries=3, delay=10, backoff=dg.Backoff.EXPONENTIAL),
    tags={"kind": "orders"},
)
def acknowledge_imported_orders(
    context: dg.OpExecutionContext,
    outcomes: list,
    metasync: MetasyncResource,
    oms: OmsResource,
) -> dg.Output:
    """Acknowledge the imported CREATED orders in batches of <= 100 and queue Purchase events."""
    if not outcomes:
        return dg.Output(None, metadata={"acknowledged": 0, "failed": 0})
    shop_id = _shop_of(context)
    with orders_context(metasync, oms.adapter(), shop_id) as ctx:
        summary = acknowledge(ctx, outcomes)
        calls = ctx.api.graph.calls
    context.log.info(
        f"shop {shop_id}: {len(summary.acknowledged)} acknowledged, "
        f"{len(summary.failed)} failed in {summary.batches} batches"
    )
    statuses = [o.status for o in outcomes]
    return dg.Output(
        None,
        metadata={
            "shop": shop_id,
            "imported": statuses.count("imported"),
            "already_imported": statuses.count("existing"),
            "issues": statuses.count("issue"),
            "acknowledged": len(summary.acknowledged),
            "ack_failed": len(summary.failed),
            "ack_batches": summary.batches,
            "graph_calls": calls,
        },
    )


def _shop_of(context: dg.OpExecutionContext) -> str:
    """The run's shop (tagged by the sensor and the sweep; the planner's config otherwise)."""
    shop = context.run.tags.get("shop")
    if shop:
        return shop
    return context.run_config["ops"]["plan_order_intake"]["config"]["shop_id"]


# -- OMS -> Meta ----------------------------------------------------------------------------------


class PushChangesConfig(dg.Config):
    """Which OMS changes of which shop to send (ids only)."""

    shop_id: str
    change_ids: list[int]


@dg.op(out=dg.DynamicOut(tuple), tags={"kind": "orders"})
def plan_order_changes(
    context: dg.OpExecutionContext,
    config: PushChangesConfig,
    metasync: MetasyncResource,
    oms: OmsResource,
):
    """One output per OMS order: an order's changes go to Meta one at a time, in order
    (Meta refuses concurrent writes on one order), while orders fan out."""
    eligible, skipped = order_shops(metasync, [config.shop_id])
    if not eligible:
        context.log.warning(f"shop {config.shop_id} skipped: {skipped[config.shop_id]}")
        return
    by_order: dict[int, list[int]] = {}
    for change in oms.adapter().get_changes(config.change_ids):
        if change.shop_id == config.shop_id:
            by_order.setdefault(change.order_id, []).append(change.change_id)
    for order_id, change_ids in sorted(by_order.items()):
        yield dg.DynamicOutput(
            (config.shop_id, sorted(change_ids)), mapping_key=f"order_{order_id}"
        )


@dg.op(tags={"kind": "orders"})
def push_changes_of_order(
    context: dg.OpExecutionContext,
    shop_and_changes: tuple,
    metasync: MetasyncResource,
    oms: OmsResource,
) -> dict:
    """Send one order's OMS changes to Meta with their recorded idempotency keys."""
    shop_id, change_ids = shop_and_changes
    adapter = oms.adapter()
    with orders_context(metasync, adapter, shop_id) as ctx:
        try:
            summary = push_order_changes(ctx, adapter.get_changes(change_ids))
        except ShopPaused as exc:
            metasync.registry().set_status(shop_id, ShopStatus.NEEDS_REAUTH, str(exc))
            raise dg.Failure(f"{exc}; the shop is paused until its token is replaced") from exc
    context.log.info(f"shop {shop_id}: {summary.details}")
    return {k: v for k, v in summary.__dict__.items() if k != "details"}


@dg.op(tags={"kind": "orders"})
def report_pushed_changes(context: dg.OpExecutionContext, summaries: list) -> dg.Output:
    totals: dict[str, int] = {}
    for summary in summaries:
        for name, count in summary.items():
            totals[name] = totals.get(name, 0) + count
    context.log.info(f"changes sent to Meta: {totals}")
    return dg.Output(None, metadata={"orders": len(summaries), **totals})


# -- Meta -> OMS ----------------------------------------------------------------------------------


class ShopConfig(dg.Config):
    shop_id: str


@dg.op(tags={"kind": "orders"})
def pull_meta_order_changes(
    context: dg.OpExecutionContext,
    config: ShopConfig,
    metasync: MetasyncResource,
    oms: OmsResource,
) -> dg.Output:
    """Meta-side cancellations, refunds and buyer returns into the OMS, each applied once."""
    eligible, skipped = order_shops(metasync, [config.shop_id])
    if not eligible:
        return dg.Output(None, metadata={"skipped": skipped[config.shop_id]})
    with orders_context(metasync, oms.adapter(), config.shop_id) as ctx:
        summary = pull_meta_changes(ctx)
        calls = ctx.api.graph.calls
    context.log.info(f"shop {config.shop_id}: {summary}")
    return dg.Output(
        None,
        metadata={
            "shop": config.shop_id,
            "orders_checked": summary.orders_checked,
            "cancellations": summary.cancellations,
            "refunds": summary.refunds,
            "returns": summary.returns,
            "orders_not_from_metasync": summary.not_ours,
            "graph_calls": calls,
        },
    )

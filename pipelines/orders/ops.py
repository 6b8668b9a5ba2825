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
from pipelines.resources import MetasyncResource

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

"""Jobs of the orders pipeline. HTTP fan-out is light, so runs use the in-process executor."""

import dagster as dg

from pipelines.orders.ops import (
    acknowledge_imported_orders,
    import_order,
    plan_order_changes,
    plan_order_intake,
    pull_meta_order_changes,
    push_changes_of_order,
    report_pushed_changes,
)


@dg.job(executor_def=dg.in_process_executor, tags={"domain": "orders"})
def ingest_orders_job():
    """Import the given Meta orders into the OMS (one op per order), then acknowledge them."""
    outcomes = plan_order_intake().map(import_order)
    acknowledge_imported_orders(outcomes.collect())


def ingest_run_config(shop_id: str, order_ids: list[str]) -> dict:
    return {"ops": {"plan_order_intake": {"config": {"shop_id": shop_id, "order_ids": order_ids}}}}


@dg.job(executor_def=dg.in_process_executor, tags={"domain": "orders"})
def push_order_changes_job():
    """Send OMS changes (shipments, tracking, cancellations, refunds, return decisions) to Meta."""
    summaries = plan_order_changes().map(push_changes_of_order)
    report_pushed_changes(summaries.collect())


@dg.job(executor_def=dg.in_process_executor, tags={"domain": "orders"})
def pull_meta_changes_job():
    """Apply Meta-side cancellations, refunds and buyer returns to the OMS."""
    pull_meta_order_changes()


def push_run_config(shop_id: str, change_ids: list[int]) -> dict:
    return {
        "ops": {"plan_order_changes": {"config": {"shop_id": shop_id, "change_ids": change_ids}}}
    }


def pull_run_config(shop_id: str) -> dict:
    return {"ops": {"pull_meta_order_changes": {"config": {"shop_id": shop_id}}}}

"""Jobs of the orders pipeline. HTTP fan-out is light, so runs use the in-process executor."""

import dagster as dg

from pipelines.orders.ops import acknowledge_imported_orders, import_order, plan_order_intake


@dg.job(executor_def=dg.in_process_executor, tags={"domain": "orders"})
def ingest_orders_job():
    """Import the given Meta orders into the OMS (one op per order), then acknowledge them."""
    outcomes = plan_order_intake().map(import_order)
    acknowledge_imported_orders(outcomes.collect())


def ingest_run_config(shop_id: str, order_ids: list[str]) -> dict:
    return {"ops": {"plan_order_intake": {"config": {"shop_id": shop_id, "order_ids": order_ids}}}}

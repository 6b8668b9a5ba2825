"""Catalog jobs and their schedules: one run per active shop per tick.

    catalog_full_job         02:00 UTC daily   full sync, product sets, diagnostics
    catalog_delta_job        :05 every hour    delta sync
    catalog_stock_price_job  every 15 minutes  stock and price sync

Each tick requests one run per shop partition that may run now, keyed `shop:tick` (a re-evaluated
tick requests nothing twice) and tagged `shop` for the per-shop concurrency limit. Paused and
re-auth shops are skipped with their reason in the tick's log (or the skip reason when none run).
"""

import dagster as dg

from pipelines.catalog.assets import (
    catalog_delta_sync,
    catalog_full_sync,
    catalog_product_sets,
    catalog_seller_issues,
    catalog_stock_price_sync,
)
from pipelines.resources import MetasyncResource
from pipelines.shops import runnable_shops, shop_partitions

catalog_full_job = dg.define_asset_job(
    "catalog_full_job",
    selection=[catalog_full_sync, catalog_product_sets, catalog_seller_issues],
    description="Daily: replace feed and read-back, product sets, diagnostics.",
)
catalog_delta_job = dg.define_asset_job(
    "catalog_delta_job", selection=[catalog_delta_sync], description="Hourly items_batch delta."
)
catalog_stock_price_job = dg.define_asset_job(
    "catalog_stock_price_job",
    selection=[catalog_stock_price_sync],
    description="Every 15 minutes: price, sale and stock only.",
)


def shop_run_requests(
    context: dg.ScheduleEvaluationContext, metasync: MetasyncResource, cadence: str
) -> list[dg.RunRequest] | dg.SkipReason:
    """One RunRequest per runnable shop partition; the others are logged with their reason."""
    shops = sorted(context.instance.get_dynamic_partitions(shop_partitions.name))
    if not shops:
        return dg.SkipReason("no shops registered yet (the shop registry sensor adds them)")
    runnable, skipped = runnable_shops(metasync, shops)
    reasons = "; ".join(f"{shop}: {why}" for shop, why in sorted(skipped.items()))
    if skipped:
        context.log.info(f"{cadence}: skipped {len(skipped)} shops ({reasons})")
    if not runnable:
        return dg.SkipReason(f"no runnable shop for the {cadence} catalog sync: {reasons}")
    tick = context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
    return [
        dg.RunRequest(
            run_key=f"{shop}:{tick}",
            partition_key=shop,
            tags={"shop": shop, "catalog/cadence": cadence},
        )
        for shop in runnable
    ]


@dg.schedule(
    job=catalog_full_job,
    cron_schedule="0 2 * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def catalog_full_schedule(context: dg.ScheduleEvaluationContext, metasync: MetasyncResource):
    return shop_run_requests(context, metasync, "full")


@dg.schedule(
    job=catalog_delta_job,
    cron_schedule="5 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def catalog_delta_schedule(context: dg.ScheduleEvaluationContext, metasync: MetasyncResource):
    return shop_run_requests(context, metasync, "delta")


@dg.schedule(
    job=catalog_stock_price_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def catalog_stock_price_schedule(context: dg.ScheduleEvaluationContext, metasync: MetasyncResource):
    # Past about a hundred shops, one run per shop every 15 minutes costs a process each: switch
    # this schedule off and `catalog_stock_price_batch_schedule` on (docs/scaling.md).
    return shop_run_requests(context, metasync, "stock_price")


catalog_jobs = [catalog_full_job, catalog_delta_job, catalog_stock_price_job]
catalog_schedules = [catalog_full_schedule, catalog_delta_schedule, catalog_stock_price_schedule]

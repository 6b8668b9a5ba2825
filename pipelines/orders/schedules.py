"""Schedules of the orders pipeline.

created_orders_sweep_schedule: every 15 minutes, re-lists each shop's orders still CREATED more
than `SWEEP_AFTER_MINUTES` after creation and requests ingest runs for them. The sensor never
re-requests an order whose run failed (its watermark moved on); this sweep is what guarantees no
order is stranded. The import and the acknowledgement are idempotent, so a sweep racing a sensor
run does no harm.
"""

from datetime import timedelta

import dagster as dg

from pipelines.orders.intake import list_created_orders, order_shops
from pipelines.orders.jobs import ingest_orders_job, ingest_run_config
from pipelines.orders.sensors import MAX_ORDERS_PER_RUN, ingest_run_key
from pipelines.resources import MetasyncResource
from resources.meta.errors import GraphError
from resources.meta.orders import OrdersApi

SWEEP_AFTER_MINUTES = 30


def stale_created_orders(api: OrdersApi, now, after_minutes: int = SWEEP_AFTER_MINUTES) -> list:
    cutoff = now - timedelta(minutes=after_minutes)
    return [o for o in list_created_orders(api) if (o.created or o.last_updated) <= cutoff]


@dg.schedule(
    job=ingest_orders_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def created_orders_sweep_schedule(
    context: dg.ScheduleEvaluationContext, metasync: MetasyncResource
):
    """Re-request ingestion of orders that stayed CREATED too long, one run per shop batch."""
    now = context.scheduled_execution_time
    tick = now.strftime("%Y%m%dT%H%M")
    shop_ids = [shop.shop_id for shop in metasync.registry().list_shops()]
    eligible, skipped = order_shops(metasync, shop_ids)
    requests, errors = [], {}
    for shop_id in eligible:
        shop = metasync.registry().get(shop_id)
        try:
            with metasync.graph_for(shop_id) as graph:
                api = OrdersApi(graph, cms_id=shop.cms_id, page_id=shop.page_id)
                stale = stale_created_orders(api, now)
        except GraphError as exc:
            errors[shop_id] = str(exc)
            continue
        for start in range(0, len(stale), MAX_ORDERS_PER_RUN):
            batch = stale[start : start + MAX_ORDERS_PER_RUN]
            keyed = [(o.id, o.last_updated.isoformat()) for o in batch]
            requests.append(
                dg.RunRequest(
                    run_key=f"sweep:{tick}:{ingest_run_key(shop_id, keyed)}",
                    run_config=ingest_run_config(shop_id, [o.id for o in batch]),
                    tags={"shop": shop_id, "trigger": "created_orders_sweep"},
                )
            )
    if requests:
        return requests
    reasons = [f"no order CREATED for more than {SWEEP_AFTER_MINUTES} minutes"]
    reasons += [f"{s}: {why}" for s, why in sorted({**skipped, **errors}.items())]
    return dg.SkipReason("; ".join(reasons))

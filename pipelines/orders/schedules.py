"""Schedules of the orders pipeline.

created_orders_sweep_schedule: every 15 minutes, re-lists each shop's orders still CREATED more
than `SWEEP_AFTER_MINUTES` after creation and requests ingest runs for them. The sensor never
re-requests an order whose run failed (its watermark moved on); this sweep is what guarantees no
order is stranded. The import and the acknowledgement are idempotent, so a sweep racing a sensor
run does no harm. At 1,000 shops a tick polls within a time budget, least recently swept shops
first (the rotation is kept in `order_watermarks`, stream `created_sweep`).
"""

from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import delete, select

from pipelines.orders.intake import list_created_orders, order_shops
from pipelines.orders.jobs import ingest_orders_job, ingest_run_config
from pipelines.orders.sensors import (
    MAX_ORDERS_PER_RUN,
    TickSettings,
    _KeepOpen,
    deferred_note,
    ingest_run_key,
    poll_shops,
    shared_transport,
)
from pipelines.resources import MetasyncResource
from resources.db import MetasyncDatabase
from resources.db.orders_tables import order_watermarks
from resources.db.types import utcnow
from resources.meta.orders import OrdersApi

SWEEP_AFTER_MINUTES = 30
SWEEP_STREAM = "created_sweep"  # order_watermarks: when the sweep last listed the shop
SWEEP_FIELDS = "id,created,last_updated"  # all the sweep needs; the run reads orders in full
NEVER = datetime.min.replace(tzinfo=UTC)


def stale_created_orders(
    api: OrdersApi, now, after_minutes: int = SWEEP_AFTER_MINUTES, fields: str | None = None
) -> list:
    cutoff = now - timedelta(minutes=after_minutes)
    listed = list_created_orders(api, **({"fields": fields} if fields else {}))
    return [o for o in listed if (o.created or o.last_updated) <= cutoff]


def least_recently_swept(db: MetasyncDatabase, shop_ids: list[str]) -> list[str]:
    """Shops never swept first, then the longest unswept: a schedule has no cursor, so the
    sweep's rotation is kept in the metasync database (one row per shop)."""
    with db.begin() as conn:
        swept = dict(
            conn.execute(
                select(order_watermarks.c.shop_id, order_watermarks.c.watermark).where(
                    order_watermarks.c.stream == SWEEP_STREAM
                )
            ).all()
        )
    return sorted(shop_ids, key=lambda shop_id: (swept.get(shop_id) or NEVER, shop_id))


def mark_swept(db: MetasyncDatabase, shop_ids: list[str], at: datetime) -> None:
    """Stamp the shops this tick listed (in one transaction, whatever their count)."""
    if not shop_ids:
        return
    with db.begin() as conn:
        conn.execute(
            delete(order_watermarks).where(
                order_watermarks.c.stream == SWEEP_STREAM,
                order_watermarks.c.shop_id.in_(shop_ids),
            )
        )
        conn.execute(
            order_watermarks.insert(),
            [
                {"shop_id": s, "stream": SWEEP_STREAM, "watermark": at, "updated_at": utcnow()}
                for s in shop_ids
            ],
        )


@dg.schedule(
    job=ingest_orders_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def created_orders_sweep_schedule(
    context: dg.ScheduleEvaluationContext, metasync: MetasyncResource
):
    """Re-request ingestion of orders that stayed CREATED too long, one run per shop batch.

    Bounded like meta_changes_sensor: least recently swept shops first, polled on a thread pool
    until the tick's time budget is spent; the others go first on the next tick."""
    settings = TickSettings()
    now = context.scheduled_execution_time
    tick = now.strftime("%Y%m%dT%H%M")
    profiles = {shop.shop_id: shop for shop in metasync.registry().list_shops()}
    eligible, skipped = order_shops(metasync, list(profiles))
    db = metasync.db()
    shared = shared_transport(settings.workers)

    def poll(shop_id: str) -> list:
        shop = profiles[shop_id]
        with metasync.graph_for(shop_id, transport=_KeepOpen(shared)) as graph:
            api = OrdersApi(graph, cms_id=shop.cms_id, page_id=shop.page_id)
            return stale_created_orders(api, now, fields=SWEEP_FIELDS)

    try:
        polls = poll_shops(
            least_recently_swept(db, eligible), poll, settings.budget_seconds, settings.workers
        )
    finally:
        shared.close()
    mark_swept(db, polls.visited, now)

    requests = []
    for shop_id, stale in polls.results.items():
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
    note = deferred_note(polls.deferred)
    if note:
        context.log.info(f"created_orders_sweep: swept {len(polls.visited)} shops; {note}")
    if requests:
        return requests
    reasons = [
        f"{len(polls.visited)} of {len(eligible)} eligible shops swept, "
        f"no order CREATED for more than {SWEEP_AFTER_MINUTES} minutes"
    ]
    reasons += [note] if note else []
    reasons += [f"{s}: {why}" for s, why in sorted({**skipped, **polls.errors}.items())]
    return dg.SkipReason("; ".join(reasons))

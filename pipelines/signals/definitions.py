"""The signals domain's Dagster objects: the Conversions API outbox sender and its schedule.
Resources are bound by pipelines/definitions.py ("metasync" -> MetasyncResource)."""

import dagster as dg

from pipelines.resources import MetasyncResource
from pipelines.signals.send import capi_shops, run_capi_outbox
from resources.meta.errors import GraphError


@dg.op(tags={"kind": "signals"})
def send_purchase_events(context: dg.OpExecutionContext, metasync: MetasyncResource) -> dg.Output:
    """Send every active shop's queued Purchase events; one shop's failure never stops another
    (its events stay queued with a backoff)."""
    shops, skipped = capi_shops(metasync)
    sent, failed, expired = {}, {}, 0
    for shop_id in shops:
        try:
            summary = run_capi_outbox(metasync, shop_id)
        except GraphError as exc:
            failed[shop_id] = str(exc)
            continue
        sent[shop_id] = summary.sent
        expired += summary.expired
        if summary.errors:
            failed[shop_id] = "; ".join(summary.errors)
    context.log.info(f"Purchase events sent: {sent}; failed: {list(failed)}")
    return dg.Output(
        None,
        metadata={
            "events_sent": sum(sent.values()),
            "events_expired": expired,
            "shops": len(shops),
            "failed_shops": dg.MetadataValue.json(failed),
            "skipped_shops": dg.MetadataValue.json(skipped),
        },
    )


@dg.job(executor_def=dg.in_process_executor, tags={"domain": "signals"})
def capi_purchase_events_job():
    """Send queued Conversions API Purchase events of paid orders, in batches."""
    send_purchase_events()


capi_purchase_events_schedule = dg.ScheduleDefinition(
    job=capi_purchase_events_job,
    cron_schedule="*/10 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

defs = dg.Definitions(jobs=[capi_purchase_events_job], schedules=[capi_purchase_events_schedule])

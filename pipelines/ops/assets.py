"""The per-shop health report as a Dagster asset: one table row per shop in the UI.

Materialized by `shop_health_job` every 15 minutes (and on demand from the UI). It writes nothing;
its metadata is the report, so the asset's history in the UI is the health history.
"""

import dagster as dg

from pipelines.ops.health import all_shop_health
from pipelines.resources import MetasyncResource
from resources.db.types import utcnow

HEALTH_COLUMNS = (
    ("shop", "string"),
    ("token", "string"),
    ("last_catalog_accept", "string"),
    ("catalog_age_h", "float"),
    ("issues_error", "int"),
    ("issues_warning", "int"),
    ("unacked_orders", "int"),
    ("oldest_unacked_min", "float"),
    ("last_finance_day", "string"),
    ("pending_writes", "int"),
    ("failed_writes", "int"),
    ("unavailable", "string"),
)


@dg.asset(group_name="ops", kinds={"sql"})
def shop_health(context: dg.AssetExecutionContext, metasync: MetasyncResource):
    """Per shop: token state, last accepted catalog write, open seller issues by severity, oldest
    unacknowledged order, last finance day loaded and the Graph writes still pending."""
    now = utcnow()
    healths = all_shop_health(metasync.db())
    records = [health.as_record(now) for health in healths]
    reauth = [h.shop_id for h in healths if h.needs_reauth]
    with_errors = [h.shop_id for h in healths if h.open_issues.get("error")]
    context.log.info(
        f"{len(healths)} shops: {len(reauth)} need re-authentication, "
        f"{len(with_errors)} with open error issues"
    )
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(records),
            "shops_needing_reauth": dg.MetadataValue.json(reauth),
            "shops_with_error_issues": dg.MetadataValue.json(with_errors),
            "health": dg.MetadataValue.table(
                records=[dg.TableRecord(record) for record in records],
                schema=dg.TableSchema(
                    columns=[dg.TableColumn(name, kind) for name, kind in HEALTH_COLUMNS]
                ),
            ),
        }
    )


shop_health_job = dg.define_asset_job("shop_health_job", selection=[shop_health])

shop_health_schedule = dg.ScheduleDefinition(
    job=shop_health_job,
    cron_schedule="*/15 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

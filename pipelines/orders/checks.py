"""The acknowledgement SLA: per shop, the oldest order Meta still shows as CREATED.

`order_ack_backlog` is an observation asset (it reads Meta and the order ledger, writes nothing
else); its check `oldest_unacknowledged_within_sla` fails with a warning when any shop has an
order waiting longer than the SLA. Meta's legacy guidance asks for acknowledgement within 12 hours
of creation (orders.md §14); metasync aims far lower, so the threshold is a setting.
"""

from datetime import datetime

import dagster as dg

from pipelines.orders.intake import list_created_orders, order_shops
from pipelines.orders.ledger import OrderLedger
from pipelines.resources import MetasyncResource
from resources.db.types import utcnow
from resources.meta.errors import GraphError
from resources.meta.orders import OrdersApi

ACK_SLA_MINUTES = 60


def backlog_row(shop_id: str, created: list[datetime], unacked_in_ledger: int, now) -> dict:
    oldest = min(created) if created else None
    return {
        "shop": shop_id,
        "created_on_meta": len(created),
        "unacknowledged_in_ledger": unacked_in_ledger,
        "oldest_created_at": oldest.isoformat() if oldest else "",
        "oldest_age_minutes": round((now - oldest).total_seconds() / 60, 1) if oldest else 0.0,
    }


@dg.asset(
    group_name="orders",
    check_specs=[dg.AssetCheckSpec("oldest_unacknowledged_within_sla", asset="order_ack_backlog")],
)
def order_ack_backlog(context: dg.AssetExecutionContext, metasync: MetasyncResource):
    """Per shop: CREATED orders on Meta, the oldest one's age, unacknowledged orders we hold."""
    now = utcnow()
    shop_ids = [shop.shop_id for shop in metasync.registry().list_shops()]
    eligible, skipped = order_shops(metasync, shop_ids)
    ledger = OrderLedger(metasync.db())
    rows, errors = [], {}
    for shop_id in eligible:
        shop = metasync.registry().get(shop_id)
        try:
            with metasync.graph_for(shop_id) as graph:
                api = OrdersApi(graph, cms_id=shop.cms_id, page_id=shop.page_id)
                created = [o.created or o.last_updated for o in list_created_orders(api)]
        except GraphError as exc:
            errors[shop_id] = str(exc)
            continue
        rows.append(backlog_row(shop_id, created, len(ledger.unacknowledged(shop_id)), now))

    late = [r for r in rows if r["oldest_age_minutes"] > ACK_SLA_MINUTES]
    yield dg.MaterializeResult(
        metadata={
            "shops": len(rows),
            "skipped": dg.MetadataValue.json(skipped),
            "errors": dg.MetadataValue.json(errors),
            "backlog": dg.MetadataValue.table(
                records=[dg.TableRecord(r) for r in rows],
                schema=dg.TableSchema(
                    columns=[dg.TableColumn(name) for name in rows[0]] if rows else []
                ),
            ),
        }
    )
    yield dg.AssetCheckResult(
        check_name="oldest_unacknowledged_within_sla",
        passed=not late and not errors,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "sla_minutes": ACK_SLA_MINUTES,
            "late_shops": dg.MetadataValue.json({r["shop"]: r["oldest_age_minutes"] for r in late}),
            "oldest_age_minutes": max((r["oldest_age_minutes"] for r in rows), default=0.0),
            "shops_with_errors": len(errors),
        },
    )


order_sla_job = dg.define_asset_job("order_sla_job", selection=[order_ack_backlog])

order_sla_schedule = dg.ScheduleDefinition(
    job=order_sla_job,
    cron_schedule="*/30 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)

"""Finance assets, one partition per shop and day: load -> load -> load -> stage (checked) ->
publish. The logic lives in `pipelines.finance.ingest`; these bodies load, call, report.

    finance_payouts -> finance_transactions -> finance_order_payments
        -> finance_reconciliation_staged [payouts_balanced, mismatch_rate_under_threshold]
        -> finance_reconciled (the analyst tables; skipped when a blocking check failed)

Resources: "metasync" (MetasyncResource) and "oms" (pipelines.orders.resources.OmsResource).
"""

from datetime import date
from typing import Any

import dagster as dg

from pipelines.finance import ingest, store
from pipelines.finance.partitions import finance_partitions_def
from pipelines.finance.setbased import FrameReconciliation
from pipelines.orders.resources import OmsResource
from pipelines.resources import MetasyncResource
from pipelines.shops import runnable_shops

GROUP = "finance"
KINDS = {"sql", "python"}


def _partition(context: dg.AssetExecutionContext) -> tuple[str, date]:
    keys = context.partition_key.keys_by_dimension
    return keys["shop"], date.fromisoformat(keys["date"])


def _skip_reason(metasync: MetasyncResource, shop_id: str) -> str | None:
    _, skipped = runnable_shops(metasync, [shop_id])
    return skipped.get(shop_id)


def _skipped(context: dg.AssetExecutionContext, shop_id: str, reason: str) -> dg.MaterializeResult:
    context.log.warning(f"shop {shop_id}: finance skipped ({reason})")
    return dg.MaterializeResult(metadata={"skipped": reason, "dagster/row_count": 0})


def _preview(rows: list[Any], columns: list[str], limit: int = 10) -> dg.MetadataValue:
    records = [
        dg.TableRecord({c: _scalar(getattr(row, c)) for c in columns}) for row in rows[:limit]
    ]
    schema = dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in columns])
    return dg.MetadataValue.table(records=records, schema=schema)


def _scalar(value: Any) -> str | int | bool | None:
    if value is None or isinstance(value, bool | int):
        return value
    return str(value)


def _load_metadata(step: ingest.StepResult, window: ingest.Window, amount: str, columns: list[str]):
    return {
        "dagster/row_count": step.loaded,
        "quarantined": step.quarantined,
        "api_calls": step.api_calls,
        "window": f"{window.start} .. {window.day}",
        "totals_by_currency": dg.MetadataValue.json(step.totals),
        "preview": _preview(step.rows, columns),
    }


@dg.asset(
    partitions_def=finance_partitions_def,
    group_name=GROUP,
    kinds=KINDS,
    pool="shop_api",
)
def finance_payouts(
    context: dg.AssetExecutionContext, metasync: MetasyncResource
) -> dg.MaterializeResult:
    """Meta payouts dated on the partition's day (commerce_payouts), replaced per partition."""
    shop_id, day = _partition(context)
    if reason := _skip_reason(metasync, shop_id):
        return _skipped(context, shop_id, reason)
    window = ingest.Window.for_day(day, ingest.FinanceSettings())
    shop = metasync.registry().get(shop_id)
    with metasync.graph_for(shop_id) as graph:
        step = ingest.load_payouts(metasync.db(), graph, shop, window)
    context.log.info(f"shop {shop_id} {day}: {step.loaded} payouts, {step.quarantined} refused")
    return dg.MaterializeResult(
        metadata=_load_metadata(
            step, window, "amount", ["payout_reference_id", "status", "amount", "currency"]
        )
    )


@dg.asset(
    partitions_def=finance_partitions_def,
    group_name=GROUP,
    kinds=KINDS,
    pool="shop_api",
    deps=[finance_payouts],
    check_specs=[
        dg.AssetCheckSpec(
            "quarantine_reviewed",
            asset="finance_transactions",
            description="No quarantined finance payload of the shop is left unacknowledged.",
        )
    ],
)
def finance_transactions(context: dg.AssetExecutionContext, metasync: MetasyncResource):
    """Transactions over a trailing window covering Meta's lag, plus every transaction of the
    day's payouts; unreadable ones go to finance_quarantine and the run goes on."""
    shop_id, day = _partition(context)
    if reason := _skip_reason(metasync, shop_id):
        yield _skipped(context, shop_id, reason)
        yield dg.AssetCheckResult(check_name="quarantine_reviewed", passed=True)
        return
    window = ingest.Window.for_day(day, ingest.FinanceSettings())
    shop = metasync.registry().get(shop_id)
    db = metasync.db()
    with metasync.graph_for(shop_id) as graph:
        step = ingest.load_transactions(db, graph, shop, window)
    context.log.info(
        f"shop {shop_id} {window.start}..{day}: {step.loaded} transactions, "
        f"{step.quarantined} quarantined"
    )
    yield dg.MaterializeResult(
        metadata=_load_metadata(
            step,
            window,
            "net_amount",
            ["transaction_type", "order_id", "net_amount", "currency", "payout_reference_id"],
        )
    )
    yield _quarantine_check(db, shop_id)


def _quarantine_check(db, shop_id: str) -> dg.AssetCheckResult:
    with db.begin() as conn:
        open_rows = store.open_quarantine(conn, shop_id)
    return dg.AssetCheckResult(
        check_name="quarantine_reviewed",
        passed=not open_rows,
        severity=dg.AssetCheckSeverity.WARN,
        metadata={
            "open_records": len(open_rows),
            "reasons": dg.MetadataValue.json(sorted({row.reason for row in open_rows})[:20]),
            "acknowledge_with": "pipelines.finance.store.acknowledge_quarantine",
        },
    )


@dg.asset(
    partitions_def=finance_partitions_def,
    group_name=GROUP,
    kinds=KINDS,
    pool="shop_api",
    deps=[finance_transactions],
)
def finance_order_payments(
    context: dg.AssetExecutionContext, metasync: MetasyncResource
) -> dg.MaterializeResult:
    """Payments (with promotion allocations) of every order the partition's transactions touch."""
    shop_id, day = _partition(context)
    if reason := _skip_reason(metasync, shop_id):
        return _skipped(context, shop_id, reason)
    window = ingest.Window.for_day(day, ingest.FinanceSettings())
    shop = metasync.registry().get(shop_id)
    with metasync.graph_for(shop_id) as graph:
        step = ingest.load_order_payments(metasync.db(), graph, shop, window)
    return dg.MaterializeResult(
        metadata=_load_metadata(
            step, window, "total_amount", ["order_id", "payment_id", "total_amount", "currency"]
        )
    )


@dg.asset(
    partitions_def=finance_partitions_def,
    group_name=GROUP,
    kinds=KINDS,
    deps=[finance_order_payments],
    check_specs=[
        dg.AssetCheckSpec(
            "payouts_balanced",
            asset="finance_reconciliation_staged",
            blocking=True,
            description="Every payout equals its transactions plus explicit adjustment rows.",
        ),
        dg.AssetCheckSpec(
            "mismatch_rate_under_threshold",
            asset="finance_reconciliation_staged",
            blocking=True,
            description="Share of orders mismatched or missing stays under the threshold.",
        ),
    ],
)
def finance_reconciliation_staged(
    context: dg.AssetExecutionContext, metasync: MetasyncResource, oms: OmsResource
):
    """The shop's reconciliation against the OMS, staged; published only if its checks pass."""
    shop_id, _ = _partition(context)
    if reason := _skip_reason(metasync, shop_id):
        yield _skipped(context, shop_id, reason)
        yield dg.AssetCheckResult(check_name="payouts_balanced", passed=True)
        yield dg.AssetCheckResult(check_name="mismatch_rate_under_threshold", passed=True)
        return
    settings = ingest.FinanceSettings()
    result, gate = ingest.stage(metasync.db(), oms.adapter(), shop_id, settings)
    context.log.info(
        f"shop {shop_id} as of {result.as_of_date}: {result.status_counts()}, "
        f"{len(gate.unbalanced_payouts)} unbalanced payouts"
    )
    yield dg.MaterializeResult(metadata=_reconciliation_metadata(result))
    yield dg.AssetCheckResult(
        check_name="payouts_balanced",
        passed=gate.payouts_balanced,
        metadata={"unbalanced": dg.MetadataValue.json(gate.unbalanced_payouts[:50])},
    )
    yield dg.AssetCheckResult(
        check_name="mismatch_rate_under_threshold",
        passed=gate.mismatch_rate_ok,
        metadata={
            "mismatch_rate": gate.mismatch_rate,
            "threshold": settings.mismatch_rate_threshold,
        },
    )


def _reconciliation_metadata(result: FrameReconciliation) -> dict[str, Any]:
    columns = ["order_id", "status", "difference", "currency", "reason"]
    records = [dg.TableRecord({c: _scalar(r[c]) for c in columns}) for r in result.preview(columns)]
    schema = dg.TableSchema(columns=[dg.TableColumn(c, "string") for c in columns])
    return {
        "dagster/row_count": len(result.orders),
        "as_of_date": str(result.as_of_date),
        "order_statuses": dg.MetadataValue.json(result.status_counts()),
        "payouts": len(result.payouts),
        "meta_net_by_currency": dg.MetadataValue.json(result.order_totals("meta_net")),
        "difference_by_currency": dg.MetadataValue.json(result.order_totals("difference")),
        "not_matched_preview": dg.MetadataValue.table(records=records, schema=schema),
    }


@dg.asset(
    partitions_def=finance_partitions_def,
    group_name=GROUP,
    kinds=KINDS,
    deps=[finance_reconciliation_staged],
)
def finance_reconciled(
    context: dg.AssetExecutionContext, metasync: MetasyncResource
) -> dg.MaterializeResult:
    """Publishes the staged reconciliation into the analyst tables (docs/data-dictionary.md)."""
    shop_id, _ = _partition(context)
    if reason := _skip_reason(metasync, shop_id):
        return _skipped(context, shop_id, reason)
    try:
        counts = store.publish_reconciliation(metasync.db(), shop_id)
    except store.PublishRefused as exc:
        raise dg.Failure(str(exc)) from exc
    return dg.MaterializeResult(metadata={"dagster/row_count": sum(counts.values()), **counts})


finance_assets = [
    finance_payouts,
    finance_transactions,
    finance_order_payments,
    finance_reconciliation_staged,
    finance_reconciled,
]

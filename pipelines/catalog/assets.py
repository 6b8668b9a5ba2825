"""Catalog assets, one partition per shop, one asset per cadence.

    catalog_full_sync         24 h  replace feed, session followed, live catalog read back
    catalog_delta_sync         1 h  snapshot vs ledger -> items_batch, every handle followed
    catalog_stock_price_sync  15 m  price, sale and stock only, sale windows evaluated now
    catalog_product_sets      24 h  product sets follow the store's collections
    catalog_seller_issues     24 h  Meta's diagnostics -> seller issues (gone ones resolved)

Each body is a recipe: check the shop may run, call the plain function in
`pipelines.catalog.sync`, report numbers, grade the checks. Tokens never leave the resource.
"""

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import dagster as dg

from pipelines.catalog.issues import SellerIssueStore
from pipelines.catalog.sync import (
    CatalogRefused,
    SyncSettings,
    SyncSummary,
    delta_sync,
    full_sync,
    product_sets_sync,
    pull_diagnostics,
    stock_and_price_sync,
)
from pipelines.resources import MetasyncResource
from pipelines.shops import runnable_shops, shop_partitions
from resources.meta.errors import GraphAuthError
from resources.shops import ShopStatus

GROUP = "catalog"
REJECT_RATE_CHECK = "meta_reject_rate_below_threshold"
MASS_DELETION_CHECK = "no_mass_deletion_held"


class CatalogSyncConfig(dg.Config):
    """Run config of the catalog assets; every field has a safe default."""

    allow_mass_deletion: bool = False
    allow_shrink: bool = False
    max_batch_requests: int = 3000
    max_delete_share: float = 0.1
    max_delete_count: int = 1000
    max_shrink_share: float = 0.2
    max_reject_share: float = 0.05
    poll_interval_seconds: float = 2.0
    poll_timeout_seconds: float = 900.0
    product_url_template: str = ""
    default_brand: str = ""

    def to_settings(self) -> SyncSettings:
        return SyncSettings(
            allow_mass_deletion=self.allow_mass_deletion,
            allow_shrink=self.allow_shrink,
            max_batch_requests=self.max_batch_requests,
            max_delete_share=self.max_delete_share,
            max_delete_count=self.max_delete_count,
            max_shrink_share=self.max_shrink_share,
            poll_interval_seconds=self.poll_interval_seconds,
            poll_timeout_seconds=self.poll_timeout_seconds,
            product_url_template=self.product_url_template or None,
            default_brand=self.default_brand or None,
        )


def _checks(asset_name: str) -> list[dg.AssetCheckSpec]:
    return [
        dg.AssetCheckSpec(
            REJECT_RATE_CHECK,
            asset=asset_name,
            description="Share of sent items Meta rejected stays under max_reject_share.",
        ),
        dg.AssetCheckSpec(
            MASS_DELETION_CHECK,
            asset=asset_name,
            description="No deletions were held back for lack of an explicit override.",
        ),
    ]


def require_active(metasync: MetasyncResource, shop_id: str) -> None:
    """A paused or re-auth shop fails its run with the reason (a UI backfill may pick it)."""
    runnable, skipped = runnable_shops(metasync, [shop_id])
    if not runnable:
        raise dg.Failure(
            description=f"shop {shop_id} is not runnable: {skipped[shop_id]}",
            metadata={"shop": shop_id, "reason": skipped[shop_id]},
        )


@contextmanager
def shop_guard(metasync: MetasyncResource, shop_id: str) -> Iterator[None]:
    """Fail a paused shop's run with its reason; a rejected token (190) pauses the shop for
    re-authentication so the schedules skip it until `metasync shops set-token`."""
    require_active(metasync, shop_id)
    try:
        yield
    except GraphAuthError as error:
        reason = f"Meta rejected the token (code {error.code}); re-authenticate the shop"
        metasync.registry().set_status(shop_id, ShopStatus.NEEDS_REAUTH, reason)
        raise dg.Failure(
            description=f"shop {shop_id}: {reason}", metadata={"shop": shop_id}
        ) from error


def summary_metadata(summary: SyncSummary, metasync: MetasyncResource) -> dict[str, Any]:
    """What a data engineer checks first: counts, calls, a preview, the open seller issues."""
    metadata: dict[str, Any] = {
        "dagster/row_count": summary.items,
        "created": summary.created,
        "updated": summary.updated,
        "stock_price_updated": summary.volatile_updated,
        "deleted": summary.deleted,
        "unchanged": summary.unchanged,
        "rejected_by_meta": summary.rejected,
        "rejected_in_store": summary.store_rejected,
        "excluded": summary.excluded,
        "accepted": summary.accepted,
        "api_calls": summary.calls,
        "items_batch_calls": summary.batches,
        "resumed_handles": summary.resumed_batches,
        "held_deletions": summary.held_deletions,
        "seller_issues_opened": summary.issues_opened,
        "seller_issues_resolved": summary.issues_resolved,
    }
    if summary.cadence == "full":
        metadata |= {
            "upload_session_id": summary.upload_session_id or "",
            "upload_fatal_errors": summary.upload_errors,
            "orphans_deleted": summary.orphans_deleted,
            "drift_resent": summary.drift_resent,
        }
    if summary.preview:
        metadata["preview"] = dg.MetadataValue.table(
            records=[dg.TableRecord({k: str(v) for k, v in row.items()}) for row in summary.preview]
        )
    metadata["open_seller_issues"] = dg.MetadataValue.md(
        open_issues_markdown(metasync, summary.shop_id)
    )
    return metadata


def open_issues_markdown(metasync: MetasyncResource, shop_id: str, limit: int = 10) -> str:
    issues = SellerIssueStore(metasync.db()).open_issues(shop_id)
    if not issues:
        return f"No open seller issues for {shop_id}."
    lines = [f"{len(issues)} open seller issues for {shop_id}:", ""]
    for issue in issues[:limit]:
        link = f" [fix in store]({issue['admin_url']})" if issue["admin_url"] else ""
        item = f" `{issue['retailer_id']}`" if issue["retailer_id"] else ""
        lines.append(f"- **{issue['severity']}**{item}: {issue['call_to_action']}{link}")
    if len(issues) > limit:
        lines.append(f"- ... and {len(issues) - limit} more (`metasync issues --shop {shop_id}`)")
    return "\n".join(lines)


def check_results(summary: SyncSummary, config: CatalogSyncConfig) -> list[dg.AssetCheckResult]:
    return [
        dg.AssetCheckResult(
            check_name=REJECT_RATE_CHECK,
            passed=summary.reject_share <= config.max_reject_share,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={
                "sent": summary.sent,
                "rejected": summary.rejected,
                "reject_share": float(round(summary.reject_share, 4)),
                "max_reject_share": config.max_reject_share,
            },
        ),
        dg.AssetCheckResult(
            check_name=MASS_DELETION_CHECK,
            passed=summary.held_deletions == 0,
            severity=dg.AssetCheckSeverity.ERROR,
            metadata={
                "held_deletions": summary.held_deletions,
                "reason": summary.held_reason or "",
            },
        ),
    ]


def _run_sync(
    context: dg.AssetExecutionContext,
    config: CatalogSyncConfig,
    metasync: MetasyncResource,
    sync: Callable[..., SyncSummary],
) -> dg.MaterializeResult:
    """The recipe of the three sync assets for the partition's shop: guard the shop, run the
    sync with the run config's settings, report. A refused sync fails with its numbers."""
    shop_id = context.partition_key
    with shop_guard(metasync, shop_id):
        try:
            summary = sync(metasync, shop_id, settings=config.to_settings())
        except CatalogRefused as refused:
            raise dg.Failure(description=str(refused), metadata=refused.numbers) from refused
    return _report(context, summary, metasync, config)


def _report(
    context: dg.AssetExecutionContext,
    summary: SyncSummary,
    metasync: MetasyncResource,
    config: CatalogSyncConfig,
) -> dg.MaterializeResult:
    context.log.info(summary.line())
    if summary.held_reason:
        context.log.warning(f"shop {summary.shop_id}: deletions held: {summary.held_reason}")
    return dg.MaterializeResult(
        metadata=summary_metadata(summary, metasync),
        check_results=check_results(summary, config),
    )


@dg.asset(
    partitions_def=shop_partitions,
    group_name=GROUP,
    kinds={"python", "meta"},
    check_specs=_checks("catalog_full_sync"),
    tags={"cadence": "daily"},
)
def catalog_full_sync(
    context: dg.AssetExecutionContext, config: CatalogSyncConfig, metasync: MetasyncResource
) -> dg.MaterializeResult:
    """The shop's whole catalog as a replace feed upload, followed to its end, then the live
    catalog read back: orphans deleted, drifted or missing items sent again."""
    return _run_sync(context, config, metasync, full_sync)


@dg.asset(
    partitions_def=shop_partitions,
    group_name=GROUP,
    kinds={"python", "meta"},
    check_specs=_checks("catalog_delta_sync"),
    tags={"cadence": "hourly"},
)
def catalog_delta_sync(
    context: dg.AssetExecutionContext, config: CatalogSyncConfig, metasync: MetasyncResource
) -> dg.MaterializeResult:
    """Changes since what Meta accepted, as items_batch calls; nothing sent when unchanged."""
    return _run_sync(context, config, metasync, delta_sync)


@dg.asset(
    partitions_def=shop_partitions,
    group_name=GROUP,
    kinds={"python", "meta"},
    check_specs=_checks("catalog_stock_price_sync"),
    tags={"cadence": "15min"},
)
def catalog_stock_price_sync(
    context: dg.AssetExecutionContext, config: CatalogSyncConfig, metasync: MetasyncResource
) -> dg.MaterializeResult:
    """Price, sale and stock of items already on Meta, as partial UPDATEs."""
    return _run_sync(context, config, metasync, stock_and_price_sync)


@dg.asset(
    partitions_def=shop_partitions,
    group_name=GROUP,
    kinds={"python", "meta"},
    deps=[catalog_full_sync],
)
def catalog_product_sets(
    context: dg.AssetExecutionContext, config: CatalogSyncConfig, metasync: MetasyncResource
) -> dg.MaterializeResult:
    """One product set per store collection (product_type): created, updated, deleted."""
    shop_id = context.partition_key
    with shop_guard(metasync, shop_id):
        summary = product_sets_sync(metasync, shop_id, settings=config.to_settings())
    context.log.info(
        f"shop {shop_id}: product sets {summary.created} created, {summary.updated} updated, "
        f"{summary.deleted} deleted, {summary.unchanged} unchanged"
    )
    return dg.MaterializeResult(
        metadata={
            "created": summary.created,
            "updated": summary.updated,
            "deleted": summary.deleted,
            "unchanged": summary.unchanged,
            "adopted": summary.adopted,
        }
    )


@dg.asset(
    partitions_def=shop_partitions,
    group_name=GROUP,
    kinds={"python", "meta"},
    deps=[catalog_full_sync],
)
def catalog_seller_issues(
    context: dg.AssetExecutionContext, metasync: MetasyncResource
) -> dg.MaterializeResult:
    """Meta's catalog diagnostics as seller issues; issues Meta no longer reports resolved."""
    shop_id = context.partition_key
    with shop_guard(metasync, shop_id):
        counts = pull_diagnostics(metasync, shop_id)
    context.log.info(
        f"shop {shop_id}: diagnostics {counts.opened} opened, {counts.still_open} still open, "
        f"{counts.resolved} resolved"
    )
    return dg.MaterializeResult(
        metadata={
            "opened": counts.opened,
            "still_open": counts.still_open,
            "resolved": counts.resolved,
            "open_seller_issues": dg.MetadataValue.md(open_issues_markdown(metasync, shop_id)),
        }
    )


catalog_assets = [
    catalog_full_sync,
    catalog_delta_sync,
    catalog_stock_price_sync,
    catalog_product_sets,
    catalog_seller_issues,
]

"""The offers domain's Dagster objects (orders.md §12). Resources are bound by
pipelines/definitions.py: "metasync" -> MetasyncResource.

    sync_offers_job       one shop per run (config shop_id): store discounts -> Meta offers, or
                          a seller issue with the Commerce Manager link without Capability.OFFERS
    offers_sync_schedule  hourly, one run per active shop (run_key per shop and tick)
"""

from pathlib import Path

import dagster as dg

from pipelines.offers.mapping import OfferSettings
from pipelines.offers.sync import COMMERCE_MANAGER_PROMOTIONS, sync_shop_offers
from pipelines.resources import MetasyncResource
from pipelines.shops import runnable_shops
from resources.meta.offers import TargetGranularity
from resources.settings import get_settings

DEFAULT_DISCOUNTS_PATH = "{state_dir}/stores/{shop_id}/discounts.csv"


class SyncOffersConfig(dg.Config):
    shop_id: str
    # Where the shop's store-discount CSV is (contract: pipelines/offers/source.py).
    discounts_path_template: str = DEFAULT_DISCOUNTS_PATH
    # Unconfirmed by Meta's docs, so settings: the Commerce Manager page for offers, and the
    # granularity of free-shipping offers (docs: ITEM_LEVEL; Meta's Woo plugin: ORDER_LEVEL).
    commerce_manager_promotions_url: str = COMMERCE_MANAGER_PROMOTIONS
    free_shipping_granularity: str = "ITEM_LEVEL"


def discounts_path(template: str, shop_id: str) -> Path:
    return Path(template.format(state_dir=get_settings().state_dir, shop_id=shop_id))


@dg.op(tags={"kind": "offers"})
def sync_store_offers(
    context: dg.OpExecutionContext, config: SyncOffersConfig, metasync: MetasyncResource
) -> None:
    runnable, skipped = runnable_shops(metasync, [config.shop_id])
    if not runnable:
        context.log.warning(f"shop {config.shop_id} skipped: {skipped[config.shop_id]}")
        context.add_output_metadata({"skipped": skipped[config.shop_id]})
        return
    summary = sync_shop_offers(
        metasync,
        config.shop_id,
        discounts_path(config.discounts_path_template, config.shop_id),
        settings=OfferSettings(
            free_shipping_granularity=TargetGranularity(config.free_shipping_granularity)
        ),
        promotions_url_template=config.commerce_manager_promotions_url,
    )
    context.add_output_metadata(
        {
            "mode": summary.mode,
            "discounts": summary.discounts,
            "store_rejects": summary.store_rejects,
            "created": summary.created,
            "updated": summary.updated,
            "deactivated": summary.deactivated,
            "unchanged": summary.unchanged,
            "rejected_by_meta": summary.rejected_by_meta,
            "uploads": summary.uploads,
            "resumed_uploads": summary.resumed,
        }
    )


@dg.job(executor_def=dg.in_process_executor, tags={"domain": "offers"})
def sync_offers_job():
    """Sync one shop's store discounts to Meta as offers (or raise the seller issue)."""
    sync_store_offers()


def offers_run_config(shop_id: str) -> dict:
    return {"ops": {"sync_store_offers": {"config": {"shop_id": shop_id}}}}


@dg.schedule(
    job=sync_offers_job,
    cron_schedule="17 * * * *",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)
def offers_sync_schedule(context: dg.ScheduleEvaluationContext, metasync: MetasyncResource):
    """One run per active shop; each shop's run is separate, so one failing stops no other."""
    tick = context.scheduled_execution_time.strftime("%Y%m%dT%H%M")
    shop_ids = [shop.shop_id for shop in metasync.registry().list_shops()]
    runnable, skipped = runnable_shops(metasync, shop_ids)
    if not runnable:
        reasons = [f"{s}: {why}" for s, why in sorted(skipped.items())] or ["no shops"]
        return dg.SkipReason("; ".join(reasons))
    return [
        dg.RunRequest(
            run_key=f"offers:{tick}:{shop_id}",
            run_config=offers_run_config(shop_id),
            tags={"shop": shop_id},
        )
        for shop_id in runnable
    ]


defs = dg.Definitions(jobs=[sync_offers_job], schedules=[offers_sync_schedule])

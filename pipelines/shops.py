"""Shops as Dagster partitions: the `shops` dynamic partitions mirror the active registry."""

import dagster as dg

from pipelines.resources import MetasyncResource
from resources.shops import ShopStatus

shop_partitions = dg.DynamicPartitionsDefinition(name="shops")

# Op pools the assets declare (`pool=`): each shop-facing Graph step takes a slot.
POOLS = ("shop_api",)


def initialise_pools(instance: dg.DagsterInstance) -> None:
    """Write each pool's default limit once, before runs start. Dagster otherwise writes it on
    the first claim, and two runs claiming a new pool at the same moment on Postgres make one of
    them fail on the unique key (dagster 1.13.27, seen in the two-worker test)."""
    storage = instance.event_log_storage
    missing = set(POOLS) - storage.get_concurrency_keys()
    for pool in sorted(missing):
        storage.initialize_concurrency_limit_to_default(pool)


@dg.sensor(minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING)
def shop_registry_sensor(context: dg.SensorEvaluationContext, metasync: MetasyncResource):
    """Adds every registered shop to the `shops` partitions (paused shops too, so their history
    stays visible; schedules and sensors skip them with the reason shown)."""
    initialise_pools(context.instance)
    registered = {shop.shop_id for shop in metasync.registry().list_shops()}
    known = set(context.instance.get_dynamic_partitions(shop_partitions.name))
    new = sorted(registered - known)
    if not new:
        return dg.SkipReason(f"all {len(registered)} registered shops are partitions already")
    return dg.SensorResult(dynamic_partitions_requests=[shop_partitions.build_add_request(new)])


def sync_shop_partitions(instance: dg.DagsterInstance, shop_ids: list[str]) -> list[str]:
    """Add missing shop partitions right away (CLI and demo); returns the ones added."""
    initialise_pools(instance)
    known = set(instance.get_dynamic_partitions(shop_partitions.name))
    new = sorted(set(shop_ids) - known)
    if new:
        instance.add_dynamic_partitions(shop_partitions.name, new)
    return new


def runnable_shops(metasync: MetasyncResource, shop_ids: list[str]) -> tuple[list[str], dict]:
    """Split shop ids into those that may run now and those skipped, with the reason for each."""
    registry = metasync.registry()
    by_id = {shop.shop_id: shop for shop in registry.list_shops()}
    runnable, skipped = [], {}
    for shop_id in shop_ids:
        shop = by_id.get(shop_id)
        if shop is None:
            skipped[shop_id] = "not in the shop registry"
        elif shop.status != ShopStatus.ACTIVE:
            skipped[shop_id] = f"{shop.status}: {shop.status_reason or 'no reason recorded'}"
        else:
            runnable.append(shop_id)
    return runnable, skipped

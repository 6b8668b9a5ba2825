"""Catalog schedules fan out one run per runnable shop and say why the others were skipped."""

from datetime import UTC, datetime

import dagster as dg
import pytest

from pipelines.catalog.definitions import defs
from pipelines.catalog.schedules import (
    catalog_delta_schedule,
    catalog_full_schedule,
    catalog_stock_price_schedule,
)
from pipelines.resources import MetasyncResource
from pipelines.shops import shop_partitions
from resources.shops import ShopProfile, ShopStatus

TICK = datetime(2026, 3, 2, 10, 15, tzinfo=UTC)


def _shop(registry, shop_id: str, status: ShopStatus = ShopStatus.ACTIVE, reason=None) -> None:
    registry.add(
        ShopProfile(
            shop_id=shop_id,
            name=shop_id.title(),
            catalog_id=f"cat-{shop_id}",
            currency="EUR",
            source_kind="shopify_csv",
            source_location="unused.csv",
        ),
        token=f"token-{shop_id}",
    )
    if status != ShopStatus.ACTIVE:
        registry.set_status(shop_id, status, reason)


@pytest.fixture(scope="module")
def shared_instance():
    # One instance for the module: creating one costs seconds.
    with dg.instance_for_test() as instance:
        yield instance


@pytest.fixture
def instance(shared_instance):
    for key in shared_instance.get_dynamic_partitions(shop_partitions.name):
        shared_instance.delete_dynamic_partition(shop_partitions.name, key)
    return shared_instance


@pytest.mark.parametrize(
    "schedule",
    [catalog_full_schedule, catalog_delta_schedule, catalog_stock_price_schedule],
)
def test_one_run_per_active_shop_paused_ones_skipped(registry, metasync_db, instance, schedule):
    _shop(registry, "alpha")
    _shop(registry, "beta", ShopStatus.PAUSED, "seller asked for a pause")
    _shop(registry, "gamma", ShopStatus.NEEDS_REAUTH, "token expired (190)")
    _shop(registry, "delta")
    instance.add_dynamic_partitions(shop_partitions.name, ["alpha", "beta", "gamma", "delta"])
    metasync = MetasyncResource(database_url=metasync_db.url)

    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=TICK, resources={"metasync": metasync}
    ) as context:
        requests = schedule(context)

    assert [r.partition_key for r in requests] == ["alpha", "delta"]
    assert [r.run_key for r in requests] == ["alpha:20260302T1015", "delta:20260302T1015"]
    assert all(r.tags["shop"] == r.partition_key for r in requests)


def test_skip_reason_names_each_paused_shop(registry, metasync_db, instance):
    _shop(registry, "beta", ShopStatus.PAUSED, "seller asked for a pause")
    _shop(registry, "gamma", ShopStatus.NEEDS_REAUTH, "token expired (190)")
    instance.add_dynamic_partitions(shop_partitions.name, ["beta", "gamma", "ghost"])
    metasync = MetasyncResource(database_url=metasync_db.url)

    with dg.build_schedule_context(
        instance=instance, scheduled_execution_time=TICK, resources={"metasync": metasync}
    ) as context:
        result = catalog_delta_schedule(context)

    assert isinstance(result, dg.SkipReason)
    assert "beta: paused: seller asked for a pause" in result.skip_message
    assert "gamma: needs_reauth: token expired (190)" in result.skip_message
    assert "ghost: not in the shop registry" in result.skip_message


def test_no_shop_partitions_is_a_skip(metasync_db, instance):
    with dg.build_schedule_context(
        instance=instance,
        scheduled_execution_time=TICK,
        resources={"metasync": MetasyncResource(database_url=metasync_db.url)},
    ) as context:
        assert isinstance(catalog_full_schedule(context), dg.SkipReason)


def test_catalog_definitions_load_with_the_metasync_resource():
    bound = dg.Definitions.merge(defs, dg.Definitions(resources={"metasync": MetasyncResource()}))
    dg.Definitions.validate_loadable(bound)
    names = {job.name for job in bound.resolve_all_job_defs()}
    assert {"catalog_full_job", "catalog_delta_job", "catalog_stock_price_job"} <= names

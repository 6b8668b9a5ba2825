"""The whole code location loads, and its jobs, schedules and sensors are the ones we expect."""

import dagster as dg

from pipelines.definitions import defs


def _repository():
    return defs.get_repository_def()


def test_definitions_load():
    dg.Definitions.validate_loadable(defs)


def test_every_cadence_and_flow_has_its_job():
    jobs = {job.name for job in _repository().get_all_jobs()}
    assert {
        "catalog_full_job",
        "catalog_delta_job",
        "catalog_stock_price_job",
        "ingest_orders_job",
        "push_order_changes_job",
        "pull_meta_changes_job",
        "capi_purchase_events_job",
        "finance_job",
        "shop_health_job",
        "sync_offers_job",
        "catalog_batch_job",
    } <= jobs


def test_catalog_schedules_run_at_the_three_cadences():
    schedules = {s.name: s.cron_schedule for s in _repository().schedule_defs}
    assert schedules["catalog_full_schedule"] == "0 2 * * *"  # daily
    assert schedules["catalog_delta_schedule"] == "5 * * * *"  # hourly
    assert schedules["catalog_stock_price_schedule"] == "*/15 * * * *"  # every 15 minutes


def test_sensors_watch_shops_orders_and_health():
    sensors = {s.name for s in _repository().sensor_defs}
    assert {
        "shop_registry_sensor",
        "new_orders_sensor",
        "oms_changes_sensor",
        "meta_changes_sensor",
        "run_failure_alert_sensor",
        "token_state_sensor",
    } <= sensors


def test_resources_are_bound_for_every_domain():
    assert {"metasync", "oms", "alerts"} <= set(defs.resources)


def test_the_workspace_loads_as_dagster_dev_loads_it():
    """`dagster dev -w workspace.yaml` refuses what a direct import accepts (e.g. two
    Definitions objects at module scope), so load the code location the same way."""
    import subprocess
    import sys
    from pathlib import Path

    repository = Path(__file__).resolve().parents[1]
    result = subprocess.run(
        [sys.executable, "-m", "dagster", "definitions", "validate", "-w", "workspace.yaml"],
        cwd=repository,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]


def test_shop_pools_get_their_default_limit_before_any_run_claims_them():
    from pipelines.shops import POOLS, initialise_pools, sync_shop_partitions

    overrides = {"concurrency": {"pools": {"default_limit": 3}}}
    with dg.instance_for_test(overrides=overrides) as instance:
        storage = instance.event_log_storage
        assert not set(POOLS) & storage.get_concurrency_keys()

        sync_shop_partitions(instance, ["acme"])
        initialise_pools(instance)  # a second call leaves the limit as it is

        assert set(POOLS) <= storage.get_concurrency_keys()
        assert {storage.get_concurrency_info(pool).slot_count for pool in POOLS} == {3}

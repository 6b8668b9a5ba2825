"""The offers job and schedule: one run per active shop, the job syncs from the configured file."""

from datetime import UTC, datetime

import dagster as dg

from pipelines.offers.definitions import (
    defs,
    offers_run_config,
    offers_sync_schedule,
    sync_offers_job,
)
from pipelines.resources import MetasyncResource
from resources.shops import ShopStatus
from tests.integration.offers.test_offers_sync import ROWS, write

TICK = datetime(2026, 3, 2, 10, 17, tzinfo=UTC)


def test_definitions_load():
    dg.Definitions.validate_loadable(
        dg.Definitions.merge(defs, dg.Definitions(resources={"metasync": MetasyncResource()}))
    )


def test_schedule_requests_one_run_per_active_shop(onboard, metasync_db, registry):
    onboard("acme", offers=True)
    onboard("bravo")
    onboard("paused")
    registry.set_status("paused", ShopStatus.PAUSED, "seller asked")
    metasync = MetasyncResource(database_url=metasync_db.url)
    with dg.build_schedule_context(
        scheduled_execution_time=TICK, resources={"metasync": metasync}
    ) as context:
        requests = offers_sync_schedule(context)

    assert [r.tags["shop"] for r in requests] == ["acme", "bravo"]
    assert [r.run_key for r in requests] == ["offers:20260302T1017:acme",
                                             "offers:20260302T1017:bravo"]  # fmt: skip
    for request in requests:
        assert dg.validate_run_config(sync_offers_job, request.run_config)


def test_job_syncs_the_shops_discount_file(onboard, metasync_db, sandbox_admin, tmp_path):
    onboard("acme", offers=True)
    write(tmp_path / "acme.csv", ROWS["SPRING10"], ROWS["SHIPFREE"])
    config = offers_run_config("acme")
    config["ops"]["sync_store_offers"]["config"]["discounts_path_template"] = str(
        tmp_path / "{shop_id}.csv"
    )
    result = sync_offers_job.execute_in_process(
        run_config=config, resources={"metasync": MetasyncResource(database_url=metasync_db.url)}
    )
    assert result.success
    [output] = [e for e in result.all_events if e.event_type == dg.DagsterEventType.STEP_OUTPUT]
    metadata = output.event_specific_data.metadata
    assert (metadata["created"].value, metadata["uploads"].value) == (2, 1)
    assert {o["offer_id"] for o in sandbox_admin.offers("acme")} == {"SPRING10", "SHIPFREE"}

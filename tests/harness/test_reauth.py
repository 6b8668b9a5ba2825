"""A 190 from Meta (with or without a subcode) in any domain pauses that shop for
re-authentication with the reason, schedules and sensors skip it, the token sensor alerts, the
other shop goes on in the same tick, and after the token is replaced the shop resumes from its
watermarks (nothing re-imported, nothing re-sent)."""

import random
from datetime import UTC, datetime

import dagster as dg
import pytest
from sqlalchemy import select

from pipelines.catalog.generator import mutate_catalog
from pipelines.offers.definitions import offers_sync_schedule
from pipelines.ops.alerts import AlertResource
from pipelines.ops.sensors import token_state_sensor
from pipelines.orders.sync import ShopPaused
from pipelines.shops import runnable_shops
from resources.db.ops_tables import alerts as alerts_table
from resources.meta.errors import GraphAuthError
from resources.shops import ShopStatus
from sandbox.client import SandboxAdmin
from sandbox.server import SandboxServer
from tests.harness.world import WRITE_PATHS, World

WRITES = ("POST", "DELETE")


def prepare_work(world: World, admin: SandboxAdmin, path: str) -> None:
    """Give every shop something to do on `path`, so its run has to call Meta."""
    for shop_id in world.shops:
        if path == "catalog":
            mutate_catalog(world.store_file(shop_id), seed=17)
        elif path == "push":
            world.make_oms_changes(shop_id)
        elif path == "offers":
            world.write_discounts(shop_id, random.Random(99))
        elif path in ("intake", "capi"):
            world.place_orders(admin, shop_id, count=2, seed=23)
    if path in ("intake", "capi"):
        admin.advance_clock(600)
        if path == "capi":  # Purchase events are queued by intake
            for shop_id in world.shops:
                world.run("intake", shop_id)


def baseline(world: World, admin: SandboxAdmin) -> None:
    for path in WRITE_PATHS:
        for shop_id in world.shops:
            world.run(path, shop_id)
        if path == "catalog":
            for shop_id in world.shops:
                world.place_orders(admin, shop_id, count=2, seed=5)
            admin.advance_clock(600)


def run_paused(world: World, path: str, shop_id: str) -> None:
    """The run that meets the 190: it may fail (the error names the token) or end early."""
    try:
        world.run(path, shop_id)
    except (GraphAuthError, ShopPaused) as error:
        assert "190" in str(error) or "token" in str(error)


def writes_of(sandbox: SandboxServer, shop_id: str, since: int) -> int:
    return sum(1 for e in sandbox.state.call_log[since:] if e[1] == shop_id and e[2] in WRITES)


# Each domain once, with and without a subcode in turn (the transport's handling is shared; the
# domains differ in what they do with the error).
CASES = [(path, 463 if position % 2 == 0 else None) for position, path in enumerate(WRITE_PATHS)]


@pytest.mark.parametrize(("path", "subcode"), CASES)
def test_rejected_token_pauses_only_that_shop_and_it_resumes_after_a_new_token(
    world: World, sandbox: SandboxServer, sandbox_admin: SandboxAdmin, path: str, subcode
):
    baseline(world, sandbox_admin)
    prepare_work(world, sandbox_admin, path)
    sandbox_admin.add_fault(kind="token_expired", shop_id="acme", subcode=subcode)

    run_paused(world, path, "acme")
    world.run(path, "bolt")  # the same tick: the other shop goes on

    registry = world.metasync.registry()
    paused = registry.get("acme")
    assert paused.status == ShopStatus.NEEDS_REAUTH
    code = "190" + (f"/{subcode}" if subcode else "")
    assert f"code {code})" in paused.status_reason
    assert registry.get("bolt").status == ShopStatus.ACTIVE
    runnable, skipped = runnable_shops(world.metasync, ["acme", "bolt"])
    assert runnable == ["bolt"]
    assert skipped["acme"].startswith("needs_reauth: Meta rejected the token")

    # Resume: a new token (the sandbox accepts it again), the same work is finished once.
    sandbox_admin.clear_faults()
    registry.replace_token("acme", sandbox_admin.rotate_token("acme"))
    resumed = world.run(path, "acme")
    since = len(sandbox.state.call_log)
    world.run(path, "acme")  # a second run finds nothing left to send
    assert writes_of(sandbox, "acme", since) == 0, resumed
    world.let_backoffs_expire()  # the Purchase events of orders imported on resume are due
    # The rest of the day, for every shop; the daily replace feed applies deletions the delta's
    # deletion cap held back (the mutated 8-product export loses a third of its items).
    for later in ("catalog_full", *WRITE_PATHS):
        for shop_id in world.shops:
            world.run(later, shop_id)
    duplicated, lost = world.audit(sandbox.state)
    assert duplicated == []
    assert lost == []


def test_schedules_skip_and_the_token_sensor_alerts_on_a_paused_shop(
    world: World, sandbox: SandboxServer, sandbox_admin: SandboxAdmin
):
    sandbox_admin.add_fault(kind="token_expired", shop_id="acme", subcode=None)
    run_paused(world, "finance", "acme")

    tick = datetime(2026, 6, 1, 10, 17, tzinfo=UTC)
    with dg.build_schedule_context(
        resources={"metasync": world.metasync}, scheduled_execution_time=tick
    ) as context:
        requests = offers_sync_schedule(context)
    assert [r.tags["shop"] for r in requests] == ["bolt"]

    db_url = world.metasync.database_url
    resources = {"metasync": world.metasync, "alerts": AlertResource(database_url=db_url)}
    with dg.build_sensor_context(resources=resources) as context:
        message = token_state_sensor(context).skip_message
    assert "1 new alert" in message
    with world.metasync.db().begin() as conn:
        raised = conn.execute(select(alerts_table.c.shop_id, alerts_table.c.summary)).all()
    assert [shop for shop, _ in raised] == ["acme"]
    assert "Meta rejected the token (code 190)" in raised[0][1]

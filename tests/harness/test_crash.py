"""SIGKILL at random points of every write path, 200+ times, then a normal rerun: every effect
is on Meta exactly once (items, acks, shipments, cancellations, Purchase events)."""

import random

from pipelines.catalog.generator import mutate_catalog
from sandbox.client import SandboxAdmin
from sandbox.server import SandboxServer
from tests.harness.crash import CHECKPOINTS, Checkpoint, run_until_killed
from tests.harness.world import WRITE_PATHS, World

SHORT_FORM_KILLS = 30


def crash_campaign(world: World, admin: SandboxAdmin, kills_wanted: int, seed: int) -> dict:
    """Rounds of new work; each path killed at random points until it finishes, then rerun."""
    rng = random.Random(seed)
    counts = {"kills": 0, "attempts": 0, "rounds": 0}
    while counts["kills"] < kills_wanted:
        counts["rounds"] += 1
        for shop_id in world.shops:
            try:
                mutate_catalog(world.store_file(shop_id), seed=rng.randrange(10_000))
            except ValueError:  # the small export ran out of rows to change: keep it as is
                pass
        for path in WRITE_PATHS:
            if path == "intake":
                for shop_id in world.shops:
                    world.place_orders(admin, shop_id, count=2, seed=rng.randrange(10_000))
                admin.advance_clock(600)
            if path == "push":
                for shop_id in world.shops:
                    world.make_oms_changes(shop_id)
            for shop_id in world.shops:
                for _ in range(3):  # up to three crashes in a row on the same work
                    checkpoint = Checkpoint(rng.choice(CHECKPOINTS), rng.randint(1, 6))
                    counts["attempts"] += 1
                    if not run_until_killed(world, path, shop_id, checkpoint):
                        break
                    counts["kills"] += 1
                world.run(path, shop_id)  # the rerun after the crash, as the next tick would
        world.metasync.db().dispose()  # forked children must not share pooled connections
    world.let_backoffs_expire()
    for path in WRITE_PATHS:
        for shop_id in world.shops:
            world.run(path, shop_id)
    return counts


def test_sigkill_at_random_points_never_loses_or_repeats_an_effect(
    world: World, sandbox: SandboxServer, sandbox_admin: SandboxAdmin
):
    counts = crash_campaign(world, sandbox_admin, SHORT_FORM_KILLS, seed=5)
    duplicated, lost = world.audit(sandbox.state)
    assert counts["kills"] >= SHORT_FORM_KILLS
    assert duplicated == []
    assert lost == []

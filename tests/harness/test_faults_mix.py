"""Under a seeded random mix of Meta's faults nothing is lost or duplicated once the faults stop
and the paths run again: items, orders, acks, shipments, cancellations, Purchase events."""

import random
from pathlib import Path

import pytest
from sqlalchemy import delete

from resources.db.schema import metadata
from resources.meta.errors import GraphError
from sandbox.client import SandboxAdmin
from sandbox.server import SandboxServer
from tests.harness.conftest import count
from tests.harness.world import WRITE_PATHS, World

RUN_LOGS = {"finance_reconciliation_runs"}
THROTTLE_CODES = (4, 17, 32, 613, 80004, 80014)


def random_faults(admin: SandboxAdmin, rng: random.Random, shop_ids: list[str]) -> None:
    """A mix of transport faults for all shops, plus catalog-only faults for one of them."""
    for kind, probability in (("http_500", 0.08), ("apply_then_500", 0.08), ("timeout", 0.02)):
        admin.add_fault(kind=kind, probability=probability, delay_seconds=0.6)
    for code in THROTTLE_CODES:
        admin.add_fault(kind="throttle", code=code, probability=0.015, regain_minutes=0.01)
    shop = rng.choice(shop_ids)
    admin.set_catalog_faults(
        shop, partial_failure_share=0.3, handle_error=rng.random() < 0.5, extra_upload_polls=2
    )


def run_everything(world: World, admin: SandboxAdmin, rounds: int, seed: int) -> list[str]:
    """Every write path for every shop, a few rounds; failures are expected under faults."""
    failures = []
    for round_no in range(rounds):
        for path in WRITE_PATHS:
            for shop_id in world.shops:
                try:
                    world.run(path, shop_id)
                except (GraphError, RuntimeError) as exc:
                    failures.append(f"{path} {shop_id}: {type(exc).__name__}")
            if path == "catalog":
                for shop_id in world.shops:
                    world.place_orders(admin, shop_id, count=2, seed=seed + round_no)
                admin.advance_clock(600)  # the new orders leave FB_PROCESSING
            if path == "intake":
                for shop_id in world.shops:
                    world.make_oms_changes(shop_id)
                    world.write_discounts(shop_id, random.Random(seed + round_no))
    return failures


@pytest.mark.parametrize("seed", [11, 12])
def test_random_fault_mix_loses_and_duplicates_nothing(
    world: World, sandbox: SandboxServer, sandbox_admin: SandboxAdmin, seed: int, tmp_path: Path
):
    rng = random.Random(seed)
    sandbox.state.faults.seed(seed)
    random_faults(sandbox_admin, rng, world.shops)

    run_everything(world, sandbox_admin, rounds=2, seed=seed)
    injected = sum(sandbox_admin.clear_faults()["injected"].values())
    for shop_id in world.shops:
        sandbox_admin.clear_catalog_faults(shop_id)
        world.run("catalog_full", shop_id)  # the daily sync re-sends what Meta refused
    world.let_backoffs_expire()
    run_everything(world, sandbox_admin, rounds=1, seed=seed + 100)
    failures_after = run_everything(world, sandbox_admin, rounds=1, seed=seed + 200)

    duplicated, lost = world.audit(sandbox.state)
    clean_finance = fault_free_finance(world, tmp_path / "clean")
    finance = loaded_rows(world.finance_tables())
    count("faults injected", injected)
    count("effects duplicated", len(duplicated))
    count("rows lost", len(lost) + int(clean_finance != finance))
    assert injected > 0, "the mix injected no fault: the test proves nothing"
    assert failures_after == []
    assert duplicated == []
    assert lost == []
    assert any(clean_finance.values()), "no finance rows: nothing compared"
    assert finance == clean_finance


def loaded_rows(tables: dict) -> dict:
    """Finance tables without the run log: it gains a row per run, and faults cause reruns."""
    return {name: rows for name, rows in tables.items() if name not in RUN_LOGS}


def fault_free_finance(world: World, workdir: Path) -> dict:
    """The finance tables a run without faults loads: a copy of the world with its finance
    tables emptied, loaded again now that the faults are cleared."""
    twin = world.twin(workdir)
    with twin.metasync.db().begin() as conn:
        for name, table in metadata.tables.items():
            if name.startswith("finance_"):
                conn.execute(delete(table))
    for shop_id in twin.shops:
        twin.run("finance", shop_id)
    tables = loaded_rows(twin.finance_tables())
    twin.metasync.db().dispose()
    twin.oms.dispose()
    return tables

"""SIGKILL at random points of every write path, 200+ times, then a normal rerun: every effect
is on Meta exactly once (items, feed uploads, acks, shipments, cancellations, refunds, Purchase
events, offers), and a finance load killed midway then rerun leaves the finance tables exactly as
a run without the crash does."""

import math
import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from pipelines.catalog.generator import mutate_catalog
from sandbox.client import SandboxAdmin
from sandbox.server import SandboxServer
from tests.harness.conftest import count
from tests.harness.crash import CHECKPOINTS, Checkpoint, run_until_killed
from tests.harness.world import CRASH_PATHS, World

SHORT_FORM_KILLS = 210
EFFECT_KINDS = ("items", "offers", "orders", "shipments", "cancellations", "refunds",
                "purchase_events", "finance_rows")  # fmt: skip
KILLS_IN_A_ROW = 4  # crashes on the same work before it may finish
# Share of the kills per path: a catalog run reads and normalises the export (~0.4 s), the
# others cost a few Graph calls, so the cheap paths take more of the kills.
KILL_WEIGHTS = {"catalog": 2, "catalog_full": 2, "intake": 3, "push": 4, "capi": 3,
                "offers": 3, "finance": 3}  # fmt: skip


def kill_quotas(kills_wanted: int) -> dict[str, int]:
    total = sum(KILL_WEIGHTS.values())
    return {path: math.ceil(kills_wanted * KILL_WEIGHTS[path] / total) for path in CRASH_PATHS}


@dataclass
class CrashCounts:
    crash_points: int = 0  # children started with a kill point set
    kills: int = 0
    rounds: int = 0
    per_path: Counter = field(default_factory=Counter)
    finance_compared: int = 0
    finance_mismatches: list[str] = field(default_factory=list)

    def line(self) -> str:
        paths = ", ".join(f"{p} {n}" for p, n in sorted(self.per_path.items()))
        return (
            f"crash points tried: {self.crash_points}, kills: {self.kills} ({paths}), "
            f"rounds: {self.rounds}, finance loads compared: {self.finance_compared}"
        )


class CrashCampaign:
    """Rounds of new work; each path killed at random points (up to KILLS_IN_A_ROW times on the
    same work), then finished by a normal run, as the next tick would."""

    def __init__(self, world: World, admin: SandboxAdmin, seed: int, scratch: Path) -> None:
        self.world, self.admin, self.scratch = world, admin, scratch
        self.rng = random.Random(seed)
        self.counts = CrashCounts()
        # Checkpoints a full run of a path passed last time: the range kill points are drawn in.
        self.known_hits: dict[tuple[str, str], int] = {}

    def run(self, kills_wanted: int) -> CrashCounts:
        quotas = kill_quotas(kills_wanted)
        while any(self.counts.per_path[p] < quotas[p] for p in CRASH_PATHS):
            self.counts.rounds += 1
            for path in CRASH_PATHS:
                if self.counts.per_path[path] >= quotas[path]:
                    if path == "intake":  # push and CAPI need new orders until they are done
                        self.new_work(path)
                        self.finish(path)
                    continue
                self.new_work(path)
                for shop_id in self.world.shops:
                    self.crash_and_rerun(path, shop_id)
        self.world.let_backoffs_expire()
        for path in CRASH_PATHS:
            self.finish(path)
        return self.counts

    def new_work(self, path: str) -> None:
        world, rng = self.world, self.rng
        for shop_id in world.shops:
            if path == "catalog":
                mutate_catalog(world.store_file(shop_id), seed=rng.randrange(10_000))
            elif path == "intake":
                world.place_orders(self.admin, shop_id, count=2, seed=rng.randrange(10_000))
            elif path == "push":
                world.make_oms_changes(shop_id)
            elif path == "offers":
                world.write_discounts(shop_id, rng)
        if path == "intake":
            self.admin.advance_clock(600)  # the new orders leave FB_PROCESSING

    def finish(self, path: str) -> None:
        for shop_id in self.world.shops:
            self.world.run(path, shop_id)

    def crash_and_rerun(self, path: str, shop_id: str) -> None:
        clean = self._clean_finance(shop_id) if path == "finance" else None
        finished = False
        for _ in range(KILLS_IN_A_ROW):
            where = self.rng.choice(CHECKPOINTS)
            nth = self.rng.randint(1, self.known_hits.get((path, where), 6))
            self.counts.crash_points += 1
            outcome = run_until_killed(self.world, path, shop_id, Checkpoint(where, nth))
            if outcome.killed:
                self.counts.kills += 1
                self.counts.per_path[path] += 1
                continue
            if not outcome.failed:
                self.known_hits[path, where] = max(outcome.hits, 1)
                finished = True
            break
        if not finished:
            self.world.run(path, shop_id)  # the rerun after the crash
        if clean is not None:
            self._compare_finance(shop_id, clean)

    def _clean_finance(self, shop_id: str) -> dict:
        """The same finance load without a crash, on a copy of the databases."""
        self.counts.finance_compared += 1
        twin = self.world.twin(self.scratch / f"twin-{self.counts.finance_compared}")
        twin.run("finance", shop_id)
        tables = twin.finance_tables()
        twin.metasync.db().dispose()
        twin.oms.dispose()
        return tables

    def _compare_finance(self, shop_id: str, clean: dict) -> None:
        after = self.world.finance_tables()
        for name in sorted(set(clean) | set(after)):
            if clean.get(name) != after.get(name):
                self.counts.finance_mismatches.append(
                    f"{shop_id}: {name} differs from a clean run after a crash "
                    f"({len(clean.get(name, []))} rows clean, {len(after.get(name, []))} after)"
                )


def test_sigkill_at_random_points_never_loses_or_repeats_an_effect(
    world: World, sandbox: SandboxServer, sandbox_admin: SandboxAdmin, tmp_path: Path
):
    counts = CrashCampaign(world, sandbox_admin, seed=5, scratch=tmp_path).run(SHORT_FORM_KILLS)
    duplicated, lost = world.audit(sandbox.state)
    count("crash points tried", counts.crash_points)
    count("kills", counts.kills)
    count("effects duplicated", len(duplicated))
    count("rows lost", len(lost) + len(counts.finance_mismatches))
    assert counts.kills >= SHORT_FORM_KILLS
    assert set(counts.per_path) == set(CRASH_PATHS), "a write path was never killed"
    effects = world.effect_counts(sandbox.state)
    assert all(effects[kind] > 0 for kind in EFFECT_KINDS), effects
    assert world.finance_tables()["finance_transactions"], "no finance rows: nothing compared"
    assert duplicated == []
    assert lost == []
    assert counts.finance_mismatches == []

"""Catalog sync at 1,000,000 items: snapshot + diff, the diff against a per-row loop, calls made,
and the 15-minute stock/price cycle end to end against the sandbox.

    python -m benchmarks catalog           # via the runner (`make bench`)
    python -m benchmarks.catalog_bench     # alone
    python -m benchmarks.catalog_bench cycle calls   # only some parts

Targets (each printed with its figure; `main()` returns how many were missed):
  1. read + normalise + diff of a 1M-row Shopify export <= 10 s, peak RSS <= 2 GB, for the
     runs a shop makes every hour: through its snapshot cache, unchanged and with 1% of its
     products changed (benchmarks.snapshot_profile --incremental; each run in its own process
     so its peak memory is its own). The cold run (first sync, no cache) is printed beside them;
  2. the column-wise diff >= 20x faster than a per-row dict diff over the same 1M items;
  3. calls: 0 batches for an unchanged catalog, ceil(k / chunk) for k changed items;
  4. the 15-minute cycle (read store, normalise, ledger, diff, 1% partial UPDATEs sent and every
     handle followed, ledger written) for 1M items < 60 s against the in-process sandbox.
"""

import math
import multiprocessing
import os
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

from benchmarks import snapshot_profile
from pipelines.catalog.diff import STATIC_DIGEST_CHARS, diff_catalog
from pipelines.catalog.generator import generate_items_frame

ITEMS = 1_000_000
PRODUCTS = ITEMS // snapshot_profile.VARIANTS_PER_PRODUCT
CHANGED_SHARE = 0.01
TARGET_RATIO = 20.0
TARGET_CYCLE_SECONDS = 60.0
NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


# --- 1. snapshot + diff ---------------------------------------------------------------------


def snapshot_and_diff() -> bool:
    """Runs benchmarks.snapshot_profile --incremental in a child process (its own peak RSS)."""
    child = multiprocessing.get_context("spawn").Process(target=_profile_child, args=(PRODUCTS,))
    child.start()
    child.join()
    return child.exitcode == 0


def _profile_child(products: int) -> None:
    raise SystemExit(snapshot_profile.main(["--products", str(products), "--incremental"]))


# --- 2. column-wise vs per-row diff ---------------------------------------------------------


def per_row_diff(items: pd.DataFrame, ledger: pd.DataFrame) -> dict[str, int]:
    """The straightforward version: a dict of the ledger and a loop over the snapshot's rows."""
    known = {row["retailer_id"]: row for row in ledger.to_dict("records")}
    counts = {"create": 0, "update": 0, "volatile_only_update": 0, "unchanged": 0, "delete": 0}
    seen = set()
    for row in items.to_dict("records"):
        retailer_id = row["retailer_id"]
        seen.add(retailer_id)
        old = known.get(retailer_id)
        if old is None:
            counts["create"] += 1
        elif old["content_hash"] == row["content_hash"]:
            counts["unchanged"] += 1
        elif old["content_hash"][:STATIC_DIGEST_CHARS] == row["content_hash"][:STATIC_DIGEST_CHARS]:
            counts["volatile_only_update"] += 1
        else:
            counts["update"] += 1
    counts["delete"] = sum(1 for retailer_id in known if retailer_id not in seen)
    return counts


def diff_versus_per_row(items: pd.DataFrame) -> bool:
    ledger = snapshot_profile.ledger_with_churn(items)

    started = time.perf_counter()
    changes = diff_catalog(items, ledger)
    columnwise = time.perf_counter() - started
    started = time.perf_counter()
    naive = per_row_diff(items, ledger)
    per_row = time.perf_counter() - started

    same = naive == changes.counts()
    ratio = per_row / columnwise if columnwise else float("inf")
    print(f"diff       column-wise {columnwise:6.2f} s, per-row dict {per_row:6.2f} s: "
          f"{ratio:5.1f}x (target >= {TARGET_RATIO:.0f}x); same answer: {same}")  # fmt: skip
    return same and ratio >= TARGET_RATIO


# --- 3. calls made --------------------------------------------------------------------------


def calls_made(items: pd.DataFrame) -> bool:
    from pipelines.catalog.sync import SyncSettings, plan_delta

    settings = SyncSettings()
    ledger = items[["retailer_id", "content_hash", "volatile_hash", "product_id"]].copy()
    ledger["rejected_hash"] = None
    ledger["meta_status"] = "ACCEPTED"
    unchanged = plan_delta(items, ledger, NOW, settings)
    ok = len(unchanged.chunks) == 0
    print(f"calls      unchanged 1M catalog: {len(unchanged.chunks)} items_batch calls (target 0)")
    for changed in (1, 2_999, 3_001, 10_000):
        stale = ledger.copy()
        stale.loc[: changed - 1, "content_hash"] = "0" * 32
        plan = plan_delta(items, stale, NOW, settings)
        expected = math.ceil(changed / settings.max_batch_requests)
        ok &= len(plan.chunks) == expected
        print(f"calls      {changed:6d} changed: {len(plan.chunks)} calls "
              f"(target ceil({changed}/{settings.max_batch_requests}) = {expected})")  # fmt: skip
    return ok


# --- 4. the 15-minute cycle against the sandbox ---------------------------------------------


def stock_cycle(folder: Path) -> bool:
    """1M-row store, 1% of items with new stock/price: the whole stock_and_price cycle."""
    from pipelines.catalog.sync import (
        LedgerStore,
        SyncSettings,
        read_catalog,
        run_stock_and_price,
        sync_context,
    )
    from pipelines.resources import MetasyncResource
    from resources.onboarding import register_from_install
    from resources.settings import get_settings
    from sandbox.client import SandboxAdmin
    from sandbox.server import SandboxServer

    export = folder / "export.csv"
    snapshot_profile.write_export(export, PRODUCTS)
    os.environ["METASYNC_STATE_DIR"] = str(folder / "state")
    get_settings.cache_clear()
    with SandboxServer(admin=True) as server:
        os.environ["METASYNC_GRAPH_BASE_URL"] = server.url
        get_settings.cache_clear()
        admin = SandboxAdmin(server.url)
        installed = admin.create_shop("bench", "Bench", currency="EUR", onsite_orders=False)
        metasync = MetasyncResource(database_url=f"sqlite:///{folder / 'metasync.db'}")
        register_from_install(
            metasync.registry(), shop_id="bench", name="Bench", install=installed,
            token=installed["access_token"], currency="EUR", timezone="Europe/Berlin",
            source_kind="shopify_csv", source_location=str(export),
        )  # fmt: skip
        settings = SyncSettings(
            poll_interval_seconds=0.2,
            product_url_template=snapshot_profile.SHOP.product_url_template,
        )
        changed = _seed(metasync, settings, read_catalog, LedgerStore, sync_context)
        print(f"cycle      seeded: ledger {ITEMS} items, sandbox holds the {changed} items whose "
              "stock/price moved")  # fmt: skip

        started = time.perf_counter()
        with sync_context(metasync, "bench", NOW, settings) as ctx:
            summary = run_stock_and_price(ctx)
        seconds = time.perf_counter() - started
        admin.close()

    expected_calls = math.ceil(changed / settings.max_batch_requests)
    print(f"cycle      {summary.items} items, {summary.volatile_updated} partial UPDATEs, "
          f"{summary.accepted} accepted, {summary.batches} items_batch calls "
          f"(expected {expected_calls}), {summary.calls} calls in all")  # fmt: skip
    print(f"cycle      15-minute stock/price cycle: {seconds:6.2f} s "
          f"(target < {TARGET_CYCLE_SECONDS:.0f} s)")  # fmt: skip
    return (
        seconds < TARGET_CYCLE_SECONDS
        and summary.accepted == changed
        and summary.batches == expected_calls
    )


def _seed(metasync, settings, read_catalog, ledger_store, sync_context) -> int:
    """The ledger as if Meta held every item with 1% of them at an older price, and the
    sandbox holding those 1% (the cycle only touches them)."""
    from pipelines.catalog.diff import item_data

    items = read_catalog(metasync.registry().get("bench"), NOW, settings).items
    stale = items.sample(frac=CHANGED_SHARE, random_state=5).index
    content = items["content_hash"].copy()
    volatile = items["volatile_hash"].copy()
    volatile.loc[stale] = "f" * 16
    content.loc[stale] = content.loc[stale].str[:STATIC_DIGEST_CHARS] + volatile.loc[stale]
    rows = [
        {"shop_id": "bench", "retailer_id": rid, "item_group_id": group or None,
         "product_id": product or None, "content_hash": c, "volatile_hash": v,
         "rejected_hash": None, "meta_status": "ACCEPTED", "last_handle": None,
         "last_error": None, "updated_at": NOW}
        for rid, group, product, c, v in zip(
            items["retailer_id"], items["item_group_id"], items["product_id"], content, volatile,
            strict=True,
        )
    ]  # fmt: skip
    ledger_store(metasync.db()).replace_all("bench", rows)
    records = [
        {"method": "CREATE", "data": item_data(row)} for row in items.loc[stale].to_dict("records")
    ]
    with sync_context(metasync, "bench", NOW, settings) as ctx:
        handles = []
        for start in range(0, len(records), 5000):
            handles += ctx.api.items_batch(records[start : start + 5000])
        ctx.api.wait_for_handles(handles, poll_interval=0.2)
    return len(stale)


PARTS = ("snapshot", "diff", "calls", "cycle")


def main(parts: list[str] | None = None) -> int:
    """Run the named parts (default: all); returns how many missed their target."""
    chosen = set(parts or PARTS)
    missed = 0
    if "snapshot" in chosen:
        print(f"snapshot   {ITEMS} items: read + normalise + diff (benchmarks.snapshot_profile)")
        missed += not snapshot_and_diff()
    if chosen & {"diff", "calls"}:
        items = generate_items_frame(ITEMS, seed=1)
        if "diff" in chosen:
            missed += not diff_versus_per_row(items)
        if "calls" in chosen:
            missed += not calls_made(items)
        del items
    if "cycle" in chosen:
        with tempfile.TemporaryDirectory() as folder:
            missed += not stock_cycle(Path(folder))
    return missed


if __name__ == "__main__":
    import sys

    raise SystemExit(main(sys.argv[1:]))

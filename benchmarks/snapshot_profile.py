"""Where a 1M-item catalog snapshot spends its time: read, normalise, diff, peak memory.

    python -m benchmarks.snapshot_profile            # 250k products x 4 variants
    python -m benchmarks.snapshot_profile --profile  # plus the top cProfile entries

The export is written first, in a child process so its memory does not count towards the
snapshot's peak RSS. It is shaped like a real Shopify export: the first row of each product
carries the title, HTML body (entities, tags, page-builder shortcodes), vendor and image; the
other rows only the variant (Size x Color), so every description repeats across 4 items. About
30% of variants are marked down with a compare-at price, stock runs out on some, and three
products are broken the way sellers break them (draft, no price, negative price).

The ledger is the snapshot's own hashes with realistic churn: 1% of items changed in full,
2% in price or stock only, 0.5% deleted from the store, 0.5% new in the store.

    python -m benchmarks.snapshot_profile --incremental   # the hourly run with a snapshot cache

`--incremental` runs `normalise_incremental` three times, each in its own process (its own peak
RSS) against one cache folder: cold (no cache: full normalisation, cache written), the unchanged
export (the usual hourly run), and the export with 1% of its products changed (a price on every
one of them, the title too on a third).
"""

import argparse
import contextlib
import cProfile
import multiprocessing
import os
import pstats
import resource
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.catalog.diff import diff_catalog
from pipelines.catalog.generator import COLORS, NAMES, SHOPIFY_COLUMNS, SIZES, VENDORS
from pipelines.catalog.normalise import NormalisedCatalog, ShopContext, normalise_catalog
from pipelines.catalog.snapshot_cache import SnapshotCache, normalise_incremental
from resources.store import source_for

PRODUCTS = 250_000
VARIANTS_PER_PRODUCT = 4  # 2 sizes x 2 colours
TARGET_SECONDS = 10.0  # snapshot (read + normalise) + diff
TARGET_RSS_MB = 2048
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)
SHOP = ShopContext(
    currency="EUR",
    timezone="Europe/Berlin",
    product_url_template="https://shop.example/products/{handle}",
    admin_url_template="https://admin.example/products/{product_id}",
)


def shopify_export_frame(products: int, seed: int = 7) -> pd.DataFrame:
    """A Shopify export of `products` x 4 variants, built column-wise (seconds, not minutes)."""
    rng = np.random.default_rng(seed)
    rows = products * VARIANTS_PER_PRODUCT
    product = np.arange(rows) // VARIANTS_PER_PRODUCT
    variant = np.arange(rows) % VARIANTS_PER_PRODUCT
    first = variant == 0
    index_text = pd.Series(product).astype("str")
    handle = "product-" + index_text
    title = pd.Series(np.array(NAMES, dtype=object)[product % len(NAMES)]) + " " + index_text
    cents = rng.integers(1_000, 12_000, size=rows)
    on_sale = rng.random(rows) < 0.3

    frame = pd.DataFrame({name: "" for name in SHOPIFY_COLUMNS}, index=range(rows))
    frame["Handle"] = handle
    frame["Option1 Value"] = np.array(SIZES, dtype=object)[variant // 2]
    frame["Option2 Value"] = np.array(COLORS, dtype=object)[variant % 2]
    frame["Variant SKU"] = "SKU-" + index_text + "-" + pd.Series(variant).astype("str")
    frame["Variant Grams"] = pd.Series(rng.integers(100, 2000, size=rows)).astype("str")
    frame["Variant Inventory Tracker"] = "shopify"
    frame["Variant Inventory Qty"] = pd.Series(rng.choice([0, 3, 8, 25], size=rows)).astype("str")
    frame["Variant Inventory Policy"] = rng.choice(["deny", "continue"], size=rows)
    frame["Variant Fulfillment Service"] = "manual"
    frame["Variant Price"] = _price_text(cents)
    frame["Variant Compare At Price"] = np.where(on_sale, _price_text(cents + 1_000), "")
    frame["Variant Requires Shipping"] = "true"
    frame["Variant Taxable"] = "true"
    frame["Variant Barcode"] = pd.Series(4_000_000_000_000 + np.arange(rows)).astype("str")
    frame["Variant Weight Unit"] = "g"
    _product_columns(frame, first, title, handle, rng)
    _break_three_products(frame)
    return frame


def _price_text(cents: np.ndarray) -> pd.Series:
    whole = pd.Series(cents // 100).astype("str")
    fraction = pd.Series(cents % 100).astype("str").str.zfill(2)
    return whole + "." + fraction


def _product_columns(
    frame: pd.DataFrame,
    first: np.ndarray,
    title: pd.Series,
    handle: pd.Series,
    rng: np.random.Generator,
) -> None:
    """Product-level fields, on each product's first row only (as Shopify exports them)."""
    body = "Soft &amp; durable " + title + " &ndash; made with care.<br>Size &gt; fit guide inside."
    shortcodes = rng.random(len(frame)) < 0.5
    page_builder = "[vc_row][vc_column]<p>" + body + "</p>[/vc_column][/vc_row]"
    plain = "<div><p><strong>" + title + "</strong></p><ul><li>" + body + "</li></ul></div>"
    values = {
        "Title": title,
        "Body (HTML)": page_builder.where(shortcodes, plain),
        "Vendor": pd.Series(rng.choice(VENDORS, size=len(frame))),
        "Product Category": "Apparel & Accessories > Clothing",
        "Type": "Apparel",
        "Published": "true",
        "Option1 Name": "Size",
        "Option2 Name": "Color",
        "Image Src": "https://cdn.example.com/" + handle + "/main.jpg",
        "Image Position": "1",
        "Gift Card": "false",
        "Status": "active",
    }
    for name, value in values.items():
        column = pd.Series(value, index=frame.index, dtype="str")
        frame[name] = column.where(first, "")


def _break_three_products(frame: pd.DataFrame) -> None:
    frame.loc[0, "Status"] = "draft"
    frame.loc[VARIANTS_PER_PRODUCT, "Variant Price"] = ""
    frame.loc[2 * VARIANTS_PER_PRODUCT, "Variant Price"] = "-5.00"


def write_export(path: Path, products: int, changed_share: float = 0.0) -> None:
    frame = shopify_export_frame(products)
    if changed_share:
        _change_products(frame, changed_share)
    frame.to_csv(path, index=False, lineterminator="\n")


def _change_products(frame: pd.DataFrame, share: float, seed: int = 13) -> None:
    """A new price on the first variant of `share` of the products, a new title on a third."""
    rng = np.random.default_rng(seed)
    products = len(frame) // VARIANTS_PER_PRODUCT
    chosen = rng.choice(products, size=max(1, int(products * share)), replace=False)
    first_rows = chosen * VARIANTS_PER_PRODUCT
    frame.loc[first_rows, "Variant Price"] = "999.00"
    retitled = first_rows[: len(first_rows) // 3]
    frame.loc[retitled, "Title"] = frame.loc[retitled, "Title"] + " (new)"


def ledger_with_churn(items: pd.DataFrame, seed: int = 11) -> pd.DataFrame:
    """The snapshot's hashes as if Meta held last run's catalog (see the module docstring)."""
    rng = np.random.default_rng(seed)
    ledger = items[["retailer_id", "content_hash", "volatile_hash"]].copy()
    roll = rng.random(len(ledger))
    full = roll < 0.01
    volatile = (roll >= 0.01) & (roll < 0.03)
    new_in_store = (roll >= 0.03) & (roll < 0.035)
    content = ledger["content_hash"]
    ledger["content_hash"] = content.where(~full, "0" * 32)
    ledger["content_hash"] = ledger["content_hash"].where(~volatile, content.str[:16] + "0" * 16)
    ledger = ledger.loc[~new_in_store]
    gone = max(1, len(items) // 200)
    deleted = pd.DataFrame(
        {
            "retailer_id": "deleted-" + pd.Series(np.arange(gone)).astype("str"),
            "content_hash": "1" * 32,
            "volatile_hash": "1" * 16,
        }
    )
    return pd.concat([ledger, deleted], ignore_index=True)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux reports KiB


@contextlib.contextmanager
def _timed(figures: dict[str, float], stage: str) -> Iterator[None]:
    """Wall and CPU seconds of a stage: CPU time shows the work when other jobs share the
    machine's cores and stretch the wall time."""
    wall, cpu = time.perf_counter(), time.process_time()
    yield
    figures[f"{stage}_s"] = time.perf_counter() - wall
    figures[f"{stage}_cpu_s"] = time.process_time() - cpu


def run(path: Path) -> dict[str, float]:
    """Figures for one snapshot + diff of the export at `path`."""
    return _profile(path, lambda raw: normalise_catalog(raw, "shopify_csv", SHOP, now=NOW))


def run_incremental(path: Path, cache_dir: Path) -> dict[str, float]:
    """Figures for one snapshot + diff through the snapshot cache in `cache_dir`."""
    return _profile(
        path,
        lambda raw: normalise_incremental(
            raw, "shopify_csv", SHOP, now=NOW, cache=SnapshotCache(cache_dir)
        ),
    )


def _profile(
    path: Path, normalise: Callable[[pd.DataFrame], NormalisedCatalog]
) -> dict[str, float]:
    """Read the export at `path`, normalise it with `normalise`, diff it against a churned
    ledger: the time of each stage, peak memory and the counts of both."""
    figures: dict[str, float] = {"rss_before_mb": peak_rss_mb()}
    with _timed(figures, "read"):
        raw = source_for("shopify_csv", str(path)).read()
    with _timed(figures, "normalise"):
        catalog = normalise(raw)
    del raw
    ledger = ledger_with_churn(catalog.items)
    with _timed(figures, "diff"):
        changes = diff_catalog(catalog.items, ledger)
    figures["peak_rss_mb"] = peak_rss_mb()
    figures.update({f"n_{key}": value for key, value in catalog.counts().items()})
    figures.update({f"n_{key}": value for key, value in changes.counts().items()})
    return figures


def _incremental_child(path: Path, cache_dir: Path, queue: multiprocessing.Queue) -> None:
    queue.put(run_incremental(path, cache_dir))


def incremental(folder: Path, products: int) -> int:
    """Cold, unchanged and 1%-changed runs through one cache, each in its own process."""
    changed = folder / "products_changed.csv"
    _spawn(write_export, changed, products, 0.01)
    context = multiprocessing.get_context("spawn")
    status = 0
    scenarios = (
        ("cold (no cache)", folder / "products_export.csv"),
        ("unchanged", folder / "products_export.csv"),
        ("1% changed", changed),
    )
    for name, path in scenarios:
        queue = context.Queue()
        child = context.Process(target=_incremental_child, args=(path, folder / "cache", queue))
        child.start()
        figures = queue.get()
        child.join()
        print(f"--- {name}")
        missed = report(figures)
        if path == changed or name == "unchanged":  # the targets are for the cached runs
            status |= missed
    return status


def _spawn(target, *args) -> None:
    # a spawned child: generating an export must not inflate this process's peak RSS
    child = multiprocessing.get_context("spawn").Process(target=target, args=args)
    child.start()
    child.join()
    if child.exitcode != 0:
        raise RuntimeError(f"export generation failed (exit code {child.exitcode})")


def report(figures: dict[str, float]) -> int:
    stages = ("read", "normalise", "diff")
    total = sum(figures[f"{stage}_s"] for stage in stages)
    for stage in stages:
        print(f"{stage:<10} {figures[f'{stage}_s']:7.2f} s wall "
              f"({figures[f'{stage}_cpu_s']:.2f} s CPU)")  # fmt: skip
    print(f"total      {total:7.2f} s wall (target <= {TARGET_SECONDS:.0f} s; "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")  # fmt: skip
    print(f"peak RSS   {figures['peak_rss_mb']:7.0f} MB  (target <= {TARGET_RSS_MB} MB; "
          f"{figures['rss_before_mb']:.0f} MB before reading)")  # fmt: skip
    counts = {k[2:]: int(v) for k, v in figures.items() if k.startswith("n_")}
    print("counts     " + ", ".join(f"{k} {v}" for k, v in counts.items()))
    return int(total > TARGET_SECONDS or figures["peak_rss_mb"] > TARGET_RSS_MB)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--products", type=int, default=PRODUCTS)
    parser.add_argument("--profile", action="store_true", help="print the top cProfile entries")
    parser.add_argument(
        "--incremental", action="store_true", help="cold, unchanged and 1%%-changed cached runs"
    )
    args = parser.parse_args(argv if argv is not None else [])

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "products_export.csv"
        started = time.perf_counter()
        # a spawned child: generating the export must not inflate this process's peak RSS
        child = multiprocessing.get_context("spawn").Process(
            target=write_export, args=(path, args.products)
        )
        child.start()
        child.join()
        if child.exitcode != 0:
            print(f"export generation failed (exit code {child.exitcode})")
            return 1
        size_mb = path.stat().st_size / 1e6
        rows = args.products * VARIANTS_PER_PRODUCT
        print(f"export     {rows} rows, {size_mb:.0f} MB, written in "
              f"{time.perf_counter() - started:.1f} s")  # fmt: skip

        if args.incremental:
            return incremental(Path(folder), args.products)
        if not args.profile:
            return report(run(path))
        profiler = cProfile.Profile()
        figures = profiler.runcall(run, path)
        status = report(figures)
        pstats.Stats(profiler).sort_stats("cumulative").print_stats(45)
        return status


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""Incremental snapshots equal the full normalisation, whatever changed in the store."""

import csv
import io
import random
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.catalog import snapshot_cache
from pipelines.catalog.generator import shopify_rows, write_woocommerce_csv
from pipelines.catalog.normalise import FieldLimits, NormalisedCatalog, normalise_catalog
from pipelines.catalog.snapshot_cache import SnapshotCache, normalise_incremental
from resources.store import source_for
from tests.unit.catalog.conftest import NOW

LATER = [
    NOW,
    datetime(2030, 1, 15, tzinfo=UTC),  # inside the generated sale windows
    datetime(2030, 2, 15, tzinfo=UTC),  # after them
    datetime(2024, 1, 1, tzinfo=UTC),  # a rerun for an earlier time
]
SHOPIFY_VALUES = ["", "x", "10.00", "10.5", "-1", "abc", "0", "Red", "S", "Default Title",
                  "draft", "archived", "true", "false", "//cdn.example.com/a.jpg",
                  "https://i.example/b.jpg", "product-1", "product-2", "product-1:s", "[b]x[/b]",
                  "<p>t</p>", "\x1f", "continue", "99999.999"]  # fmt: skip
WOO_VALUES = ["", "simple", "variable", "variation", "grouped", "downloadable, virtual",
              "id:100", "id:101", "100", "101", "woo-1", "woo-3", "1", "0", "-1", "12.00",
              "2030-01-01", "2030-01-31", "2030-01-20 10:00", "hidden", "x", "\x1f"]  # fmt: skip


def export_text(columns: list[str], rows: list[dict[str, str]]) -> str:
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()


def base_export(kind: str, tmp: Path, products: int) -> tuple[list[str], list[dict[str, str]]]:
    if kind == "shopify_csv":
        rows = shopify_rows(seed=3, products=products)
        columns = [*rows[0].keys(), "Variant ID"]
        for row in rows:
            row["Variant ID"] = ""
        return columns, rows
    path = write_woocommerce_csv(tmp / "woo.csv", seed=3, products=products)
    with path.open(encoding="utf-8", newline="") as handle:
        reader = csv.DictReader(handle)
        return list(reader.fieldnames or []), list(reader)


def mutate(rows: list[dict], columns: list[str], values: list[str], rng: random.Random) -> list:
    rows = [dict(row) for row in rows]
    for _ in range(rng.randint(0, 4)):
        action = rng.choice(["cell", "cell", "cell", "delete", "copy", "move", "new product"])
        if not rows:
            break
        at = rng.randrange(len(rows))
        if action == "cell":
            rows[at][rng.choice(columns)] = rng.choice(values)
        elif action == "delete":
            del rows[at]
        elif action == "copy":
            rows.insert(rng.randrange(len(rows) + 1), dict(rows[at]))
        elif action == "move":
            rows.insert(rng.randrange(len(rows)), rows.pop(at))
        else:
            row = dict(rows[at])
            for name in ("Handle", "ID", "SKU"):
                if name in row:
                    row[name] = f"{row[name]}-new{rng.randrange(99)}"
            rows.insert(rng.randrange(len(rows) + 1), row)
    return rows


def assert_same(incremental: NormalisedCatalog, full: NormalisedCatalog) -> None:
    for name in ("items", "excluded", "rejected"):
        pd.testing.assert_frame_equal(
            getattr(incremental, name), getattr(full, name), check_exact=True, obj=name
        )
    for name in ("price_amount", "sale_price_amount"):  # 12.50 and 12.5 are ==, not the same
        assert incremental.items[name].map(str).tolist() == full.items[name].map(str).tolist()
    assert incremental.notes == full.notes


def snapshot(kind: str, path: Path, shop, now: datetime, cache: SnapshotCache):
    raw = source_for(kind, str(path)).read()
    full = normalise_catalog(raw.copy(), kind, shop, FieldLimits(), now)
    incremental = normalise_incremental(raw, kind, shop, FieldLimits(), now, cache)
    return incremental, full


@pytest.mark.parametrize("kind", ["shopify_csv", "woocommerce_csv"])
@settings(
    max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(seed=st.integers(0, 10_000), nows=st.lists(st.sampled_from(LATER), min_size=3, max_size=3))
def test_incremental_equals_full_after_random_changes(kind, seed, nows, tmp_path, shop) -> None:
    rng = random.Random(seed)
    folder = Path(tempfile.mkdtemp(dir=tmp_path))
    columns, rows = base_export(kind, folder, products=rng.randint(6, 12))
    values = SHOPIFY_VALUES if kind == "shopify_csv" else WOO_VALUES
    cache = SnapshotCache(folder / "cache")
    path = folder / "export.csv"
    for now in nows:  # cold, then two changed snapshots, each from the one before
        path.write_text(export_text(columns, rows), encoding="utf-8")
        assert_same(*snapshot(kind, path, shop, now, cache))
        rows = mutate(rows, columns, values, rng)


@pytest.fixture
def normalised_rows(monkeypatch) -> list[list[int]]:
    """The source rows each normalisation call was given (full or partial)."""
    calls: list[list[int]] = []
    real = snapshot_cache.normalise_parts

    def spy(raw, *args, **kwargs):
        calls.append(raw["source_row"].tolist())
        return real(raw, *args, **kwargs)

    monkeypatch.setattr(snapshot_cache, "normalise_parts", spy)
    return calls


def write_rows(path: Path, columns: list[str], rows: list[dict[str, str]]) -> Path:
    path.write_text(export_text(columns, rows), encoding="utf-8")
    return path


def cached_export(kind: str, tmp_path: Path, products: int):
    """A generated export written to tmp_path/export.csv and an empty snapshot cache beside it:
    (columns, rows, path, cache)."""
    columns, rows = base_export(kind, tmp_path, products)
    path = write_rows(tmp_path / "export.csv", columns, rows)
    return columns, rows, path, SnapshotCache(tmp_path / "cache")


def product_rows_of(rows: list[dict[str, str]], handle: str) -> list[int]:
    return [number + 2 for number, row in enumerate(rows) if row["Handle"] == handle]


def test_only_changed_products_are_normalised_again(tmp_path, shop, normalised_rows) -> None:
    columns, rows, path, cache = cached_export("shopify_csv", tmp_path, products=8)
    assert_same(*snapshot("shopify_csv", path, shop, NOW, cache))
    assert normalised_rows == [list(range(2, len(rows) + 2))]  # cold: everything

    normalised_rows.clear()
    assert_same(*snapshot("shopify_csv", path, shop, NOW, cache))
    assert normalised_rows == []  # unchanged: nothing

    changed = next(row for row in rows if row["Handle"] == "product-5" and row["Variant SKU"])
    changed["Variant Price"] = "12.34"
    write_rows(path, columns, rows)
    assert_same(*snapshot("shopify_csv", path, shop, NOW, cache))
    assert normalised_rows == [product_rows_of(rows, "product-5")]


def test_moved_rows_keep_cached_output_with_their_new_row_numbers(
    tmp_path, shop, normalised_rows
) -> None:
    columns, rows, path, cache = cached_export("shopify_csv", tmp_path, products=8)
    snapshot("shopify_csv", path, shop, NOW, cache)
    normalised_rows.clear()
    last = [row for row in rows if row["Handle"] == "product-7"]
    rows = last + [row for row in rows if row["Handle"] != "product-7"]  # moved to the top
    incremental, full = snapshot("shopify_csv", write_rows(path, columns, rows), shop, NOW, cache)
    assert_same(incremental, full)
    assert normalised_rows == []
    assert incremental.items["source_row"].iloc[0] == 2


def test_a_duplicate_id_in_a_changed_product_rejects_the_unchanged_copy_too(
    tmp_path, shop, normalised_rows
) -> None:
    columns, rows, path, cache = cached_export("shopify_csv", tmp_path, products=8)
    snapshot("shopify_csv", path, shop, NOW, cache)
    first = next(row for row in rows if row["Handle"] == "product-4" and row["Variant SKU"])
    copy = next(row for row in rows if row["Handle"] == "product-6" and row["Variant SKU"])
    copy["Variant ID"] = first["Variant ID"] = ""
    copy["Variant ID"] = "shared-id"
    write_rows(path, columns, rows)
    snapshot("shopify_csv", path, shop, NOW, cache)  # product-6 now holds "shared-id"
    first["Variant ID"] = "shared-id"  # product-4 takes it too: both copies are rejected
    incremental, full = snapshot("shopify_csv", write_rows(path, columns, rows), shop, NOW, cache)
    assert_same(incremental, full)
    duplicates = incremental.rejected.loc[incremental.rejected["reason"] == "duplicate_id"]
    assert len(duplicates) == 2
    assert set(normalised_rows[-1]) >= set(product_rows_of(rows, "product-6"))


def test_a_sale_ending_between_snapshots_is_normalised_again(tmp_path, shop) -> None:
    columns, rows, path, cache = cached_export("woocommerce_csv", tmp_path, products=9)
    during = datetime(2030, 1, 15, tzinfo=UTC)
    incremental, full = snapshot("woocommerce_csv", path, shop, during, cache)
    on_sale = incremental.items["sale_price_effective_date"] != ""
    assert on_sale.any()  # the generated export has a sale window in January 2030
    after = datetime(2030, 2, 15, tzinfo=UTC)
    incremental, full = snapshot("woocommerce_csv", path, shop, after, cache)
    assert_same(incremental, full)
    assert (incremental.items["sale_price_effective_date"] == "").all()


def test_other_limits_or_an_unreadable_cache_mean_a_full_normalisation(
    tmp_path, shop, normalised_rows
) -> None:
    columns, rows, path, cache = cached_export("shopify_csv", tmp_path, products=6)
    raw = source_for("shopify_csv", str(path)).read()
    normalise_incremental(raw, "shopify_csv", shop, FieldLimits(), NOW, cache)
    shorter = FieldLimits(title=5)
    catalog = normalise_incremental(raw, "shopify_csv", shop, shorter, NOW, cache)
    assert len(normalised_rows[-1]) == len(rows)
    assert_same(catalog, normalise_catalog(raw, "shopify_csv", shop, shorter, NOW))

    generation = (cache.directory / "CURRENT").read_text()
    (cache.directory / generation / "items.arrow").write_bytes(b"not arrow")
    catalog = normalise_incremental(raw, "shopify_csv", shop, shorter, NOW, cache)
    assert len(normalised_rows[-1]) == len(rows)
    assert_same(catalog, normalise_catalog(raw, "shopify_csv", shop, shorter, NOW))
    assert (cache.directory / "CURRENT").read_text() != generation  # written again


def test_shop_cache_folder_is_a_safe_name(tmp_path) -> None:
    assert SnapshotCache.for_shop("acme").directory.name == "acme"
    odd = SnapshotCache.for_shop("../etc")
    assert odd.directory.parent.name == "catalog_cache" and ".." not in odd.directory.name

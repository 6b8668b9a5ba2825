"""Bad store exports never crash a run nor lose what is already on Meta: a good sync first, then
hypothesis-generated damage (wrong encodings, missing columns, ragged rows, huge fields, negative
or non-numeric prices, duplicate ids, formula-injection strings) - every raw row is an item, an
exclusion or a reject with its reason; a truly unreadable file fails only that shop's run, with a
message naming the file and the problem."""

import csv
import io
import sqlite3
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import update

from pipelines.catalog.issues import SellerIssueStore
from pipelines.catalog.sync import CatalogRefused
from resources.db.schema import shops
from resources.onboarding import register_from_install
from resources.shops import InvalidShop
from resources.store.base import StoreSourceError
from sandbox.catalog.models import catalog_backend
from sandbox.client import SandboxAdmin
from sandbox.server import SandboxServer
from tests.harness.conftest import count
from tests.harness.world import World

SHOPIFY_DAMAGE = st.sampled_from([
    ("Variant Price", "-5.00"), ("Variant Price", "abc"), ("Variant Price", "1e400"),
    ("Variant Price", "12,5"), ("Variant Price", ""), ("Variant Price", "=1+1"),
    ("Title", "=HYPERLINK(\"http://evil.example\")"), ("Title", "x" * 200_000),
    ("Title", "@SUM(A1)"), ("Variant SKU", "SKU-0-0"), ("Variant SKU", ""),
    ("Body (HTML)", "\x00\x01 nul"), ("Variant Inventory Qty", "lots"),
    ("Image Src", "javascript:alert(1)"), ("Handle", ""),
])  # fmt: skip
WOO_DAMAGE = st.sampled_from([
    ("Regular price", "-5.00"), ("Regular price", "abc"), ("Regular price", "1e400"),
    ("Regular price", ""), ("Regular price", "=1+1"), ("Sale price", "-1"),
    ("Name", "=HYPERLINK(\"http://evil.example\")"), ("Name", "x" * 200_000),
    ("Name", "+SUM(A1)"), ("SKU", "woo-0"), ("ID", "102"), ("ID", ""),
    ("Stock", "lots"), ("Images", "javascript:alert(1)"), ("Type", "bundle"),
    ("Parent", "id:999999"), ("Date sale price ends", "not a date"),
])  # fmt: skip
SHAPES = st.sampled_from(["keep", "ragged_short", "ragged_long", "drop_column", "latin-1"])
OPTIONAL_COLUMN = {"shopify_csv": "Variant Compare At Price", "woocommerce_csv": "Sale price"}
RAGGED_ROW = {"ragged_short": 3, "ragged_long": 4}  # spreadsheet rows the shapes below damage


def damaged_export(good: str, damages, shape: str, optional_column: str) -> bytes:
    rows = list(csv.reader(io.StringIO(good)))
    header, body = rows[0], rows[1:]
    for row_no, (column, value) in damages:
        body[row_no % len(body)][header.index(column)] = value
    if shape == "ragged_short":
        body[1] = body[1][:5]
    elif shape == "ragged_long":
        body[2] = [*body[2], "extra", "cells"]
    elif shape == "drop_column":  # an optional column gone
        drop = header.index(optional_column)
        header = header[:drop] + header[drop + 1 :]
        body = [row[:drop] + row[drop + 1 :] for row in body]
    out = io.StringIO()
    csv.writer(out, lineterminator="\n").writerows([header, *body])
    return out.getvalue().encode("latin-1" if shape == "latin-1" else "utf-8", "replace")


def live_items(sandbox: SandboxServer, shop_id: str) -> set[str]:
    state = sandbox.state
    with state.lock:
        items = catalog_backend(state).catalog(state.shops[shop_id]).items.values()
        return {item.retailer_id for item in items}


def store_issues(world: World, shop_id: str) -> dict[str, list[str]]:
    """Open store-side seller issues: reason -> details."""
    issues: dict[str, list[str]] = {}
    for issue in SellerIssueStore(world.metasync.db()).open_issues(shop_id):
        if issue["source"] == "store":
            reason = issue["issue_type"].removeprefix("store:")
            issues.setdefault(reason, []).append(issue["detail"] or "")
    return issues


def sync_damaged_export(world: World, sandbox: SandboxServer, shop_id: str, damages, shape: str):
    """A good sync once per test, then the damaged export: every raw row is accounted for,
    a ragged row is one reject naming its row and cell counts, Meta keeps what it had."""
    export = world.store_file(shop_id)
    if not hasattr(world, "good_export"):
        world.run("catalog", shop_id)
        world.good_export = export.read_text(encoding="utf-8")
    before = live_items(sandbox, shop_id)
    kind = world.metasync.registry().get(shop_id).source_kind
    export.write_bytes(damaged_export(world.good_export, damages, shape, OPTIONAL_COLUMN[kind]))
    count("bad inputs tried", 1)

    try:
        summary = world.run("catalog", shop_id)
    except CatalogRefused as refused:  # the snapshot shrank past the guard: said, nothing sent
        assert f"shop {shop_id}" in str(refused)
    else:
        raw_rows = len(list(csv.reader(io.StringIO(export.read_bytes().decode("latin-1"))))) - 1
        assert summary.items + summary.excluded + summary.store_rejected == raw_rows
        assert summary.store_rejected > 0 or summary.excluded > 0 or shape != "keep"
        if shape in RAGGED_ROW:
            row = RAGGED_ROW[shape]
            width = len(next(csv.reader(io.StringIO(world.good_export))))
            cells = {"ragged_short": 5, "ragged_long": width + 2}[shape]
            assert any(
                detail.startswith(f"row {row} has {cells} cells, the header has")
                for detail in store_issues(world, shop_id)["malformed_row"]
            ), store_issues(world, shop_id)
    after = live_items(sandbox, shop_id)
    # The delta's deletion cap (10%) holds back mass deletions a broken export would cause.
    assert len(before - after) <= max(1, len(before) // 10), sorted(before - after)
    export.write_text(world.good_export, encoding="utf-8")
    world.run("catalog", shop_id)  # back to good for the next example


@settings(max_examples=12, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(damages=st.lists(st.tuples(st.integers(0, 40), SHOPIFY_DAMAGE), min_size=1, max_size=6),
       shape=SHAPES)  # fmt: skip
def test_a_damaged_export_rejects_rows_with_reasons_and_loses_nothing_on_meta(
    world: World, sandbox: SandboxServer, damages, shape
):
    sync_damaged_export(world, sandbox, "acme", damages, shape)


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(damages=st.lists(st.tuples(st.integers(0, 40), WOO_DAMAGE), min_size=1, max_size=6),
       shape=SHAPES)  # fmt: skip
def test_a_damaged_woocommerce_export_rejects_rows_with_reasons_and_loses_nothing_on_meta(
    woo_world: World, sandbox: SandboxServer, damages, shape
):
    sync_damaged_export(woo_world, sandbox, "cedar", damages, shape)


@pytest.mark.parametrize("content", [b"\x89PNG\r\n\x1a\n\x00\x00binary", b"", b"sku;price\n1;2\n"],
                         ids=["binary", "empty", "not-shopify"])  # fmt: skip
def test_an_unreadable_export_fails_that_shop_naming_the_file_while_the_other_syncs(
    world: World, sandbox: SandboxServer, content: bytes
):
    world.run("catalog", "acme")
    before = live_items(sandbox, "acme")
    world.store_file("acme").write_bytes(content)
    count("bad inputs tried", 1)

    with pytest.raises(StoreSourceError) as failed:
        world.run("catalog", "acme")
    assert str(world.store_file("acme")) in str(failed.value)
    assert failed.value.problem
    world.run("catalog", "bolt")  # the other shop's run goes on
    assert live_items(sandbox, "bolt")
    assert live_items(sandbox, "acme") == before


def test_an_unknown_currency_is_refused_at_registration_and_fails_only_that_shops_run(
    world: World, sandbox: SandboxServer
):
    registry = world.metasync.registry()
    acme = registry.get("acme")
    count("bad inputs tried", 2)
    with pytest.raises(InvalidShop, match="shop acme: currency 'XYZ' is not an ISO 4217 code"):
        registry.add(acme.model_copy(update={"currency": "XYZ"}), token="EAAB-any")
    assert registry.get("acme").currency == "EUR"

    # a shop stored before the check: its catalog run says why instead of rejecting every row
    world.run("catalog", "acme")
    before = live_items(sandbox, "acme")
    with world.metasync.db().begin() as conn:
        conn.execute(update(shops).where(shops.c.shop_id == "acme").values(currency="XYZ"))
    with pytest.raises(ValueError, match="currency 'XYZ' is not an ISO 4217 code"):
        world.run("catalog", "acme")
    assert live_items(sandbox, "acme") == before
    world.run("catalog", "bolt")
    assert live_items(sandbox, "bolt")


# -- SQL table stores ------------------------------------------------------------------------

SQL_COLUMNS = ("variant_id", "product_id", "title", "price", "currency", "image_link", "link",
               "brand", "inventory", "sale_price", "description")  # fmt: skip
SQL_DAMAGE = st.sampled_from([
    ("price", None), ("price", "abc"), ("price", -5), ("price", "-5.00"), ("price", 12.345),
    ("price", b"\x00\x01"), ("price", "1e400"), ("title", None), ("title", "x" * 200_000),
    ("title", "=HYPERLINK(\"http://evil.example\")"), ("variant_id", "v0"), ("variant_id", None),
    ("inventory", "lots"), ("inventory", 3.7), ("currency", "XYZ"), ("sale_price", "-1"),
    ("image_link", 42), ("link", "javascript:alert(1)"), ("description", "\x00 nul"),
])  # fmt: skip
SQL_SHAPES = st.sampled_from(["keep", "drop_optional", "extra_column"])


def good_sql_rows(count: int = 12) -> list[dict]:
    return [
        {"variant_id": f"v{i}", "product_id": f"p{i // 3}", "title": f"Mug {i}",
         "price": "12.50", "currency": "", "image_link": f"https://img.example/{i}.jpg",
         "link": f"https://shop.example/p/{i}", "brand": "Harness", "inventory": 5,
         "sale_price": None, "description": "<p>A mug</p>"}
        for i in range(count)
    ]  # fmt: skip


def write_sql_store(path: Path, rows: list[dict], columns: tuple[str, ...]) -> None:
    """The store's table, typed as a seller's would be (NUMERIC money, INTEGER stock); SQLite
    keeps whatever a row holds, so wrong types reach the reader as they would from a view."""
    types = {"price": "NUMERIC", "sale_price": "NUMERIC", "inventory": "INTEGER"}
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE IF EXISTS variants")
        declared = ", ".join(f"{c} {types.get(c, 'TEXT')}" for c in columns)
        db.execute(f"CREATE TABLE variants ({declared})")
        marks = ", ".join("?" for _ in columns)
        db.executemany(
            f"INSERT INTO variants VALUES ({marks})",
            [tuple(row.get(c) for c in columns) for row in rows],
        )


@pytest.fixture
def sql_shop(world: World, sandbox_admin: SandboxAdmin) -> Path:
    """`dune`, a shop whose store is an SQL table; the path of its SQLite database."""
    store = world.workdir / "dune-store.db"
    write_sql_store(store, good_sql_rows(), SQL_COLUMNS)
    created = sandbox_admin.create_shop("dune", "Dune", currency="EUR")
    register_from_install(
        world.metasync.registry(), shop_id="dune", name="Dune", install=created,
        token=created["access_token"], currency="EUR", timezone="UTC", source_kind="sql",
        source_location=f"sqlite:///{store}#variants",
    )  # fmt: skip
    world.run("catalog", "dune")
    return store


@settings(max_examples=8, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture])  # fmt: skip
@given(damages=st.lists(st.tuples(st.integers(0, 11), SQL_DAMAGE), min_size=1, max_size=5),
       shape=SQL_SHAPES)  # fmt: skip
def test_a_damaged_sql_table_rejects_rows_with_reasons_and_loses_nothing_on_meta(
    world: World, sandbox: SandboxServer, sql_shop: Path, damages, shape
):
    rows, columns = good_sql_rows(), SQL_COLUMNS
    for row_no, (column, value) in damages:
        rows[row_no][column] = value
    if shape == "drop_optional":
        columns = tuple(c for c in columns if c not in ("inventory", "description"))
    elif shape == "extra_column":
        columns = (*columns, "notes")
    before = live_items(sandbox, "dune")
    write_sql_store(sql_shop, rows, columns)
    count("bad inputs tried", 1)

    summary = world.run("catalog", "dune")
    assert summary.items + summary.excluded + summary.store_rejected == len(rows)
    assert summary.store_rejected > 0 or shape != "keep"
    after = live_items(sandbox, "dune")
    assert len(before - after) <= max(1, len(before) // 10), sorted(before - after)
    write_sql_store(sql_shop, good_sql_rows(), SQL_COLUMNS)
    world.run("catalog", "dune")  # back to good for the next example


@pytest.mark.parametrize("problem", ["no_price_column", "no_table"])
def test_an_unreadable_sql_store_fails_that_shop_naming_the_table(
    world: World, sandbox: SandboxServer, sql_shop: Path, problem: str
):
    before = live_items(sandbox, "dune")
    if problem == "no_price_column":
        write_sql_store(sql_shop, good_sql_rows(), tuple(c for c in SQL_COLUMNS if c != "price"))
    else:
        with sqlite3.connect(sql_shop) as db:
            db.execute("DROP TABLE variants")
    count("bad inputs tried", 1)

    with pytest.raises(StoreSourceError) as failed:
        world.run("catalog", "dune")
    assert f"{sql_shop}#variants" in str(failed.value)
    assert {"no_price_column": "missing required column(s) price",
            "no_table": "'variants' not found"}[problem] in failed.value.problem  # fmt: skip
    assert live_items(sandbox, "dune") == before

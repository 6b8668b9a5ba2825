"""Store sources read exports faithfully and fail loudly, naming the file and the problem."""

import sqlite3
from pathlib import Path

import pytest

from resources.store import StoreSourceError, source_for
from tests.unit.catalog.conftest import DATASETS, REAL_EXPORTS


@pytest.mark.parametrize(("kind", "path"), REAL_EXPORTS, ids=lambda v: getattr(v, "name", v))
def test_real_exports_read_every_row_with_spreadsheet_row_numbers(kind: str, path: Path) -> None:
    """source_row counts from 2 (the header is row 1) and is unique."""
    raw = source_for(kind, str(path)).read()
    assert raw["source_row"].tolist() == list(range(2, len(raw) + 2))
    assert all(dtype == "str" or name == "source_row" for name, dtype in raw.dtypes.items())


def test_missing_file_names_the_file() -> None:
    with pytest.raises(StoreSourceError, match=r"shopify_csv source 'nope\.csv': file not found"):
        source_for("shopify_csv", "nope.csv").read()


def test_missing_required_columns(tmp_path: Path) -> None:
    path = tmp_path / "tax.csv"
    path.write_bytes((DATASETS / "woocommerce" / "sample_tax_rates.csv").read_bytes())
    with pytest.raises(StoreSourceError, match="missing required column.*ID"):
        source_for("woocommerce_csv", str(path)).read()


def test_cp1252_file_falls_back_with_a_note(tmp_path: Path) -> None:
    path = tmp_path / "latin.csv"
    text = "Handle,Title,Variant Price\ncafe,Café crème,4.50\n"
    path.write_bytes(text.encode("cp1252"))
    source = source_for("shopify_csv", str(path))
    raw = source.read()
    assert raw.loc[0, "Title"] == "Café crème"
    assert source.notes == ["file is not UTF-8; decoded as cp1252"]
    assert raw.attrs["notes"] == source.notes


def test_undecodable_file_is_an_error(tmp_path: Path) -> None:
    path = tmp_path / "binary.csv"
    path.write_bytes(b"Handle,Title,Variant Price\n\x81\x8d\x90,x,1\n")
    with pytest.raises(StoreSourceError, match="cannot decode as UTF-8 or cp1252"):
        source_for("shopify_csv", str(path)).read()


def test_ragged_rows_are_blanked_and_named_while_the_others_read(tmp_path: Path) -> None:
    """A row with too many or too few cells (a stray comma or quote) cannot be lined up with
    the header: its cells are not trusted, and it is one malformed_row reject."""
    path = tmp_path / "ragged.csv"
    path.write_text(
        "Handle,Title,Variant Price\n"
        "a,Mug,4.50\n"
        "b,Jumper, large,12.00\n"  # 4 cells
        '"c,Cap\n'  # an unclosed quote swallows the rest: 1 cell
    )
    source = source_for("shopify_csv", str(path))
    raw = source.read()
    assert raw["source_row"].tolist() == [2, 3, 4]
    assert raw["_row_problem"].tolist() == [
        "",
        "row 3 has 4 cells, the header has 3",
        "row 4 has 1 cells, the header has 3",
    ]
    assert raw.loc[1, "Handle"] == "" and raw.loc[0, "Handle"] == "a"
    rows = source.to_store_rows(raw)
    assert rows.items["variant_id"].tolist() == ["a:default"]
    assert rows.rejected[["source_row", "reason"]].values.tolist() == [
        [3, "malformed_row"],
        [4, "malformed_row"],
    ]


def test_a_short_woocommerce_row_is_a_reject_not_padded(tmp_path: Path) -> None:
    path = tmp_path / "woo.csv"
    path.write_text("ID,Type,Name,Regular price\n1,simple,Mug,4.50\n2,simple\n")
    source = source_for("woocommerce_csv", str(path))
    rows = source.to_store_rows(source.read())
    assert rows.items["variant_id"].tolist() == ["1"]
    assert rows.rejected["detail"].tolist() == ["row 3 has 2 cells, the header has 4"]


def test_woocommerce_managed_stock_at_zero_is_not_in_stock(tmp_path: Path) -> None:
    """A variation flagged in stock with Stock 0 is sold out (WooCommerce shows it so);
    with backorders allowed it is available for order; an unmanaged stock keeps the flag."""
    path = tmp_path / "woo.csv"
    path.write_text(
        "ID,Type,Name,Regular price,In stock?,Stock,Backorders allowed?\n"
        "1,simple,Mug,4.50,1,0,0\n"
        "2,simple,Cup,4.50,1,0,notify\n"
        "3,simple,Jug,4.50,1,,0\n"
        "4,simple,Pot,4.50,1,7,0\n"
        "5,simple,Pan,4.50,0,7,0\n"
    )
    source = source_for("woocommerce_csv", str(path))
    items = source.to_store_rows(source.read()).items
    assert dict(zip(items["variant_id"], items["availability"], strict=True)) == {
        "1": "out of stock",
        "2": "available for order",
        "3": "in stock",
        "4": "in stock",
        "5": "out of stock",
    }


def test_utf8_bom_and_new_shopify_headers(tmp_path: Path) -> None:
    """The 2024 export's headers (URL handle, Price, Product image URL) map to classic ones."""
    path = tmp_path / "new.csv"
    path.write_text(
        "\ufeffTitle,URL handle,Description,Vendor,Price,Product image URL,Option1 name,"
        "Option1 value,Option1 Linked To\n"
        "Größe Tee,tee,<p>x</p>,Acme,10,https://i.example/t.jpg,Size,M,\n",
        encoding="utf-8",
    )
    raw = source_for("shopify_csv", str(path)).read()
    assert {"Handle", "Variant Price", "Image Src", "Option1 Value"} <= set(raw.columns)
    assert raw.loc[0, "Title"] == "Größe Tee"


def test_unknown_kind_lists_known_kinds() -> None:
    with pytest.raises(StoreSourceError, match="shopify_csv, sql, woocommerce_csv"):
        source_for("magento", "x")


def test_sql_source_reads_a_table_in_variant_order(tmp_path: Path) -> None:
    db = tmp_path / "shop.db"
    with sqlite3.connect(db) as connection:
        connection.execute(
            "create table variants (variant_id text, product_id text, title text, price numeric,"
            " kind text, status text)"
        )
        connection.executemany(
            "insert into variants values (?, ?, ?, ?, ?, ?)",
            [("v2", "p1", "Tee", "9.90", "", ""), ("v1", "p1", "Tee", "9.90", "", "draft"),
             ("p1", "p1", "Tee", "", "parent", "")],
        )  # fmt: skip
    source = source_for("sql", f"sqlite:///{db}#variants")
    raw = source.read()
    assert raw["variant_id"].tolist() == ["p1", "v1", "v2"]
    rows = source.to_store_rows(raw)
    assert rows.items["variant_id"].tolist() == ["v2"]
    assert rows.items["item_group_id"].tolist() == ["p1"]
    assert sorted(rows.excluded["reason"]) == ["draft", "parent_of_variants"]


def test_sql_source_errors_name_the_table(tmp_path: Path) -> None:
    location = f"sqlite:///{tmp_path / 'empty.db'}#products"
    with pytest.raises(StoreSourceError, match="'products' not found"):
        source_for("sql", location).read()

"""Normalisation: every source row accounted for, identity, money, text and limits."""

from decimal import Decimal
from pathlib import Path

import pandas as pd
import pytest

from pipelines.catalog.generator import write_shopify_csv, write_woocommerce_csv
from pipelines.catalog.normalise import (
    ITEM_COLUMNS,
    FieldLimits,
    NormalisedCatalog,
    ShopContext,
    clean_text,
    format_price,
    normalise_catalog,
)
from resources.store import source_for
from tests.unit.catalog.conftest import NOW, REAL_EXPORTS

SHOPIFY_HEADER = (
    "Handle,Title,Body (HTML),Vendor,Published,Option1 Name,Option1 Value,Variant SKU,"
    "Variant Inventory Qty,Variant Inventory Policy,Variant Price,Variant Compare At Price,"
    "Image Src,Image Position,Status\n"
)


def normalise_file(kind: str, path: Path, shop: ShopContext, **kwargs) -> NormalisedCatalog:
    return normalise_catalog(source_for(kind, str(path)).read(), kind, shop, now=NOW, **kwargs)


def normalise_text(tmp_path: Path, kind: str, text: str, shop: ShopContext, **kwargs):
    path = tmp_path / "export.csv"
    path.write_text(text, encoding="utf-8")
    return normalise_file(kind, path, shop, **kwargs)


def assert_accounted(raw_rows: list[int], catalog: NormalisedCatalog) -> None:
    seen = [
        *catalog.items["source_row"],
        *catalog.excluded["source_row"],
        *catalog.rejected["source_row"],
    ]
    assert sorted(seen) == sorted(raw_rows)


@pytest.mark.parametrize(
    ("kind", "path", "expected"),
    [
        (*REAL_EXPORTS[0], {"items": 22, "excluded": 0, "rejected": 0}),
        (*REAL_EXPORTS[1], {"items": 21, "excluded": 0, "rejected": 0}),
        (*REAL_EXPORTS[2], {"items": 18, "excluded": 6, "rejected": 0}),
    ],
    ids=["apparel", "home-and-garden", "woocommerce"],
)
def test_real_exports_account_for_every_row(kind, path, expected, shop) -> None:
    """Each raw row lands exactly once in items, excluded or rejected."""
    raw = source_for(kind, str(path)).read()
    catalog = normalise_catalog(raw, kind, shop, FieldLimits(), NOW)
    assert_accounted(raw["source_row"].tolist(), catalog)
    assert catalog.counts() == expected
    assert list(catalog.items.columns) == list(ITEM_COLUMNS)
    assert not set(catalog.items["id"]) & set(catalog.items["item_group_id"])


def test_woocommerce_parents_and_non_physical_products_are_excluded(shop) -> None:
    catalog = normalise_file(*REAL_EXPORTS[2], shop)
    reasons = dict(zip(catalog.excluded["product_id"], catalog.excluded["reason"], strict=True))
    assert reasons == {
        "741": "parent_of_variants",
        "742": "parent_of_variants",
        "871": "grouped",
        "872": "external",
        "753": "digital",
        "754": "digital",
    }
    items = catalog.items.set_index("id")
    assert "741" not in items.index and "742" not in items.index
    assert items.loc["758", "item_group_id"] == "742"
    assert items.loc["758", ["color", "additional_variant_attribute"]].tolist() == [
        "Red",
        "Logo:No",
    ]
    assert items.loc["758", "sale_price"] == "42.00 EUR"
    assert items.loc["749", "status"] == "archived"  # hidden from the store's catalog
    assert items.loc["743", "item_group_id"] == ""  # a simple product has no group


def test_shopify_variants_share_the_handle_and_inherit_product_fields(shop) -> None:
    catalog = normalise_file(*REAL_EXPORTS[0], shop)
    tops = catalog.items.loc[catalog.items["item_group_id"] == "classic-varsity-top"]
    assert tops["id"].tolist() == [
        "classic-varsity-top:small",
        "classic-varsity-top:medium",
        "classic-varsity-top:large",
    ]
    assert set(tops["title"]) == {"Classic Varsity Top"}
    assert tops["size"].tolist() == ["Small", "Medium", "Large"]
    assert tops["image_link"].str.startswith("https://").all()


def test_shopify_compare_at_price_becomes_a_sale(shop) -> None:
    catalog = normalise_file(*REAL_EXPORTS[1], shop)
    light = catalog.items.set_index("id").loc["copper-light:default"]
    assert (light["price"], light["sale_price"]) == ("75.00 EUR", "59.99 EUR")
    assert light["price_amount"] == Decimal("75") and light["sale_price_amount"] == Decimal("59.99")
    pot = catalog.items.set_index("id").loc["clay-plant-pot:large"]
    assert pot["image_link"].endswith("single-sprout-in-a-pot_925x.jpg")  # the product's first
    assert pot["additional_image_link"].endswith("pot-with-a-single-sprout_925x.jpg")


def test_image_rows_drafts_and_invalid_prices(tmp_path, shop) -> None:
    text = SHOPIFY_HEADER + (
        "tee,Tee,<p>Cotton</p>,Acme,true,Size,S,T-S,3,deny,20.00,,https://i.example/1.jpg,1,active\n"
        "tee,,,,,,M,T-M,0,continue,20.00,,https://i.example/2.jpg,2,\n"
        "tee,,,,,,,,,,,,https://i.example/3.jpg,3,\n"
        "cap,Cap,,Acme,true,Title,Default Title,C,1,deny,,,https://i.example/c.jpg,1,active\n"
        "hat,Hat,,Acme,true,Title,Default Title,H,1,deny,-4,,https://i.example/h.jpg,1,active\n"
        "bag,Bag,,Acme,true,Title,Default Title,B,1,deny,abc,,https://i.example/b.jpg,1,active\n"
        "old,Old,,Acme,true,Title,Default Title,O,1,deny,5,,https://i.example/o.jpg,1,draft\n"
        "nop,Nopic,,Acme,false,Title,Default Title,N,1,deny,5,,,,active\n"
    )
    catalog = normalise_text(tmp_path, "shopify_csv", text, shop)
    assert_accounted(list(range(2, 10)), catalog)
    items = catalog.items.set_index("id")
    assert items.index.tolist() == ["tee:s", "tee:m"]
    assert items.loc["tee:m", "availability"] == "available for order"
    assert items.loc["tee:s", "additional_image_link"] == (
        "https://i.example/2.jpg,https://i.example/3.jpg"
    )
    reasons = dict(zip(catalog.rejected["retailer_id"], catalog.rejected["reason"], strict=True))
    assert reasons == {
        "cap:default": "missing_price",
        "hat:default": "non_positive_price",
        "bag:default": "invalid_price",
        "nop:default": "missing_image",
    }
    assert catalog.rejected["fix_url"].str.startswith("https://admin.example/products/").all()
    assert dict(zip(catalog.excluded["source_row"], catalog.excluded["reason"], strict=True)) == {
        4: "image_row",
        8: "draft",
    }


def test_duplicate_variant_ids_reject_every_copy(tmp_path, shop) -> None:
    text = SHOPIFY_HEADER + (
        "tee,Tee,,Acme,true,Size,S,A,1,deny,20,,https://i.example/1.jpg,1,active\n"
        "tee,,,,,,S,B,1,deny,21,,,,\n"
        "cap,Cap,,Acme,true,Title,Default Title,C,1,deny,9,,https://i.example/c.jpg,1,active\n"
    )
    catalog = normalise_text(tmp_path, "shopify_csv", text, shop)
    assert catalog.items["id"].tolist() == ["cap:default"]
    assert catalog.rejected["reason"].tolist() == ["duplicate_id", "duplicate_id"]
    assert catalog.rejected["detail"].iloc[0] == "id tee:s on rows 2, 3"


def test_item_id_equal_to_a_group_id_is_rejected(tmp_path, shop) -> None:
    """Meta refuses a retailer_id that is also a product group (RETAILER_ID_USED_BY_GROUP)."""
    text = (
        "ID,Type,SKU,Name,Published,Regular price,Images,Parent\n"
        "10,variable,shirt,Shirt,1,,https://i.example/s.jpg,\n"
        "11,variation,,Shirt - S,1,5,,id:10\n"
        "12,variation,,Shirt - M,1,5,,id:99\n"
    )
    catalog = normalise_text(tmp_path, "woocommerce_csv", text, shop)
    assert catalog.items["id"].tolist() == ["11"]
    assert catalog.rejected["reason"].tolist() == ["orphan_variation"]

    sql_like = pd.DataFrame(
        {"variant_id": ["p1", "v1"], "product_id": ["p1", "p1"], "item_group_id": ["", "p1"],
         "title": ["A", "B"], "price": ["1", "2"], "image_link": ["https://i/1.jpg"] * 2,
         "link": ["https://s/1"] * 2, "source_row": [1, 2]}
    )  # fmt: skip
    catalog = normalise_catalog(sql_like, "sql", shop, now=NOW)
    assert catalog.rejected["reason"].tolist() == ["id_used_by_group"]


@pytest.mark.parametrize(
    ("amount", "currency", "expected"),
    [
        ("12.5", "EUR", "12.50 EUR"),
        ("1500", "JPY", "1500 JPY"),
        ("3200", "PKR", "3200.00 PKR"),
        ("1.5", "KWD", "1.500 KWD"),
        ("0.005", "USD", "0.01 USD"),
    ],
)
def test_format_price_uses_minor_units(amount, currency, expected) -> None:
    assert format_price(Decimal(amount), currency) == expected


def test_format_price_refuses_unknown_currency() -> None:
    with pytest.raises(ValueError, match="ISO 4217"):
        format_price(Decimal("1"), "XYZ")


def test_currency_rules_in_normalisation(tmp_path) -> None:
    shop = ShopContext(currency="JPY", timezone="Asia/Tokyo", product_url_template="https://s/{product_id}",
                       brand="和紙")  # fmt: skip
    frame = pd.DataFrame(
        {"variant_id": ["a", "b", "c"], "product_id": ["a", "b", "c"], "title": ["和紙"] * 3,
         "price": ["1500", "1500.50", "10"], "currency": ["", "", "ABC"],
         "image_link": ["https://i/1.jpg"] * 3, "source_row": [1, 2, 3]}
    )  # fmt: skip
    catalog = normalise_catalog(frame, "sql", shop, now=NOW)
    assert catalog.items["price"].tolist() == ["1500 JPY"]
    assert catalog.rejected["reason"].tolist() == ["price_precision", "bad_currency"]


def sale_frame(sale: str, start: str = "", end: str = "") -> pd.DataFrame:
    return pd.DataFrame(
        {"variant_id": ["v"], "product_id": ["v"], "title": ["Tee"], "price": ["20.00"],
         "sale_price": [sale], "sale_start": [start], "sale_end": [end],
         "image_link": ["https://i/1.jpg"], "link": ["https://s/v"], "source_row": [1]}
    )  # fmt: skip


@pytest.mark.parametrize(("sale", "expected"), [("15", "15.00 EUR"), ("20", ""), ("25", "")])
def test_sale_price_only_when_strictly_below_price(sale, expected, shop) -> None:
    catalog = normalise_catalog(sale_frame(sale), "sql", shop, now=NOW)
    assert catalog.items["sale_price"].tolist() == [expected]


def test_sale_window_is_an_interval_in_shop_time(shop) -> None:
    """Date-only ends mean the end of that day; Berlin is UTC+2 in summer, +1 in winter."""
    catalog = normalise_catalog(sale_frame("15", "2025-06-10", "2025-12-24"), "sql", shop, now=NOW)
    item = catalog.items.iloc[0]
    assert item["sale_price_effective_date"] == "2025-06-10T00:00+02:00/2025-12-24T23:59+01:00"
    assert item["sale_start"] == pd.Timestamp("2025-06-09T22:00Z")


def test_ended_sale_is_dropped_and_open_end_is_bounded(shop) -> None:
    ended = normalise_catalog(sale_frame("15", "2025-01-01", "2025-02-01"), "sql", shop, now=NOW)
    assert ended.items[["sale_price", "sale_price_effective_date"]].iloc[0].tolist() == ["", ""]
    open_end = normalise_catalog(sale_frame("15", "2025-05-01 08:30"), "sql", shop, now=NOW)
    assert open_end.items["sale_price_effective_date"].iloc[0] == (
        "2025-05-01T08:30+02:00/2099-12-31T23:59+01:00"
    )


def test_clean_text_strips_shortcodes_and_html_before_truncating() -> None:
    raw = "[vc_row][vc_column]<p>Soft&nbsp;cotton &amp; tee</p>[/vc_column][/vc_row]"
    assert clean_text(raw) == "Soft cotton & tee"
    assert clean_text(raw, limit=11) == "Soft cotton"
    assert clean_text('[caption id="1"]<b>Café</b>[/caption] crème [sic]') == "Café crème [sic]"
    assert clean_text("<style>p{}</style>a<br/>b &lt;p&gt;c&lt;/p&gt;") == "a b c"


def test_description_limit_is_configuration(tmp_path, shop) -> None:
    body = "[vc_row]" + "<p>" + "x" * 60 + "</p>" * 50 + "[/vc_row]"
    frame = sale_frame("").assign(description=[body])
    catalog = normalise_catalog(frame, "sql", shop, FieldLimits(description=40), now=NOW)
    assert catalog.items["description"].iloc[0] == "x" * 40
    assert "description cut to 40 characters" in catalog.items["warnings"].iloc[0]


def test_generated_exports_are_fully_accounted(tmp_path, shop) -> None:
    shopify = write_shopify_csv(tmp_path / "shopify.csv", seed=3, products=12)
    catalog = normalise_file("shopify_csv", shopify, shop)
    raw = source_for("shopify_csv", str(shopify)).read()
    assert_accounted(raw["source_row"].tolist(), catalog)
    assert set(catalog.rejected["reason"]) == {"missing_price", "non_positive_price"}
    assert "draft" in set(catalog.excluded["reason"])
    assert catalog.items["title"].str.contains("和紙|Café|Größe|抹茶").any()
    assert not catalog.items["description"].str.contains("<|\\[vc_|&amp;", regex=True).any()

    woo = write_woocommerce_csv(tmp_path / "woo.csv", seed=3, products=12)
    catalog = normalise_file("woocommerce_csv", woo, shop)
    raw = source_for("woocommerce_csv", str(woo)).read()
    assert_accounted(raw["source_row"].tolist(), catalog)
    assert catalog.rejected["reason"].tolist() == ["missing_price"]
    assert catalog.items["shipping_weight"].str.endswith(" kg").any()


def test_hashes_separate_volatile_fields(shop) -> None:
    base = normalise_catalog(sale_frame(""), "sql", shop, now=NOW).items.iloc[0]
    cheaper = normalise_catalog(sale_frame("12"), "sql", shop, now=NOW).items.iloc[0]
    renamed = normalise_catalog(sale_frame("").assign(title=["Shirt"]), "sql", shop,
                                now=NOW).items.iloc[0]  # fmt: skip
    assert cheaper["content_hash"] != base["content_hash"]
    assert cheaper["content_hash"][:16] == base["content_hash"][:16]
    assert cheaper["volatile_hash"] != base["volatile_hash"]
    assert renamed["volatile_hash"] == base["volatile_hash"]
    assert renamed["content_hash"][:16] != base["content_hash"][:16]


def test_shopify_row_without_handle_but_with_image_is_rejected_once(tmp_path, shop) -> None:
    """Was counted twice (missing_id and image_row), so normalisation raised."""
    text = SHOPIFY_HEADER + (
        "tee,Tee,<p>Cotton</p>,Acme,true,Size,S,T-S,3,deny,20.00,,https://i.example/1.jpg,1,active\n"
        ",,,,,,,,,,,,https://i.example/stray.jpg,2,\n"
    )
    catalog = normalise_text(tmp_path, "shopify_csv", text, shop)
    assert_accounted([2, 3], catalog)
    assert catalog.excluded.empty
    assert catalog.rejected[["source_row", "reason"]].values.tolist() == [[3, "missing_id"]]
    assert catalog.items["additional_image_link"].tolist() == [""]  # not the stray image


def test_a_url_template_with_an_unknown_or_broken_placeholder_is_refused():
    import pydantic

    for template in ("https://s.example/p/{id}", "https://s.example/p/{slug", "https://x/{nope}"):
        with pytest.raises(pydantic.ValidationError, match="use only the placeholders"):
            ShopContext(currency="EUR", product_url_template=template)


def test_placeholders_the_store_leaves_all_empty_give_no_link_instead_of_one_shared_link():
    from pipelines.catalog.normalise import _render_template

    frame = pd.DataFrame({"handle": ["tee", "", ""], "sku": ["S1", "S2", ""]})

    links = _render_template("https://s.example/{handle}?sku={sku}", frame)

    assert links.tolist() == ["https://s.example/tee?sku=S1", "https://s.example/?sku=S2", ""]


@pytest.mark.parametrize("zone", ["Mars/Olympus", "Europe", ""])
def test_a_shop_timezone_that_is_not_an_iana_zone_is_a_validation_error(zone) -> None:
    """The name of a folder of the zone database (Europe) made ZoneInfo raise IsADirectoryError."""
    from pydantic import ValidationError

    with pytest.raises(ValidationError, match="IANA"):
        ShopContext(shop_id="acme", currency="EUR", timezone=zone)

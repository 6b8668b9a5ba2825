"""Shopify product CSV exports (the classic column set and the newer one).

    source = ShopifyCsvSource("products_export.csv")
    rows = source.to_store_rows(source.read())

Shape of the export: the rows of one product share a `Handle`; the product's first row carries the
product-level fields (Title, Body (HTML), Vendor, options' names...) and its first variant; the
following rows carry further variants and/or extra images only.

Identity: product exports carry no variant id, so a variant is keyed by its handle plus its option
values (`handle:small/red`; `handle:default` for a product without options). That is the key
Shopify's own importer matches variants on. When the file has a `Variant ID` column (bulk-editing
apps add it), that id is used instead. `item_group_id` is the handle (or the `ID` column).
"""

from typing import ClassVar

import pandas as pd

from resources.store.base import (
    CsvStoreSource,
    ExclusionReason,
    RejectionReason,
    StoreRows,
    apply_options,
    column,
    concat_frames,
    count_text,
    excluded_rows,
    rejected_rows,
    store_items,
)

OPTION_SLOTS = (1, 2, 3)
TRUE_VALUES = frozenset({"true", "1", "yes"})


class ShopifyCsvSource(CsvStoreSource):
    """A Shopify product export (Admin > Products > Export)."""

    kind = "shopify_csv"
    required_columns: ClassVar[tuple[str, ...]] = ("Handle", "Title", "Variant Price")
    # The 2024 export renamed most headers; both spellings map to the classic ones.
    header_aliases: ClassVar[dict[str, tuple[str, ...]]] = {
        "Handle": ("URL handle",),
        "Body (HTML)": ("Description",),
        "Product Category": ("Product category",),
        "Published": ("Published on online store",),
        "Variant SKU": ("SKU",),
        "Variant Barcode": ("Barcode",),
        "Variant Grams": ("Weight value (grams)",),
        "Variant Inventory Qty": ("Inventory quantity",),
        "Variant Inventory Policy": ("Continue selling when out of stock",),
        "Variant Inventory Tracker": ("Inventory tracker",),
        "Variant Price": ("Price",),
        "Variant Compare At Price": ("Compare-at price",),
        "Variant Requires Shipping": ("Requires shipping",),
        "Image Src": ("Product image URL",),
        "Image Position": ("Image position",),
        "Variant Image": ("Variant image URL",),
        **{f"Option{i} Name": (f"Option{i} name",) for i in OPTION_SLOTS},
        **{f"Option{i} Value": (f"Option{i} value",) for i in OPTION_SLOTS},
    }

    @classmethod
    def to_store_rows(cls, raw: pd.DataFrame) -> StoreRows:
        frame = raw.copy()
        frame["handle"] = column(raw, "Handle")
        frame["product_id"] = frame["handle"]
        no_handle = frame["handle"] == ""
        listed = frame.loc[~no_handle]

        product = _product_fields(listed)
        frame = frame.join(product, on="handle")
        is_variant = _has_variant_data(raw) & ~no_handle
        has_image = column(raw, "Image Src") != ""
        first_row = ~no_handle & ~frame.duplicated("handle", keep="first")
        variant_count = is_variant.groupby(frame["handle"]).transform("sum")
        lonely_first = first_row & ~is_variant & (variant_count == 0)

        status = frame["p_status"].str.casefold()
        draft = is_variant & (status == "draft")
        gift = is_variant & ~draft & frame["p_gift_card"].str.casefold().isin(TRUE_VALUES)
        shipping = column(raw, "Variant Requires Shipping").str.casefold()
        digital = is_variant & ~draft & ~gift & (shipping == "false")
        sellable = is_variant & ~draft & ~gift & ~digital

        excluded = [
            excluded_rows(frame, draft, ExclusionReason.DRAFT, "product status is draft"),
            excluded_rows(
                frame, gift, ExclusionReason.GIFT_CARD, "gift cards are not sold on Meta"
            ),
            excluded_rows(frame, digital, ExclusionReason.DIGITAL, "variant needs no shipping"),
            excluded_rows(
                frame,
                ~is_variant & has_image & ~lonely_first,
                ExclusionReason.IMAGE_ROW,
                "extra product image, used by the product's items",
            ),
            excluded_rows(
                frame,
                ~is_variant & ~has_image & ~no_handle & ~lonely_first,
                ExclusionReason.NO_VARIANT_DATA,
                "row carries neither a variant nor an image",
            ),
        ]
        rejected = [
            rejected_rows(frame, no_handle, RejectionReason.MISSING_ID, "row has no Handle"),
            rejected_rows(
                frame, lonely_first, RejectionReason.NO_VARIANTS, "product has no variant rows"
            ),
        ]
        items = _variant_items(frame.loc[sellable], raw.loc[sellable])
        return StoreRows(
            items=items,
            excluded=concat_frames(excluded, excluded[0].columns),
            rejected=concat_frames(rejected, rejected[0].columns),
        )


def _has_variant_data(raw: pd.DataFrame) -> pd.Series:
    return (
        (column(raw, "Option1 Value") != "")
        | (column(raw, "Variant Price") != "")
        | (column(raw, "Variant SKU") != "")
    )


def _product_fields(listed: pd.DataFrame) -> pd.DataFrame:
    """Product-level fields from each handle's first row, plus the product's ordered images."""
    first = listed.drop_duplicates("handle", keep="first")
    fields = {
        "p_title": "Title",
        "p_body": "Body (HTML)",
        "p_vendor": "Vendor",
        "p_type": "Type",
        "p_published": "Published",
        "p_status": "Status",
        "p_gift_card": "Gift Card",
        "p_product_id": "ID",
        "p_google_category": "Google Shopping / Google Product Category",
        "p_category": "Product Category",
        "p_gender": "Google Shopping / Gender",
        "p_age_group": "Google Shopping / Age Group",
        "p_condition": "Google Shopping / Condition",
        "p_mpn": "Google Shopping / MPN",
        **{f"p_option{i}_name": f"Option{i} Name" for i in OPTION_SLOTS},
    }
    product = pd.DataFrame({key: column(first, name) for key, name in fields.items()})
    product.index = first["handle"]
    product["p_images"] = _product_images(listed)
    product["p_images"] = product["p_images"].fillna("")
    return product


def _product_images(listed: pd.DataFrame) -> pd.Series:
    """Comma-joined image URLs per handle, in Image Position order, duplicates removed."""
    images = pd.DataFrame(
        {
            "handle": listed["handle"],
            "url": column(listed, "Image Src").map(_absolute_url),
            "position": pd.to_numeric(column(listed, "Image Position"), errors="coerce"),
            "source_row": listed["source_row"],
        }
    )
    images = images.loc[images["url"] != ""].sort_values(["handle", "position", "source_row"])
    images = images.drop_duplicates(["handle", "url"])
    # one pass over sorted rows; groupby(...).agg(",".join) is ~50x slower on Arrow strings
    joined: dict[str, list[str]] = {}
    for handle, url in zip(images["handle"].tolist(), images["url"].tolist(), strict=True):
        joined.setdefault(handle, []).append(url)
    return pd.Series({handle: ",".join(urls) for handle, urls in joined.items()}, dtype="str")


def _absolute_url(url: str) -> str:
    url = url.strip().replace(",", "%2C")
    return "https:" + url if url.startswith("//") else url


def _variant_items(frame: pd.DataFrame, raw: pd.DataFrame) -> pd.DataFrame:
    """Store-neutral rows for the sellable variant rows."""
    out = pd.DataFrame(index=frame.index)
    out["source_row"] = frame["source_row"]
    out["handle"] = frame["handle"]
    product_id = frame["p_product_id"].where(frame["p_product_id"] != "", frame["handle"])
    out["product_id"] = product_id
    out["item_group_id"] = product_id
    out["variant_id"] = _variant_ids(frame, raw)
    out["sku"] = column(raw, "Variant SKU")
    out["title"] = frame["p_title"]
    out["description"] = frame["p_body"]
    out["price"] = column(raw, "Variant Price")
    out["compare_at_price"] = column(raw, "Variant Compare At Price")
    out["availability"], out["inventory"] = _stock(raw)
    out["image_link"], out["additional_image_links"] = _images(frame, raw)
    out["brand"] = frame["p_vendor"]
    out["condition"] = frame["p_condition"].str.casefold()
    category = frame["p_google_category"]
    out["google_product_category"] = category.where(category != "", frame["p_category"])
    out["product_type"] = frame["p_type"]
    out["gender"] = frame["p_gender"].str.casefold()
    out["age_group"] = frame["p_age_group"].str.casefold()
    out["gtin"] = column(raw, "Variant Barcode")
    out["mpn"] = frame["p_mpn"]
    grams_text = column(raw, "Variant Grams")
    grams = pd.to_numeric(grams_text, errors="coerce")
    out["shipping_weight"] = (grams_text + " g").where(grams > 0, "")
    published = frame["p_published"].str.casefold()
    archived = (frame["p_status"].str.casefold() == "archived") | (published == "false")
    out["status"] = archived.map({True: "archived", False: "active"})
    apply_options(
        out,
        [frame[f"p_option{i}_name"] for i in OPTION_SLOTS],
        [column(raw, f"Option{i} Value") for i in OPTION_SLOTS],
    )
    return store_items(out)


def _variant_ids(frame: pd.DataFrame, raw: pd.DataFrame) -> pd.Series:
    explicit = column(raw, "Variant ID")
    parts = [_option_key(column(raw, f"Option{i} Value")) for i in OPTION_SLOTS]
    key = parts[0].str.cat(parts[1:], sep="/").str.replace(r"/+$", "", regex=True)
    key = key.where(~key.isin(["", "default-title"]), "default")
    derived = frame["handle"] + ":" + key
    return explicit.where(explicit != "", derived)


def _option_key(values: pd.Series) -> pd.Series:
    # lower-case, whitespace to "-", separators removed: stable under cosmetic re-saves
    return (
        values.str.strip()
        .str.casefold()
        .str.replace(r"[/:]", "", regex=True)
        .str.replace(r"\s+", "-", regex=True)
    )


def _stock(raw: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Meta availability and quantity from Shopify's quantity and inventory policy."""
    qty_text = column(raw, "Variant Inventory Qty")
    qty = pd.to_numeric(qty_text, errors="coerce")
    policy = column(raw, "Variant Inventory Policy").str.casefold()
    backorder = policy.isin(["continue", "true"])
    availability = pd.Series("in stock", index=raw.index, dtype="str")
    availability = availability.where(~(qty <= 0), "out of stock")
    availability = availability.where(~((qty <= 0) & backorder), "available for order")
    return availability, count_text(qty_text)


def _images(frame: pd.DataFrame, raw: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """Variant image first (else the product's first image), the product's others after it."""
    own = column(raw, "Variant Image").map(_absolute_url)
    product_images = frame["p_images"]
    first = product_images.str.split(",", n=1).str[0].fillna("")
    main = own.where(own != "", first)
    rest = [
        ",".join(url for url in images.split(",") if url and url != chosen)
        for images, chosen in zip(product_images, main, strict=True)
    ]
    return main, pd.Series(rest, index=frame.index, dtype="str")

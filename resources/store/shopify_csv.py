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

import numpy as np
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
    per_distinct,
    rejected_rows,
    split_malformed_rows,
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

    excluded_order: ClassVar[tuple[str, ...]] = (
        ExclusionReason.DRAFT,
        ExclusionReason.GIFT_CARD,
        ExclusionReason.DIGITAL,
        ExclusionReason.IMAGE_ROW,
        ExclusionReason.NO_VARIANT_DATA,
    )
    rejected_order: ClassVar[tuple[str, ...]] = (
        RejectionReason.MALFORMED_ROW,
        RejectionReason.MISSING_ID,
        RejectionReason.NO_VARIANTS,
    )

    @classmethod
    def product_keys(cls, raw: pd.DataFrame) -> pd.Series:
        """The Handle: every row of a product shares it, and rows only ever look at rows of
        their own handle (rows without a Handle are each rejected on their own)."""
        return column(raw, "Handle")

    @classmethod
    def to_store_rows(cls, raw: pd.DataFrame) -> StoreRows:
        raw, malformed = split_malformed_rows(raw)
        handle = column(raw, "Handle")
        no_handle = handle == ""
        # one code per handle, in order of first appearance: product fields are computed once
        # per product and spread to its rows by code (a product has many variant rows)
        codes, _ = pd.factorize(handle, use_na_sentinel=False)
        first_row = ~handle.duplicated(keep="first")
        product = _product_fields(raw, codes, first_row.to_numpy(), ~no_handle.to_numpy())
        frame = _row_frame(raw, handle)

        is_variant = _has_variant_data(raw) & ~no_handle
        has_image = column(raw, "Image Src") != ""
        first_row = ~no_handle & first_row
        variant_count = np.bincount(codes, weights=is_variant.to_numpy(), minlength=len(product))
        lonely_first = first_row & ~is_variant & (variant_count[codes] == 0)

        status = _per_row(product["p_status_folded"], codes, raw.index)
        draft = is_variant & (status == "draft")
        gift_card = _per_row(product["p_gift_card_true"], codes, raw.index)
        gift = is_variant & ~draft & gift_card
        shipping = per_distinct(column(raw, "Variant Requires Shipping"), _casefold)
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
                # a row without a Handle is rejected (missing_id), never also excluded
                ~is_variant & has_image & ~no_handle & ~lonely_first,
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
            malformed,
            rejected_rows(frame, no_handle, RejectionReason.MISSING_ID, "row has no Handle"),
            rejected_rows(
                frame, lonely_first, RejectionReason.NO_VARIANTS, "product has no variant rows"
            ),
        ]
        items = _variant_items(raw.loc[sellable, _variant_columns(raw)], product, codes[sellable])
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


def _row_frame(raw: pd.DataFrame, handle: pd.Series) -> pd.DataFrame:
    """What excluded_rows / rejected_rows read for every raw row (a raw `variant_id` or
    `item_group_id` column, when an export has one, is reported as it always was)."""
    kept = [name for name in ("variant_id", "item_group_id") if name in raw.columns]
    frame = raw[["source_row", *kept]].copy()
    frame["handle"] = handle
    frame["product_id"] = handle
    return frame


def _casefold(text: pd.Series) -> pd.Series:
    return text.str.casefold()


def _per_row(values: pd.Series, codes: np.ndarray, index: pd.Index) -> pd.Series:
    """A per-product column spread to rows by product code."""
    return pd.Series(values.array.take(codes), index=index, dtype=values.dtype)


PRODUCT_FIELDS = {
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
VARIANT_FIELDS = (
    "Variant ID",
    "Variant SKU",
    "Variant Price",
    "Variant Compare At Price",
    "Variant Inventory Qty",
    "Variant Inventory Policy",
    "Variant Image",
    "Variant Barcode",
    "Variant Grams",
    *(f"Option{i} Value" for i in OPTION_SLOTS),
)


def _variant_columns(raw: pd.DataFrame) -> list[str]:
    return ["source_row", *(name for name in VARIANT_FIELDS if name in raw.columns)]


def _product_fields(
    raw: pd.DataFrame, codes: np.ndarray, first_row: np.ndarray, listed: np.ndarray
) -> pd.DataFrame:
    """One row per product code: fields from the product's first row, derived product-level
    values (folded status, product id...) and the product's ordered images."""
    needed = [name for name in ("Handle", *PRODUCT_FIELDS.values()) if name in raw.columns]
    first = raw.loc[first_row, needed]
    product = pd.DataFrame(
        {key: column(first, name).reset_index(drop=True) for key, name in PRODUCT_FIELDS.items()}
    )
    handle = column(first, "Handle").reset_index(drop=True)
    product["p_handle"] = handle
    product["p_status_folded"] = product["p_status"].str.casefold()
    product["p_gift_card_true"] = product["p_gift_card"].str.casefold().isin(TRUE_VALUES)
    product_id = product["p_product_id"].where(product["p_product_id"] != "", handle)
    product["p_group"] = product_id
    category = product["p_google_category"]
    product["p_any_category"] = category.where(category != "", product["p_category"])
    for name in ("p_condition", "p_gender", "p_age_group"):
        product[name] = product[name].str.casefold()
    published = product["p_published"].str.casefold()
    archived = (product["p_status_folded"] == "archived") | (published == "false")
    product["p_meta_status"] = archived.map({True: "archived", False: "active"})
    images = _product_images(raw, codes, listed, len(product))
    product["p_images"] = pd.Series(images, dtype="str")
    return product


def _product_images(
    raw: pd.DataFrame, codes: np.ndarray, listed: np.ndarray, products: int
) -> list[str]:
    """Comma-joined image URLs per product code, in Image Position order, duplicates removed."""
    source = column(raw, "Image Src")
    rows = np.flatnonzero(listed & (source != "").to_numpy())
    images = pd.DataFrame(
        {
            "code": codes[rows],
            "url": per_distinct(source.iloc[rows], _absolute_urls).to_numpy(dtype=object),
            "position": pd.to_numeric(
                column(raw, "Image Position").iloc[rows], errors="coerce"
            ).to_numpy(dtype=float),
            "source_row": raw["source_row"].to_numpy()[rows],
        }
    )
    # handle, then position (unknown last), then file order: as a seller reads the export
    order = np.lexsort((images["source_row"], images["position"], images["code"]))
    images = images.iloc[order].drop_duplicates(["code", "url"])
    joined: list[list[str]] = [[] for _ in range(products)]
    for code, url in zip(images["code"].tolist(), images["url"].tolist(), strict=True):
        joined[code].append(url)
    return [",".join(urls) for urls in joined]


def _absolute_urls(urls: pd.Series) -> pd.Series:
    return urls.map(_absolute_url)


def _absolute_url(url: str) -> str:
    url = url.strip().replace(",", "%2C")
    return "https:" + url if url.startswith("//") else url


def _variant_items(raw: pd.DataFrame, product: pd.DataFrame, codes: np.ndarray) -> pd.DataFrame:
    """Store-neutral rows for the sellable variant rows (`raw`), `codes` naming their product."""

    def from_product(name: str) -> pd.Series:
        return _per_row(product[name], codes, raw.index)

    out = pd.DataFrame(index=raw.index)
    out["source_row"] = raw["source_row"]
    out["handle"] = from_product("p_handle")
    out["product_id"] = from_product("p_group")
    out["item_group_id"] = out["product_id"]
    out["variant_id"] = _variant_ids(out["handle"], raw)
    out["sku"] = column(raw, "Variant SKU")
    out["title"] = from_product("p_title")
    out["description"] = from_product("p_body")
    out["price"] = column(raw, "Variant Price")
    out["compare_at_price"] = column(raw, "Variant Compare At Price")
    out["availability"], out["inventory"] = _stock(raw)
    out["image_link"], out["additional_image_links"] = _images(product, codes, raw)
    out["brand"] = from_product("p_vendor")
    out["condition"] = from_product("p_condition")
    out["google_product_category"] = from_product("p_any_category")
    out["product_type"] = from_product("p_type")
    out["gender"] = from_product("p_gender")
    out["age_group"] = from_product("p_age_group")
    out["gtin"] = column(raw, "Variant Barcode")
    out["mpn"] = from_product("p_mpn")
    out["shipping_weight"] = per_distinct(column(raw, "Variant Grams"), _grams_text)
    out["status"] = from_product("p_meta_status")
    apply_options(
        out,
        [from_product(f"p_option{i}_name") for i in OPTION_SLOTS],
        [column(raw, f"Option{i} Value") for i in OPTION_SLOTS],
    )
    return store_items(out)


def _grams_text(grams_text: pd.Series) -> pd.Series:
    grams = pd.to_numeric(grams_text, errors="coerce")
    return (grams_text + " g").where(grams > 0, "")


def _variant_ids(handle: pd.Series, raw: pd.DataFrame) -> pd.Series:
    explicit = column(raw, "Variant ID")
    derived = handle + ":" + _option_keys([column(raw, f"Option{i} Value") for i in OPTION_SLOTS])
    return explicit.where(explicit != "", derived)


def _option_keys(values: list[pd.Series]) -> pd.Series:
    """`small/red`-style keys, built once per distinct combination of option values."""
    combination = np.zeros(len(values[0]), dtype=np.int64)
    for value in values:
        codes, uniques = pd.factorize(value, use_na_sentinel=False)
        combination, _ = pd.factorize(combination * len(uniques) + codes)
    _, first, inverse = np.unique(combination, return_index=True, return_inverse=True)
    parts = [_option_key(value.iloc[first]) for value in values]
    key = parts[0].str.cat(parts[1:], sep="/").str.replace(r"/+$", "", regex=True)
    key = key.where(~key.isin(["", "default-title"]), "default")
    return pd.Series(key.array.take(inverse), index=values[0].index, dtype=key.dtype)


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
    qty = per_distinct(qty_text, lambda text: pd.to_numeric(text, errors="coerce"))
    policy = per_distinct(column(raw, "Variant Inventory Policy"), _casefold)
    backorder = policy.isin(["continue", "true"])
    availability = pd.Series("in stock", index=raw.index, dtype="str")
    availability = availability.where(~(qty <= 0), "out of stock")
    availability = availability.where(~((qty <= 0) & backorder), "available for order")
    return availability, count_text(qty_text)


def _images(
    product: pd.DataFrame, codes: np.ndarray, raw: pd.DataFrame
) -> tuple[pd.Series, pd.Series]:
    """Variant image first (else the product's first image), the product's others after it."""
    own = per_distinct(column(raw, "Variant Image"), _absolute_urls)
    first = product["p_images"].str.split(",", n=1).str[0].fillna("")
    main = own.where(own != "", _per_row(first, codes, raw.index))
    # the other images depend only on (product, main image): join them once per such pair
    main_codes, mains = pd.factorize(main, use_na_sentinel=False)
    pair = codes.astype(np.int64) * max(len(mains), 1) + main_codes
    _, sample, inverse = np.unique(pair, return_index=True, return_inverse=True)
    product_images = product["p_images"].to_numpy(dtype=object)[codes[sample]]
    chosen = main.to_numpy(dtype=object)[sample]
    rest = np.array(
        [
            ",".join(url for url in images.split(",") if url and url != main_image)
            for images, main_image in zip(product_images, chosen, strict=True)
        ],
        dtype=object,
    )
    return main, pd.Series(rest[inverse], index=raw.index, dtype="str")

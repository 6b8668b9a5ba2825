"""WooCommerce product CSV exports (Products > Export, the built-in exporter).

    source = WooCommerceCsvSource("wc-product-export.csv")
    rows = source.to_store_rows(source.read())

Types: `simple` rows are items on their own; a `variable` row is the parent of its `variation` rows
(linked by `Parent`, written `id:741` or as the parent's SKU) and is never an item itself;
`grouped` and `external` products are not sellable on Meta; `downloadable` / `virtual` products
are digital. `Published` is 1 (published), 0 (private: kept, archived on Meta) or -1 (draft:
not synced). Variations inherit description, images, categories and weight from their parent.

Identity: `ID` is the WordPress post id, stable for the product's life; variations have their own.
Weights come in the store's unit, from the header: `Weight (kg)`, `Weight (lbs)`, `(g)`, `(oz)`.
"""

import re
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
    split_malformed_rows,
    store_items,
)

ATTRIBUTE_SLOTS = (1, 2, 3)  # TODO(woo-attributes): attributes 4+ are ignored
WEIGHT_HEADER = re.compile(r"^Weight \((kg|g|lbs|oz)\)$", re.IGNORECASE)
WEIGHT_UNITS = {"kg": "kg", "g": "g", "lbs": "lb", "oz": "oz"}
INHERITED = ("Name", "Description", "Short description", "Images", "Categories", "Brands")


class WooCommerceCsvSource(CsvStoreSource):
    """A WooCommerce product export."""

    kind = "woocommerce_csv"
    required_columns: ClassVar[tuple[str, ...]] = ("ID", "Type", "Name", "Regular price")
    header_aliases: ClassVar[dict[str, tuple[str, ...]]] = {
        "In stock?": ("In stock",),
        "Backorders allowed?": ("Backorders allowed",),
        "GTIN, UPC, EAN, or ISBN": ("GTIN",),
    }

    excluded_order: ClassVar[tuple[str, ...]] = (
        ExclusionReason.PARENT_OF_VARIANTS,
        ExclusionReason.GROUPED,
        ExclusionReason.EXTERNAL,
        ExclusionReason.UNSUPPORTED_TYPE,
        ExclusionReason.DRAFT,
        ExclusionReason.DIGITAL,
    )
    rejected_order: ClassVar[tuple[str, ...]] = (
        RejectionReason.MALFORMED_ROW,
        RejectionReason.MISSING_ID,
        RejectionReason.ORPHAN_VARIATION,
    )

    @classmethod
    def product_keys(cls, raw: pd.DataFrame) -> pd.Series | None:
        """The parent's ID for variations, the row's own ID otherwise; None when a row reaches
        outside its product: a row holding a product's ID keyed elsewhere (a variation whose ID
        another variation names as Parent), or a Parent naming a SKU that several rows share
        (which one wins depends on rows of other products)."""
        frame = pd.DataFrame({"id": column(raw, "ID"), "SKU": column(raw, "SKU")})
        frame["Parent"] = column(raw, "Parent")
        variation = _types(raw)["variation"]
        parent_id = _resolve_parents(frame)
        keys = parent_id.where(variation, frame["id"])
        holds_key = frame["id"].isin(keys.unique())
        if (holds_key & (keys != frame["id"])).any():
            return None
        ref = frame["Parent"]
        by_sku = ref.str.extract(r"^id:(\S+)$", expand=False).isna() & (ref != "")
        sku_counts = frame.loc[frame["SKU"] != "", "SKU"].value_counts()
        if (by_sku & (ref.map(sku_counts).fillna(0) > 1)).any():
            return None
        return keys

    @classmethod
    def to_store_rows(cls, raw: pd.DataFrame) -> StoreRows:
        raw, malformed = split_malformed_rows(raw)
        frame = raw.copy()
        frame["id"] = column(raw, "ID")
        tokens = _type_tokens(raw)
        has = _types(raw)
        digital_type = tokens.str.contains("downloadable|virtual", regex=True)

        parent_id = _resolve_parents(frame)
        parents = frame.set_index("id")
        parents = parents.loc[~parents.index.duplicated(keep="first")]
        frame["parent_id"] = parent_id
        frame["product_id"] = parent_id.where(has["variation"], frame["id"])
        orphan = has["variation"] & ~parent_id.isin(parents.index)
        inherited = _inherit(frame, parents, has["variation"] & ~orphan)

        published = _effective(frame, inherited, "Published")
        draft = published == "-1"
        no_id = frame["id"] == ""
        parent = has["variable"] & ~no_id
        grouped = has["grouped"] & ~no_id & ~parent
        external = has["external"] & ~no_id & ~parent & ~grouped
        sellable_type = has["simple"] | (has["variation"] & ~orphan)
        unsupported = ~no_id & ~(parent | grouped | external | orphan) & ~sellable_type
        structural = no_id | parent | grouped | external | orphan | unsupported
        is_draft = ~structural & draft
        digital = ~structural & ~is_draft & digital_type
        sellable = ~structural & ~is_draft & ~digital

        excluded = [
            excluded_rows(
                frame,
                parent,
                ExclusionReason.PARENT_OF_VARIANTS,
                "variable product: its variations are the items",
            ),
            excluded_rows(frame, grouped, ExclusionReason.GROUPED, "grouped product"),
            excluded_rows(frame, external, ExclusionReason.EXTERNAL, "sold on another site"),
            excluded_rows(
                frame, unsupported, ExclusionReason.UNSUPPORTED_TYPE, "type " + column(raw, "Type")
            ),
            excluded_rows(frame, is_draft, ExclusionReason.DRAFT, "draft product"),
            excluded_rows(frame, digital, ExclusionReason.DIGITAL, "downloadable or virtual"),
        ]
        rejected = [
            malformed,
            rejected_rows(frame, no_id, RejectionReason.MISSING_ID, "row has no ID"),
            rejected_rows(
                frame.assign(item_group_id=parent_id, variant_id=frame["id"]),
                orphan,
                RejectionReason.ORPHAN_VARIATION,
                "variation's Parent " + column(raw, "Parent") + " is not in the export",
            ),
        ]
        items = _items(frame.loc[sellable], inherited.loc[sellable], has["variation"][sellable])
        return StoreRows(
            items=items,
            excluded=concat_frames(excluded, excluded[0].columns),
            rejected=concat_frames(rejected, rejected[0].columns),
        )


def _type_tokens(raw: pd.DataFrame) -> pd.Series:
    return column(raw, "Type").str.casefold().str.replace(" ", "", regex=False)


def _types(raw: pd.DataFrame) -> dict[str, pd.Series]:
    kinds = _type_tokens(raw).str.split(",")
    return {
        name: kinds.map(lambda parts, n=name: n in parts)
        for name in ("simple", "variable", "variation", "grouped", "external")
    }


def _resolve_parents(frame: pd.DataFrame) -> pd.Series:
    """The parent's ID for each row: `Parent` is `id:741`, a bare id, or the parent's SKU."""
    ref = column(frame, "Parent")
    by_id = ref.str.extract(r"^id:(\S+)$", expand=False).fillna("")
    skus = pd.DataFrame({"sku": column(frame, "SKU"), "id": frame["id"]})
    skus = skus.loc[skus["sku"] != ""].drop_duplicates("sku").set_index("sku")["id"]
    by_sku = ref.map(skus).astype("object").fillna("")  # all-NaN (no match) maps to float
    resolved = by_id.where(by_id != "", by_sku)
    return resolved.where(resolved != "", ref)


def _inherit(frame: pd.DataFrame, parents: pd.DataFrame, linked: pd.Series) -> pd.DataFrame:
    """Parent values for variation rows ("" for other rows)."""
    names = [*INHERITED, "Published", "Visibility in catalog", *_weight_columns(frame)]
    out = pd.DataFrame(index=frame.index)
    for name in names:
        values = column(parents, name)
        out[name] = frame["parent_id"].map(values).where(linked, "").fillna("")
    return out


def _effective(frame: pd.DataFrame, inherited: pd.DataFrame, name: str) -> pd.Series:
    """The row's value, unless its parent says draft/private: the stricter one wins."""
    own = column(frame, name)
    from_parent = inherited[name] if name in inherited else own
    stricter = from_parent.isin(["-1", "0"]) & ~own.isin(["-1"])
    return own.where(~stricter, from_parent)


def _first_filled(*candidates: pd.Series) -> pd.Series:
    result = candidates[0]
    for candidate in candidates[1:]:
        result = result.where(result != "", candidate)
    return result


def _items(frame: pd.DataFrame, parent: pd.DataFrame, variation: pd.Series) -> pd.DataFrame:
    out = pd.DataFrame(index=frame.index)
    out["source_row"] = frame["source_row"]
    out["variant_id"] = frame["id"]
    out["product_id"] = frame["product_id"]
    out["item_group_id"] = frame["parent_id"].where(variation, "")
    out["sku"] = column(frame, "SKU")
    out["title"] = _first_filled(column(frame, "Name"), parent["Name"])
    out["description"] = _first_filled(
        column(frame, "Description"),
        column(frame, "Short description"),
        parent["Description"],
        parent["Short description"],
    )
    out["price"] = column(frame, "Regular price")
    out["sale_price"] = column(frame, "Sale price")
    out["sale_start"] = column(frame, "Date sale price starts")
    out["sale_end"] = column(frame, "Date sale price ends")
    out["availability"] = _availability(frame)
    out["inventory"] = count_text(column(frame, "Stock"))
    own_images = _image_list(column(frame, "Images"))
    parent_images = _image_list(parent["Images"])
    images = own_images.where(own_images.str.len() > 0, parent_images)
    out["image_link"] = images.str[0].astype("object").fillna("")
    extra = parent_images.where(variation, images.str[1:])
    out["additional_image_links"] = [
        ",".join(url for url in urls if url != main)
        for urls, main in zip(extra, out["image_link"], strict=True)
    ]
    out["brand"] = _first_filled(column(frame, "Brands"), parent["Brands"])
    categories = _first_filled(column(frame, "Categories"), parent["Categories"])
    out["product_type"] = categories.str.split(",").str[0].fillna("").str.strip()
    out["gtin"] = column(frame, "GTIN, UPC, EAN, or ISBN")
    out["shipping_weight"] = _weight(frame, parent)
    out["status"] = _status(frame, parent)
    _options(out, frame, variation)
    return store_items(out)


def _image_list(images: pd.Series) -> pd.Series:
    return images.map(lambda text: [u.strip() for u in text.split(",") if u.strip()])


def _availability(frame: pd.DataFrame) -> pd.Series:
    """From "In stock?", except that a managed stock of zero or less is sold out whatever the
    flag says (WooCommerce shows it so; Meta flags "in stock" with nothing to sell)."""
    in_stock = column(frame, "In stock?").str.casefold()
    backorders = column(frame, "Backorders allowed?").str.casefold().isin(["1", "notify"])
    stock = pd.to_numeric(column(frame, "Stock"), errors="coerce")
    sold_out = (in_stock == "0") | ((in_stock == "1") & (stock <= 0))
    availability = pd.Series("", index=frame.index, dtype="str")
    availability = availability.where(in_stock != "1", "in stock")
    availability = availability.where(~sold_out, "out of stock")
    backorder = (in_stock == "backorder") | (sold_out & backorders)
    return availability.where(~backorder, "available for order")


def _weight_columns(frame: pd.DataFrame) -> list[str]:
    return [name for name in frame.columns if WEIGHT_HEADER.match(str(name))]


def _weight(frame: pd.DataFrame, parent: pd.DataFrame) -> pd.Series:
    weight = pd.Series("", index=frame.index, dtype="str")
    for name in _weight_columns(frame):
        unit = WEIGHT_UNITS[WEIGHT_HEADER.match(name).group(1).casefold()]
        value = _first_filled(column(frame, name), parent[name])
        valid = pd.to_numeric(value, errors="coerce") > 0
        weight = weight.where((weight != "") | ~valid, value + " " + unit)
    return weight


def _status(frame: pd.DataFrame, parent: pd.DataFrame) -> pd.Series:
    private = (column(frame, "Published") == "0") | (parent["Published"] == "0")
    hidden = (column(frame, "Visibility in catalog").str.casefold() == "hidden") | (
        parent["Visibility in catalog"].str.casefold() == "hidden"
    )
    return (private | hidden).map({True: "archived", False: "active"}).astype("str")


def _options(out: pd.DataFrame, frame: pd.DataFrame, variation: pd.Series) -> None:
    names, values = [], []
    for slot in ATTRIBUTE_SLOTS:
        value = column(frame, f"Attribute {slot} value(s)")
        # a simple product's multi-valued attribute describes choices, not this item
        value = value.where(variation | ~value.str.contains(",", regex=False), "")
        names.append(column(frame, f"Attribute {slot} name"))
        values.append(value)
    apply_options(out, names, values)

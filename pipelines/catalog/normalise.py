"""Store rows -> Meta catalog items, with every source row accounted for.

    shop = ShopContext(currency="PKR", timezone="Asia/Karachi",
                       product_url_template="https://shop.example/products/{handle}")
    catalog = normalise_catalog(source.read(), "shopify_csv", shop, FieldLimits(), now)
    catalog.items      # one row per Meta item (ITEM_COLUMNS), hashed for the diff
    catalog.excluded   # source rows that are correctly not items, with a reason
    catalog.rejected   # source rows that should be items but cannot be, with a reason

Rules that hold for every store (store formats live in `resources.store`):

* identity: `id` = `retailer_id` = the store's stable variant id; `item_group_id` = the parent
  product id; no `id` may equal an `item_group_id` (Meta: RETAILER_ID_USED_BY_GROUP); duplicate ids
  reject every copy, as Meta ignores all copies of a duplicated id in a feed;
* money is `Decimal`, parsed from the export's text, never from floats or display strings, and
  rendered as `"<amount> <ISO 4217>"` with the currency's minor units (`format_price`);
* `sale_price` exists only when strictly below `price`; a sale window ending before `now` is
  dropped; the window is an ISO 8601 interval in the shop's timezone;
* text is cleaned (shortcodes, HTML tags, entities, whitespace) before it is cut to `FieldLimits`;
* `content_hash` covers every Meta field, `volatile_hash` only price, sale and stock fields, so the
  diff can send cheap stock/price updates (see `pipelines.catalog.diff`).
"""

import bisect
import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
from pydantic import BaseModel, Field, field_validator

from resources.currencies import (
    CURRENCIES,
    FOUR_DECIMAL,
    THREE_DECIMAL,
    ZERO_DECIMAL,
    unknown_currency_problem,
)
from resources.store import (
    EXCLUDED_COLUMNS,
    REJECTED_COLUMNS,
    RejectionReason,
    StoreRows,
    source_class,
)
from resources.store.base import concat_frames, per_distinct, rejected_rows

AVAILABILITY = frozenset(
    {"in stock", "out of stock", "preorder", "available for order", "discontinued"}
)
CONDITIONS = frozenset({"new", "refurbished", "used"})
GENDERS = frozenset({"female", "male", "unisex"})
AGE_GROUPS = frozenset({"newborn", "infant", "toddler", "kids", "adult"})
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
OPEN_START = "1970-01-01T00:00"  # Meta needs both ends of a sale window
OPEN_END = "2099-12-31T23:59"
SALE_TIME_UNIT = "us"  # sale_start / sale_end: datetime64[us, UTC]

META_FIELDS: tuple[str, ...] = (
    "id",
    "item_group_id",
    "title",
    "description",
    "availability",
    "condition",
    "price",
    "sale_price",
    "sale_price_effective_date",
    "link",
    "image_link",
    "additional_image_link",
    "brand",
    "quantity_to_sell_on_facebook",
    "google_product_category",
    "product_type",
    "color",
    "size",
    "gender",
    "age_group",
    "material",
    "pattern",
    "additional_variant_attribute",
    "gtin",
    "mpn",
    "shipping_weight",
    "status",
)
VOLATILE_FIELDS: tuple[str, ...] = (
    "price",
    "sale_price",
    "sale_price_effective_date",
    "availability",
    "quantity_to_sell_on_facebook",
)
STATIC_FIELDS: tuple[str, ...] = tuple(f for f in META_FIELDS if f not in VOLATILE_FIELDS)
ITEM_COLUMNS: tuple[str, ...] = (
    "retailer_id",
    *META_FIELDS,
    "price_amount",
    "sale_price_amount",
    "currency",
    "sale_start",
    "sale_end",
    "product_id",
    "source_row",
    "warnings",
    "content_hash",
    "volatile_hash",
)
REJECTED_ITEM_COLUMNS: tuple[str, ...] = (*REJECTED_COLUMNS, "fix_url")
NON_TEXT_ITEM_COLUMNS = frozenset(
    {
        "quantity_to_sell_on_facebook",  # Int64
        "price_amount",  # Decimal | None
        "sale_price_amount",
        "sale_start",  # datetime64[us, UTC]
        "sale_end",
        "source_row",  # int64
    }
)


class FieldLimits(BaseModel):
    """Meta's field limits. Its documents disagree (title 200 vs 100, description 9999 vs 5000,
    color 200 vs 100, extra images 20 vs 50), so they are configuration; defaults take the
    stricter value so one item passes both feeds and items_batch."""

    id: int = Field(100, gt=0)
    item_group_id: int = Field(100, gt=0)
    title: int = Field(100, gt=0)
    description: int = Field(5000, gt=0)
    brand: int = Field(100, gt=0)
    google_product_category: int = Field(250, gt=0)
    product_type: int = Field(750, gt=0)
    color: int = Field(100, gt=0)
    size: int = Field(200, gt=0)
    material: int = Field(200, gt=0)
    pattern: int = Field(100, gt=0)
    gtin: int = Field(70, gt=0)
    mpn: int = Field(100, gt=0)
    # TODO(meta-limits): no documented limit for additional_variant_attribute; 500 is a guess
    additional_variant_attribute: int = Field(500, gt=0)
    additional_images: int = Field(20, ge=0)
    additional_image_link_chars: int = Field(2000, gt=0)


PLACEHOLDERS = ("product_id", "variant_id", "handle", "sku")
_PLACEHOLDER = re.compile(r"\{(" + "|".join(PLACEHOLDERS) + r")\}")
_ANY_BRACES = re.compile(r"\{([^{}]*)\}")


class ShopContext(BaseModel):
    """What normalisation needs to know about the shop (a slice of the shop profile)."""

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    timezone: str = "UTC"
    # placeholders: {product_id} {variant_id} {handle} {sku}
    product_url_template: str | None = None
    admin_url_template: str | None = None  # where a seller fixes a rejected row
    brand: str | None = None  # used when the store gives no brand (Meta requires one)

    @field_validator("currency")
    @classmethod
    def _known_currency(cls, value: str) -> str:
        # otherwise every row would be a bad_currency reject the seller cannot fix in the store
        problem = unknown_currency_problem(value)
        if problem:
            raise ValueError(f"shop {problem}; correct the shop's registration")
        return value

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError, OSError) as exc:  # "Europe" is a folder
            raise ValueError(f"unknown timezone {value!r}; use an IANA name") from exc
        return value

    @field_validator("product_url_template", "admin_url_template")
    @classmethod
    def _known_placeholders(cls, template: str | None) -> str | None:
        # an unknown or broken placeholder would put the same literal text in every link
        if template:
            unknown = set(_ANY_BRACES.findall(template)) - set(PLACEHOLDERS)
            if unknown or template.count("{") != template.count("}"):
                raise ValueError(
                    f"URL template {template!r}: use only the placeholders "
                    + " ".join(f"{{{name}}}" for name in PLACEHOLDERS)
                )
        return template


@dataclass(frozen=True)
class NormalisedCatalog:
    """Items for Meta plus every other source row, each with its reason."""

    items: pd.DataFrame  # ITEM_COLUMNS
    excluded: pd.DataFrame  # EXCLUDED_COLUMNS
    rejected: pd.DataFrame  # REJECTED_ITEM_COLUMNS
    notes: tuple[str, ...] = ()

    def counts(self) -> dict[str, int]:
        return {
            "items": len(self.items),
            "excluded": len(self.excluded),
            "rejected": len(self.rejected),
        }


class UnaccountedRowsError(RuntimeError):
    """A bug: normalisation lost or duplicated a source row. Never caught on purpose."""


def minor_units(currency: str) -> int:
    """Digits after the decimal point for an ISO 4217 currency."""
    if currency not in CURRENCIES:
        raise ValueError(f"unknown ISO 4217 currency {currency!r}")
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 4 if currency in FOUR_DECIMAL else 2


def format_price(amount: Decimal, currency: str) -> str:
    """Meta's price text: `format_price(Decimal("3200"), "PKR") == "3200.00 PKR"`, `"1500 JPY"`.

    Rounds half up to the currency's minor units; callers reject prices that would need it.
    """
    digits = minor_units(currency)
    quantum = Decimal(1).scaleb(-digits)
    return f"{amount.quantize(quantum, rounding=ROUND_HALF_UP):f} {currency}"


def neutralise_formula(series: pd.Series) -> pd.Series:
    """Prefix cells a spreadsheet would run as a formula (= + - @ tab CR) with a quote."""
    text = series.astype("str")
    risky = text.str.startswith(FORMULA_PREFIXES)
    return text.where(~risky, "'" + text)


# --- text -----------------------------------------------------------------------------------

_SHORTCODE_CLOSER = re.compile(r"\[/([A-Za-z][\w-]*)\]")
_SHORTCODE_ANY = re.compile(r"\[/?([A-Za-z][\w-]*)(?:\s[^\[\]]*)?/?\]")
_DROP_BLOCKS = re.compile(r"<(script|style)\b[^>]*>.*?</\1\s*>", re.IGNORECASE | re.DOTALL)
_TAG = re.compile(r"</?[A-Za-z!][^<>]*>")
_SPACE = re.compile(r"\s+")


def clean_text(text: str, limit: int | None = None) -> str:
    """Plain text for Meta: shortcodes and tags removed, entities decoded, whitespace collapsed,
    and only then cut to `limit` (cutting first could keep half a tag and lose the text)."""
    text = _strip_shortcodes(text)
    text = _DROP_BLOCKS.sub(" ", text)
    text = _TAG.sub(" ", text)
    text = html.unescape(text)
    text = _TAG.sub(" ", text)  # entity-encoded markup such as &lt;p&gt;
    text = _SPACE.sub(" ", text).strip()
    return truncate(text, limit)


def _strip_shortcodes(text: str) -> str:
    # A page-builder shortcode has a closing tag, an underscore (vc_row) or attributes
    # ([caption id="1"]); "[sic]" or "[1]" in prose are kept.
    if "[" not in text:
        return text
    closed = {name.casefold() for name in _SHORTCODE_CLOSER.findall(text)}

    def replace(match: re.Match[str]) -> str:
        name = match.group(1)
        whole = match.group(0)
        if name.casefold() in closed or "_" in name or "=" in whole or whole.startswith("[/"):
            return " "
        return whole

    return _SHORTCODE_ANY.sub(replace, text)


def truncate(text: str, limit: int | None) -> str:
    if limit is None or len(text) <= limit:
        return text
    return text[:limit].rstrip()


def _map_unique(series: pd.Series, func: Callable[[str], object]) -> pd.Series:
    """Apply a scalar function once per distinct value: catalogs repeat text a lot."""
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    mapped = np.empty(len(uniques), dtype=object)
    mapped[:] = [func(value) for value in uniques]
    return pd.Series(mapped[codes], index=series.index)


# Cleaning all distinct values of a column at once: each regex runs once over the values joined
# by NUL (one C-level pass instead of ~8 Python calls per value). Every character class below
# excludes NUL, so no match can reach into the next value. Values holding a NUL, and values with
# a shortcode whose fate depends on the rest of the value ("[sic]" stays, "[b]..[/b]" goes),
# are cleaned one by one with `clean_text`; in all the others every shortcode goes.
_SEP = "\x00"
_JOINED_SHORTCODE_ANY = re.compile(r"\[/?([A-Za-z][\w-]*)(?:\s[^\[\]\x00]*)?/?\]")
# what _SHORTCODE_ANY matches minus the sure removals: no "[/", no "_" in the name, no "="
_CONDITIONAL_SHORTCODE = re.compile(r"\[[A-Za-z](?:[^\W_]|-)*(?:\s[^\[\]=\x00]*)?/?\]")
_JOINED_DROP_BLOCKS = re.compile(r"<(script|style)\b[^>\x00]*>[^\x00]*?</\1\s*>", re.IGNORECASE)
_JOINED_TAG = re.compile(r"</?[A-Za-z!][^<>\x00]*>")


def clean_texts(values: list[str]) -> list[str]:
    """`[clean_text(v) for v in values]` (without a limit), for many values at a time."""
    one_by_one = _needing_own_pass(values)
    out = [clean_text(values[i]) if i in one_by_one else "" for i in range(len(values))]
    joinable = [i for i in range(len(values)) if i not in one_by_one]
    if not joinable:
        return out
    joined = _SEP.join(values[i] for i in joinable)
    if "[" in joined:
        joined = _JOINED_SHORTCODE_ANY.sub(" ", joined)
    if "<" in joined:
        joined = _JOINED_DROP_BLOCKS.sub(" ", joined)
        joined = _JOINED_TAG.sub(" ", joined)
    joined = html.unescape(joined)  # cannot produce a NUL: &#0; decodes to U+FFFD
    if "<" in joined:
        joined = _JOINED_TAG.sub(" ", joined)  # entity-encoded markup such as &lt;p&gt;
    for i, text in zip(joinable, joined.split(_SEP), strict=True):
        # str.split() splits on exactly what `\s` matches: same as _SPACE.sub + strip, faster
        out[i] = " ".join(text.split())
    return out


def _needing_own_pass(values: list[str]) -> set[int]:
    """Positions of values holding a NUL or a conditional shortcode (rare in real catalogs)."""
    own = {i for i, value in enumerate(values) if _SEP in value}
    rest = [i for i in range(len(values)) if i not in own]
    joined = _SEP.join(values[i] for i in rest)
    if "[" not in joined:
        return own
    starts = np.cumsum([0] + [len(values[i]) + 1 for i in rest[:-1]]).tolist()
    for match in _CONDITIONAL_SHORTCODE.finditer(joined):
        own.add(rest[bisect.bisect_right(starts, match.start()) - 1])
    return own


def _python_strings(values: pd.Index) -> list[str]:
    # one C-level conversion; iterating an Arrow-backed index converts value by value
    return [str(value) for value in values.to_numpy(dtype=object).tolist()]


def _clean_column(series: pd.Series, limit: int) -> tuple[pd.Series, pd.Series]:
    """Cleaned text and a mask of values that had to be cut, computed per distinct value."""
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    full = clean_texts(_python_strings(uniques))
    cut = np.array([len(text) > limit for text in full], dtype=bool)
    kept = pd.array([truncate(text, limit) for text in full], dtype="str")
    return (
        pd.Series(kept.take(codes), index=series.index, dtype="str"),
        pd.Series(cut[codes], index=series.index),
    )


# --- the normaliser -------------------------------------------------------------------------


def normalise_catalog(
    raw: pd.DataFrame,
    kind: str,
    shop: ShopContext,
    limits: FieldLimits | None = None,
    now: datetime | None = None,
) -> NormalisedCatalog:
    """Turn one shop's raw store rows into Meta items, exclusions and rejections.

    This is the reference: `pipelines.catalog.snapshot_cache.normalise_incremental` gives the
    same catalog by re-normalising only the products whose raw rows changed.
    """
    return normalise_parts(raw, kind, shop, limits, now).catalog


@dataclass(frozen=True)
class Identity:
    """`variant_id`, `item_group_id` and `source_row` of EVERY store item row of a snapshot (the
    rows that reach the Meta checks, including those they reject): what the cross-product
    identity checks (duplicate ids, id used as a group id) compare a row with."""

    rows: pd.DataFrame

    def duplicated_ids(self) -> pd.Series:
        """Each duplicated non-empty variant id -> its source rows ("4, 9"), in row order."""
        rows = self.rows
        present = rows["variant_id"] != ""
        duplicated = present & rows["variant_id"].duplicated(keep=False)
        copies = rows.loc[duplicated].sort_values("source_row", kind="stable")
        return copies.groupby("variant_id")["source_row"].agg(lambda s: ", ".join(map(str, s)))

    def group_ids(self) -> np.ndarray:
        group = self.rows["item_group_id"]
        return group[group != ""].unique()


@dataclass(frozen=True)
class NormalisedParts:
    """A catalog plus what an incremental snapshot needs to reuse it (see snapshot_cache)."""

    catalog: NormalisedCatalog
    store_rejected: int  # the first rows of catalog.rejected come from the store format
    identity: pd.DataFrame  # variant_id, item_group_id, source_row of every store item row
    sale_ends: pd.DataFrame  # source_row, sale_end: rows whose sale hinges on `now`


def normalise_parts(
    raw: pd.DataFrame,
    kind: str,
    shop: ShopContext,
    limits: FieldLimits | None = None,
    now: datetime | None = None,
    identity: Identity | None = None,
    store_rows: StoreRows | None = None,
) -> NormalisedParts:
    """`normalise_catalog`, with the identity checks also counting `identity`: the store rows
    of the snapshot's other products, when `raw` holds only some of them."""
    limits = limits or FieldLimits()
    now = now or datetime.now(UTC)
    # `store_rows`: to_store_rows(raw) when the caller already has it (consumed here)
    rows = store_rows if store_rows is not None else source_class(kind).to_store_rows(raw)
    frame = rows.items  # a new frame from to_store_rows: changed in place, never copied
    checks: list[Check] = []
    own_identity = frame[["variant_id", "item_group_id", "source_row"]]

    if identity is not None:
        identity = Identity(pd.concat([identity.rows, own_identity], ignore_index=True))
    frame["warnings"] = ""
    checks += _identity_checks(frame, limits, identity)
    checks += _text_fields(frame, shop, limits)
    checks += _money_fields(frame, shop, now)
    checks += _link_fields(frame, shop, limits)
    _enum_fields(frame, limits)
    pending = frame["_pending_end"].notna().to_numpy()
    sale_ends = frame.loc[pending, ["source_row", "_pending_end"]].reset_index(drop=True)
    sale_ends = sale_ends.rename(columns={"_pending_end": "sale_end"})

    reason, detail = _first_failure(frame, checks)
    failed = reason != ""
    rejected = [rows.rejected, rejected_rows(frame, failed, "", detail)]
    rejected[1]["reason"] = reason[failed].to_numpy()
    items = _items(frame, ~failed)
    catalog = NormalisedCatalog(
        items=items,
        excluded=rows.excluded[list(EXCLUDED_COLUMNS)].reset_index(drop=True),
        rejected=_with_fix_urls(concat_frames(rejected, REJECTED_COLUMNS), shop),
        notes=tuple(getattr(raw, "attrs", {}).get("notes", ())),
    )
    _check_accounting(raw, catalog)
    return NormalisedParts(catalog, len(rows.rejected), own_identity, sale_ends)


def _warn(frame: pd.DataFrame, mask: pd.Series, message: str) -> None:
    rows = mask.fillna(False).to_numpy(dtype=bool)
    if not rows.any():  # the usual case: skip two column-wide string operations
        return
    before = frame.loc[rows, "warnings"]
    joined = before.where(before == "", before + "; ") + message
    frame.loc[rows, "warnings"] = joined


def _identity_checks(
    frame: pd.DataFrame, limits: FieldLimits, identity: Identity | None = None
) -> list:
    rid, group = frame["variant_id"], frame["item_group_id"]
    present = rid != ""
    if identity is None:  # the whole snapshot: its own rows are the identity
        duplicated = present & rid.duplicated(keep=False)
        rows_of = (
            frame.loc[duplicated]
            .groupby("variant_id")["source_row"]
            .agg(lambda s: ", ".join(map(str, s)))
        )
        groups = group[group != ""].unique()
    else:
        rows_of = identity.duplicated_ids()
        duplicated = present & _is_in(rid, rows_of.index.to_numpy(dtype=object))
        groups = identity.group_ids()
    return [
        (~present, RejectionReason.MISSING_ID, "no variant id"),
        (
            (rid.str.len() > limits.id) | (group.str.len() > limits.item_group_id),
            RejectionReason.ID_TOO_LONG,
            f"id or item_group_id longer than {limits.id} characters",
        ),
        (
            rid.str.startswith(FORMULA_PREFIXES) | group.str.startswith(FORMULA_PREFIXES),
            RejectionReason.UNSAFE_ID,
            "id starts with = + - @ (would run as a spreadsheet formula)",
        ),
        (
            duplicated,
            RejectionReason.DUPLICATE_ID,
            lambda rows: (
                "id "
                + rid[rows]
                + " on rows "
                + rid[rows].map(rows_of).astype("string").fillna("").astype("str")
            ),
        ),
        (
            present & _is_in(rid, groups),
            RejectionReason.ID_USED_BY_GROUP,
            lambda rows: "id " + rid[rows] + " is also a product group id",
        ),
    ]


def _is_in(values: pd.Series, candidates: object) -> pd.Series:
    """values.isin(candidates) for text, hashed by Arrow (pandas lists the candidates in Python)."""
    text = pa.array(values.array).cast(pa.large_string())
    found = pc.is_in(text, value_set=pa.array(candidates).cast(pa.large_string()))
    return pd.Series(found.to_numpy(zero_copy_only=False), index=values.index)


def _text_fields(frame: pd.DataFrame, shop: ShopContext, limits: FieldLimits) -> list:
    frame["title"], cut = _clean_column(frame["title"], limits.title)
    _warn(frame, cut, f"title cut to {limits.title} characters")
    frame["description"], cut = _clean_column(frame["description"], limits.description)
    _warn(frame, cut, f"description cut to {limits.description} characters")
    no_description = frame["description"] == ""
    frame["description"] = frame["description"].where(~no_description, frame["title"])
    _warn(frame, no_description & (frame["title"] != ""), "no description: title used")

    brand = frame["brand"].where(frame["brand"] != "", shop.brand or "")
    frame["brand"], _ = _clean_column(brand, limits.brand)
    for name in (
        "google_product_category",
        "product_type",
        "color",
        "size",
        "material",
        "pattern",
        "additional_variant_attribute",
        "gtin",
        "mpn",
    ):
        frame[name], _ = _clean_column(frame[name], getattr(limits, name))
    return [
        (frame["title"] == "", RejectionReason.MISSING_TITLE, "no title"),
        (frame["brand"] == "", RejectionReason.MISSING_BRAND, "no brand and no shop brand"),
    ]


def _enum_fields(frame: pd.DataFrame, limits: FieldLimits) -> None:
    availability = per_distinct(
        frame["availability"], lambda text: text.str.casefold().str.replace("_", " ", regex=False)
    )
    unknown = (availability != "") & ~availability.isin(AVAILABILITY)
    _warn(frame, unknown, "unknown availability: in stock assumed")
    frame["availability"] = availability.where(availability.isin(AVAILABILITY), "in stock")
    condition = per_distinct(frame["condition"], lambda text: text.str.casefold())
    frame["condition"] = condition.where(condition.isin(CONDITIONS), "new")
    gender = per_distinct(frame["gender"], lambda text: text.str.casefold())
    frame["gender"] = gender.where(gender.isin(GENDERS), "")
    age = per_distinct(frame["age_group"], lambda text: text.str.casefold())
    frame["age_group"] = age.where(age.isin(AGE_GROUPS), "")
    frame["status"] = frame["status"].where(frame["status"] == "archived", "active")
    frame["quantity_to_sell_on_facebook"] = pd.to_numeric(
        frame["inventory"], errors="coerce"
    ).astype("Int64")


# --- money ----------------------------------------------------------------------------------

_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def _decimal(value: str) -> Decimal | None:
    """Decimal for a well-formed number like 12.50 or -3, None otherwise."""
    if not _NUMBER.fullmatch(value):
        return None
    try:
        return Decimal(value)
    except InvalidOperation:
        return None


@dataclass(frozen=True)
class _Amounts:
    """Every price cell of the frame as a code into one table of distinct amounts.

    Prices repeat a lot (a few thousand distinct amounts in a million rows), so Decimals are
    parsed, compared, checked and rendered once per distinct amount and spread back by code.
    `values[code]` is the Decimal or None (empty or not a number; the last slot is always None).
    `rank` orders the amounts exactly (equal amounts such as 12.5 and 12.50 share a rank).
    """

    values: np.ndarray  # object: Decimal | None
    valid: np.ndarray  # bool
    positive: np.ndarray  # bool
    rank: np.ndarray  # int64, -1 for None

    @classmethod
    def parse(cls, text: pd.Series) -> tuple["_Amounts", np.ndarray]:
        codes, uniques = pd.factorize(text, use_na_sentinel=False)
        values = np.empty(len(uniques) + 1, dtype=object)
        values[:] = [*(_decimal(str(value)) for value in uniques), None]
        valid = np.array([value is not None for value in values], dtype=bool)
        positive = np.array([value is not None and value > 0 for value in values], dtype=bool)
        distinct = sorted({value for value in values if value is not None})
        order = {value: position for position, value in enumerate(distinct)}
        rank = np.array([order.get(value, -1) for value in values], dtype=np.int64)
        return cls(values, valid, positive, rank), codes

    @property
    def none(self) -> int:
        return len(self.values) - 1

    def greater(self, left: np.ndarray, right: np.ndarray) -> np.ndarray:
        """left > right where both are amounts, False elsewhere."""
        both = self.valid[left] & self.valid[right]
        return both & (self.rank[left] > self.rank[right])

    def series(self, codes: np.ndarray, index: pd.Index) -> pd.Series:
        return pd.Series(self.values[codes], index=index, dtype=object)


def _money_fields(frame: pd.DataFrame, shop: ShopContext, now: datetime) -> list:
    raw_price = frame["price"]
    currency = per_distinct(frame["currency"], lambda text: text.str.upper())
    currency = currency.where(frame["currency"] != "", shop.currency)
    frame["currency"] = currency
    bad_currency = ~currency.isin(CURRENCIES)
    rows = len(frame)
    # one table of amounts for the three price columns (codes sliced back per column)
    cells = pd.concat(
        [frame["price"], frame["compare_at_price"], frame["sale_price"]], ignore_index=True
    )
    amounts, codes = _Amounts.parse(cells)
    price, compare, sale = codes[:rows], codes[rows : 2 * rows], codes[2 * rows :]

    # Shopify sells at `price` and shows `compare_at_price` struck through: that is a sale.
    marked_down = amounts.greater(compare, price)
    regular = np.where(marked_down, compare, price)
    candidate = np.where(marked_down, price, sale)
    on_sale = amounts.greater(regular, candidate) & amounts.positive[candidate]
    on_sale = _sale_window(frame, shop, pd.Series(on_sale, index=frame.index))
    # the only use of `now`: an incremental snapshot re-normalises these rows' products once
    # `now` passes their sale_end (snapshot_cache)
    frame["_pending_end"] = frame["sale_end"].where(on_sale)
    on_sale = on_sale & (frame["sale_end"].isna() | (frame["sale_end"] > pd.Timestamp(now)))
    frame.loc[~on_sale, ["sale_start", "sale_end"]] = pd.NaT
    # one unit whatever the export holds (pandas infers s, us or ns from the values), so a
    # catalog assembled from parts has the same dtype as one normalised whole
    frame["sale_start"] = frame["sale_start"].dt.as_unit(SALE_TIME_UNIT)
    frame["sale_end"] = frame["sale_end"].dt.as_unit(SALE_TIME_UNIT)
    frame.loc[~on_sale, "sale_price_effective_date"] = ""

    sale_now = np.where(on_sale.to_numpy(), candidate, amounts.none)
    frame["price_amount"] = amounts.series(regular, frame.index)
    frame["sale_price_amount"] = amounts.series(sale_now, frame.index)
    precise = _fits_minor_units(amounts, regular, currency) & _fits_minor_units(
        amounts, sale_now, currency
    )
    # the store's own price must be valid even when a compare-at price is the Meta price
    renderable = ~bad_currency & amounts.positive[price] & amounts.positive[regular] & precise
    frame["price"] = _render(amounts, regular, currency, renderable)
    frame["sale_price"] = _render(amounts, candidate, currency, renderable & on_sale)
    parsed = pd.Series(amounts.valid[price], index=frame.index)
    above_zero = pd.Series(amounts.positive[price], index=frame.index)
    return [
        (raw_price == "", RejectionReason.MISSING_PRICE, "no price"),
        (
            ~parsed & (raw_price != ""),
            RejectionReason.INVALID_PRICE,
            lambda rows: "price " + raw_price[rows] + " is not a number like 12.50",
        ),
        (
            parsed & ~above_zero,
            RejectionReason.NON_POSITIVE_PRICE,
            lambda rows: "price " + raw_price[rows] + " must be above zero",
        ),
        (
            bad_currency,
            RejectionReason.BAD_CURRENCY,
            lambda rows: "currency " + currency[rows] + " is not ISO 4217",
        ),
        (
            ~bad_currency & ~precise,
            RejectionReason.PRICE_PRECISION,
            lambda rows: "price has more decimals than " + currency[rows] + " allows",
        ),
    ]


def _amount_currency_pairs(
    codes: np.ndarray, currency: pd.Series, mask: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The distinct (amount code, currency) pairs among `mask` rows, and each row's pair."""
    currency_codes, currencies = pd.factorize(currency, use_na_sentinel=False)
    width = max(len(currencies), 1)  # an empty frame has no currencies
    keys = codes[mask].astype(np.int64) * width + currency_codes[mask]
    pairs, inverse = np.unique(keys, return_inverse=True)
    return pairs // width, np.asarray(currencies, dtype=object)[pairs % width], inverse


def _fits_minor_units(amounts: _Amounts, codes: np.ndarray, currency: pd.Series) -> pd.Series:
    def fits(amount: Decimal | None, code: str) -> bool:
        if amount is None or code not in CURRENCIES:
            return True
        return amount == amount.quantize(Decimal(1).scaleb(-minor_units(code)))

    everywhere = np.ones(len(codes), dtype=bool)
    pair_amounts, pair_currencies, inverse = _amount_currency_pairs(codes, currency, everywhere)
    per_pair = np.array(
        [
            fits(amounts.values[amount], str(code))
            for amount, code in zip(pair_amounts, pair_currencies, strict=True)
        ],
        dtype=bool,
    )
    return pd.Series(per_pair[inverse], index=currency.index)


def _render(
    amounts: _Amounts, codes: np.ndarray, currency: pd.Series, mask: pd.Series
) -> pd.Series:
    """Meta price text for `mask` rows, "" for the others; formatted once per distinct pair."""
    chosen = mask.to_numpy(dtype=bool)
    out = np.full(len(codes), "", dtype=object)
    if chosen.any():
        pair_amounts, pair_currencies, inverse = _amount_currency_pairs(codes, currency, chosen)
        text = np.array(
            [
                format_price(amounts.values[amount], str(code))
                for amount, code in zip(pair_amounts, pair_currencies, strict=True)
            ],
            dtype=object,
        )
        out[chosen] = text[inverse]
    return pd.Series(out, index=mask.index, dtype="str")


def _sale_window(frame: pd.DataFrame, shop: ShopContext, on_sale: pd.Series) -> pd.Series:
    """Set sale_start / sale_end (UTC) and Meta's `start/end` text in shop time.

    Returns `on_sale` without the rows whose dates cannot be read: an unreadable window must
    not turn into a sale that never ends.
    """
    zone = ZoneInfo(shop.timezone)
    start = _local_times(frame["sale_start"], shop.timezone, end_of_day=False)
    end = _local_times(frame["sale_end"], shop.timezone, end_of_day=True)
    unreadable = on_sale & (
        ((frame["sale_start"] != "") & start.isna()) | ((frame["sale_end"] != "") & end.isna())
    )
    _warn(frame, unreadable, "sale dates unreadable: sale ignored")
    on_sale = on_sale & ~unreadable
    windowed = on_sale & (start.notna() | end.notna())
    open_start = f"{OPEN_START}{_offset(zone, OPEN_START)}"
    open_end = f"{OPEN_END}{_offset(zone, OPEN_END)}"
    start_text = _map_unique(start, _iso_minutes).astype("str").where(start.notna(), open_start)
    end_text = _map_unique(end, _iso_minutes).astype("str").where(end.notna(), open_end)
    frame["sale_price_effective_date"] = (start_text + "/" + end_text).where(windowed, "")
    frame["sale_start"] = start.dt.tz_convert("UTC")
    frame["sale_end"] = end.dt.tz_convert("UTC")
    return on_sale


def _local_times(text: pd.Series, timezone: str, end_of_day: bool) -> pd.Series:
    parsed = pd.to_datetime(text.where(text != "", None), errors="coerce", format="mixed")
    if end_of_day:
        date_only = text.str.fullmatch(r"\d{4}-\d{2}-\d{2}")
        parsed = parsed.where(~date_only, parsed + pd.Timedelta(hours=23, minutes=59))
    if parsed.dt.tz is None:
        parsed = parsed.dt.tz_localize(timezone, ambiguous="NaT", nonexistent="shift_forward")
    return parsed.dt.tz_convert(timezone)


def _iso_minutes(value: object) -> str:
    return "" if pd.isna(value) else value.isoformat(timespec="minutes")


def _offset(zone: ZoneInfo, local: str) -> str:
    stamp = datetime.fromisoformat(local).replace(tzinfo=zone)
    return stamp.isoformat(timespec="minutes")[len(local) :]


# --- links and images -----------------------------------------------------------------------

_HTTP = re.compile(r"^https?://\S+$")


def _link_fields(frame: pd.DataFrame, shop: ShopContext, limits: FieldLimits) -> list:
    templated = _render_template(shop.product_url_template, frame)
    frame["link"] = frame["link"].where(frame["link"] != "", templated)
    frame["image_link"] = per_distinct(frame["image_link"], _absolute_images)
    frame["additional_image_link"] = _map_unique(
        frame["additional_image_links"], lambda text: _image_list(text, limits)
    ).astype("str")
    image, link = frame["image_link"], frame["link"]
    return [
        (image == "", RejectionReason.MISSING_IMAGE, "no image"),
        (
            (image != "") & ~_is_http(image),
            RejectionReason.INVALID_IMAGE,
            lambda rows: "image " + image[rows] + " is not an http(s) URL",
        ),
        (
            link == "",
            RejectionReason.MISSING_LINK,
            "no product link, and no URL template or none with a value for this product",
        ),
        (
            (link != "") & ~_is_http(link),
            RejectionReason.INVALID_LINK,
            lambda rows: "link " + link[rows] + " is not an http(s) URL",
        ),
    ]


def _absolute_images(image: pd.Series) -> pd.Series:
    image = image.str.strip()
    return image.where(~image.str.startswith("//"), "https:" + image)


def _is_http(urls: pd.Series) -> pd.Series:
    """An http(s) URL without whitespace; checked once per distinct URL."""
    codes, uniques = pd.factorize(urls, use_na_sentinel=False)
    matched = np.array([_HTTP.match(url) is not None for url in _python_strings(uniques)])
    return pd.Series(matched[codes], index=urls.index)


def _image_list(text: str, limits: FieldLimits) -> str:
    urls = [u.strip() for u in text.split(",") if _HTTP.match(u.strip())]
    kept: list[str] = []
    for url in urls[: limits.additional_images]:
        if len(",".join([*kept, url])) > limits.additional_image_link_chars:
            break
        kept.append(url)
    return ",".join(kept)


def _render_template(template: str | None, frame: pd.DataFrame) -> pd.Series:
    """Fill {product_id} {variant_id} {handle} {sku} column-wise (no per-row format calls). A row
    for which the store gives none of the template's placeholders a value (WooCommerce exports
    have no handle) gets no link: the same bare link for every item would be wrong for all."""
    out = pd.Series("", index=frame.index, dtype="str")
    if not template:
        return out
    position = 0
    unfilled = pd.Series(True, index=frame.index)
    for match in _PLACEHOLDER.finditer(template):
        value = frame[match.group(1)].str.replace(" ", "%20", regex=False)
        unfilled &= value == ""
        out = out + template[position : match.start()] + value
        position = match.end()
    return (out + template[position:]).where(~unfilled, "")


# --- rejection, items, hashes ---------------------------------------------------------------


# A check is (mask, reason, detail); the detail is a text, or a function building the texts for
# the failing rows only (most rows pass, so column-wide messages would be wasted work).
Check = tuple[pd.Series, RejectionReason, str | Callable[[pd.Series], pd.Series]]


def _first_failure(frame: pd.DataFrame, checks: list[Check]) -> tuple[pd.Series, pd.Series]:
    """The first failing check's reason per row, and every failing check's detail."""
    reason = np.full(len(frame), "", dtype=object)
    detail = np.full(len(frame), "", dtype=object)
    for mask, code, message in checks:
        mask = mask.fillna(False).astype(bool)
        rows = np.flatnonzero(mask.to_numpy())
        if not len(rows):
            continue
        if isinstance(message, str):
            texts = [message] * len(rows)
        else:
            texts = message(mask).fillna("").astype("str").tolist()
        first = rows[reason[rows] == ""]
        reason[first] = str(code)
        detail[rows] = [
            text if before == "" else f"{before}; {text}"
            for before, text in zip(detail[rows], texts, strict=True)
        ]
    return (
        pd.Series(reason, index=frame.index, dtype="str"),
        pd.Series(detail, index=frame.index, dtype="str"),
    )


def _items(frame: pd.DataFrame, passed: pd.Series) -> pd.DataFrame:
    """The rows that passed every check, as ITEM_COLUMNS. Consumes `frame`: each column is
    dropped from it once copied, so a 1M-row catalog is never held twice in memory."""
    keep = None if passed.all() else np.flatnonzero(passed.to_numpy())
    variant_id = frame["variant_id"]
    columns = {}
    for name in ITEM_COLUMNS[:-2]:
        values = variant_id if name in ("retailer_id", "id") else frame.pop(name)
        if name not in NON_TEXT_ITEM_COLUMNS and values.dtype != "str":
            # one dtype whatever the store gave (WooCommerce image links arrive as object), so a
            # catalog assembled from cached parts has the same dtypes as one normalised whole
            values = values.astype("str")
        columns[name] = values if keep is None else values.iloc[keep]
    del variant_id
    items = pd.DataFrame(columns, copy=False).reset_index(drop=True)
    items["content_hash"], items["volatile_hash"] = content_hashes(items)
    return items


def _hash_frame(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    text = pd.DataFrame({name: _hash_text(frame[name]) for name in columns}, copy=False)
    values = pd.util.hash_pandas_object(text, index=False).to_numpy()
    return pd.Series(_hex16(values), index=frame.index, dtype="str")


def _hash_text(values: pd.Series) -> pd.Series:
    """Each value as the text that is hashed ("" for missing), as a str column."""
    if values.dtype == "str":  # already text: skip two whole-column conversions
        return values.fillna("") if values.hasnans else values
    return values.astype("string").fillna("").astype("str")


_HEX_PAIRS = np.array([f"{byte:02x}".encode() for byte in range(256)], dtype="S2")


def _hex16(values: np.ndarray) -> np.ndarray:
    """f"{v:016x}" for each uint64, through a byte -> two hex digits table (vectorised)."""
    big_endian = values.astype(">u8").view(np.uint8).reshape(-1, 8)
    digits = _HEX_PAIRS[big_endian].view("S16").ravel()
    return digits.astype(str)


def content_hashes(items: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """(content_hash, volatile_hash) for items.

    content_hash is 32 hex characters: a digest of the non-volatile Meta fields followed by the
    volatile digest, so it changes with any Meta field and the diff can tell a volatile-only
    change (first half equal) from a full one with a ledger that stores just these two hashes.
    """
    # TODO(hash-stability): digests come from pandas' hash_pandas_object (fixed key, stable
    # since pandas 0.20); if an upgrade changed it, the next run would re-send every item once.
    volatile = _hash_frame(items, VOLATILE_FIELDS)
    static = _hash_frame(items, STATIC_FIELDS)
    return static + volatile, volatile


def _with_fix_urls(rejected: pd.DataFrame, shop: ShopContext) -> pd.DataFrame:
    frame = rejected.rename(columns={"retailer_id": "variant_id"})
    frame["handle"] = frame["product_id"]
    frame["sku"] = ""
    out = rejected.copy()
    out["fix_url"] = _render_template(shop.admin_url_template, frame)
    out.loc[out["product_id"] == "", "fix_url"] = ""
    return out[list(REJECTED_ITEM_COLUMNS)]


def _check_accounting(raw: pd.DataFrame, catalog: NormalisedCatalog) -> None:
    seen = np.concatenate(
        [
            catalog.items["source_row"].to_numpy(dtype="int64"),
            catalog.excluded["source_row"].to_numpy(dtype="int64"),
            catalog.rejected["source_row"].to_numpy(dtype="int64"),
        ]
    )
    expected = raw["source_row"].to_numpy(dtype="int64")
    if len(seen) != len(expected) or not np.array_equal(np.sort(seen), np.sort(expected)):
        missing = np.setdiff1d(expected, seen)[:10].tolist()
        raise UnaccountedRowsError(
            f"{len(expected)} source rows but {len(seen)} accounted for; missing {missing}"
        )

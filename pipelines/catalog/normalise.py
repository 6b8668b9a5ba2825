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

import html
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import numpy as np
import pandas as pd
from pydantic import BaseModel, Field, field_validator

from resources.store import (
    EXCLUDED_COLUMNS,
    REJECTED_COLUMNS,
    RejectionReason,
    source_class,
)
from resources.store.base import concat_frames, rejected_rows

# ISO 4217 active codes with their minor units; absent from ZERO/THREE/FOUR means 2.
ZERO_DECIMAL = frozenset(
    "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF".split()
)
THREE_DECIMAL = frozenset("BHD IQD JOD KWD LYD OMR TND".split())
FOUR_DECIMAL = frozenset("CLF UYW".split())
TWO_DECIMAL = frozenset(
    """AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP
    BYN BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD
    FKP GBP GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT
    LAK LBP LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO
    NOK NPR NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS
    SRD SSP STN SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD
    XCG YER ZAR ZMW ZWG ZWL""".split()
)
CURRENCIES = ZERO_DECIMAL | THREE_DECIMAL | FOUR_DECIMAL | TWO_DECIMAL

AVAILABILITY = frozenset(
    {"in stock", "out of stock", "preorder", "available for order", "discontinued"}
)
CONDITIONS = frozenset({"new", "refurbished", "used"})
GENDERS = frozenset({"female", "male", "unisex"})
AGE_GROUPS = frozenset({"newborn", "infant", "toddler", "kids", "adult"})
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")
OPEN_START = "1970-01-01T00:00"  # Meta needs both ends of a sale window
OPEN_END = "2099-12-31T23:59"

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


class ShopContext(BaseModel):
    """What normalisation needs to know about the shop (a slice of the shop profile)."""

    currency: str = Field(pattern=r"^[A-Z]{3}$")
    timezone: str = "UTC"
    # placeholders: {product_id} {variant_id} {handle} {sku}
    product_url_template: str | None = None
    admin_url_template: str | None = None  # where a seller fixes a rejected row
    brand: str | None = None  # used when the store gives no brand (Meta requires one)

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown timezone {value!r}; use an IANA name") from exc
        return value


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


def _clean_column(series: pd.Series, limit: int) -> tuple[pd.Series, pd.Series]:
    """Cleaned text and a mask of values that had to be cut."""
    full = _map_unique(series, clean_text).astype("str")
    cut = full.str.len() > limit
    return full.where(~cut, full.map(lambda t: truncate(t, limit))).astype("str"), cut


# --- the normaliser -------------------------------------------------------------------------


def normalise_catalog(
    raw: pd.DataFrame,
    kind: str,
    shop: ShopContext,
    limits: FieldLimits | None = None,
    now: datetime | None = None,
) -> NormalisedCatalog:
    """Turn one shop's raw store rows into Meta items, exclusions and rejections."""
    limits = limits or FieldLimits()
    now = now or datetime.now(UTC)
    rows = source_class(kind).to_store_rows(raw)
    frame = rows.items.copy()
    checks: list[tuple[pd.Series, RejectionReason, pd.Series | str]] = []

    frame["warnings"] = ""
    checks += _identity_checks(frame, limits)
    checks += _text_fields(frame, shop, limits)
    checks += _money_fields(frame, shop, now)
    checks += _link_fields(frame, shop, limits)
    _enum_fields(frame, limits)

    reason, detail = _first_failure(frame, checks)
    failed = reason != ""
    rejected = [rows.rejected, rejected_rows(frame, failed, "", detail)]
    rejected[1]["reason"] = reason[failed].to_numpy()
    items = _items(frame.loc[~failed])
    catalog = NormalisedCatalog(
        items=items,
        excluded=rows.excluded[list(EXCLUDED_COLUMNS)].reset_index(drop=True),
        rejected=_with_fix_urls(concat_frames(rejected, REJECTED_COLUMNS), shop),
        notes=tuple(getattr(raw, "attrs", {}).get("notes", ())),
    )
    _check_accounting(raw, catalog)
    return catalog


def _warn(frame: pd.DataFrame, mask: pd.Series, message: str) -> None:
    sep = frame["warnings"].where(frame["warnings"] == "", frame["warnings"] + "; ")
    frame["warnings"] = frame["warnings"].where(~mask, sep + message)


def _identity_checks(frame: pd.DataFrame, limits: FieldLimits) -> list:
    rid, group = frame["variant_id"], frame["item_group_id"]
    present = rid != ""
    duplicated = present & rid.duplicated(keep=False)
    rows_of = (
        frame.loc[duplicated]
        .groupby("variant_id")["source_row"]
        .agg(lambda s: ", ".join(map(str, s)))
    )
    groups = set(group[group != ""])
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
            "id " + rid + " on rows " + rid.map(rows_of).astype("string").fillna("").astype("str"),
        ),
        (
            present & rid.isin(groups),
            RejectionReason.ID_USED_BY_GROUP,
            "id " + rid + " is also a product group id",
        ),
    ]


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
    availability = frame["availability"].str.casefold().str.replace("_", " ", regex=False)
    unknown = (availability != "") & ~availability.isin(AVAILABILITY)
    _warn(frame, unknown, "unknown availability: in stock assumed")
    frame["availability"] = availability.where(availability.isin(AVAILABILITY), "in stock")
    condition = frame["condition"].str.casefold()
    frame["condition"] = condition.where(condition.isin(CONDITIONS), "new")
    gender = frame["gender"].str.casefold()
    frame["gender"] = gender.where(gender.isin(GENDERS), "")
    age = frame["age_group"].str.casefold()
    frame["age_group"] = age.where(age.isin(AGE_GROUPS), "")
    frame["status"] = frame["status"].where(frame["status"] == "archived", "active")
    frame["quantity_to_sell_on_facebook"] = pd.to_numeric(
        frame["inventory"], errors="coerce"
    ).astype("Int64")


# --- money ----------------------------------------------------------------------------------

_NUMBER = r"\d+(?:\.\d+)?"


def _decimals(text: pd.Series) -> pd.Series:
    """Decimal for each well-formed non-negative or negative number, None otherwise."""

    def parse(value: str) -> Decimal | None:
        if not re.fullmatch(r"-?" + _NUMBER, value):
            return None
        try:
            return Decimal(value)
        except InvalidOperation:
            return None

    return _map_unique(text, parse)


def _money_fields(frame: pd.DataFrame, shop: ShopContext, now: datetime) -> list:
    raw_price = frame["price"]
    currency = frame["currency"].str.upper().where(frame["currency"] != "", shop.currency)
    frame["currency"] = currency
    bad_currency = ~currency.isin(CURRENCIES)
    price = _decimals(frame["price"])
    compare = _decimals(frame["compare_at_price"])
    sale = _decimals(frame["sale_price"])

    # Shopify sells at `price` and shows `compare_at_price` struck through: that is a sale.
    marked_down = _greater(compare, price)
    regular = compare.where(marked_down, price)
    candidate = price.where(marked_down, sale)
    on_sale = _greater(regular, candidate) & _positive(candidate)
    on_sale = _sale_window(frame, shop, on_sale)
    on_sale = on_sale & (frame["sale_end"].isna() | (frame["sale_end"] > pd.Timestamp(now)))
    frame.loc[~on_sale, ["sale_start", "sale_end"]] = pd.NaT
    frame.loc[~on_sale, "sale_price_effective_date"] = ""

    frame["price_amount"] = regular
    frame["sale_price_amount"] = candidate.where(on_sale, None)
    precise = _fits_minor_units(regular, currency) & _fits_minor_units(
        candidate.where(on_sale, None), currency
    )
    # the store's own price must be valid even when a compare-at price is the Meta price
    renderable = ~bad_currency & _positive(price) & _positive(regular) & precise
    frame["price"] = _render(regular, currency, renderable)
    frame["sale_price"] = _render(candidate, currency, renderable & on_sale)
    return [
        (raw_price == "", RejectionReason.MISSING_PRICE, "no price"),
        (
            price.isna() & (raw_price != ""),
            RejectionReason.INVALID_PRICE,
            "price " + raw_price + " is not a number like 12.50",
        ),
        (
            price.notna() & ~_positive(price),
            RejectionReason.NON_POSITIVE_PRICE,
            "price " + raw_price + " must be above zero",
        ),
        (bad_currency, RejectionReason.BAD_CURRENCY, "currency " + currency + " is not ISO 4217"),
        (
            ~bad_currency & ~precise,
            RejectionReason.PRICE_PRECISION,
            "price has more decimals than " + currency + " allows",
        ),
    ]


def _greater(left: pd.Series, right: pd.Series) -> pd.Series:
    """left > right where both are Decimals, False elsewhere."""
    lvals, rvals = left.to_numpy(dtype=object), right.to_numpy(dtype=object)
    both = np.flatnonzero(left.notna().to_numpy() & right.notna().to_numpy())
    out = np.zeros(len(left), dtype=bool)
    out[both] = [lvals[i] > rvals[i] for i in both]
    return pd.Series(out, index=left.index)


def _positive(amounts: pd.Series) -> pd.Series:
    return amounts.map(lambda a: a is not None and a == a and a > 0).astype(bool)


def _fits_minor_units(amounts: pd.Series, currency: pd.Series) -> pd.Series:
    def fits(pair: tuple[object, str]) -> bool:
        amount, code = pair
        if amount is None or amount != amount or code not in CURRENCIES:
            return True
        return amount == amount.quantize(Decimal(1).scaleb(-minor_units(code)))

    return _map_unique(
        pd.Series(list(zip(amounts, currency, strict=True)), index=amounts.index), fits
    ).astype(bool)


def _render(amounts: pd.Series, currency: pd.Series, mask: pd.Series) -> pd.Series:
    pairs = pd.Series(list(zip(amounts, currency, strict=True)), index=amounts.index)
    rendered = _map_unique(pairs[mask], lambda pair: format_price(*pair))
    out = pd.Series("", index=amounts.index, dtype="str")
    out[mask] = rendered.astype("str")
    return out


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
    image = frame["image_link"].str.strip()
    frame["image_link"] = image.where(~image.str.startswith("//"), "https:" + image)
    frame["additional_image_link"] = _map_unique(
        frame["additional_image_links"], lambda text: _image_list(text, limits)
    ).astype("str")
    return [
        (frame["image_link"] == "", RejectionReason.MISSING_IMAGE, "no image"),
        (
            (frame["image_link"] != "") & ~frame["image_link"].str.match(_HTTP),
            RejectionReason.INVALID_IMAGE,
            "image " + frame["image_link"] + " is not an http(s) URL",
        ),
        (frame["link"] == "", RejectionReason.MISSING_LINK, "no product link and no URL template"),
        (
            (frame["link"] != "") & ~frame["link"].str.match(_HTTP),
            RejectionReason.INVALID_LINK,
            "link " + frame["link"] + " is not an http(s) URL",
        ),
    ]


def _image_list(text: str, limits: FieldLimits) -> str:
    urls = [u.strip() for u in text.split(",") if _HTTP.match(u.strip())]
    kept: list[str] = []
    for url in urls[: limits.additional_images]:
        if len(",".join([*kept, url])) > limits.additional_image_link_chars:
            break
        kept.append(url)
    return ",".join(kept)


_PLACEHOLDER = re.compile(r"\{(product_id|variant_id|handle|sku)\}")


def _render_template(template: str | None, frame: pd.DataFrame) -> pd.Series:
    """Fill {product_id} {variant_id} {handle} {sku} column-wise (no per-row format calls)."""
    out = pd.Series("", index=frame.index, dtype="str")
    if not template:
        return out
    position = 0
    for match in _PLACEHOLDER.finditer(template):
        value = frame[match.group(1)].str.replace(" ", "%20", regex=False)
        out = out + template[position : match.start()] + value
        position = match.end()
    return out + template[position:]


# --- rejection, items, hashes ---------------------------------------------------------------


def _first_failure(frame: pd.DataFrame, checks: list) -> tuple[pd.Series, pd.Series]:
    """The first failing check's reason per row, and every failing check's detail."""
    reason = pd.Series("", index=frame.index, dtype="str")
    detail = pd.Series("", index=frame.index, dtype="str")
    for mask, code, message in checks:
        mask = mask.fillna(False).astype(bool)
        text = message if isinstance(message, str) else message.fillna("").astype("str")
        reason = reason.where(~mask | (reason != ""), str(code))
        joined = detail.where(detail == "", detail + "; ") + text
        detail = detail.where(~mask, joined)
    return reason, detail


def _items(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    frame["retailer_id"] = frame["variant_id"]
    frame["id"] = frame["variant_id"]
    items = frame[list(ITEM_COLUMNS[:-2])].copy()
    items["content_hash"], items["volatile_hash"] = content_hashes(items)
    return items


def _hash_frame(frame: pd.DataFrame, columns: tuple[str, ...]) -> pd.Series:
    text = pd.DataFrame(
        {name: frame[name].astype("string").fillna("").astype("str") for name in columns}
    )
    values = pd.util.hash_pandas_object(text, index=False).to_numpy()
    return pd.Series([f"{v:016x}" for v in values], index=frame.index, dtype="str")


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

"""What every store source shares: the reading contract, the errors, and the store-neutral rows.

    source = source_for("shopify_csv", "exports/products.csv")
    raw = source.read()                   # every column as str, plus `source_row`
    rows = source.to_store_rows(raw)      # StoreRows: items / excluded / rejected

A source knows its store's export format and nothing of Meta: `to_store_rows` turns the store's
columns into `STORE_COLUMNS` (one row per sellable variant) and sets aside the rows that are not
variants (parents, grouped products, image-only rows...). `pipelines.catalog.normalise` then applies
Meta's rules (prices, text, limits, identity) to those rows.

`source_row` is the row number a seller sees when the file is opened in a spreadsheet: the header
is row 1, the first product row is row 2. Every raw row keeps it through to items, excluded or
rejected, so nothing is dropped silently.
"""

import codecs
import csv
import io
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path
from typing import ClassVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.csv as pa_csv

logger = logging.getLogger(__name__)

FIRST_DATA_ROW = 2  # spreadsheet numbering: row 1 is the header
# A raw column a reader adds when some rows could not be split into the header's cells: the
# problem for those rows (their other cells are blank), "" for the others.
ROW_PROBLEM = "_row_problem"

# The store-neutral variant row. All columns are str ("" when unknown) except `source_row`.
STORE_COLUMNS: tuple[str, ...] = (
    "source_row",
    "variant_id",  # the store's stable variant id -> Meta `id` / retailer_id
    "product_id",  # the store's product id (for links and seller issues)
    "item_group_id",  # the parent product id when the variant belongs to one, else ""
    "handle",
    "sku",
    "title",
    "description",  # raw, may hold HTML, entities and page-builder shortcodes
    "price",  # raw decimal strings, never floats
    "compare_at_price",
    "sale_price",
    "sale_start",  # raw local date/time strings in the shop's timezone
    "sale_end",
    "currency",  # "" means the shop's currency
    "availability",  # a Meta availability value, or "" when the store says nothing
    "inventory",  # raw integer string or ""
    "image_link",
    "additional_image_links",  # comma separated
    "link",
    "brand",
    "condition",
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
    "status",  # "active" or "archived"
)
EXCLUDED_COLUMNS: tuple[str, ...] = ("source_row", "product_id", "reason", "detail")
REJECTED_COLUMNS: tuple[str, ...] = (
    "source_row",
    "retailer_id",
    "item_group_id",
    "product_id",
    "reason",
    "detail",
)


class ExclusionReason(StrEnum):
    """Why a source row is, correctly, not a Meta item."""

    PARENT_OF_VARIANTS = "parent_of_variants"
    DIGITAL = "digital"  # downloadable, virtual, or needs no shipping
    GIFT_CARD = "gift_card"
    GROUPED = "grouped"
    EXTERNAL = "external"
    DRAFT = "draft"
    IMAGE_ROW = "image_row"  # Shopify: an extra product image, merged into the product's items
    NO_VARIANT_DATA = "no_variant_data"
    UNSUPPORTED_TYPE = "unsupported_type"


class RejectionReason(StrEnum):
    """Why a row that should be a Meta item cannot be one. Each maps to a seller issue."""

    MALFORMED_ROW = "malformed_row"  # the reader could not split the row into the columns
    MISSING_ID = "missing_id"
    ID_TOO_LONG = "id_too_long"
    UNSAFE_ID = "unsafe_id"
    DUPLICATE_ID = "duplicate_id"
    ID_USED_BY_GROUP = "id_used_by_group"
    ORPHAN_VARIATION = "orphan_variation"
    NO_VARIANTS = "no_variants"
    MISSING_TITLE = "missing_title"
    MISSING_PRICE = "missing_price"
    INVALID_PRICE = "invalid_price"
    NON_POSITIVE_PRICE = "non_positive_price"
    PRICE_PRECISION = "price_precision"
    BAD_CURRENCY = "bad_currency"
    MISSING_IMAGE = "missing_image"
    INVALID_IMAGE = "invalid_image"
    MISSING_LINK = "missing_link"
    INVALID_LINK = "invalid_link"
    MISSING_BRAND = "missing_brand"


class StoreSourceError(Exception):
    """The store's catalog cannot be read at all; the message names the source and the problem."""

    def __init__(self, kind: str, location: str, problem: str) -> None:
        self.kind = kind
        self.location = location
        self.problem = problem
        super().__init__(f"{kind} source {location!r}: {problem}")


@dataclass(frozen=True)
class StoreRows:
    """A store export split three ways; together they hold every raw row exactly once."""

    items: pd.DataFrame  # STORE_COLUMNS
    excluded: pd.DataFrame  # EXCLUDED_COLUMNS
    rejected: pd.DataFrame  # REJECTED_COLUMNS


class StoreSource(ABC):
    """One store catalog: where it lives, how to read it, how its columns map to variants."""

    kind: ClassVar[str]
    # The order of the exclusion and rejection blocks in `to_store_rows` (rows in source_row
    # order within a block): a catalog assembled from per-product parts is sorted back into it.
    excluded_order: ClassVar[tuple[str, ...]] = ()
    rejected_order: ClassVar[tuple[str, ...]] = ()

    def __init__(self, location: str) -> None:
        self.location = location
        self.notes: list[str] = []  # non-fatal findings while reading, e.g. an encoding fallback

    @abstractmethod
    def read(self) -> pd.DataFrame:
        """Every raw row, every column as str ("" for empty), plus an int `source_row`."""

    @classmethod
    @abstractmethod
    def to_store_rows(cls, raw: pd.DataFrame) -> StoreRows:
        """Split raw rows into store-neutral variant rows, excluded rows and rejected rows."""

    @classmethod
    def product_keys(cls, raw: pd.DataFrame) -> pd.Series | None:
        """A product key per raw row such that `to_store_rows` on the rows of some keys gives
        exactly their share of `to_store_rows` on every row; None when this export cannot be
        split so (then an incremental snapshot normalises it whole).

        Only the cross-product identity checks (duplicate ids, an id used as a group id) look
        across products; `pipelines.catalog.normalise` runs them over every product."""
        return None

    def error(self, problem: str) -> StoreSourceError:
        return StoreSourceError(self.kind, self.location, problem)


class CsvStoreSource(StoreSource):
    """A CSV export file. Subclasses give the required columns and header aliases."""

    required_columns: ClassVar[tuple[str, ...]] = ()
    # canonical header -> other spellings seen in exports (matched case-insensitively)
    header_aliases: ClassVar[Mapping[str, tuple[str, ...]]] = {}

    def read(self) -> pd.DataFrame:
        data = self._read_bytes()
        raw = _fast_utf8_csv(data)
        if raw is None:
            raw = self._read_text(self._decode(data))

        raw = raw.rename(columns=self._header_map(raw.columns))
        missing = [name for name in self.required_columns if name not in raw.columns]
        if missing:
            raise self.error(
                f"missing required column(s) {', '.join(missing)}; is this a {self.kind} export?"
            )
        raw["source_row"] = range(FIRST_DATA_ROW, FIRST_DATA_ROW + len(raw))
        raw.attrs["notes"] = list(self.notes)
        return raw

    def _read_text(self, text: str) -> pd.DataFrame:
        evened = _evened_csv(text)
        try:
            raw = pd.read_csv(
                io.StringIO(evened.text if evened else text),
                dtype=str,
                keep_default_na=False,
                na_filter=False,
            )
        except (pd.errors.ParserError, pd.errors.EmptyDataError, ValueError) as exc:
            raise self.error(f"not a readable CSV file ({exc})") from exc
        if evened:
            if len(raw) != len(evened.problems):  # the two parsers disagree: trust neither
                raise self.error("not a readable CSV file (rows cannot be told apart)")
            raw[ROW_PROBLEM] = evened.problems
        return raw

    def _read_bytes(self) -> bytes:
        path = Path(self.location)
        try:
            data = path.read_bytes()
        except FileNotFoundError as exc:
            raise self.error("file not found") from exc
        except OSError as exc:
            raise self.error(f"cannot open file ({exc.strerror})") from exc
        if not data.strip():
            raise self.error("file is empty")
        return data

    def _decode(self, data: bytes) -> str:
        # Exports re-saved by spreadsheet tools on Windows arrive as cp1252; try UTF-8 first
        # because cp1252 decodes almost any byte string into something wrong but plausible.
        try:
            return data.decode("utf-8-sig")
        except UnicodeDecodeError:
            pass
        try:
            text = data.decode("cp1252")
        except UnicodeDecodeError as exc:
            raise self.error(
                f"cannot decode as UTF-8 or cp1252 (byte 0x{data[exc.start]:02x} at offset "
                f"{exc.start}); re-export the file as UTF-8"
            ) from exc
        note = "file is not UTF-8; decoded as cp1252"
        self.notes.append(note)
        logger.warning("%s source %s: %s", self.kind, self.location, note)
        return text

    def _header_map(self, headers: Iterable[str]) -> dict[str, str]:
        lookup = {}
        for canonical, aliases in self.header_aliases.items():
            for spelling in (canonical, *aliases):
                lookup[spelling.strip().casefold()] = canonical
        present = list(headers)
        mapping = {}
        for header in present:
            canonical = lookup.get(str(header).strip().casefold())
            # never rename onto a header the file already has under its canonical name
            if canonical and canonical != header and canonical not in present:
                mapping[header] = canonical
        return mapping


@dataclass(frozen=True)
class _EvenedCsv:
    text: str  # the CSV with every row as wide as the header; ragged rows blanked
    problems: list[str]  # per data row: why it was blanked, or ""


def _evened_csv(text: str) -> _EvenedCsv | None:
    """The CSV rewritten so every row has the header's cell count, or None when it already has
    (or cannot be split at all: pandas then says why).

    pandas refuses a whole file for one row with extra cells and silently pads a short one; a
    row whose cells do not line up with the header would be read shifted, so it is blanked and
    becomes one reject (`ROW_PROBLEM`) while the other rows sync.
    """
    # a description of several hundred KB is legal; the csv module's default limit is 128 KB
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    try:
        records = [record for record in csv.reader(io.StringIO(text)) if record]
    except csv.Error:
        return None
    if not records:
        return None
    width = len(records[0])
    if all(len(record) == width for record in records):
        return None
    rows, problems = [records[0]], []
    for number, record in enumerate(records[1:], start=FIRST_DATA_ROW):
        even = len(record) == width
        rows.append(record if even else [""] * width)
        problem = f"row {number} has {len(record)} cells, the header has {width}"
        problems.append("" if even else problem)
    out = io.StringIO()
    # every cell quoted: a blanked row of a one-column file must not read as a blank line
    csv.writer(out, quoting=csv.QUOTE_ALL, lineterminator="\n").writerows(rows)
    return _EvenedCsv(out.getvalue(), problems)


def split_malformed_rows(raw: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(the raw rows a reader could split into cells, a reject for each row it could not)."""
    if ROW_PROBLEM not in raw.columns:
        return raw, empty_frame(REJECTED_COLUMNS)
    problem = raw[ROW_PROBLEM].astype("str")
    malformed = problem != ""
    rejected = rejected_rows(raw[["source_row"]], malformed, RejectionReason.MALFORMED_ROW, problem)
    return raw.loc[~malformed], rejected


def _fast_utf8_csv(data: bytes) -> pd.DataFrame | None:
    """The CSV parsed by Arrow (multi-threaded, ~10x faster than pandas' parser on 1M rows), or
    None when the file is anything but plain UTF-8 CSV that both parsers read the same way.

    The pandas parser stays the reference: it runs (with its notes and error messages) for
    cp1252 files, ragged rows, blank-named or repeated headers and header-only files, where the
    two parsers differ (pandas pads short rows, renames `a,a` to `a,a.1`...).
    """
    skip = len(codecs.BOM_UTF8) if data.startswith(codecs.BOM_UTF8) else 0
    body = pa.py_buffer(data)[skip:]  # a view: no copy of a file that can be hundreds of MB
    parse = pa_csv.ParseOptions(newlines_in_values=True)
    try:
        with pa_csv.open_csv(pa.BufferReader(body), parse_options=parse) as reader:
            names = reader.schema.names
        if not names or "" in names or len(set(names)) != len(names):
            return None
        table = pa_csv.read_csv(
            pa.BufferReader(body),
            parse_options=parse,
            convert_options=pa_csv.ConvertOptions(
                # exact text, never numbers; large_string is what pandas' str dtype holds
                column_types=dict.fromkeys(names, pa.large_string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError, UnicodeDecodeError):
        return None
    if table.num_rows == 0:
        return None
    # one contiguous array per column: later takes and factorizes on a column of ~200 parser
    # blocks are several times slower than on one array
    table = table.combine_chunks()
    text_dtype = pd.StringDtype("pyarrow", na_value=np.nan)  # what pandas gives for dtype=str
    return table.to_pandas(types_mapper=lambda _: text_dtype)


def column(raw: pd.DataFrame, name: str) -> pd.Series:
    """A raw column stripped of surrounding whitespace, or "" everywhere when absent."""
    if name not in raw.columns:
        return pd.Series("", index=raw.index, dtype="str")
    return raw[name].astype("str").str.strip()


def per_distinct(series: pd.Series, func: Callable[[pd.Series], pd.Series]) -> pd.Series:
    """`func(series)` computed on the distinct values only and spread back to every row.

    For element-wise functions the result is the same, dtype included; store columns repeat a
    lot (a million variants share a few option values, stock levels, policies), so this turns
    Python-speed string work (casefold, parsing) into a few thousand calls.
    """
    codes, uniques = pd.factorize(series, use_na_sentinel=False)
    mapped = func(pd.Series(uniques, dtype=series.dtype)).array
    return pd.Series(mapped.take(codes), index=series.index, dtype=mapped.dtype)


def count_text(values: pd.Series) -> pd.Series:
    """Whole non-negative counts as text ("" when not a number): stock quantities."""
    return per_distinct(values, _count_text)


def _count_text(values: pd.Series) -> pd.Series:
    numbers = pd.to_numeric(values, errors="coerce").clip(lower=0).round()
    return numbers.astype("Int64").astype("string").fillna("").astype("str")


def empty_frame(columns: Iterable[str]) -> pd.DataFrame:
    cols = list(columns)
    frame = pd.DataFrame({name: pd.Series(dtype="str") for name in cols})
    if "source_row" in frame.columns:
        frame["source_row"] = frame["source_row"].astype("int64")
    return frame


def excluded_rows(
    raw: pd.DataFrame, mask: pd.Series, reason: ExclusionReason, detail: str | pd.Series = ""
) -> pd.DataFrame:
    """Rows of `raw` selected by `mask`, recorded as excluded for `reason`."""
    part = raw.loc[mask]
    return pd.DataFrame(
        {
            "source_row": part["source_row"].astype("int64"),
            "product_id": part["product_id"] if "product_id" in part else "",
            "reason": str(reason),
            "detail": detail[mask] if isinstance(detail, pd.Series) else detail,
        },
        columns=list(EXCLUDED_COLUMNS),
    ).reset_index(drop=True)


def rejected_rows(
    frame: pd.DataFrame, mask: pd.Series, reason: RejectionReason, detail: str | pd.Series
) -> pd.DataFrame:
    """Rows of a store-column frame selected by `mask`, recorded as rejected for `reason`."""
    part = frame.loc[mask]
    return pd.DataFrame(
        {
            "source_row": part["source_row"].astype("int64"),
            "retailer_id": part.get("variant_id", ""),
            "item_group_id": part.get("item_group_id", ""),
            "product_id": part.get("product_id", ""),
            "reason": str(reason),
            "detail": detail[mask] if isinstance(detail, pd.Series) else detail,
        },
        columns=list(REJECTED_COLUMNS),
    ).reset_index(drop=True)


def concat_frames(frames: list[pd.DataFrame], columns: Iterable[str]) -> pd.DataFrame:
    cols = list(columns)
    parts = [frame[cols] for frame in frames if len(frame)]
    if not parts:
        return empty_frame(cols)
    out = pd.concat(parts, ignore_index=True)
    out["source_row"] = out["source_row"].astype("int64")
    return out


def store_items(frame: pd.DataFrame) -> pd.DataFrame:
    """`frame` reduced to STORE_COLUMNS in order; absent columns become ""."""
    out = pd.DataFrame(index=frame.index)
    for name in STORE_COLUMNS:
        out[name] = frame[name] if name in frame.columns else ""
    out["source_row"] = out["source_row"].astype("int64")
    return out.reset_index(drop=True)


# Option / attribute names (casefolded) that carry a Meta variant field.
OPTION_FIELDS: dict[str, frozenset[str]] = {
    "color": frozenset({"color", "colour", "farbe", "couleur", "colore", "色", "カラー"}),
    "size": frozenset({"size", "größe", "grösse", "groesse", "taille", "talla", "サイズ"}),
    "material": frozenset({"material", "fabric", "matière", "stoff", "素材"}),
    "pattern": frozenset({"pattern", "print", "muster", "motif"}),
    "gender": frozenset({"gender"}),
    "age_group": frozenset({"age group", "age_group"}),
}
PLACEHOLDER_OPTION_VALUES = frozenset({"default title", ""})


def apply_options(frame: pd.DataFrame, names: list[pd.Series], values: list[pd.Series]) -> None:
    """Fill color/size/... and additional_variant_attribute from store option name/value pairs.

    Recognised names fill the Meta field (first match wins); other options become
    `additional_variant_attribute` ("Name:Value,Name:Value"), Meta's way to show them.
    """
    for field in OPTION_FIELDS:
        if field not in frame.columns:
            frame[field] = ""
    extra = pd.Series("", index=frame.index, dtype="str")
    for name, value in zip(names, values, strict=True):
        key = per_distinct(name, lambda text: text.str.strip().str.casefold())
        placeholder = per_distinct(
            value, lambda text: text.str.strip().str.casefold().isin(PLACEHOLDER_OPTION_VALUES)
        )
        present = ~placeholder
        matched = pd.Series(False, index=frame.index)
        for field, synonyms in OPTION_FIELDS.items():
            synonym = present & key.isin(synonyms)
            hit = synonym & (frame[field] == "")
            if hit.any():
                frame.loc[hit, field] = value[hit]
            matched |= synonym
        other = present & ~matched & (key != "") & (key != "title")
        if other.any():  # usually no row has an unrecognised option: skip the string work
            pair = _attribute_text(name[other]) + ":" + _attribute_text(value[other])
            before = extra[other]
            extra[other] = before.where(before == "", before + ",") + pair
    if "additional_variant_attribute" in frame.columns:
        keep = frame["additional_variant_attribute"] != ""
        extra = extra.where(~keep, frame["additional_variant_attribute"])
    frame["additional_variant_attribute"] = extra


def _attribute_text(series: pd.Series) -> pd.Series:
    # "," and ":" are the separators of additional_variant_attribute
    return series.str.replace(r"[,:]", " ", regex=True).str.strip()

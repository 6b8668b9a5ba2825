"""Incremental catalog snapshots: re-normalise only the products whose raw rows changed.

    cache = SnapshotCache.for_shop("acme")                  # <state_dir>/catalog_cache/acme
    catalog = normalise_incremental(raw, "shopify_csv", shop, limits, now, cache)
    # == normalise_catalog(raw, "shopify_csv", shop, limits, now), every frame and dtype

The cache keeps the last snapshot's output rows (items, excluded, rejected), each tagged with its
product and its position among the product's raw rows, plus per product a digest of its raw rows
(every column but `source_row`, in file order). The next snapshot digests the raw rows again
(Arrow, one pass) and re-normalises only the products that:

* are new or whose digest or row count changed;
* hold a sale whose end falls between the cached snapshot's time and `now` (the only place
  normalisation reads `now`): the cache keeps, per product, the latest sale end at or before its
  time and the earliest after it, and reuse needs `latest <= now < earliest`;
* take part in a cross-product identity check now or did when cached (a duplicated variant id,
  a variant id that is some product's item_group_id): their reject details name other products'
  rows.

The identity checks always run over every store row of the snapshot (the cached rows' ids plus
the re-normalised products'), and the combined result is sorted into the full path's order and
row-accounted again. The cache is keyed by a fingerprint of the code version, the store kind,
the export's header, the shop context and the field limits: any change starts from scratch.
A cache that cannot be read is ignored (the full path runs and writes a new one); a store format
that cannot be split per product (`StoreSource.product_keys` is None) always runs in full.
"""

import hashlib
import json
import logging
import os
import re
import shutil
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.catalog.normalise import (
    ITEM_COLUMNS,
    REJECTED_ITEM_COLUMNS,
    FieldLimits,
    Identity,
    NormalisedCatalog,
    NormalisedParts,
    ShopContext,
    _check_accounting,
    normalise_parts,
)
from resources.settings import get_settings
from resources.store import EXCLUDED_COLUMNS, source_class
from resources.store.base import StoreRows, StoreSource

logger = logging.getLogger(__name__)

# Bump whenever normalisation or the store formats change what they produce: a cache written
# by other code must not be reused.
# 3: ragged rows are malformed_row rejects; 4: no link from an empty placeholder;
# 5: a WooCommerce row with managed stock at zero is out of stock (or available for order)
CODE_VERSION = 5
DIGEST_BYTES = 16
_SEPARATOR = "\x1f"  # between the cells of a row when digesting it
_TEXT = pd.StringDtype("pyarrow", na_value=np.nan)  # what normalise's str columns are
_AMOUNT_COLUMNS = ("price_amount", "sale_price_amount")
_ORDER_BITS = 40  # sort key: block << 40 | source_row
_IDENTITY_COLUMNS = ("variant_id", "item_group_id", "source_row")
_SAFE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,100}")


# --- product digests ------------------------------------------------------------------------


@dataclass(frozen=True)
class ProductRows:
    """Raw rows grouped by product key: product `p` owns raw positions
    `order[starts[p]:starts[p + 1]]`, in file order; `codes[i]` is row i's product."""

    keys: np.ndarray  # object: product key per product, in order of first appearance
    codes: np.ndarray  # int64 per raw row
    order: np.ndarray  # int64 raw positions, grouped by product
    starts: np.ndarray  # int64, len(keys) + 1
    digests: np.ndarray  # uint64 (products, 2): a 16-byte digest per product

    @property
    def counts(self) -> np.ndarray:
        return np.diff(self.starts)

    def ordinals(self) -> np.ndarray:
        """Each raw row's position among its product's rows."""
        ranks = np.empty(len(self.codes), dtype=np.int64)
        ranks[self.order] = np.arange(len(self.codes)) - self.starts[self.codes[self.order]]
        return ranks

    def positions(self, products: np.ndarray) -> np.ndarray:
        """Raw positions of the given products' rows, in file order."""
        chosen = np.zeros(len(self.keys), dtype=bool)
        chosen[products] = True
        return np.flatnonzero(chosen[self.codes])


def product_rows(raw: pd.DataFrame, keys: pd.Series) -> ProductRows | None:
    """Group raw rows by product and digest each product's rows (None when a cell is null,
    which no reader produces: the digest could not tell null from "")."""
    codes, uniques = pd.factorize(keys, use_na_sentinel=False)
    codes = codes.astype(np.int64)
    order = np.argsort(codes, kind="stable")
    starts = np.zeros(len(uniques) + 1, dtype=np.int64)
    np.cumsum(np.bincount(codes, minlength=len(uniques)), out=starts[1:])
    digests = _digests(raw, order, starts)
    if digests is None:
        return None
    keys_array = np.asarray(uniques, dtype=object)
    return ProductRows(keys_array, codes, order, starts, digests)


def _digests(raw: pd.DataFrame, order: np.ndarray, starts: np.ndarray) -> np.ndarray | None:
    names = [name for name in raw.columns if name != "source_row"]
    cells = [_arrow_text(raw[name]) for name in names]
    if any(cell.null_count for cell in cells):
        return None
    if not cells:
        cells = [pa.array([""] * len(raw), pa.large_string())]
    # every cell ends with the separator (an empty last cell adds the row's last one), so when
    # no cell holds a separator the text alone tells the rows and cells apart
    ends = pa.array([""] * len(raw), pa.large_string()) if len(raw) else cells[0]
    rows = pc.binary_join_element_wise(*cells, ends, pa.scalar(_SEPARATOR, pa.large_string()))
    separators = pc.sum(pc.count_substring(rows, _SEPARATOR)).as_py() or 0
    if not np.array_equal(order, np.arange(len(order))):  # a product's rows are not adjacent
        rows = rows.take(pa.array(order))
    offsets = np.frombuffer(rows.buffers()[1], dtype=np.int64)
    offsets = offsets[rows.offset : rows.offset + len(rows) + 1]
    data = rows.buffers()[2]
    text = memoryview(data) if data is not None else memoryview(b"")
    text_at = offsets[starts].tolist()
    blake2b = hashlib.blake2b
    out = bytearray(DIGEST_BYTES * (len(starts) - 1))
    if separators == len(raw) * len(cells):
        out[:] = b"".join(
            blake2b(text[start:end], digest_size=DIGEST_BYTES).digest()
            for start, end in zip(text_at[:-1], text_at[1:], strict=True)
        )
        return np.frombuffer(bytes(out), dtype=np.uint64).reshape(-1, 2)
    # a cell holds the separator: every cell's length is digested too
    lengths = np.column_stack([pc.binary_length(cell).to_numpy().take(order) for cell in cells])
    length_view = memoryview(np.ascontiguousarray(lengths, dtype=np.int64)).cast("B")
    row_bytes = lengths.shape[1] * 8
    row_at = starts.tolist()
    for product in range(len(starts) - 1):
        digest = blake2b(text[text_at[product] : text_at[product + 1]], digest_size=16)
        digest.update(length_view[row_at[product] * row_bytes : row_at[product + 1] * row_bytes])
        out[DIGEST_BYTES * product : DIGEST_BYTES * (product + 1)] = digest.digest()
    return np.frombuffer(bytes(out), dtype=np.uint64).reshape(-1, 2)


def _arrow_text(values: pd.Series) -> pa.Array:
    array = pa.array(values.array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.large_string())


def fingerprint(kind: str, shop: ShopContext, limits: FieldLimits, columns: list[str]) -> str:
    """What a cached snapshot must share with this one to be reused."""
    facts = {
        "code_version": CODE_VERSION,
        "kind": kind,
        "columns": [str(name) for name in columns],
        "shop": shop.model_dump(mode="json"),
        "limits": limits.model_dump(mode="json"),
        # content hashes come from pandas' hashing: another version may hash differently
        "pandas": pd.__version__,
        "pyarrow": pa.__version__,
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()


# --- the cached state -----------------------------------------------------------------------

_TABLES = ("products", "items", "excluded", "rejected", "identity")


@dataclass(frozen=True)
class CachedSnapshot:
    """Arrow tables; `product` columns index `products` rows, `ordinal` is the row's position
    among its product's raw rows, `block` its place in the full path's output order."""

    fingerprint: str
    products: pa.Table  # key, digest_high, digest_low, rows, tainted, sale_end_before/after
    items: pa.Table  # ITEM_COLUMNS (amounts as text) + product, ordinal
    excluded: pa.Table  # EXCLUDED_COLUMNS + product, ordinal, block
    rejected: pa.Table  # REJECTED_ITEM_COLUMNS + product, ordinal, block
    identity: pa.Table  # variant_id, item_group_id, source_row, product, ordinal
    folder: Path | None = None  # where the tables were read from (memory-mapped)


class SnapshotCache:
    """One shop's cached snapshot in a directory: a generation folder per write, named by the
    CURRENT file (replaced atomically), so a reader never sees half a write."""

    def __init__(self, directory: Path) -> None:
        self.directory = Path(directory)

    @classmethod
    def for_shop(cls, shop_id: str) -> "SnapshotCache":
        """<state_dir>/catalog_cache/<shop_id> (a digest of the id when it is no safe name)."""
        safe = _SAFE_NAME.fullmatch(shop_id) and shop_id not in (".", "..")
        name = shop_id if safe else hashlib.sha256(shop_id.encode()).hexdigest()
        return cls(get_settings().state_dir / "catalog_cache" / name)

    def load(self, wanted: str) -> CachedSnapshot | None:
        """The cached snapshot when its fingerprint is `wanted`; None when absent, stale or
        unreadable (the caller then normalises in full)."""
        try:
            generation = (self.directory / "CURRENT").read_text().strip()
            folder = self.directory / generation
            meta = json.loads((folder / "meta.json").read_text())
            if meta.get("fingerprint") != wanted:
                return None
            tables = {name: _read_table(folder / f"{name}.arrow") for name in _TABLES}
        except (OSError, ValueError, pa.ArrowException) as exc:
            if not isinstance(exc, FileNotFoundError):
                logger.warning("snapshot cache %s unreadable, ignored: %s", self.directory, exc)
            return None
        return CachedSnapshot(fingerprint=wanted, folder=folder, **tables)

    def save(self, state: CachedSnapshot) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        generation = f"gen-{uuid.uuid4().hex}"
        folder = self.directory / generation
        folder.mkdir()
        for name in _TABLES:
            _write_table(folder / f"{name}.arrow", getattr(state, name))
        (folder / "meta.json").write_text(json.dumps({"fingerprint": state.fingerprint}))
        pointer = self.directory / f"CURRENT.{generation}"
        pointer.write_text(generation)
        os.replace(pointer, self.directory / "CURRENT")
        for other in self.directory.glob("gen-*"):
            if other.name != generation:
                shutil.rmtree(other, ignore_errors=True)

    def clear(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


def _write_table(path: Path, table: pa.Table) -> None:
    options = pa.ipc.IpcWriteOptions(compression=None)
    with (
        pa.OSFile(str(path), "wb") as sink,
        pa.ipc.new_file(sink, table.schema, options=options) as writer,
    ):
        writer.write_table(table)


def _read_table(path: Path) -> pa.Table:
    with pa.memory_map(str(path)) as source:
        return pa.ipc.open_file(source).read_all()


# --- the incremental snapshot ---------------------------------------------------------------


def normalise_incremental(
    raw: pd.DataFrame,
    kind: str,
    shop: ShopContext,
    limits: FieldLimits | None = None,
    now: datetime | None = None,
    cache: SnapshotCache | None = None,
) -> NormalisedCatalog:
    """`normalise_catalog(raw, kind, shop, limits, now)`, reusing `cache` where it can and
    leaving the new snapshot in it."""
    limits = limits or FieldLimits()
    now = now or datetime.now(UTC)
    source = source_class(kind)
    keys = source.product_keys(raw) if cache is not None else None
    grouped = product_rows(raw, keys) if keys is not None else None
    if cache is None or grouped is None:
        return normalise_parts(raw, kind, shop, limits, now).catalog
    wanted = fingerprint(kind, shop, limits, list(raw.columns))
    cached = cache.load(wanted)
    if cached is None:
        parts = normalise_parts(raw, kind, shop, limits, now)
        cache.save(_fresh_state(wanted, parts, grouped, raw, source, now))
        return parts.catalog
    return _incremental(raw, kind, shop, limits, now, cache, cached, grouped, source)


def _incremental(
    raw: pd.DataFrame,
    kind: str,
    shop: ShopContext,
    limits: FieldLimits,
    now: datetime,
    cache: SnapshotCache,
    cached: CachedSnapshot,
    grouped: ProductRows,
    source: type[StoreSource],
) -> NormalisedCatalog:
    # cached product index of each product (-1: not cached), and whether its rows can be reused
    cached_keys = pd.Index(cached.products["key"].to_pandas(types_mapper=_text_type))
    previous = cached_keys.get_indexer(pd.Index(grouped.keys, dtype=_TEXT))
    known = previous >= 0
    same = known.copy()
    if len(cached_keys):
        at = np.maximum(previous, 0)
        digests = np.column_stack(
            [cached.products[name].to_numpy() for name in ("digest_high", "digest_low")]
        )
        rows = cached.products["rows"].to_numpy()
        tainted = cached.products["tainted"].to_numpy(zero_copy_only=False)
        same &= (digests[at] == grouped.digests).all(axis=1)
        same &= (rows[at] == grouped.counts) & ~tainted[at]
        same &= _sale_ends_allow(cached.products, at, now)

    if same.sum() * 2 < len(same):  # mostly changed: the whole path is cheaper
        parts = normalise_parts(raw, kind, shop, limits, now)
        cache.save(_fresh_state(cached.fingerprint, parts, grouped, raw, source, now))
        return parts.catalog

    # the identity checks look across products: every store row's ids, cached for the reused
    # products, read afresh for the others; products in such a check are normalised again
    source_rows = raw["source_row"].to_numpy(dtype=np.int64)
    changed_raw = raw.iloc[grouped.positions(np.flatnonzero(~same))]
    store_rows = source.to_store_rows(changed_raw) if len(changed_raw) else None
    fresh_identity = _store_identity(store_rows)
    identity_codes = _cached_codes(cached.identity, previous, same)
    flagged = _flagged_products(cached.identity, identity_codes, fresh_identity, grouped, raw)
    keep = same & ~flagged
    if flagged[same].any():  # more products to normalise again than were read
        changed_raw = raw.iloc[grouped.positions(np.flatnonzero(~keep))]
        store_rows = None
    others = _others_identity(cached.identity, _cached_codes(cached.identity, previous, keep))
    if len(changed_raw):
        parts = normalise_parts(changed_raw, kind, shop, limits, now, others, store_rows)
        fresh = _tagged_parts(parts, grouped, raw, source)
    else:
        parts, fresh = None, _empty_parts()
    tables = {
        name: _merged(cached, name, previous, keep, fresh[name], grouped, source_rows)
        for name in ("items", "excluded", "rejected", "identity")
    }
    catalog = NormalisedCatalog(
        items=_to_pandas(tables["items"], ITEM_COLUMNS),
        excluded=_to_pandas(tables["excluded"], EXCLUDED_COLUMNS),
        rejected=_to_pandas(tables["rejected"], REJECTED_ITEM_COLUMNS),
        notes=tuple(getattr(raw, "attrs", {}).get("notes", ())),
    )
    _check_accounting(raw, catalog)
    if parts is not None or len(cached_keys) != int(known.sum()):
        sale_ends = _sale_end_bounds(parts, grouped, raw, now)
        cache.save(
            CachedSnapshot(
                fingerprint=cached.fingerprint,
                products=_products_table(
                    grouped, flagged, sale_ends, cached.products, previous, keep
                ),
                **tables,
            )
        )
    return catalog


def _store_identity(store_rows: StoreRows | None) -> pd.DataFrame:
    if store_rows is None:
        return pd.DataFrame({name: pd.Series(dtype="str") for name in _IDENTITY_COLUMNS[:2]})
    return store_rows.items[list(_IDENTITY_COLUMNS)]


def _text_type(arrow_type: pa.DataType) -> object:
    return _TEXT if pa.types.is_large_string(arrow_type) or pa.types.is_string(arrow_type) else None


def _sale_ends_allow(products: pa.Table, at: np.ndarray, now: datetime) -> np.ndarray:
    """A cached product stays valid while no sale of it ended between its snapshot and `now`."""
    stamp = _now_us(now)
    before = _stamps(products["sale_end_before"])
    after = _stamps(products["sale_end_after"])
    minimum = np.iinfo(np.int64).min  # null: no such sale end
    before_ok = (before[at] == minimum) | (before[at] <= stamp)
    after_ok = (after[at] == minimum) | (stamp < after[at])
    return before_ok & after_ok


def _cached_codes(table: pa.Table, previous: np.ndarray, keep: np.ndarray) -> np.ndarray:
    """This snapshot's product code for each cached row, -1 for rows not reused."""
    size = int(previous.max()) + 1 if len(previous) and previous.max() >= 0 else 0
    new_code = np.full(size + 1, -1, dtype=np.int64)  # +1: never empty
    kept = np.flatnonzero(keep & (previous >= 0))
    new_code[previous[kept]] = kept
    product = table["product"].to_numpy()
    product = np.where(product < size, product, size)  # products no longer in the export
    return new_code[product]


def _merged(
    snapshot: CachedSnapshot,
    name: str,
    previous: np.ndarray,
    keep: np.ndarray,
    fresh: pa.Table,
    grouped: ProductRows,
    source_rows: np.ndarray,
) -> pa.Table:
    """Reused cached rows (re-tagged with this snapshot's product codes and source rows: rows
    may have moved in the file) and fresh rows, in the full path's order (block, source row),
    taken in one pass; no copy at all when every cached row stays where it was."""
    cached: pa.Table = getattr(snapshot, name)
    code = _cached_codes(cached, previous, keep)
    reused = code >= 0
    ordinal = cached["ordinal"].to_numpy().astype(np.int64)
    row = np.zeros(len(code), dtype=np.int64)
    row[reused] = source_rows[grouped.order[grouped.starts[code[reused]] + ordinal[reused]]]
    fresh_rows = fresh["source_row"].to_numpy().astype(np.int64)
    rows = np.concatenate([row, fresh_rows])
    codes = np.concatenate([code, fresh["product"].to_numpy().astype(np.int64)])
    key = rows.copy()
    if "block" in cached.column_names:
        blocks = [cached["block"].to_numpy(), fresh["block"].to_numpy()]
        key |= np.concatenate(blocks).astype(np.int64) << _ORDER_BITS
    chosen = np.flatnonzero(np.concatenate([reused, np.ones(len(fresh_rows), dtype=bool)]))
    chosen = chosen[np.argsort(key[chosen], kind="stable")]
    if len(chosen) == len(code) and np.array_equal(chosen, np.arange(len(code))):
        table = cached  # the usual hourly run: nothing changed, nothing moved
    else:
        table = _taken(snapshot.folder, name, cached, fresh, pa.array(chosen))
    table = table.set_column(
        table.schema.get_field_index("product"), "product", pa.array(codes[chosen])
    )
    if "source_row" in table.column_names:
        index = table.schema.get_field_index("source_row")
        table = table.set_column(index, "source_row", pa.array(rows[chosen]))
    return table


def _taken(
    folder: Path | None, name: str, cached: pa.Table, fresh: pa.Table, chosen: pa.Array
) -> pa.Table:
    """Rows `chosen` of cached + fresh, a column at a time, each cached column read through a
    memory map of its own that goes once the column is taken: the cached table's pages are
    never all resident beside the new table (peak memory)."""
    columns = []
    for field in cached.schema:
        source = _own_map_column(folder, name, field) if folder is not None else None
        if source is None:  # a concurrent run replaced the cache: the first map still holds
            source = cached[field.name]
        both = pa.chunked_array([*source.chunks, *fresh[field.name].chunks], field.type)
        columns.append(both.take(chosen))
        del source, both
    return pa.Table.from_arrays(columns, schema=cached.schema)


def _own_map_column(folder: Path, name: str, field: pa.Field) -> pa.ChunkedArray | None:
    try:
        with pa.memory_map(str(folder / f"{name}.arrow")) as mapped:
            reader = pa.ipc.open_file(mapped)
            chunks = [
                reader.get_batch(i).column(field.name) for i in range(reader.num_record_batches)
            ]
    except (OSError, pa.ArrowException):
        return None
    return pa.chunked_array(chunks, field.type)


def _others_identity(cached: pa.Table, codes: np.ndarray) -> Identity:
    """What the identity checks need of the reused products: their item_group_ids (none of
    their variant ids is duplicated or a group id, else they would be normalised again)."""
    groups = cached["item_group_id"].filter(pa.array(codes >= 0))
    groups = pc.unique(groups.filter(pc.not_equal(groups, ""))).to_pandas(types_mapper=_text_type)
    return Identity(
        pd.DataFrame(
            {
                "variant_id": pd.Series("", index=range(len(groups)), dtype="str"),
                "item_group_id": pd.Series(groups.array, dtype="str"),
                "source_row": np.zeros(len(groups), dtype=np.int64),
            }
        )
    )


def _flagged_products(
    cached: pa.Table,
    codes: np.ndarray,
    fresh: pd.DataFrame,
    grouped: ProductRows,
    raw: pd.DataFrame,
) -> np.ndarray:
    """Products with a row in a cross-product identity check (a duplicated variant id, or a
    variant id that is an item_group_id), over every store row: the cached rows with a code
    and the fresh rows. Arrow hashing: no Python string per row."""
    reused = pa.array(codes >= 0)
    fresh_codes = (
        grouped.codes[_raw_positions(raw, fresh["source_row"].to_numpy(dtype=np.int64))]
        if len(fresh)
        else np.empty(0, dtype=np.int64)
    )

    every = bool(np.all(codes >= 0))

    def text(name: str) -> pa.ChunkedArray:
        kept = cached[name] if every else cached[name].filter(reused)
        return pa.chunked_array([*kept.chunks, _arrow_text(fresh[name])], pa.large_string())

    rid, group = text("variant_id"), text("item_group_id")
    row_codes = np.concatenate([codes[codes >= 0], fresh_codes])
    encoded = pc.dictionary_encode(rid)
    indices = np.concatenate(
        [np.empty(0, dtype=np.int64)]
        + [chunk.indices.to_numpy(zero_copy_only=False) for chunk in encoded.iterchunks()]
    )
    width = len(encoded.chunk(0).dictionary) if encoded.num_chunks else 0
    duplicated = np.bincount(indices, minlength=width)[indices] > 1
    groups = pc.unique(group.filter(pc.not_equal(group, "")))
    used = pc.is_in(rid, value_set=groups).to_numpy(zero_copy_only=False)
    present = pc.not_equal(rid, "").to_numpy(zero_copy_only=False)
    flagged = np.zeros(len(grouped.keys), dtype=bool)
    flagged[row_codes[present & (duplicated | used)]] = True
    return flagged


def _raw_positions(raw: pd.DataFrame, source_rows: np.ndarray) -> np.ndarray:
    """Raw positions of source rows (readers number rows consecutively from the first)."""
    first = int(raw["source_row"].iloc[0]) if len(raw) else 0
    return source_rows.astype(np.int64) - first


# --- tagging, sorting and converting parts --------------------------------------------------


def _fresh_state(
    wanted: str,
    parts: NormalisedParts,
    grouped: ProductRows,
    raw: pd.DataFrame,
    source: type[StoreSource],
    now: datetime,
) -> CachedSnapshot:
    products = len(grouped.keys)
    none_cached = pa.table(
        {name: pa.array([], pa.large_string()) for name in _IDENTITY_COLUMNS[:2]}
    )
    flagged = _flagged_products(
        none_cached, np.empty(0, dtype=np.int64), parts.identity, grouped, raw
    )
    sale_ends = _sale_end_bounds(parts, grouped, raw, now)
    none = np.full(products, -1, dtype=np.int64)
    return CachedSnapshot(
        fingerprint=wanted,
        products=_products_table(grouped, flagged, sale_ends, None, none, np.zeros(products, bool)),
        **_tagged_parts(parts, grouped, raw, source),
    )


def _tagged_parts(
    parts: NormalisedParts, grouped: ProductRows, raw: pd.DataFrame, source: type[StoreSource]
) -> dict[str, pa.Table]:
    """The parts as Arrow tables tagged with product code, ordinal and output block."""
    ordinals = grouped.ordinals()
    catalog = parts.catalog

    def tag(frame: pd.DataFrame, table: pa.Table, blocks: np.ndarray | None) -> pa.Table:
        position = _raw_positions(raw, frame["source_row"].to_numpy(dtype=np.int64))
        table = table.append_column("product", pa.array(grouped.codes[position]))
        table = table.append_column("ordinal", pa.array(ordinals[position]))
        if blocks is not None:
            table = table.append_column("block", pa.array(blocks.astype(np.int64)))
        return table

    items = catalog.items.copy(deep=False)
    for name in _AMOUNT_COLUMNS:
        items[name] = _amount_text(items[name])
    excluded_blocks = _blocks(catalog.excluded["reason"], source.excluded_order)
    rejected_blocks = _blocks(catalog.rejected["reason"], source.rejected_order)
    rejected_blocks[parts.store_rejected :] = len(source.rejected_order)
    identity = parts.identity.reset_index(drop=True)
    return {
        "items": tag(items, _arrow(items, ITEM_COLUMNS), None),
        "excluded": tag(
            catalog.excluded, _arrow(catalog.excluded, EXCLUDED_COLUMNS), excluded_blocks
        ),
        "rejected": tag(
            catalog.rejected, _arrow(catalog.rejected, REJECTED_ITEM_COLUMNS), rejected_blocks
        ),
        "identity": tag(identity, _arrow(identity, _IDENTITY_COLUMNS), None),
    }


def _blocks(reasons: pd.Series, order: tuple[str, ...]) -> np.ndarray:
    rank = {str(reason): number for number, reason in enumerate(order)}
    return np.array([rank.get(reason, len(order)) for reason in reasons.tolist()], dtype=np.int64)


def _amount_text(amounts: pd.Series) -> pd.Series:
    """Decimal | None as exact text (str(Decimal) keeps the exponent: 12.50 stays 12.50)."""
    codes, uniques = pd.factorize(amounts, use_na_sentinel=True)
    text = np.array([str(value) for value in uniques] + [None], dtype=object)
    return pd.Series(text[codes], index=amounts.index, dtype=object)


def _amounts(text: pa.ChunkedArray) -> pd.Series:
    codes = pc.dictionary_encode(text).combine_chunks()
    values = np.array(
        [Decimal(value) for value in codes.dictionary.to_pylist()] + [None], dtype=object
    )
    indices = codes.indices.fill_null(len(values) - 1).to_numpy(zero_copy_only=False)
    return pd.Series(values[indices], dtype=object)


def _schema(columns: tuple[str, ...]) -> pa.Schema:
    types = {
        "source_row": pa.int64(),
        "quantity_to_sell_on_facebook": pa.int64(),
        "sale_start": pa.timestamp("us", tz="UTC"),
        "sale_end": pa.timestamp("us", tz="UTC"),
    }
    return pa.schema([(name, types.get(name, pa.large_string())) for name in columns])


def _arrow(frame: pd.DataFrame, columns: tuple[str, ...]) -> pa.Table:
    schema = _schema(columns)
    arrays = []
    for field in schema:
        values = frame[field.name]
        if field.type == pa.large_string() and values.dtype == "str":
            arrays.append(_arrow_text(values))  # Arrow-backed: no Python string per value
        else:
            arrays.append(pa.array(values, type=field.type, from_pandas=True))
    return pa.Table.from_arrays(arrays, schema=schema)


def _empty_parts() -> dict[str, pa.Table]:
    tags = [("product", pa.int64()), ("ordinal", pa.int64())]
    block = [("block", pa.int64())]
    schemas = {
        "items": [*_schema(ITEM_COLUMNS), *tags],
        "excluded": [*_schema(EXCLUDED_COLUMNS), *tags, *block],
        "rejected": [*_schema(REJECTED_ITEM_COLUMNS), *tags, *block],
        "identity": [*_schema(_IDENTITY_COLUMNS), *tags],
    }
    return {name: pa.schema(fields).empty_table() for name, fields in schemas.items()}


def _to_pandas(table: pa.Table, columns: tuple[str, ...]) -> pd.DataFrame:
    """The table as the full path's frame: same columns, dtypes and index."""
    frame = table.select([name for name in columns if name not in _SPECIAL]).to_pandas(
        types_mapper=_text_type
    )
    out = {}
    for name in columns:
        if name in _AMOUNT_COLUMNS:
            out[name] = _amounts(table[name])
        elif name == "quantity_to_sell_on_facebook":
            out[name] = table[name].to_pandas(types_mapper={pa.int64(): pd.Int64Dtype()}.get)
        else:
            out[name] = frame[name]
    return pd.DataFrame(out, copy=False)


_SPECIAL = (*_AMOUNT_COLUMNS, "quantity_to_sell_on_facebook")


def _sale_end_bounds(
    parts: NormalisedParts | None, grouped: ProductRows, raw: pd.DataFrame, now: datetime
) -> tuple[np.ndarray, np.ndarray]:
    """Per product: the latest sale end at or before `now`, the earliest after (NaT: none)."""
    products = len(grouped.keys)
    minimum = np.iinfo(np.int64).min
    if parts is None:
        return np.full(products, minimum), np.full(products, minimum)
    stamp = _now_us(now)
    ends = parts.sale_ends
    rows = _raw_positions(raw, ends["source_row"].to_numpy(dtype=np.int64))
    code = grouped.codes[rows]
    values = ends["sale_end"].dt.tz_convert("UTC").dt.tz_localize(None).to_numpy("datetime64[us]")
    values = values.astype(np.int64)
    minimum = np.iinfo(np.int64).min
    before = np.full(products, minimum, dtype=np.int64)
    after = np.full(products, np.iinfo(np.int64).max, dtype=np.int64)
    past = values <= stamp
    np.maximum.at(before, code[past], values[past])
    np.minimum.at(after, code[~past], values[~past])
    after[after == np.iinfo(np.int64).max] = minimum
    return before, after


def _products_table(
    grouped: ProductRows,
    flagged: np.ndarray,
    sale_ends: tuple[np.ndarray, np.ndarray],
    cached: pa.Table | None,
    previous: np.ndarray,
    keep: np.ndarray,
) -> pa.Table:
    before, after = sale_ends
    if cached is not None and keep.any():
        # a reused product's bounds still hold: no sale of it ended between them
        at = previous[keep]
        before[keep] = _stamps(cached["sale_end_before"])[at]
        after[keep] = _stamps(cached["sale_end_after"])[at]
    minimum = np.iinfo(np.int64).min
    stamp_type = pa.timestamp("us", tz="UTC")
    return pa.table(
        {
            "key": pa.array(grouped.keys.tolist(), pa.large_string()),
            "digest_high": pa.array(grouped.digests[:, 0]),
            "digest_low": pa.array(grouped.digests[:, 1]),
            "rows": pa.array(grouped.counts),
            "tainted": pa.array(flagged),
            "sale_end_before": pa.array(before, stamp_type, mask=before == minimum),
            "sale_end_after": pa.array(after, stamp_type, mask=after == minimum),
        }
    )


def _stamps(column: pa.ChunkedArray) -> np.ndarray:
    """Timestamps as int64 microseconds, null as int64 min."""
    values = pc.fill_null(column.cast(pa.int64()), np.iinfo(np.int64).min)
    return values.to_numpy().astype(np.int64)


def _now_us(now: datetime) -> int:
    """Microseconds since the epoch (Timestamp.value would be nanoseconds whatever its unit)."""
    return (now - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)

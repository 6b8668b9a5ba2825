"""What to send Meta: the catalog snapshot against the ledger of what Meta accepted.

    changes = diff_catalog(catalog.items, ledger)     # ledger: retailer_id, content_hash,
    changes.counts()                                  #         volatile_hash
    for requests in chunk_requests(changes, now):     # items_batch `requests`, one call each
        ...
    stock = chunk_entries(volatile_updates(items, now, since=last_run))   # 15-minute job

`content_hash` is `<static digest><volatile digest>` (see `normalise.content_hashes`): equal first
halves with different hashes mean only price, sale or stock moved, and a partial UPDATE suffices.
"""

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.catalog.normalise import META_FIELDS

MAX_BATCH_REQUESTS = 5000  # items_batch: at most 5000 records per call (catalog.md 3.1)
MAX_BATCH_BYTES = 28_000_000  # items_batch: payload up to 28 MB (catalog.md 3.1)
# Measured size is compact UTF-8 JSON of the `requests` array; leave room for the envelope and
# for form encoding, which can inflate JSON punctuation.
DEFAULT_MAX_BYTES = 20_000_000
STATIC_DIGEST_CHARS = 16
LEDGER_COLUMNS = ("retailer_id", "content_hash", "volatile_hash")
# Fields an UPDATE must send even when empty, so that an ended sale is cleared at Meta.
# TODO(meta-clear-fields): confirm that "" clears a field; other removed fields are not cleared.
CLEARABLE_FIELDS = ("sale_price", "sale_price_effective_date")


@dataclass(frozen=True)
class CatalogChanges:
    """The snapshot split by what Meta needs. Item frames keep the snapshot's columns."""

    create: pd.DataFrame
    update: pd.DataFrame
    volatile_only_update: pd.DataFrame
    delete: pd.DataFrame  # retailer_id
    unchanged: pd.DataFrame  # retailer_id

    def counts(self) -> dict[str, int]:
        return {
            "create": len(self.create),
            "update": len(self.update),
            "volatile_only_update": len(self.volatile_only_update),
            "delete": len(self.delete),
            "unchanged": len(self.unchanged),
        }


def diff_catalog(snapshot_items: pd.DataFrame, ledger: pd.DataFrame) -> CatalogChanges:
    """Compare by retailer_id and hashes, column-wise in Arrow (1M items in about a second)."""
    missing = [name for name in LEDGER_COLUMNS[:2] if name not in ledger.columns]
    if missing:
        raise ValueError(f"ledger lacks column(s) {', '.join(missing)}")
    snapshot_codes, ledger_codes, key_count = _shared_codes(
        snapshot_items["retailer_id"], ledger["retailer_id"]
    )
    last = ~pd.Series(ledger_codes).duplicated(keep="last").to_numpy()
    if not last.all():  # a retailer_id twice in the ledger: its last record counts
        ledger, ledger_codes = ledger.iloc[np.flatnonzero(last)], ledger_codes[last]
    # position of each key in the ledger (-1: not there), and which keys the snapshot has
    ledger_position = np.full(key_count, -1, dtype=np.int64)
    ledger_position[ledger_codes] = np.arange(len(ledger_codes))
    in_snapshot = np.zeros(key_count, dtype=bool)
    in_snapshot[snapshot_codes] = True

    position = ledger_position[snapshot_codes]
    is_new = position < 0
    content = _text(snapshot_items["content_hash"])
    before = _text(ledger["content_hash"].astype("string").fillna(""))
    previous = before.take(pa.array(np.maximum(position, 0))) if len(before) else content
    same = ~is_new & _filled(pc.equal(previous, content))
    static_now = pc.utf8_slice_codeunits(content, 0, STATIC_DIGEST_CHARS)
    static_before = pc.utf8_slice_codeunits(previous, 0, STATIC_DIGEST_CHARS)
    volatile_only = ~is_new & ~same & _filled(pc.equal(static_before, static_now))
    full_update = ~is_new & ~same & ~volatile_only
    gone = ~in_snapshot[ledger_codes]

    def pick(mask: np.ndarray) -> pd.DataFrame:
        return snapshot_items.iloc[np.flatnonzero(mask)].reset_index(drop=True)

    def ids(values: pd.Series, mask: np.ndarray) -> pd.DataFrame:
        chosen = values.iloc[np.flatnonzero(mask)].reset_index(drop=True)
        return pd.DataFrame({"retailer_id": chosen}, dtype="str")

    return CatalogChanges(
        create=pick(is_new),
        update=pick(full_update),
        volatile_only_update=pick(volatile_only),
        delete=ids(ledger["retailer_id"], gone),
        unchanged=ids(snapshot_items["retailer_id"], same),
    )


def _shared_codes(left: pd.Series, right: pd.Series) -> tuple[np.ndarray, np.ndarray, int]:
    """Integer codes for two key columns over one shared vocabulary (one Arrow hash pass)."""
    encoded = pc.dictionary_encode(pa.chunked_array([_text(left), _text(right)]))
    codes = np.concatenate(
        [np.empty(0, dtype=np.int64)]
        + [chunk.indices.to_numpy(zero_copy_only=False) for chunk in encoded.iterchunks()]
    ).astype(np.int64)
    key_count = len(encoded.chunk(0).dictionary) if encoded.num_chunks else 0
    return codes[: len(left)], codes[len(left) :], key_count


def _text(values: pd.Series) -> pa.Array:
    """A text column as one Arrow array (no per-value Python objects)."""
    array = pa.array(values.astype("str").array)
    if isinstance(array, pa.ChunkedArray):
        array = array.combine_chunks()
    return array.cast(pa.large_string())


def _filled(flags: pa.Array) -> np.ndarray:
    """Arrow booleans as numpy, null (an item not in the ledger) as False."""
    return pc.fill_null(flags, False).to_numpy(zero_copy_only=False)


# --- request entries ------------------------------------------------------------------------


def item_data(item: dict, clear_empty: Iterable[str] = ()) -> dict:
    """Meta `data` for one item row: feed vocabulary, `id` as key, empty fields left out."""
    keep_empty = set(clear_empty)
    data: dict = {}
    for name in META_FIELDS:
        value = item.get(name)
        if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
            value = ""
        if name == "quantity_to_sell_on_facebook" and value != "":
            value = int(value)
        elif name == "additional_image_link" and value != "":
            value = value.split(",")
        if value != "" or name in keep_empty:
            data[name] = value
    return data


def _entries(frame: pd.DataFrame, method: str, clear_empty: Iterable[str] = ()) -> list[dict]:
    columns = [name for name in META_FIELDS if name in frame.columns]
    return [
        {"method": method, "data": item_data(row, clear_empty)}
        for row in frame[columns].to_dict("records")
    ]


def request_entries(changes: CatalogChanges, now: datetime) -> list[dict]:
    """items_batch records for every change: full UPDATE/CREATE, partial UPDATE, DELETE."""
    entries = _entries(changes.update, "UPDATE", CLEARABLE_FIELDS)
    entries += _entries(changes.create, "CREATE")
    entries += volatile_updates(changes.volatile_only_update, now)
    entries += [{"method": "DELETE", "data": {"id": rid}} for rid in changes.delete["retailer_id"]]
    return entries


def volatile_updates(
    items: pd.DataFrame,
    now: datetime,
    since: datetime | None = None,
    retailer_ids: Iterable[str] | None = None,
) -> list[dict]:
    """Partial UPDATEs (price, sale, availability, stock) with the sale evaluated at `now`.

    Items are those in `retailer_ids` (all `items` when both filters are None) plus, when `since`
    is given, every item whose sale started or ended in (since, now], so a sale that began or
    finished between runs reaches Meta without a full update.
    """
    now_ts = pd.Timestamp(now)
    start, end = _utc(items["sale_start"]), _utc(items["sale_end"])
    selected = pd.Series(since is None and retailer_ids is None, index=items.index)
    if retailer_ids is not None:
        selected |= items["retailer_id"].isin(list(retailer_ids))
    if since is not None:
        since_ts = pd.Timestamp(since)
        crossed = ((start > since_ts) & (start <= now_ts)) | ((end > since_ts) & (end <= now_ts))
        selected |= crossed.fillna(False)
    chosen = items.loc[selected]
    active = (
        (chosen["sale_price"].astype("str") != "")
        & (start[selected].isna() | (start[selected] <= now_ts))
        & (end[selected].isna() | (end[selected] > now_ts))
    )
    entries = []
    for row, is_active in zip(chosen.to_dict("records"), active, strict=True):
        data = {
            "id": row["id"],
            "price": row["price"],
            "availability": row["availability"],
            "sale_price": row["sale_price"] if is_active else "",
            "sale_price_effective_date": row["sale_price_effective_date"] if is_active else "",
        }
        quantity = row.get("quantity_to_sell_on_facebook")
        if quantity is not None and not pd.isna(quantity):
            data["quantity_to_sell_on_facebook"] = int(quantity)
        entries.append({"method": "UPDATE", "data": data})
    return entries


def _utc(values: pd.Series) -> pd.Series:
    stamps = pd.to_datetime(values, utc=True)
    return stamps


def chunk_entries(
    entries: list[dict],
    max_items: int = MAX_BATCH_REQUESTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[list[dict]]:
    """Split records into items_batch calls within both the count and the byte limit."""
    if not 0 < max_items <= MAX_BATCH_REQUESTS:
        raise ValueError(f"max_items must be 1..{MAX_BATCH_REQUESTS}, got {max_items}")
    chunks: list[list[dict]] = []
    current: list[dict] = []
    size = 2  # the array's brackets
    for entry in entries:
        entry_bytes = len(json.dumps(entry, ensure_ascii=False, separators=(",", ":")).encode())
        if entry_bytes + 2 > max_bytes:
            raise ValueError(
                f"item {entry['data'].get('id')!r} alone is {entry_bytes} bytes, over {max_bytes}"
            )
        if current and (len(current) >= max_items or size + entry_bytes + 1 > max_bytes):
            chunks.append(current)
            current, size = [], 2
        size += entry_bytes + (1 if current else 0)
        current.append(entry)
    if current:
        chunks.append(current)
    return chunks


def chunk_requests(
    changes: CatalogChanges,
    now: datetime,
    max_items: int = MAX_BATCH_REQUESTS,
    max_bytes: int = DEFAULT_MAX_BYTES,
) -> list[list[dict]]:
    """All changes as items_batch `requests` arrays, one array per call."""
    return chunk_entries(request_entries(changes, now), max_items, max_bytes)


# --- guards ---------------------------------------------------------------------------------


def shrink_guard(previous_count: int, new_count: int, max_shrink_share: float) -> str | None:
    """Why a replace feed must not be uploaded, or None when it may.

    A replace feed deletes every item missing from it, so a truncated export would empty the
    catalog; refuse when the snapshot lost more than `max_shrink_share` of the last good one.
    """
    if not 0 <= max_shrink_share <= 1:
        raise ValueError(f"max_shrink_share must be within 0..1, got {max_shrink_share}")
    if previous_count <= 0 or new_count >= previous_count:
        return None
    shrink = (previous_count - new_count) / previous_count
    if shrink <= max_shrink_share:
        return None
    return (
        f"snapshot shrank from {previous_count} to {new_count} items ({shrink:.0%}), more than "
        f"the allowed {max_shrink_share:.0%}; check the store export, or override to upload"
    )


def deletion_cap(
    delete_count: int,
    live_count: int,
    max_delete_share: float,
    max_delete_count: int | None = None,
    override: bool = False,
) -> str | None:
    """Why these deletions need an explicit override, or None when they may go ahead."""
    if override or delete_count == 0:
        return None
    if max_delete_count is not None and delete_count > max_delete_count:
        return (
            f"{delete_count} deletions exceed the cap of {max_delete_count}; "
            "confirm with an override"
        )
    share = delete_count / live_count if live_count else 1.0
    if share > max_delete_share:
        return (
            f"{delete_count} of {live_count} items ({share:.0%}) would be deleted, more than "
            f"{max_delete_share:.0%}; confirm with an override"
        )
    return None

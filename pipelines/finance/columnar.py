"""The big finance loads column-wise: transactions and order payments read into Arrow columns,
money as exact int64 minor units, instead of one Python row object (with Decimals) per payload.

    columns = TransactionColumns()
    columns.extend(window_payloads)          # one `extend` per Graph fetch, as before
    columns.extend(payout_payloads)
    batch = columns.finish()                 # merged by key like `merge_transactions`
    batch.table, batch.taxes, batch.rejects, batch.rows()

`normalize.py` stays the reference, row by row. A payload takes the column path only in the
shape its fast per-row path (`_fast_transaction_row`, `_fast_payment_row`) accepts, checked
here with the same tests (amount and date patterns checked on whole columns, ASCII digits only);
every other payload goes through the per-row code (pydantic, quarantine) one by one. `rows()`
gives exactly the rows the per-row path gives (a property test holds them equal).
"""

import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from pipelines.finance.money import ZERO, exponent
from pipelines.finance.normalize import (
    _DIRECTION_BY_NAME,
    _PAYMENT_KEYS,
    _TXN_KEYS,
    PaymentRow,
    Rejected,
    TaxLine,
    TransactionRow,
    _edge,
    _fast_shipment_ids,
    _text_or_none,
    payment_row_or_reject,
    plain_tax_details,
    transaction_row_or_reject,
)

# Payloads are read in chunks: the column checks run per chunk, and a chunk's dicts are the only
# ones kept (for the few payloads sent to the per-row path).
CHUNK = 20_000

# RE2 (Arrow) patterns of the fast per-row path's regular expressions, with ASCII digits only and
# calendar-valid hours, minutes and offsets: stricter, so anything else takes the per-row path.
_MOMENT = (
    r"^\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d(\.\d{1,6})?"
    r"(Z|[+-]([01]\d|2[0-3]):[0-5]\d)$"
)


def _amount_pattern(places: int) -> str:
    fraction = rf"(\.\d{{1,{places}}})?" if places else ""
    return rf"^-?\d{{1,15}}{fraction}$"


# -- shared column helpers -------------------------------------------------------------------------


def minor_units(texts: list[str | None], currencies: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Plain amount texts in exact minor units of their currency, and which texts are not plain
    (no more decimals than the currency has, at most 15 integer digits); None counts as 0."""
    amounts = pa.array(texts, type=pa.string())
    minor = np.zeros(len(texts), dtype=np.int64)
    bad = np.zeros(len(texts), dtype=bool)
    codes = pa.array(currencies, type=pa.string())
    for currency in pc.unique(codes).to_pylist():
        places = exponent(currency)
        mine = pc.equal(codes, currency).to_numpy(zero_copy_only=False)
        plain = pc.match_substring_regex(amounts, _amount_pattern(places))
        plain = pc.fill_null(plain, True).to_numpy(zero_copy_only=False)
        bad |= mine & ~plain
        take = np.flatnonzero(mine & plain)
        if take.size:
            decimals = pc.cast(amounts.take(take), pa.decimal128(18, places))
            minor[take] = _unscaled(decimals)
    return minor, bad


def _unscaled(decimals: pa.Array) -> np.ndarray:
    """The unscaled integers of a decimal128 array (nulls as 0). Every value has at most 18
    digits, so its low 64 bits are the whole two's-complement value."""
    words = np.frombuffer(decimals.buffers()[1], dtype=np.int64)
    low = words[2 * decimals.offset : 2 * (decimals.offset + len(decimals)) : 2].copy()
    if decimals.null_count:
        low[decimals.is_null().to_numpy(zero_copy_only=False)] = 0
    return low


def decimal_column(minor: np.ndarray, places: int) -> pa.Array:
    """Exact major amounts (decimal128 with `places` decimals) from minor units, for COPY."""
    minor = np.ascontiguousarray(minor, dtype=np.int64)
    words = np.empty(2 * len(minor), dtype=np.int64)
    words[0::2] = minor
    words[1::2] = np.where(minor < 0, -1, 0)  # sign extension to 128 bits
    return pa.Array.from_buffers(pa.decimal128(38, places), len(minor), [None, pa.py_buffer(words)])


def utc_texts(micros: np.ndarray) -> pa.Array:
    """ISO 8601 UTC texts (`2026-03-02T10:00:00.000000+00:00`) of microseconds since the epoch,
    assembled from integer parts: Arrow's own timestamp formatting costs microseconds a value."""
    micros = np.asarray(micros, dtype=np.int64)
    days, rest = np.divmod(micros, 86_400_000_000)
    seconds, fraction = np.divmod(rest, 1_000_000)
    day_text = pa.array(days.astype(np.int32)).cast(pa.date32()).cast(pa.string())

    def padded(values: np.ndarray, width: int) -> pa.Array:
        return pc.utf8_lpad(pa.array(values).cast(pa.string()), width=width, padding="0")

    parts = (
        day_text, "T", padded(seconds // 3600, 2), ":", padded(seconds // 60 % 60, 2), ":",
        padded(seconds % 60, 2), ".", padded(fraction, 6), "+00:00",
    )  # fmt: skip
    return pc.binary_join_element_wise(*parts, "")


def scaled_to(minor: np.ndarray, currencies: Any, places: int) -> np.ndarray:
    """Minor units of each row's currency rescaled to `places` decimals (for one decimal column
    over rows in currencies of different exponents)."""
    factors = pd.Series(currencies).map(lambda c: 10 ** (places - exponent(c)))
    return minor * factors.to_numpy(dtype=np.int64)


def common_places(currencies: Iterable[str]) -> int:
    return max((exponent(c) for c in set(currencies)), default=2)


def moments(texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """ISO 8601 texts with an offset as UTC microseconds since the epoch, and which texts are not
    plain or not a real moment (those take the per-row path)."""
    array = pa.array(texts, type=pa.string())
    plain = pc.match_substring_regex(array, _MOMENT).to_numpy(zero_copy_only=False)
    parsed = pd.to_datetime(
        pd.Series(texts).where(plain, None), format="ISO8601", utc=True, errors="coerce"
    )
    micros = pd.DatetimeIndex(parsed).as_unit("us").asi8
    bad = ~plain | parsed.isna().to_numpy()
    return np.where(bad, 0, micros), bad


# -- transactions ----------------------------------------------------------------------------------

#: Columns of `TransactionBatch.table`, in `finance_transactions`' names where they have one.
TXN_FIELDS = (
    "position", "transaction_key", "meta_transaction_id", "transaction_type", "when",
    "order_id", "merchant_order_id", "payout_reference_id", "transfer_id", "currency",
    "tax_rate", "net_text", "fee_text", "direction",
)  # fmt: skip
TAX_FIELDS = (
    "position", "line_no", "tax_category", "jurisdiction", "imposition", "item_tax_rate",
    "amount_text", "currency",
)  # fmt: skip


def _money_parts(value: Any) -> tuple[str, str] | None:
    """`_fast_money` without its amount pattern (checked later on the whole column)."""
    if type(value) is not dict or len(value) != 2:
        return None
    amount, currency = value.get("amount"), value.get("currency")
    if type(amount) is not str or type(currency) is not str or len(currency) != 3:
        return None
    return amount, currency.upper()


def _transaction_fields(raw: dict[str, Any]) -> tuple | None:
    """The checks of `_fast_transaction_row` but the amount and date patterns; None otherwise."""
    if not raw.keys() <= _TXN_KEYS:
        return None
    get = raw.get
    txn_id, kind, order_id = get("id"), get("transaction_type"), get("order_id")
    when = get("transaction_date")
    if type(txn_id) is not str or not txn_id or len(txn_id) > 76:
        return None
    direction = _DIRECTION_BY_NAME.get(kind) if type(kind) is str else None
    if direction is None or type(order_id) is not str or not order_id or type(when) is not str:
        return None
    merchant, payout = get("merchant_order_id"), get("payout_reference_id")
    transfer, tax_rate = get("transfer_id"), get("tax_rate")
    if not _text_or_none(merchant, payout, transfer, tax_rate):
        return None
    net = _money_parts(get("net_payment_amount"))
    if net is None:
        return None
    fee_text = None
    if (fee_raw := get("processing_fee")) is not None:
        fee = _money_parts(fee_raw)
        if fee is None or fee[1] != net[1]:
            return None
        fee_text = fee[0]
    taxes = _tax_fields(get("tax_details"), net[1])
    if taxes is None:
        return None
    return (
        "id:" + txn_id, txn_id, kind, when, order_id, merchant or None, payout or None,
        transfer, net[1], tax_rate, net[0], fee_text, direction,
    ), taxes  # fmt: skip


def _tax_fields(details: Any, currency: str) -> list[tuple] | None:
    return plain_tax_details(details, currency, _money_parts)


@dataclass
class TransactionBatch:
    """Accepted transactions, one per key, in arrival order of their keys.

    `table`: TXN_FIELDS plus `moment` (UTC microseconds), `net_minor`, `fee_minor`, `tax_minor`,
    `gross_minor`. `taxes`: TAX_FIELDS plus `tax_minor` (signed like the transaction). Rows the
    per-row path produced are also in `slow` (by position), with their exact Decimals."""

    table: pd.DataFrame
    taxes: pd.DataFrame
    slow: dict[int, TransactionRow]
    rejects: list[Rejected]

    def __len__(self) -> int:
        return len(self.table)

    def keys(self) -> list[str]:
        return self.table["transaction_key"].tolist()

    def rows(self, limit: int | None = None) -> list[TransactionRow]:
        """The rows as the per-row path makes them (same Decimals, same dates)."""
        table = self.table if limit is None else self.table.head(limit)
        lines: dict[int, list[TaxLine]] = {}
        taxes = self.taxes[self.taxes["position"].isin(table["position"])]
        directions = dict(zip(table["position"], table["direction"], strict=True))
        for t in taxes.itertuples(index=False):
            if t.position in self.slow:
                continue
            magnitude = Decimal(t.amount_text).copy_abs()
            direction = directions[t.position]
            lines.setdefault(t.position, []).append(
                TaxLine(t.tax_category, t.jurisdiction, t.imposition, t.item_tax_rate,
                        magnitude if direction > 0 else -magnitude, t.currency)
            )  # fmt: skip
        return [self._row(r, tuple(lines.get(r.position, ()))) for r in table.itertuples()]

    def _row(self, r: Any, taxes: tuple[TaxLine, ...]) -> TransactionRow:
        if r.position in self.slow:
            return self.slow[r.position]
        net = Decimal(r.net_text)
        fee = Decimal(r.fee_text) if r.fee_text is not None else ZERO
        tax = ZERO
        for line in taxes:
            tax += line.tax_amount
        return TransactionRow(
            r.transaction_key, r.meta_transaction_id, r.transaction_type,
            datetime.fromisoformat(r.when), r.order_id, r.merchant_order_id,
            r.payout_reference_id, r.transfer_id, r.currency, net - fee, fee, net, tax,
            r.tax_rate, taxes,
        )  # fmt: skip

    def totals(self) -> dict[str, str]:
        """{currency: total net amount} as exact text (Dagster metadata)."""
        sums = self.table.groupby("currency")["net_minor"].sum()
        return {
            str(c): format(Decimal(int(v)).scaleb(-exponent(str(c))), "f")
            for c, v in sorted(sums.items())
        }


class TransactionColumns:
    """Reads transaction payloads into columns; `finish` merges them as `merge_transactions`."""

    def __init__(
        self, on_chunk: Callable[[pd.DataFrame, pd.DataFrame], None] | None = None
    ) -> None:
        """`on_chunk` sees each chunk's fast-shape rows and tax lines once read (to write them
        meanwhile); the per-row path's rows and the merge of repeated keys come with `finish`."""
        self._on_chunk = on_chunk
        self._tables: list[pd.DataFrame] = []
        self._taxes: list[pd.DataFrame] = []
        self._slow: dict[int, TransactionRow] = {}
        self._rejects: list[Rejected] = []
        self._position = 0

    def extend(self, raws: Iterable[Any]) -> None:
        """One fetch's payloads (hash keys of id-less payloads count occurrences per fetch)."""
        seen: Counter[str] = Counter()
        chunk: list[Any] = []
        for raw in raws:
            chunk.append(raw)
            if len(chunk) == CHUNK:
                self._read_chunk(chunk, seen)
                chunk = []
        if chunk:
            self._read_chunk(chunk, seen)

    def _read_chunk(self, chunk: list[Any], seen: Counter[str]) -> None:
        start, self._position = self._position, self._position + len(chunk)
        fields, tax_lines, aside = [], [], []
        for i, raw in enumerate(chunk):
            read = _transaction_fields(raw) if type(raw) is dict else None
            if read is None:
                aside.append(i)
                continue
            fields.append((start + i, *read[0]))
            for line_no, line in enumerate(read[1]):
                tax_lines.append((start + i, line_no, *line, read[0][8]))
        table = _typed_frame(fields, list(TXN_FIELDS))
        taxes = _typed_frame(tax_lines, list(TAX_FIELDS))
        bad = _fill_transaction_numbers(table, taxes)
        if bad.size:
            aside.extend((bad - start).tolist())
            table = table[~table["position"].isin(bad)]
            taxes = taxes[~taxes["position"].isin(bad)]
        self._tables.append(table)
        self._taxes.append(taxes)
        if self._on_chunk is not None:
            self._on_chunk(table, taxes)
        for i in sorted(aside):
            row = transaction_row_or_reject(chunk[i], seen)
            if isinstance(row, Rejected):
                self._rejects.append(row)
            else:
                self._slow[start + i] = row

    def finish(self) -> TransactionBatch:
        table = pd.concat([*self._tables, _slow_table(self._slow)], ignore_index=True)
        taxes = pd.concat([*self._taxes, _slow_taxes(self._slow)], ignore_index=True)
        table = _merged(table.sort_values("position", kind="stable", ignore_index=True))
        taxes = taxes[taxes["position"].isin(table["position"])].reset_index(drop=True)
        return TransactionBatch(table, taxes, self._slow, self._rejects)


def _fill_transaction_numbers(table: pd.DataFrame, taxes: pd.DataFrame) -> np.ndarray:
    """Minor amounts and moments of a chunk; returns the positions whose amounts or dates are
    not plain (they take the per-row path)."""
    currencies = table["currency"].tolist()
    net, bad_net = minor_units(table["net_text"].tolist(), currencies)
    fee, bad_fee = minor_units(table["fee_text"].tolist(), currencies)
    moment, bad_moment = moments(table["when"].tolist())
    line_minor, bad_line = minor_units(taxes["amount_text"].tolist(), taxes["currency"].tolist())
    direction_of = pd.Series(table["direction"].to_numpy(), index=table["position"].to_numpy())
    line_direction = direction_of.reindex(taxes["position"].to_numpy()).to_numpy(dtype=np.int64)
    taxes["tax_minor"] = np.abs(line_minor) * line_direction
    tax = taxes.groupby("position")["tax_minor"].sum()
    table["net_minor"], table["fee_minor"] = net, fee
    table["gross_minor"] = net - fee
    table["tax_minor"] = tax.reindex(table["position"].to_numpy(), fill_value=0).to_numpy(
        dtype=np.int64
    )
    table["moment"] = moment
    bad = bad_net | bad_fee | bad_moment
    bad_positions = set(table.loc[bad, "position"].tolist())
    bad_positions |= set(taxes.loc[bad_line, "position"].tolist())
    return np.array(sorted(bad_positions), dtype=np.int64)


def _slow_table(slow: dict[int, TransactionRow]) -> pd.DataFrame:
    """Rows of the per-row path as table rows (their amounts are exact in minor units)."""
    from pipelines.finance.store import fast_minor

    records = []
    for position, r in slow.items():
        cur = r.currency
        records.append({
            "position": position, "transaction_key": r.transaction_key,
            "meta_transaction_id": r.meta_transaction_id, "transaction_type": r.transaction_type,
            "when": r.transaction_date.isoformat(), "order_id": r.order_id,
            "merchant_order_id": r.merchant_order_id, "payout_reference_id": r.payout_reference_id,
            "transfer_id": r.transfer_id, "currency": cur, "tax_rate": r.tax_rate,
            "net_text": None, "fee_text": None, "direction": 0,
            "net_minor": fast_minor(r.net_amount, cur),
            "fee_minor": fast_minor(r.processing_fee, cur),
            "gross_minor": fast_minor(r.gross_amount, cur),
            "tax_minor": fast_minor(r.tax_amount, cur),
            "moment": _micros(r.transaction_date),
        })  # fmt: skip
    columns = [*TXN_FIELDS, "net_minor", "fee_minor", "gross_minor", "tax_minor", "moment"]
    return _typed_frame(records, columns)


_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _micros(moment: datetime) -> int:
    """Exact UTC microseconds since the epoch (no float rounding); a naive moment is read as
    `astimezone` reads it, as the row writer did."""
    delta = moment.astimezone(UTC) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _slow_taxes(slow: dict[int, TransactionRow]) -> pd.DataFrame:
    from pipelines.finance.store import fast_minor

    records = [
        {"position": position, "line_no": line_no, "tax_category": x.tax_category,
         "jurisdiction": x.jurisdiction, "imposition": x.imposition,
         "item_tax_rate": x.item_tax_rate, "amount_text": None, "currency": x.currency,
         "tax_minor": fast_minor(x.tax_amount, x.currency)}
        for position, r in slow.items()
        for line_no, x in enumerate(r.taxes)
    ]  # fmt: skip
    return _typed_frame(records, [*TAX_FIELDS, "tax_minor"])


def _typed_frame(records: list, columns: list[str]) -> pd.DataFrame:
    """Text columns as objects (None stays None; pandas would make them NaN-holding strings),
    integer columns as int64."""
    frame = pd.DataFrame(records, columns=columns, dtype=object)
    for name in columns:
        if name in ("position", "line_no", "direction", "moment") or name.endswith("_minor"):
            frame[name] = frame[name].astype(np.int64)
    return frame


def _merged(table: pd.DataFrame) -> pd.DataFrame:
    """One row per key, as `merge_transactions(ordered=False)`: the first row tied to a payout,
    else the first row; at the place where the key first arrived."""
    keys = table["transaction_key"]
    repeated = keys.duplicated(keep=False).to_numpy()
    if not repeated.any():
        return table
    winners: dict[str, int] = {}
    first_at: dict[str, int] = {}
    dup = table[repeated]
    for i, key, payout in zip(dup.index, dup["transaction_key"], dup["payout_reference_id"],
                              strict=True):  # fmt: skip
        current = winners.get(key)
        if current is None:
            winners[key], first_at[key] = i, i
        elif payout and not table.at[current, "payout_reference_id"]:
            winners[key] = i
    keep = ~repeated
    keep[[table.index.get_loc(i) for i in winners.values()]] = True
    merged = table[keep].copy()
    # The winner sits where its key first arrived (dict insertion order in merge_transactions).
    order = merged.index.map(lambda i: first_at.get(table.at[i, "transaction_key"], i)
                             if repeated[table.index.get_loc(i)] else i)  # fmt: skip
    merged["_at"] = np.asarray(order)
    return merged.sort_values("_at", kind="stable").drop(columns="_at").reset_index(drop=True)


# -- order payments --------------------------------------------------------------------------------

PAY_FIELDS = (
    "position", "payment_id", "order_id", "total_text", "currency", "items_text",
    "shipping_text", "tax_text", "tax_remitted", "captured", "shipment_ids",
)  # fmt: skip


_PLAIN_AMOUNT: dict[str, Any] = {}


def _plain_amount(currency: str) -> Any:
    """`fullmatch` of plain amounts of a currency, ASCII digits only (`_amount_fits`, stricter)."""
    fits = _PLAIN_AMOUNT.get(currency)
    if fits is None:
        pattern = _amount_pattern(exponent(currency)).removeprefix("^").removesuffix("$")
        fits = _PLAIN_AMOUNT[currency] = re.compile(pattern, re.ASCII).fullmatch
    return fits


def _payment_fields(order_id: str, raw: dict[str, Any]) -> tuple | None:
    """The checks of `_fast_payment_row` (amount patterns with ASCII digits); None otherwise.
    Checked here rather than on the column, so a payment that steps aside does so in arrival
    order (its reject keeps its place) and no payload is kept after it was read."""
    if not raw.keys() <= _PAYMENT_KEYS or type(raw.get("id")) is not str:
        return None
    remitted = raw.get("tax_remitted")
    if remitted is not None and type(remitted) is not bool:
        return None
    total = _money_parts(raw.get("total_amount"))
    if total is None:
        return None
    currency = total[1]
    plain = _plain_amount(currency)
    if plain(total[0]) is None:
        return None
    subtotal = raw.get("subtotal") or {}
    if type(subtotal) is not dict or not subtotal.keys() <= {"items", "shipping"}:
        return None
    texts = []
    for part in (subtotal.get("items"), subtotal.get("shipping"), raw.get("tax")):
        if part is None:
            texts.append(None)
            continue
        money = _money_parts(part)
        if money is None or money[1] != currency or plain(money[0]) is None:
            return None
        texts.append(money[0])
    shipments = _fast_shipment_ids(raw.get("shipments"))
    details, items = _edge(raw.get("transaction_details")), _edge(raw.get("items"))
    if shipments is None or details is None or items is None:
        return None
    for detail in details:
        if type(detail) is not dict or not detail.keys() <= {"id", "transaction_type"}:
            return None
        if type(detail.get("transaction_type")) is not str or not _text_or_none(detail.get("id")):
            return None
    for item in items:
        if type(item) is not dict or not item.keys() <= {"id", "quantity"}:
            return None
        if type(item.get("id")) is not str or type(item.get("quantity")) not in (int, type(None)):
            return None
    return (raw["id"], order_id, total[0], currency, *texts, remitted, bool(details), shipments)


@dataclass
class PaymentBatch:
    """Accepted payments: `table` (PAY_FIELDS plus `*_minor` amounts) for the fast shape;
    payments with promotion allocations or another shape are PaymentRows in `slow_rows`, each
    with its arrival position."""

    table: pd.DataFrame
    slow_rows: list[tuple[int, PaymentRow]]
    rejects: list[Rejected]

    def __len__(self) -> int:
        return len(self.table) + len(self.slow_rows)

    @property
    def slow(self) -> list[PaymentRow]:
        return [row for _, row in self.slow_rows]

    def rows(self, limit: int | None = None) -> list[PaymentRow]:
        """Every payment as the per-row path makes it, in arrival order."""
        table = self.table if limit is None else self.table.head(limit)
        fast = [(r.position, _payment_row(r)) for r in table.itertuples(index=False)]
        rows = [row for _, row in sorted(fast + self.slow_rows, key=lambda pair: pair[0])]
        return rows if limit is None else rows[:limit]

    def totals(self) -> dict[str, str]:
        """{currency: total_amount summed} as exact text (Dagster metadata)."""
        from pipelines.finance.store import fast_minor

        sums: dict[str, int] = {}
        for currency, minor in self.table.groupby("currency")["total_minor"].sum().items():
            sums[str(currency)] = int(minor)
        for row in self.slow:
            minor = fast_minor(row.total_amount, row.currency)
            sums[row.currency] = sums.get(row.currency, 0) + minor
        return {c: format(Decimal(v).scaleb(-exponent(c)), "f") for c, v in sorted(sums.items())}


def _payment_row(r: Any) -> PaymentRow:
    def amount(text: str | None) -> Decimal:
        return ZERO if text is None else Decimal(text)

    return PaymentRow(
        r.payment_id, r.order_id, amount(r.items_text), amount(r.shipping_text),
        amount(r.tax_text), Decimal(r.total_text), ZERO, r.currency, r.tax_remitted, r.captured,
        r.shipment_ids, (),
    )  # fmt: skip


class PaymentColumns:
    """Reads each order's payment payloads into columns (`add` per order, `finish` at the end)."""

    def __init__(self, on_table: Callable[[pd.DataFrame], None] | None = None) -> None:
        """`on_table` sees each chunk of fast-shape payments once read (to write it meanwhile)."""
        self._on_table = on_table
        self._fields: list[tuple] = []
        self._tables: list[pd.DataFrame] = []
        self._slow: list[tuple[int, PaymentRow]] = []
        self._rejects: list[Rejected] = []
        self._position = 0

    def add(self, order_id: str, raws: Iterable[Any]) -> None:
        for raw in raws:
            position, self._position = self._position, self._position + 1
            read = _payment_fields(order_id, raw) if type(raw) is dict else None
            if read is None:
                self._aside(position, order_id, raw)
                continue
            self._fields.append((position, *read))
            if len(self._fields) >= CHUNK:
                self._flush()

    def _aside(self, position: int, order_id: str, raw: Any) -> None:
        row = payment_row_or_reject(order_id, raw)
        if isinstance(row, Rejected):
            self._rejects.append(row)
        else:
            self._slow.append((position, row))

    def _flush(self) -> None:
        if not self._fields:
            return
        table = _typed_frame(self._fields, list(PAY_FIELDS))
        currencies = table["currency"].tolist()
        for name in ("total", "items", "shipping", "tax"):
            minor, not_plain = minor_units(table[f"{name}_text"].tolist(), currencies)
            assert not not_plain.any(), "amount patterns are checked as payments are read"
            table[f"{name}_minor"] = minor
        self._tables.append(table)
        self._fields = []
        if self._on_table is not None:
            self._on_table(table)

    def finish(self) -> PaymentBatch:
        self._flush()
        columns = [*PAY_FIELDS, "total_minor", "items_minor", "shipping_minor", "tax_minor"]
        table = pd.concat(self._tables, ignore_index=True) if self._tables else pd.DataFrame(
            columns=columns)  # fmt: skip
        self._slow.sort(key=lambda pair: pair[0])
        return PaymentBatch(table, self._slow, self._rejects)


def shipment_json(ids: Iterable[tuple[str, ...]]) -> list[str]:
    """`json.dumps(list(ids))` of each payment, with the one-plain-id case built directly."""
    out = []
    for one in ids:
        if len(one) == 1 and one[0].isascii() and one[0].isprintable() and '"' not in one[0] \
                and "\\" not in one[0]:  # fmt: skip
            out.append('["' + one[0] + '"]')
        else:
            out.append(json.dumps(list(one)))
    return out

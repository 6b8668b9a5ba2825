"""Reads and writes of the finance tables: partition replaces, quarantine, staging and publish.

    with db.begin() as conn:                      # one transaction per partition load
        replace_transactions(conn, "acme", day, window_start, window_end, rows)
        record_quarantine(conn, "acme", day, rejects)
    stage_reconciliation(db, "acme", result, checks_passed=True)
    publish_reconciliation(db, "acme")            # analyst tables replaced in one transaction

Every replace deletes what the partition owns and inserts the new rows inside the caller's
transaction, so a rerun or a backfill of a day leaves the tables as one clean load would.
"""

import dataclasses
import io
import itertools
import json
from collections.abc import Callable, Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime
from decimal import Decimal
from functools import cache
from typing import Any

import numpy as np
import pandas as pd
from psycopg2.errors import UniqueViolation
from sqlalchemy import (
    ARRAY,
    JSON,
    Column,
    Connection,
    MetaData,
    String,
    Table,
    and_,
    any_,
    delete,
    func,
    literal,
    literal_column,
    or_,
    select,
    update,
)

from pipelines.finance.money import _EXPONENTS, ZERO, MoneyError, exponent, to_minor
from pipelines.finance.normalize import (
    AllocationRow,
    PaymentRow,
    PayoutRow,
    Rejected,
    TaxLine,
    TransactionRow,
)
from resources.db import MetasyncDatabase
from resources.db.finance_tables import (
    ANALYST_TABLES,
    STAGED_TABLES,
    finance_daily_settlement,
    finance_order_payments,
    finance_order_reconciliation,
    finance_partition_loads,
    finance_payment_allocations,
    finance_payout_adjustments,
    finance_payout_reconciliation,
    finance_payouts,
    finance_quarantine,
    finance_reconciliation_runs,
    finance_reconciliation_staging,
    finance_tax_summary,
    finance_transaction_taxes,
    finance_transactions,
)
from resources.db.types import ExactDecimal, UtcDateTime, utcnow

# -- generic row building --------------------------------------------------------------------------


def table_values(table: Table, record: dict[str, Any], **extra: Any) -> dict[str, Any]:
    """Column values for `table` from a record: typed from text, `*_minor` twins computed."""
    values = dict(record) | extra
    row: dict[str, Any] = {}
    for column in table.columns:
        if column.name.endswith("_minor"):
            continue
        if column.name not in values:
            continue
        row[column.name] = _typed(column.type, values[column.name])
    currency = row.get("currency")
    for column in table.columns:
        base = column.name.removesuffix("_minor")
        if column.name.endswith("_minor") and base in row and row[base] is not None:
            row[column.name] = to_minor(row[base], currency)
    return row


def _typed(column_type: Any, value: Any) -> Any:
    if value is None:
        return None
    if isinstance(column_type, ExactDecimal):
        return Decimal(str(value))
    if isinstance(column_type, UtcDateTime) and isinstance(value, str):
        return datetime.fromisoformat(value)
    if isinstance(value, str) and _python_type(column_type) is date:
        return date.fromisoformat(value)
    return value


def _python_type(column_type: Any) -> type | None:
    try:
        return column_type.python_type
    except NotImplementedError:
        return None


def to_record(row: Any) -> dict[str, Any]:
    """A dataclass as JSON-safe values (Decimal and dates as text), for staging."""
    return json.loads(json.dumps(dataclasses.asdict(row), default=_json_default))


def _json_default(value: Any) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, date | datetime):
        return value.isoformat()
    raise TypeError(f"cannot stage {type(value).__name__}")


# -- bulk writes: COPY on Postgres, executemany elsewhere ------------------------------------------


@cache
def _minor_pairs(table: Table) -> tuple[tuple[str, str], ...]:
    """(minor column, its amount column) for each `*_minor` twin of `table`."""
    return tuple(
        (column.name, column.name.removesuffix("_minor"))
        for column in table.columns
        if column.name.endswith("_minor")
    )


@cache
def _scale(currency: str) -> int:
    return exponent(currency)


def fast_minor(amount: Decimal, currency: str) -> int:
    """`money.to_minor` without its generic checks' overhead; same result, same refusals."""
    if type(amount) is not Decimal:
        return to_minor(amount, currency)  # raises the usual MoneyError
    scaled = amount.scaleb(_scale(currency))
    minor = int(scaled)
    if minor != scaled:
        raise MoneyError(f"{amount} {currency} has more decimals than {currency} allows")
    return minor


_MONEY_TEXT: dict[tuple[Decimal, str], str] = {}


def money_text(amount: Decimal, currency: str) -> str:
    """COPY text of an amount and of its minor units, tab-separated. Cached: a day's amounts
    repeat a lot (prices, fees). Equal amounts written with other exponents share an entry;
    NUMERIC stores the same value for both."""
    key = (amount, currency)
    text = _MONEY_TEXT.get(key)
    if text is None:
        if len(_MONEY_TEXT) > 200_000:
            _MONEY_TEXT.clear()
        text = _MONEY_TEXT[key] = f"{format(amount, 'f')}\t{fast_minor(amount, currency)}"
    return text


def with_minor(table: Table, record: dict[str, Any]) -> dict[str, Any]:
    """Add the `*_minor` twins of a record of typed values (Decimal amounts)."""
    currency = record.get("currency")
    for minor, base in _minor_pairs(table):
        value = record.get(base)
        if value is not None:
            record[minor] = fast_minor(value, currency)
    return record


def bulk_insert(conn: Connection, table: Table, records: Sequence[dict[str, Any]]) -> int:
    """Insert many rows at once inside the caller's transaction: COPY on Postgres (rows/s in
    the hundreds of thousands), one executemany elsewhere. Records hold every column to write."""
    if not records:
        return 0
    if conn.dialect.name == "postgresql":
        _copy(conn, table, records)
    else:
        conn.execute(table.insert(), list(records))
    return len(records)


_COPY_ESCAPES = str.maketrans({"\\": "\\\\", "\t": "\\t", "\n": "\\n", "\r": "\\r"})


def _copy_text(column: Column, value: Any) -> str:
    """One value in COPY's text format, as the column's bind processor would have sent it."""
    if value is None:
        return "\\N"
    if isinstance(column.type, JSON):
        return json.dumps(value).translate(_COPY_ESCAPES)
    if isinstance(value, str):
        return value.translate(_COPY_ESCAPES)
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, Decimal):
        return format(value, "f")
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime: pass an aware UTC datetime")
        return value.astimezone(UTC).isoformat()
    if isinstance(value, float):
        if isinstance(column.type, ExactDecimal):
            raise TypeError("money must be Decimal, never float")
        return repr(value)
    return str(value)  # int, date


def _copy(conn: Connection, table: Table, records: Sequence[dict[str, Any]]) -> None:
    names = [column.name for column in table.columns if column.name in records[0]]
    columns = [table.c[name] for name in names]
    buffer = io.StringIO()
    write = buffer.write
    for record in records:
        write("\t".join([_copy_text(c, record.get(c.name)) for c in columns]))
        write("\n")
    buffer.seek(0)
    cursor = conn.connection.cursor()
    try:
        cursor.copy_expert(f"COPY {table.name} ({', '.join(names)}) FROM STDIN", buffer)
    finally:
        cursor.close()


_BIG_KEY_SET = 5_000
_key_tables = itertools.count()


def key_in(conn: Connection, column: Column, keys: Sequence[str]) -> Any:
    """`column IN keys` that stays one parameter on Postgres however many keys there are; a big
    key set goes into a temporary table by COPY (an array literal of a million keys costs
    seconds to send and parse)."""
    return key_matcher(conn, keys)(column)


def key_matcher(conn: Connection, keys: Sequence[str]) -> Callable[[Column], Any]:
    """`key_in` for several columns matched against one key set (one temporary table)."""
    keys = list(keys)
    if conn.dialect.name != "postgresql":
        return lambda column: column.in_(keys)
    if len(keys) <= _BIG_KEY_SET:
        return lambda column: column == any_(literal(keys, ARRAY(String)))
    name = f"finance_keys_{next(_key_tables)}"
    conn.exec_driver_sql(f"CREATE TEMPORARY TABLE {name} (key text) ON COMMIT DROP")
    copy_arrow(conn, name, _one_text_column("key", keys))
    conn.exec_driver_sql(f"ANALYZE {name}")
    temp = Table(name, MetaData(), Column("key", String))
    return lambda column: column.in_(select(temp.c.key))


def _one_text_column(name: str, values: Sequence[str]) -> Any:
    import pyarrow as pa

    return pa.table({name: pa.array(values, type=pa.string())})


def _fields(row: Any, names: tuple[str, ...]) -> dict[str, Any]:
    """A dataclass's fields as a dict, shallow (dataclasses.asdict deep-copies every value)."""
    return {name: getattr(row, name) for name in names}


@cache
def _field_names(cls: type) -> tuple[str, ...]:
    """Field names of a row class: a NamedTuple (the hot rows) or a dataclass."""
    if hasattr(cls, "_fields"):
        return tuple(cls._fields)
    return tuple(f.name for f in dataclasses.fields(cls))


# -- loaded tables: replace per partition ----------------------------------------------------------


def replace_payouts(
    conn: Connection, shop_id: str, partition_date: date, rows: Sequence[PayoutRow]
) -> int:
    refs = [row.payout_reference_id for row in rows]
    conn.execute(
        delete(finance_payouts).where(
            finance_payouts.c.shop_id == shop_id,
            or_(
                finance_payouts.c.partition_date == partition_date,
                key_in(conn, finance_payouts.c.payout_reference_id, refs),
            ),
        )
    )
    now, names = utcnow(), _field_names(PayoutRow)
    records = [
        with_minor(
            finance_payouts,
            _fields(row, names) | {"shop_id": shop_id, "partition_date": partition_date,
                                   "loaded_at": now},
        )
        for row in rows
    ]  # fmt: skip
    return bulk_insert(conn, finance_payouts, records)


def fast_load_session(conn: Connection) -> None:
    """Postgres: settings for a transaction that bulk-replaces a partition. synchronous_commit
    off: the commit does not wait for its WAL to reach the disk, so a server crash in the
    following fraction of a second may lose the whole load (never part of it: the database
    stays consistent, and the partition's load record goes with its rows). Such a partition
    load is idempotent and a rerun writes the same rows, so it is worth the wait it saves."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL synchronous_commit = off")


def replace_transactions(
    conn: Connection,
    shop_id: str,
    partition_date: date,
    window_start: date,
    window_end: date,
    rows: Sequence[TransactionRow],
) -> int:
    """Replace the shop's transactions dated in the window, and any row re-fetched by payout."""
    _delete_transactions(
        conn, shop_id, window_start, window_end, [row.transaction_key for row in rows]
    )
    now = utcnow()
    if conn.dialect.name == "postgresql":
        copy_lines(
            conn,
            finance_transactions,
            _TXN_COPY,
            _transaction_lines(rows, shop_id, partition_date, now),
        )
        copy_lines(conn, finance_transaction_taxes, _TAX_COPY, _tax_lines(rows, shop_id))
        return len(rows)
    return _insert_transaction_rows(conn, shop_id, partition_date, now, rows)


def _delete_transactions(
    conn: Connection, shop_id: str, window_start: date, window_end: date, keys: Sequence[str]
) -> None:
    """What a window load owns: the shop's transactions dated in the window, and any row it
    re-fetched by payout (by key), with their tax lines."""
    owned = and_(
        finance_transactions.c.shop_id == shop_id,
        or_(
            finance_transactions.c.transaction_day.between(window_start, window_end),
            key_in(conn, finance_transactions.c.transaction_key, keys),
        ),
    )
    stale_keys = select(finance_transactions.c.transaction_key).where(owned)
    conn.execute(
        delete(finance_transaction_taxes).where(
            finance_transaction_taxes.c.shop_id == shop_id,
            finance_transaction_taxes.c.transaction_key.in_(stale_keys),
        )
    )
    conn.execute(delete(finance_transactions).where(owned))


def _insert_transaction_rows(
    conn: Connection, shop_id: str, partition_date: date, now: datetime,
    rows: Sequence[TransactionRow],
) -> int:  # fmt: skip
    """Rows by executemany (SQLite and other non-Postgres backends)."""
    names = tuple(n for n in _field_names(TransactionRow) if n != "taxes")
    tax_names = _field_names(TaxLine)
    records, tax_records = [], []
    for row in rows:
        record = _fields(row, names)
        record.update(
            shop_id=shop_id, partition_date=partition_date,
            transaction_day=row.transaction_day, loaded_at=now,
        )  # fmt: skip
        records.append(with_minor(finance_transactions, record))
        for line_no, line in enumerate(row.taxes):
            tax = _fields(line, tax_names)
            tax.update(shop_id=shop_id, transaction_key=row.transaction_key, line_no=line_no)
            tax_records.append(with_minor(finance_transaction_taxes, tax))
    bulk_insert(conn, finance_transactions, records)
    bulk_insert(conn, finance_transaction_taxes, tax_records)
    return len(rows)


# COPY lines built straight from the rows (one pass, no per-value type dispatch), streamed so
# Postgres parses and indexes one chunk while Python formats the next (the two use both cores).
_TXN_COPY = (
    "shop_id", "transaction_key", "meta_transaction_id", "transaction_type", "transaction_date",
    "transaction_day", "order_id", "merchant_order_id", "payout_reference_id", "transfer_id",
    "currency", "gross_amount", "gross_amount_minor", "processing_fee", "processing_fee_minor",
    "net_amount", "net_amount_minor", "tax_amount", "tax_amount_minor", "tax_rate",
    "partition_date", "loaded_at",
)  # fmt: skip
_TAX_COPY = (
    "shop_id", "transaction_key", "line_no", "tax_category", "jurisdiction", "imposition",
    "item_tax_rate", "tax_amount", "tax_amount_minor", "currency",
)  # fmt: skip
_CHUNK = 20_000


def _t(value: str | None) -> str:
    return "\\N" if value is None else value.translate(_COPY_ESCAPES)


def _transaction_lines(
    rows: Sequence[TransactionRow], shop_id: str, partition_date: date, now: datetime
) -> Iterable[str]:
    shop, partition, loaded = _t(shop_id), partition_date.isoformat(), now.isoformat()
    for start in range(0, len(rows), _CHUNK):
        lines = []
        for r in rows[start : start + _CHUNK]:
            moment = r.transaction_date.astimezone(UTC)
            cur = r.currency
            lines.append(
                "\t".join((
                    shop, _t(r.transaction_key), _t(r.meta_transaction_id), _t(r.transaction_type),
                    moment.isoformat(), moment.date().isoformat(), _t(r.order_id),
                    _t(r.merchant_order_id), _t(r.payout_reference_id), _t(r.transfer_id), _t(cur),
                    money_text(r.gross_amount, cur), money_text(r.processing_fee, cur),
                    money_text(r.net_amount, cur), money_text(r.tax_amount, cur), _t(r.tax_rate),
                    partition, loaded,
                ))
            )  # fmt: skip
        lines.append("")
        yield "\n".join(lines)


def _tax_lines(rows: Sequence[TransactionRow], shop_id: str) -> Iterable[str]:
    shop = _t(shop_id)
    for start in range(0, len(rows), _CHUNK):
        lines = []
        for r in rows[start : start + _CHUNK]:
            key = _t(r.transaction_key)
            for line_no, x in enumerate(r.taxes):
                lines.append(
                    "\t".join((
                        shop, key, str(line_no), _t(x.tax_category), _t(x.jurisdiction),
                        _t(x.imposition), _t(x.item_tax_rate),
                        money_text(x.tax_amount, x.currency), _t(x.currency),
                    ))
                )  # fmt: skip
        if lines:
            lines.append("")
            yield "\n".join(lines)


def replace_transaction_batch(
    conn: Connection,
    shop_id: str,
    partition_date: date,
    window_start: date,
    window_end: date,
    batch: Any,
) -> int:
    """`replace_transactions` for a `columnar.TransactionBatch`: on Postgres the columns go to
    COPY as Arrow-written CSV (no Python object per value); elsewhere its rows are inserted."""
    if conn.dialect.name != "postgresql":
        return replace_transactions(
            conn, shop_id, partition_date, window_start, window_end, batch.rows()
        )
    _delete_transactions(conn, shop_id, window_start, window_end, batch.keys())
    now = utcnow()
    copy_arrow(
        conn,
        finance_transactions.name,
        _transaction_arrow(batch.table, shop_id, partition_date, now),
    )
    copy_arrow(conn, finance_transaction_taxes.name, _tax_arrow(batch.table, batch.taxes, shop_id))
    return len(batch)


def copy_transaction_chunks(
    conn: Connection, shop_id: str, partition_date: date, window_start: date, window_end: date,
    chunks: Iterable[tuple[pd.DataFrame, pd.DataFrame]], now: datetime,
) -> dict[str, int]:  # fmt: skip
    """The Postgres `replace_transaction_batch`, fed `TransactionColumns` chunks while they are
    read: the window's rows deleted first, then each chunk's rows COPY'd as it comes, a key's
    first arrival only. Returns the position written for each key; then
    `finish_streamed_transactions` puts right the keys whose merged row is another one (a
    payout's version, a row of the per-row path)."""
    _delete_transactions(conn, shop_id, window_start, window_end, [])
    written: dict[str, int] = {}
    for table, taxes in chunks:
        first = _first_arrivals(table, written)
        if first.any():
            _copy_replacing(conn, shop_id, partition_date, now, table[first], taxes)
    return written


def finish_streamed_transactions(
    conn: Connection, shop_id: str, partition_date: date, batch: Any, written: dict[str, int],
    now: datetime,
) -> None:  # fmt: skip
    """After `copy_transaction_chunks`: every key whose merged row in `batch` is not the one
    written (or none was) is deleted and written again from the batch, so the table holds
    exactly what `replace_transaction_batch` writes."""
    keys = batch.table["transaction_key"].tolist()
    positions = batch.table["position"].tolist()
    wrong = [
        i for i, (key, at) in enumerate(zip(keys, positions, strict=True)) if written.get(key) != at
    ]
    if not wrong:
        return
    rows = batch.table.iloc[wrong]
    _delete_transaction_keys(conn, shop_id, rows["transaction_key"].tolist())
    _copy_transaction_rows(conn, shop_id, partition_date, now, rows, batch.taxes)


def _first_arrivals(table: pd.DataFrame, written: dict[str, int]) -> np.ndarray:
    """Which rows of a chunk carry a key not written yet; records them in `written`."""
    first = np.zeros(len(table), dtype=bool)
    keys = table["transaction_key"].tolist()
    positions = table["position"].tolist()
    for i, (key, at) in enumerate(zip(keys, positions, strict=True)):
        if key not in written:
            written[key] = at
            first[i] = True
    return first


def _copy_replacing(
    conn: Connection, shop_id: str, partition_date: date, now: datetime, rows: pd.DataFrame,
    taxes: pd.DataFrame,
) -> None:  # fmt: skip
    """COPY rows whose keys an older load may hold outside the window (a payout's transactions
    dated before it, a transaction Meta re-dated). That is rare, so the COPY is tried first,
    under a savepoint, and the keys cleared only when it clashes."""
    try:
        with conn.begin_nested():
            _copy_transaction_rows(conn, shop_id, partition_date, now, rows, taxes)
    except UniqueViolation:
        _delete_transaction_keys(conn, shop_id, rows["transaction_key"].tolist())
        _copy_transaction_rows(conn, shop_id, partition_date, now, rows, taxes)


def _delete_transaction_keys(conn: Connection, shop_id: str, keys: Sequence[str]) -> None:
    """The shop's rows under these keys, with their tax lines, one primary-key probe per key:
    the table is being filled by this very transaction, whose rows the statistics do not count
    yet, and on that guess the planner would rather read every row of the shop."""
    conn.exec_driver_sql("SET LOCAL enable_hashjoin = off")
    conn.exec_driver_sql("SET LOCAL enable_mergejoin = off")
    try:
        for name in (finance_transaction_taxes.name, finance_transactions.name):
            conn.exec_driver_sql(
                f"DELETE FROM {name} AS t USING unnest(%(keys)s::text[]) AS k(key) "
                "WHERE t.shop_id = %(shop)s AND t.transaction_key = k.key",
                {"keys": list(keys), "shop": shop_id},
            )
    finally:
        conn.exec_driver_sql("RESET enable_hashjoin")
        conn.exec_driver_sql("RESET enable_mergejoin")


def _copy_transaction_rows(
    conn: Connection, shop_id: str, partition_date: date, now: datetime, rows: pd.DataFrame,
    taxes: pd.DataFrame,
) -> None:  # fmt: skip
    """COPY batch-table rows and their tax lines (`taxes` may hold other rows' lines too)."""
    taxes = taxes[taxes["position"].isin(rows["position"])]
    copy_arrow(
        conn, finance_transactions.name, _transaction_arrow(rows, shop_id, partition_date, now)
    )
    copy_arrow(conn, finance_transaction_taxes.name, _tax_arrow(rows, taxes, shop_id))


def _transaction_arrow(
    table: pd.DataFrame, shop_id: str, partition_date: date, now: datetime
) -> Any:
    import pyarrow as pa

    from pipelines.finance.columnar import common_places, utc_texts

    n = len(table)
    moment = table["moment"].to_numpy(dtype=np.int64)
    currencies = table["currency"].to_numpy()
    places = common_places(currencies)
    columns = {
        "shop_id": pa.repeat(shop_id, n),
        "transaction_key": _text(table["transaction_key"]),
        "meta_transaction_id": _text(table["meta_transaction_id"]),
        "transaction_type": _text(table["transaction_type"]),
        "transaction_date": utc_texts(moment),
        "transaction_day": pa.array(moment // 86_400_000_000, type=pa.int32()).cast(pa.date32()),
        "order_id": _text(table["order_id"]),
        "merchant_order_id": _text(table["merchant_order_id"]),
        "payout_reference_id": _text(table["payout_reference_id"]),
        "transfer_id": _text(table["transfer_id"]),
        "currency": _text(table["currency"]),
    }
    for name, minor in (("gross_amount", "gross_minor"), ("processing_fee", "fee_minor"),
                        ("net_amount", "net_minor"), ("tax_amount", "tax_minor")):  # fmt: skip
        columns |= _money_arrow(name, table[minor].to_numpy(dtype=np.int64), currencies, places)
    columns |= {
        "tax_rate": _text(table["tax_rate"]),
        "partition_date": pa.repeat(pa.scalar(partition_date, pa.date32()), n),
        "loaded_at": pa.repeat(now.astimezone(UTC).isoformat(), n),
    }
    return pa.table(columns)


def _tax_arrow(table: pd.DataFrame, taxes: pd.DataFrame, shop_id: str) -> Any:
    """The tax lines of `table`'s rows (by position) as `finance_transaction_taxes` columns."""
    import pyarrow as pa

    from pipelines.finance.columnar import common_places

    keys = pd.Series(table["transaction_key"].to_numpy(), index=table["position"].to_numpy())
    currencies = taxes["currency"].to_numpy()
    columns = {
        "shop_id": pa.repeat(shop_id, len(taxes)),
        "transaction_key": _text(keys.reindex(taxes["position"].to_numpy())),
        "line_no": pa.array(taxes["line_no"].to_numpy(dtype=np.int64)),
        "tax_category": _text(taxes["tax_category"]),
        "jurisdiction": _text(taxes["jurisdiction"]),
        "imposition": _text(taxes["imposition"]),
        "item_tax_rate": _text(taxes["item_tax_rate"]),
    }
    columns |= _money_arrow(
        "tax_amount", taxes["tax_minor"].to_numpy(dtype=np.int64), currencies,
        common_places(currencies),
    )  # fmt: skip
    columns["currency"] = _text(taxes["currency"])
    return pa.table(columns)


def _text(values: Any) -> Any:
    """A text column (str or None values) as an Arrow string array."""
    import pyarrow as pa

    return pa.array(np.asarray(values, dtype=object), type=pa.string(), from_pandas=False)


def _money_arrow(name: str, minor: np.ndarray, currencies: Any, places: int) -> dict[str, Any]:
    """`name` (exact decimal, `places` decimals: NUMERIC(20, 6) stores the same value whatever
    the scale written) and `name_minor` columns from the minor units of each row's currency."""
    import pyarrow as pa

    from pipelines.finance.columnar import decimal_column, scaled_to

    major = minor
    if any(exponent(c) != places for c in set(currencies)):
        major = scaled_to(minor, currencies, places)
    return {name: decimal_column(major, places), f"{name}_minor": pa.array(minor)}


_ARROW_SLICE = 50_000


def copy_arrow(conn: Connection, table_name: str, table: Any) -> None:
    """COPY an Arrow table (columns named and ordered as the SQL table's) as CSV that Arrow's
    C++ writer formats, a slice at a time so Postgres parses one slice while the next is written.
    Strings are quoted (empty text stays text), nulls are unquoted empties (NULL)."""
    import pyarrow.csv as pacsv

    if not table.num_rows:
        return
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")

    def slices() -> Iterable[bytes]:
        for start in range(0, table.num_rows, _ARROW_SLICE):
            out = io.BytesIO()
            pacsv.write_csv(table.slice(start, _ARROW_SLICE), out, options)
            yield out.getvalue()

    cursor = conn.connection.cursor()
    try:
        cursor.copy_expert(
            f"COPY {table_name} ({', '.join(table.column_names)}) FROM STDIN WITH (FORMAT csv)",
            _ChunkReader(slices()),
        )
    finally:
        cursor.close()


def copy_arrow_tables(conn: Connection, table_name: str, tables: Iterable[Any]) -> None:
    """`copy_arrow` of Arrow tables (same columns) arriving one by one: one COPY that takes
    each as it comes (Postgres parses one while the next is produced)."""
    import pyarrow.csv as pacsv

    tables = iter(tables)
    first = next(tables, None)
    if first is None:
        return
    options = pacsv.WriteOptions(include_header=False, quoting_style="needed")

    def slices() -> Iterable[bytes]:
        for table in itertools.chain([first], tables):
            if table.num_rows:
                out = io.BytesIO()
                pacsv.write_csv(table, out, options)
                yield out.getvalue()

    cursor = conn.connection.cursor()
    try:
        cursor.copy_expert(
            f"COPY {table_name} ({', '.join(first.column_names)}) FROM STDIN WITH (FORMAT csv)",
            _ChunkReader(slices()),
        )
    finally:
        cursor.close()


class _ChunkReader(io.TextIOBase):
    """A file-like view of an iterator of text chunks, for COPY FROM STDIN."""

    def __init__(self, chunks: Iterable[str]) -> None:
        self._chunks = iter(chunks)

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> str | bytes:
        return next(self._chunks, "")

    def readline(self, size: int | None = -1) -> str:
        return self.read(size)


def copy_lines(conn: Connection, table: Table, names: Sequence[str], chunks: Iterable[str]) -> None:
    """COPY text-format lines (already escaped, tab-separated, newline-ended) into `table`."""
    cursor = conn.connection.cursor()
    try:
        cursor.copy_expert(
            f"COPY {table.name} ({', '.join(names)}) FROM STDIN", _ChunkReader(chunks)
        )
    finally:
        cursor.close()


def replace_payments(
    conn: Connection,
    shop_id: str,
    partition_date: date,
    order_ids: Iterable[str],
    rows: Sequence[PaymentRow],
) -> int:
    """Replace every payment (and allocation) of the given orders."""
    _delete_payments(conn, shop_id, order_ids)
    return _insert_payment_rows(conn, shop_id, partition_date, utcnow(), rows)


def _delete_payments(conn: Connection, shop_id: str, order_ids: Iterable[str]) -> None:
    matching = key_matcher(conn, sorted(set(order_ids)))
    for table in (finance_payment_allocations, finance_order_payments):
        conn.execute(delete(table).where(table.c.shop_id == shop_id, matching(table.c.order_id)))


def replace_payment_batch(
    conn: Connection,
    shop_id: str,
    partition_date: date,
    order_ids: Iterable[str],
    batch: Any,
) -> int:
    """`replace_payments` for a `columnar.PaymentBatch`: on Postgres its fast-shape payments go
    to COPY as Arrow-written CSV, the others (allocations and all) through the row path."""
    if conn.dialect.name != "postgresql":
        return replace_payments(conn, shop_id, partition_date, order_ids, batch.rows())
    _delete_payments(conn, shop_id, order_ids)
    now = utcnow()
    copy_arrow(conn, finance_order_payments.name,
               _payment_arrow(batch.table, shop_id, partition_date, now))  # fmt: skip
    _insert_payment_rows(conn, shop_id, partition_date, now, batch.slow)
    return len(batch)


def copy_payment_chunks(
    conn: Connection, shop_id: str, partition_date: date, order_ids: Iterable[str],
    chunks: Iterable[pd.DataFrame], now: datetime,
) -> None:  # fmt: skip
    """The fast-shape part of `replace_payment_batch` (Postgres), fed `PaymentColumns` chunks
    while they are read: the orders' payments deleted, then each chunk COPY'd as it comes.
    The caller adds `batch.slow` (`insert_slow_payments`) once the reading is done."""
    _delete_payments(conn, shop_id, order_ids)
    tables = (_payment_arrow(chunk, shop_id, partition_date, now) for chunk in chunks)
    copy_arrow_tables(conn, finance_order_payments.name, tables)


def insert_slow_payments(
    conn: Connection, shop_id: str, partition_date: date, now: datetime, batch: Any
) -> None:
    _insert_payment_rows(conn, shop_id, partition_date, now, batch.slow)


def _payment_arrow(table: pd.DataFrame, shop_id: str, partition_date: date, now: datetime) -> Any:
    import pyarrow as pa

    from pipelines.finance.columnar import common_places, shipment_json

    n = len(table)
    currencies = table["currency"].to_numpy()
    places = common_places(currencies)
    columns = {
        "shop_id": pa.repeat(shop_id, n),
        "payment_id": _text(table["payment_id"]),
        "order_id": _text(table["order_id"]),
    }
    for name, minor in (("items_amount", "items_minor"), ("shipping_amount", "shipping_minor"),
                        ("tax_amount", "tax_minor"), ("total_amount", "total_minor")):  # fmt: skip
        columns |= _money_arrow(name, table[minor].to_numpy(dtype=np.int64), currencies, places)
    columns |= _money_arrow("promotion_allocation_amount", np.zeros(n, dtype=np.int64),
                            currencies, places)  # fmt: skip
    columns |= {
        "currency": _text(table["currency"]),
        "tax_remitted": pa.array(np.asarray(table["tax_remitted"], dtype=object), type=pa.bool_()),
        "captured": pa.array(np.asarray(table["captured"], dtype=object), type=pa.bool_()),
        "shipment_ids": _text(shipment_json(table["shipment_ids"])),
        "partition_date": pa.repeat(pa.scalar(partition_date, pa.date32()), n),
        "loaded_at": pa.repeat(now.astimezone(UTC).isoformat(), n),
    }
    return pa.table(columns)


def _insert_payment_rows(
    conn: Connection, shop_id: str, partition_date: date, now: datetime,
    rows: Sequence[PaymentRow],
) -> int:  # fmt: skip
    copied = conn.dialect.name == "postgresql"
    if copied:
        copy_lines(conn, finance_order_payments, _PAYMENT_COPY,
                   _payment_lines(rows, shop_id, partition_date, now))  # fmt: skip
    names = tuple(n for n in _field_names(PaymentRow) if n != "allocations")
    records, allocation_records = [], []
    for row in rows:
        if not copied:
            record = _fields(row, names)
            record.update(
                shipment_ids=list(row.shipment_ids), shop_id=shop_id,
                partition_date=partition_date, loaded_at=now,
            )  # fmt: skip
            records.append(with_minor(finance_order_payments, record))
        if not row.allocations:
            continue
        allocations = [a._asdict() for a in row.allocations]
        for allocation in _merge_allocations(allocations):
            allocation.update(shop_id=shop_id, payment_id=row.payment_id, order_id=row.order_id)
            allocation_records.append(with_minor(finance_payment_allocations, allocation))
    bulk_insert(conn, finance_order_payments, records)
    bulk_insert(conn, finance_payment_allocations, allocation_records)
    return len(rows)


_PAYMENT_COPY = (
    "shop_id", "payment_id", "order_id", "items_amount", "items_amount_minor", "shipping_amount",
    "shipping_amount_minor", "tax_amount", "tax_amount_minor", "total_amount",
    "total_amount_minor", "promotion_allocation_amount", "promotion_allocation_amount_minor",
    "currency", "tax_remitted", "captured", "shipment_ids", "partition_date", "loaded_at",
)  # fmt: skip
_BOOL = {True: "t", False: "f", None: "\\N"}


def _payment_lines(
    rows: Sequence[PaymentRow], shop_id: str, partition_date: date, now: datetime
) -> Iterable[str]:
    shop, partition, loaded = _t(shop_id), partition_date.isoformat(), now.isoformat()
    for start in range(0, len(rows), _CHUNK):
        lines = []
        for r in rows[start : start + _CHUNK]:
            cur = r.currency
            amounts = (r.items_amount, r.shipping_amount, r.tax_amount, r.total_amount,
                       r.promotion_allocation_amount)  # fmt: skip
            money = []
            for amount in amounts:
                money.append(money_text(amount, cur))
            lines.append(
                "\t".join((
                    shop, _t(r.payment_id), _t(r.order_id), *money, _t(cur),
                    _BOOL[r.tax_remitted], _BOOL[r.captured],
                    _t(json.dumps(list(r.shipment_ids))), partition, loaded,
                ))
            )  # fmt: skip
        lines.append("")
        yield "\n".join(lines)


def _merge_allocations(allocations: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per (item, promotion): Meta may split an allocation over several entries."""
    merged: dict[tuple[str, str], dict[str, Any]] = {}
    for allocation in allocations:
        key = (allocation["item_id"], allocation["promotion_id"])
        if key in merged:
            merged[key]["allocation_amount"] += allocation["allocation_amount"]
        else:
            merged[key] = dict(allocation)
    return list(merged.values())


def record_quarantine(
    conn: Connection, shop_id: str, partition_date: date, source: str, rejects: Sequence[Rejected]
) -> int:
    """Upsert what this partition refused from one source; acknowledgements survive reloads."""
    now = utcnow()
    seen = set()
    for reject in rejects:
        seen.add((reject.source, reject.record_key))
        values = {
            "partition_date": partition_date,
            "reason": reject.reason,
            "payout_reference_id": reject.payout_reference_id,
            "net_amount": reject.net_amount,
            "currency": reject.currency,
            "payload": reject.payload,
        }
        where = and_(
            finance_quarantine.c.shop_id == shop_id,
            finance_quarantine.c.source == reject.source,
            finance_quarantine.c.record_key == reject.record_key,
        )
        if conn.execute(select(finance_quarantine.c.quarantine_id).where(where)).first():
            conn.execute(update(finance_quarantine).where(where).values(**values))
        else:
            conn.execute(
                finance_quarantine.insert().values(
                    shop_id=shop_id,
                    source=reject.source,
                    record_key=reject.record_key,
                    detected_at=now,
                    **values,
                )
            )
    # Open records of this partition that the re-pull no longer sees are gone from Meta's side.
    existing = conn.execute(
        select(
            finance_quarantine.c.quarantine_id,
            finance_quarantine.c.source,
            finance_quarantine.c.record_key,
        ).where(
            finance_quarantine.c.shop_id == shop_id,
            finance_quarantine.c.partition_date == partition_date,
            finance_quarantine.c.source == source,
            finance_quarantine.c.acknowledged_at.is_(None),
        )
    ).all()
    gone = [row.quarantine_id for row in existing if (row.source, row.record_key) not in seen]
    if gone:
        conn.execute(delete(finance_quarantine).where(finance_quarantine.c.quarantine_id.in_(gone)))
    return len(rejects)


def acknowledge_quarantine(
    db: MetasyncDatabase, shop_id: str, quarantine_ids: Iterable[int], by: str, note: str
) -> int:
    """Mark quarantined records as seen and decided; returns how many were acknowledged."""
    with db.begin() as conn:
        result = conn.execute(
            update(finance_quarantine)
            .where(
                finance_quarantine.c.shop_id == shop_id,
                finance_quarantine.c.quarantine_id.in_(list(quarantine_ids)),
            )
            .values(acknowledged_at=utcnow(), acknowledged_by=by, acknowledgement_note=note)
        )
    return result.rowcount


def open_quarantine(conn: Connection, shop_id: str) -> list[Any]:
    return conn.execute(
        select(finance_quarantine)
        .where(
            finance_quarantine.c.shop_id == shop_id,
            finance_quarantine.c.acknowledged_at.is_(None),
        )
        .order_by(finance_quarantine.c.quarantine_id)
    ).all()


def record_load(
    conn: Connection,
    shop_id: str,
    partition_date: date,
    window_start: date,
    window_end: date,
    **counts: int,
) -> None:
    """Note what a load step did for a partition (each step sets its own counts)."""
    where = and_(
        finance_partition_loads.c.shop_id == shop_id,
        finance_partition_loads.c.partition_date == partition_date,
    )
    values = {"window_start": window_start, "window_end": window_end, "loaded_at": utcnow()}
    if conn.execute(select(finance_partition_loads.c.shop_id).where(where)).first():
        conn.execute(update(finance_partition_loads).where(where).values(**values, **counts))
        return
    empty = dict.fromkeys(
        ("payouts_loaded", "transactions_loaded", "payments_loaded", "quarantined"), 0
    )
    conn.execute(
        finance_partition_loads.insert().values(
            shop_id=shop_id, partition_date=partition_date, **values, **(empty | counts)
        )
    )


def quarantined_in_partition(conn: Connection, shop_id: str, partition_date: date) -> int:
    return conn.execute(
        select(func.count()).where(
            finance_quarantine.c.shop_id == shop_id,
            finance_quarantine.c.partition_date == partition_date,
        )
    ).scalar_one()


# -- reading the loaded tables back ----------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class LoadedFinance:
    as_of: date | None
    payouts: list[PayoutRow]
    transactions: list[TransactionRow]
    payments: list[PaymentRow]
    quarantined: list[Rejected]


def read_loaded(db: MetasyncDatabase, shop_id: str) -> LoadedFinance:
    """Everything loaded for a shop, as the rows the pure reconciliation takes."""
    with db.begin() as conn:
        as_of = conn.execute(
            select(func.max(finance_partition_loads.c.partition_date)).where(
                finance_partition_loads.c.shop_id == shop_id
            )
        ).scalar()
        payouts = [_payout(r) for r in _rows(conn, finance_payouts, shop_id)]
        taxes = _taxes_by_key(conn, shop_id)
        transactions = [
            _transaction(r, taxes.get(r.transaction_key, ()))
            for r in _rows(conn, finance_transactions, shop_id)
        ]
        allocations = _allocations_by_payment(conn, shop_id)
        payments = [
            _payment(r, allocations.get(r.payment_id, ()))
            for r in _rows(conn, finance_order_payments, shop_id)
        ]
        quarantined = [_reject(r) for r in _rows(conn, finance_quarantine, shop_id)]
    return LoadedFinance(
        as_of=_as_date(as_of),
        payouts=payouts,
        transactions=sorted(transactions, key=lambda t: (t.transaction_date, t.transaction_key)),
        payments=payments,
        quarantined=quarantined,
    )


def read_transactions_of_orders(
    conn: Connection, shop_id: str, order_ids: Sequence[str]
) -> dict[str, list[TransactionRow]]:
    """The loaded transactions of some orders (without tax lines), by order, in date order."""
    rows = conn.execute(
        select(finance_transactions)
        .where(
            finance_transactions.c.shop_id == shop_id,
            key_in(conn, finance_transactions.c.order_id, list(order_ids)),
        )
        .order_by(finance_transactions.c.transaction_date, finance_transactions.c.transaction_key)
    ).all()
    by_order: dict[str, list[TransactionRow]] = {}
    for row in rows:
        by_order.setdefault(row.order_id, []).append(_transaction(row, ()))
    return by_order


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _rows(conn: Connection, table: Table, shop_id: str) -> list[Any]:
    order = [column for column in table.primary_key.columns]
    return conn.execute(select(table).where(table.c.shop_id == shop_id).order_by(*order)).all()


def _payout(r: Any) -> PayoutRow:
    return PayoutRow(
        r.payout_reference_id, r.payout_date, r.status, r.amount, r.currency, r.transfer_id
    )


def _taxes_by_key(conn: Connection, shop_id: str) -> dict[str, tuple[TaxLine, ...]]:
    by_key: dict[str, list[TaxLine]] = {}
    for r in _rows(conn, finance_transaction_taxes, shop_id):
        by_key.setdefault(r.transaction_key, []).append(
            TaxLine(
                r.tax_category,
                r.jurisdiction,
                r.imposition,
                r.item_tax_rate,
                r.tax_amount,
                r.currency,
            )
        )
    return {key: tuple(lines) for key, lines in by_key.items()}


def _transaction(r: Any, taxes: tuple[TaxLine, ...]) -> TransactionRow:
    return TransactionRow(
        transaction_key=r.transaction_key,
        meta_transaction_id=r.meta_transaction_id,
        transaction_type=r.transaction_type,
        transaction_date=r.transaction_date,
        order_id=r.order_id,
        merchant_order_id=r.merchant_order_id,
        payout_reference_id=r.payout_reference_id,
        transfer_id=r.transfer_id,
        currency=r.currency,
        gross_amount=r.gross_amount,
        processing_fee=r.processing_fee,
        net_amount=r.net_amount,
        tax_amount=r.tax_amount,
        tax_rate=r.tax_rate,
        taxes=taxes,
    )


def _allocations_by_payment(conn: Connection, shop_id: str) -> dict[str, tuple]:
    by_payment: dict[str, list[AllocationRow]] = {}
    for r in _rows(conn, finance_payment_allocations, shop_id):
        by_payment.setdefault(r.payment_id, []).append(
            AllocationRow(r.item_id, r.promotion_id, r.allocation_amount, r.currency)
        )
    return {key: tuple(rows) for key, rows in by_payment.items()}


def _payment(r: Any, allocations: tuple[AllocationRow, ...]) -> PaymentRow:
    return PaymentRow(
        payment_id=r.payment_id,
        order_id=r.order_id,
        items_amount=r.items_amount,
        shipping_amount=r.shipping_amount,
        tax_amount=r.tax_amount,
        total_amount=r.total_amount,
        promotion_allocation_amount=r.promotion_allocation_amount,
        currency=r.currency,
        tax_remitted=r.tax_remitted,
        captured=r.captured,
        shipment_ids=tuple(r.shipment_ids or ()),
        allocations=allocations,
    )


def _reject(r: Any) -> Rejected:
    return Rejected(
        r.source,
        r.record_key,
        r.reason,
        r.payload,
        r.payout_reference_id,
        r.net_amount,
        r.currency,
    )


# -- staging and publishing the analyst tables -----------------------------------------------------

_STAGED_PARTS = (
    ("payouts", finance_payout_reconciliation),
    ("adjustments", finance_payout_adjustments),
    ("daily", finance_daily_settlement),
    ("taxes", finance_tax_summary),
)


def stage_reconciliation(
    db: MetasyncDatabase, shop_id: str, result: Any, *, checks_passed: bool
) -> None:
    """Replace the shop's staged rows (the `*_staged` tables, money in minor units) and its
    staging header, in one transaction. `result` is a `setbased.FrameReconciliation` or a pure
    `reconcile.ShopReconciliation`."""
    orders = _orders_frame(result)
    values = {
        "as_of_date": result.as_of_date,
        "computed_at": utcnow(),
        "checks_passed": checks_passed,
        "payload": {
            "mismatch_rate": result.mismatch_rate,
            "unbalanced_payouts": len(result.unbalanced_payouts),
        },
        "published_at": None,
    }
    with db.begin() as conn:
        for staged in STAGED_TABLES.values():
            conn.execute(delete(staged).where(staged.c.shop_id == shop_id))
        staged_orders = STAGED_TABLES[finance_order_reconciliation.name]
        columns = {name: orders[name].to_numpy() for name in orders.columns}
        columns |= {"shop_id": shop_id, "as_of_date": result.as_of_date}
        bulk_insert_columns(conn, staged_orders, columns, len(orders))
        for part, table in _STAGED_PARTS:
            staged = STAGED_TABLES[table.name]
            records = [_staged_record(staged, table, row, shop_id) for row in getattr(result, part)]
            bulk_insert(conn, staged, records)
        conn.execute(
            delete(finance_reconciliation_staging).where(
                finance_reconciliation_staging.c.shop_id == shop_id
            )
        )
        conn.execute(finance_reconciliation_staging.insert().values(shop_id=shop_id, **values))


def _orders_frame(result: Any) -> pd.DataFrame:
    from pipelines.finance.setbased import orders_frame_from_rows

    orders = result.orders
    return orders if isinstance(orders, pd.DataFrame) else orders_frame_from_rows(orders)


def stage_and_publish(db: MetasyncDatabase, shop_id: str, result: Any) -> dict[str, int]:
    """`stage_reconciliation` (checks passed) then `publish_reconciliation`, for a caller that
    has checked the result itself (`ingest_finance`), with the two writes side by side on
    Postgres: the analyst order rows are COPY'd from the result on a second connection while
    the staging is written, and that transaction commits once the staging has, so the tables
    end as the two steps leave them. Elsewhere the two steps one after the other."""
    if db.dialect != "postgresql":
        stage_reconciliation(db, shop_id, result, checks_passed=True)
        return publish_reconciliation(db, shop_id)
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="finance-stage") as side:
        staged = side.submit(stage_reconciliation, db, shop_id, result, checks_passed=True)
        with db.begin() as conn:
            orders = _copy_published_orders(conn, shop_id, result)
            staged.result()  # an error here rolls the analyst rows back
            header = _staging_header(conn, shop_id)
            return _publish_staged(
                conn, shop_id, header, {finance_order_reconciliation.name: orders}
            )


def _copy_published_orders(conn: Connection, shop_id: str, result: Any) -> int:
    """The analyst order rows straight from the result, as `_publish_table` derives them from
    the staged ones (major amounts from the minor ones, exactly)."""
    import pyarrow as pa

    from pipelines.finance.columnar import common_places

    table = finance_order_reconciliation
    conn.execute(delete(table).where(table.c.shop_id == shop_id))
    orders = _orders_frame(result)
    n = len(orders)
    currencies = orders["currency"].to_numpy()
    places = common_places(currencies)
    columns: dict[str, Any] = {}
    for column in table.columns:
        name = column.name
        if name == "shop_id":
            columns[name] = pa.repeat(shop_id, n)
        elif name == "as_of_date":
            columns[name] = pa.repeat(pa.scalar(result.as_of_date, pa.date32()), n)
        elif isinstance(column.type, ExactDecimal):
            minor = orders[f"{name}_minor"].to_numpy(dtype=np.int64)
            columns |= _money_arrow(name, minor, currencies, places)
        elif name.endswith("_minor"):
            continue  # with its major twin
        else:
            columns[name] = _arrow_column(column, orders[name].to_numpy(), False, n)
    copy_arrow(conn, table.name, pa.table(columns))
    return n


def _staged_record(staged: Table, analyst: Table, row: Any, shop_id: str) -> dict[str, Any]:
    record = with_minor(analyst, _fields(row, _field_names(type(row))))
    record["shop_id"] = shop_id
    return {c.name: record.get(c.name) for c in staged.columns}


def bulk_insert_columns(
    conn: Connection, table: Table, columns: dict[str, Any], length: int
) -> int:
    """Insert rows given column-wise (sequences or numpy arrays; a scalar repeats), in bulk."""
    if not length:
        return 0
    names = [c.name for c in table.columns if c.name in columns]
    scalar = {
        name
        for name in names
        if isinstance(columns[name], str | int | date) or columns[name] is None
    }
    if conn.dialect.name != "postgresql":
        lists = [
            [columns[name]] * length if name in scalar else _python_values(columns[name])
            for name in names
        ]
        records = [dict(zip(names, row, strict=True)) for row in zip(*lists, strict=True)]
        conn.execute(table.insert(), records)
        return length
    arrays = [_arrow_column(table.c[name], columns[name], name in scalar, length) for name in names]
    if all(array is not None for array in arrays):
        import pyarrow as pa

        copy_arrow(conn, table.name, pa.table(dict(zip(names, arrays, strict=True))))
        return length
    texts = [
        [_copy_text(table.c[name], columns[name])] * length
        if name in scalar
        else _copy_texts(table.c[name], columns[name])
        for name in names
    ]
    copy_lines(conn, table, names, _joined_rows(texts))
    return length


def _arrow_column(column: Column, values: Any, scalar: bool, length: int) -> Any:
    """An Arrow array of a column for `copy_arrow`: integers, booleans, text and dates; None
    for any other kind (the caller then formats every value in Python)."""
    import pyarrow as pa

    kind = _python_type(column.type)
    arrow_type = {int: pa.int64(), bool: pa.bool_(), str: pa.string(), date: pa.date32()}.get(kind)
    if arrow_type is None or isinstance(column.type, ExactDecimal | JSON | UtcDateTime):
        return None
    if scalar:
        return pa.repeat(pa.scalar(values, arrow_type), length)
    if isinstance(values, np.ndarray) and values.dtype.kind in "iub":
        return pa.array(values).cast(arrow_type)
    values = [None if v is None or v != v else v for v in _python_values(values)]  # NaN: NULL
    return pa.array(values, type=arrow_type)


def _joined_rows(texts: list[list[str]]) -> Iterable[str]:
    rows = zip(*texts, strict=True)
    while chunk := list(itertools.islice(rows, _CHUNK)):
        yield "".join("\t".join(row) + "\n" for row in chunk)


def _python_values(values: Any) -> list[Any]:
    if isinstance(values, np.ndarray):
        return values.tolist()
    return list(values)


def _copy_texts(column: Column, values: Any) -> list[str]:
    """COPY text of a whole column: integer arrays in one pass, other values one by one."""
    if isinstance(values, np.ndarray) and values.dtype.kind in "iu":
        return list(map(str, values.tolist()))
    if isinstance(values, np.ndarray) and values.dtype.kind == "b":
        return ["t" if v else "f" for v in values.tolist()]
    out = []
    for value in _python_values(values):
        if value is None or value != value:  # None, or a NaN pandas put in an object column
            out.append("\\N")
        elif type(value) is str:
            out.append(value.translate(_COPY_ESCAPES))
        else:
            out.append(_copy_text(column, value))
    return out


def _major_sql(dialect: str, minor: str) -> str:
    """SQL deriving the exact major amount from a minor-unit column and `currency`: NUMERIC on
    Postgres, ExactDecimal's exact text elsewhere (SQLite)."""
    by_exponent: dict[int, list[str]] = {}
    for code, places in _EXPONENTS.items():
        by_exponent.setdefault(places, []).append(f"'{code}'")
    if dialect == "postgresql":
        whens = " ".join(
            f"WHEN upper(currency) IN ({', '.join(codes)}) THEN {Decimal(1).scaleb(-e)}"
            for e, codes in sorted(by_exponent.items())
        )
        return f"({minor} * CASE {whens} ELSE 0.01 END)"

    def text(places: int) -> str:
        if places == 0:
            return f"CAST({minor} AS TEXT)"
        unit = 10**places
        return (
            f"(CASE WHEN {minor} < 0 THEN '-' ELSE '' END || (abs({minor}) / {unit}) || '.' || "
            f"substr('{'0' * places}' || (abs({minor}) % {unit}), -{places}))"
        )

    whens = " ".join(
        f"WHEN upper(currency) IN ({', '.join(codes)}) THEN {text(e)}"
        for e, codes in sorted(by_exponent.items())
    )
    return f"(CASE {whens} ELSE {text(2)} END)"


class PublishRefused(RuntimeError):
    """The staged reconciliation failed its blocking checks; analyst tables stay as they were."""


def publish_reconciliation(db: MetasyncDatabase, shop_id: str) -> dict[str, int]:
    """Replace the shop's analyst rows with the staged reconciliation, in one transaction."""
    with db.begin() as conn:
        staged = _staging_header(conn, shop_id)
        if staged is None:
            raise PublishRefused(f"shop {shop_id}: nothing staged; materialize the staging first")
        if not staged.checks_passed:
            raise PublishRefused(
                f"shop {shop_id}: the staged reconciliation failed its blocking checks"
            )
        return _publish_staged(conn, shop_id, staged)


def _staging_header(conn: Connection, shop_id: str) -> Any:
    """The shop's staging header row, or None when nothing is staged."""
    return conn.execute(
        select(finance_reconciliation_staging).where(
            finance_reconciliation_staging.c.shop_id == shop_id
        )
    ).first()


def _publish_staged(
    conn: Connection, shop_id: str, staged: Any, written: dict[str, int] | None = None
) -> dict[str, int]:
    """The analyst tables replaced from the staged ones, the staging (its header `staged`)
    marked published and the run logged. `written`: tables whose rows the caller wrote
    already, with their counts."""
    written = written or {}
    counts = dict(written)
    for table in ANALYST_TABLES:
        if table.name not in written:
            conn.execute(delete(table).where(table.c.shop_id == shop_id))
            counts[table.name] = _publish_table(conn, table, shop_id)
    now = utcnow()
    conn.execute(
        update(finance_reconciliation_staging)
        .where(finance_reconciliation_staging.c.shop_id == shop_id)
        .values(published_at=now)
    )
    conn.execute(
        finance_reconciliation_runs.insert().values(
            shop_id=shop_id,
            published_at=now,
            as_of_date=staged.as_of_date,
            orders=counts[finance_order_reconciliation.name],
            mismatch_rate=staged.payload["mismatch_rate"],
            unbalanced_payouts=staged.payload["unbalanced_payouts"],
        )
    )
    return counts


def _publish_table(conn: Connection, table: Table, shop_id: str) -> int:
    """INSERT .. SELECT from the staged twin, major amounts derived from the minor ones."""
    staged = STAGED_TABLES[table.name]
    names = [c.name for c in table.columns]
    if conn.dialect.name == "postgresql":
        # The currency's unit once per row (OFFSET 0 keeps the subquery from being flattened,
        # which would evaluate the CASE once per money column).
        unit = literal_column(_major_sql("postgresql", "1")).label("minor_unit")
        rows = select(staged, unit).where(staged.c.shop_id == shop_id).offset(0).subquery()
        exprs = [
            rows.c[name] if name in staged.c else rows.c[f"{name}_minor"] * rows.c.minor_unit
            for name in names
        ]
        query = select(*exprs)
    else:
        exprs = [
            staged.c[name]
            if name in staged.c
            else literal_column(_major_sql(conn.dialect.name, f"{name}_minor"))
            for name in names
        ]
        query = select(*exprs).where(staged.c.shop_id == shop_id)
    return conn.execute(table.insert().from_select(names, query)).rowcount


def totals_by_currency(rows: Iterable[Any], amount: str) -> dict[str, str]:
    """{currency: total} of one money attribute, as text for Dagster metadata."""
    totals: dict[str, Decimal] = {}
    for row in rows:
        totals[row.currency] = totals.get(row.currency, ZERO) + getattr(row, amount)
    return {currency: format(total, "f") for currency, total in sorted(totals.items())}

"""The finance steps of one shop and day, shared by the Dagster assets and the demo.

    summary = ingest_finance(metasync, oms, "acme", date(2026, 3, 2))
    summary.payouts_loaded, summary.transactions_loaded, summary.published

Steps (each an asset in `pipelines.finance.assets`): load payouts of the day -> load transactions
over a trailing window that covers Meta's lag, plus every transaction of the day's payouts ->
load the payments of the orders those transactions touch -> reconcile the shop against the OMS
and stage it with its checks -> publish the analyst tables when the blocking checks passed.
"""

import gc
import logging
import queue
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

import pandas as pd
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy import Connection, select

from pipelines.finance import setbased, store
from pipelines.finance.columnar import (
    PaymentBatch,
    PaymentColumns,
    TransactionBatch,
    TransactionColumns,
)
from pipelines.finance.normalize import (
    PayoutRow,
    Rejected,
    TransactionRow,
    normalize_payouts,
)
from pipelines.finance.reconcile import ReconcileSettings, trailing_window_start
from pipelines.finance.setbased import FrameReconciliation, reconcile_set_based
from resources.db import MetasyncDatabase
from resources.db.finance_tables import finance_payouts, finance_transactions
from resources.db.types import utcnow
from resources.meta.finance import PAYOUT_FIELDS, TRANSACTION_FIELDS
from resources.meta.orders import PAYMENT_FIELDS, unix_seconds
from resources.meta.transport import GraphClient
from resources.oms.adapter import OmsAdapter
from resources.shops import ShopProfile

logger = logging.getLogger(__name__)


class FinanceSettings(BaseSettings):
    """Finance knobs, from METASYNC_FINANCE_* variables."""

    model_config = SettingsConfigDict(env_prefix="METASYNC_FINANCE_", extra="ignore")

    lag_business_days: int = 3
    tolerance: Decimal = Decimal("0")
    mismatch_rate_threshold: float = 0.05
    remitted_tax_paid_to_seller: bool = False

    def reconcile(self) -> ReconcileSettings:
        return ReconcileSettings(
            lag_business_days=self.lag_business_days,
            tolerance=self.tolerance,
            remitted_tax_paid_to_seller=self.remitted_tax_paid_to_seller,
        )


@dataclass(frozen=True)
class Window:
    """Partition `day` and the days its transactions load re-pulls (both ends inclusive)."""

    day: date
    start: date

    @classmethod
    def for_day(cls, day: date, settings: FinanceSettings) -> "Window":
        return cls(day, trailing_window_start(day, settings.lag_business_days))

    def bounds(self, first: date) -> tuple[datetime, datetime]:
        """[first 00:00 UTC, day + 1 00:00 UTC) for Graph's start_time / end_time."""
        return (
            datetime.combine(first, time(), UTC),
            datetime.combine(self.day + timedelta(days=1), time(), UTC),
        )


@dataclass(frozen=True)
class StepResult:
    """What a load step did. `rows` is a preview (the first rows), not every row: a big day's
    rows are freed once written; `totals` holds the exact totals per currency."""

    loaded: int
    quarantined: int
    api_calls: int
    rows: list[Any] = field(default_factory=list)
    rejects: list[Rejected] = field(default_factory=list)
    totals: dict[str, str] = field(default_factory=dict)

    @classmethod
    def of(
        cls, rows: list[Any], rejects: list[Rejected], api_calls: int, amount: str
    ) -> "StepResult":
        totals = store.totals_by_currency(rows, amount)
        return cls(len(rows), len(rejects), api_calls, rows[:PREVIEW_ROWS], rejects, totals)


PREVIEW_ROWS = 20


# -- Graph reads (raw dicts, so one unreadable row is quarantined instead of failing the page) ----


def _node(shop: ShopProfile) -> str:
    node = shop.page_id or shop.cms_id
    if not node:
        raise ValueError(f"shop {shop.shop_id} has neither page_id nor cms_id; finance needs one")
    return node


def fetch_payouts(graph: GraphClient, shop: ShopProfile, window: Window) -> Iterator[dict]:
    start, end = window.bounds(window.day)
    params = {"start_time": unix_seconds(start), "end_time": unix_seconds(end)}
    return graph.paginate(f"{_node(shop)}/commerce_payouts", params | {"fields": PAYOUT_FIELDS})


def fetch_transactions(
    graph: GraphClient, shop: ShopProfile, window: Window, payout_refs: list[str]
) -> tuple[list[dict], list[list[dict]]]:
    """The window's transactions, and each payout's (which may be dated before the window)."""
    start, end = window.bounds(window.start)
    path = f"{_node(shop)}/commerce_transactions"
    in_window = list(
        graph.paginate(
            path,
            {
                "start_time": unix_seconds(start),
                "end_time": unix_seconds(end),
                "fields": TRANSACTION_FIELDS,
            },
        )
    )
    by_payout = [
        list(graph.paginate(path, {"payout_reference_id": ref, "fields": TRANSACTION_FIELDS}))
        for ref in payout_refs
    ]
    return in_window, by_payout


def fetch_payments(graph: GraphClient, order_id: str) -> list[dict]:
    return list(graph.paginate(f"{order_id}/payments", {"fields": PAYMENT_FIELDS}))


# -- load steps -----------------------------------------------------------------------------------


def load_payouts(
    db: MetasyncDatabase, graph: GraphClient, shop: ShopProfile, window: Window
) -> StepResult:
    calls_before = graph.calls
    rows, rejects = normalize_payouts(fetch_payouts(graph, shop, window))
    with db.begin() as conn:
        store.replace_payouts(conn, shop.shop_id, window.day, rows)
        store.record_quarantine(conn, shop.shop_id, window.day, "payouts", rejects)
        store.record_load(
            conn, shop.shop_id, window.day, window.start, window.day, payouts_loaded=len(rows)
        )
    return StepResult.of(rows, rejects, graph.calls - calls_before, "amount")


def load_transactions(
    db: MetasyncDatabase, graph: GraphClient, shop: ShopProfile, window: Window
) -> StepResult:
    calls_before = graph.calls
    refs = _payout_refs_of_day(db, shop.shop_id, window.day)
    if db.dialect == "postgresql":  # written while read (ingest_finance overlaps otherwise)
        batch, rejects = _read_and_write_transactions(db, graph, shop, window, refs)
    else:
        batch, rejects = read_transactions(graph, shop, window, refs)
        write_transactions(db, shop.shop_id, window, batch, rejects)
    return _transaction_result(batch, rejects, graph.calls - calls_before)


def read_transactions(
    graph: GraphClient, shop: ShopProfile, window: Window, refs: list[str],
    on_chunk: Callable[[pd.DataFrame, pd.DataFrame], None] | None = None,
) -> tuple[TransactionBatch, list[Rejected]]:  # fmt: skip
    """The window's transactions and those of the day's payouts, merged, and their rejects."""
    path = f"{_node(shop)}/commerce_transactions"
    start, end = window.bounds(window.start)
    params = {"start_time": unix_seconds(start), "end_time": unix_seconds(end)}
    # Pages are normalised as they arrive (a million payloads are never all in memory). The
    # window's payloads of the day's payouts are kept by id: the payout fetch returns most of
    # them again, and an identical payload gives an identical row (or reject), so it is skipped.
    # Read column-wise (`columnar.py`: the rows and rejects of `normalize_transactions` and
    # `merge_transactions`, without a Python object per transaction).
    kept: dict[str, dict] = {}
    window_raws = graph.paginate(path, params | {"fields": TRANSACTION_FIELDS})
    columns = TransactionColumns(on_chunk)
    with _bulk_reading():
        columns.extend(_keeping(window_raws, set(refs), kept))
        for ref in refs:
            raws = graph.paginate(path, {"payout_reference_id": ref, "fields": TRANSACTION_FIELDS})
            columns.extend(raw for raw in raws if not _seen(raw, kept))
        batch = columns.finish()
    kept.clear()
    rejects = list({(r.source, r.record_key): r for r in batch.rejects}.values())
    return batch, rejects


def write_transactions(
    db: MetasyncDatabase, shop_id: str, window: Window, batch: TransactionBatch,
    rejects: list[Rejected],
) -> None:  # fmt: skip
    """The partition replace, its quarantine and its load record: one transaction."""
    with db.begin() as conn:
        store.fast_load_session(conn)
        store.replace_transaction_batch(conn, shop_id, window.day, window.start, window.day, batch)
        _record_partition_load(
            conn, shop_id, window, "transactions", rejects, transactions_loaded=len(batch)
        )


def _read_and_write_transactions(
    db: MetasyncDatabase, graph: GraphClient, shop: ShopProfile, window: Window, refs: list[str]
) -> tuple[TransactionBatch, list[Rejected]]:
    """`read_transactions` and `write_transactions` at once on Postgres, for the transactions
    asset's step, which has nothing else to overlap: each chunk goes to a writer on a second
    connection as it is read (Postgres would otherwise idle while Python reads, and Python
    while Postgres writes). Still one transaction, committed once the merged batch is in.
    Not used by `load_transactions_and_payments`, where the writer's Python would slow the
    read that everything else waits for."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="finance-writer") as writer:
        (batch, rejects), written = _read_while_writing(
            writer,
            lambda put: read_transactions(
                graph, shop, window, refs, on_chunk=lambda *chunk: put(chunk)
            ),
            lambda chunks, batch_read: _write_transactions_streamed(
                db, shop.shop_id, window, chunks, batch_read
            ),
        )
        written.result()
    return batch, rejects


def _read_while_writing(
    writers: ThreadPoolExecutor,
    read: Callable[[Callable[[Any], None]], Any],
    write: Callable[[Iterable[Any], "Future[Any]"], Any],
) -> tuple[Any, "Future[Any]"]:
    """`read(put)` here, each chunk it puts handed to `write(chunks, batch_read)` on a writer
    thread as it is read; the writer gets what `read` returned through `batch_read`, or its
    error (through both, so it rolls back). Returns what `read` returned and the writer's
    future."""
    pipe = _ChunkPipe()
    batch_read: Future[Any] = Future()
    written = writers.submit(write, pipe, batch_read)
    try:
        batch = read(pipe.put)
    except BaseException as error:  # the writer rolls back
        pipe.close(error)
        batch_read.set_exception(error)
        raise
    pipe.close()
    batch_read.set_result(batch)
    return batch, written


def _write_transactions_streamed(
    db: MetasyncDatabase, shop_id: str, window: Window,
    chunks: Iterable[tuple[pd.DataFrame, pd.DataFrame]],
    batch_read: "Future[tuple[TransactionBatch, list[Rejected]]]",
) -> None:  # fmt: skip
    """`write_transactions`, fed while the transactions are read."""
    now = utcnow()
    with db.begin() as conn:
        store.fast_load_session(conn)
        written = store.copy_transaction_chunks(
            conn, shop_id, window.day, window.start, window.day, chunks, now
        )
        batch, rejects = batch_read.result()
        store.finish_streamed_transactions(conn, shop_id, window.day, batch, written, now)
        _record_partition_load(
            conn, shop_id, window, "transactions", rejects, transactions_loaded=len(batch)
        )


def _transaction_result(
    batch: TransactionBatch, rejects: list[Rejected], api_calls: int
) -> StepResult:
    return StepResult(
        len(batch), len(rejects), api_calls, batch.rows(PREVIEW_ROWS), rejects, batch.totals()
    )


@contextmanager
def _bulk_reading() -> Iterator[None]:
    """Pause the cyclic garbage collector while payloads are read. A big load allocates millions
    of short-lived, acyclic containers (payload dicts, lists) that reference counting frees; with
    thousands of them alive at a time (a chunk, the payout's kept payloads) the collector's
    promotions trigger full passes over every live object, measured at two thirds of the read
    time for a million payments. Cycles made meanwhile are collected once it is back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _keeping(raws: Iterator[Any], refs: set[str], kept: dict[str, dict]) -> Iterator[Any]:
    for raw in raws:
        if type(raw) is dict and raw.get("payout_reference_id") in refs:
            txn_id = raw.get("id")
            if type(txn_id) is str and txn_id not in kept:
                kept[txn_id] = raw
        yield raw


def _seen(raw: Any, kept: dict[str, dict]) -> bool:
    """The payload is the very one the window fetch already normalised."""
    if type(raw) is not dict:
        return False
    txn_id = raw.get("id")
    return type(txn_id) is str and kept.get(txn_id) == raw


def load_order_payments(
    db: MetasyncDatabase, graph: GraphClient, shop: ShopProfile, window: Window
) -> StepResult:
    calls_before = graph.calls
    # TODO(finance-payments): one call per order the partition touches, new or not; fetch only
    # orders whose transactions changed since their payments were loaded (needs a per-order
    # fingerprint kept with the payments) so reruns and the lag re-pull skip known orders.
    order_ids = _orders_in_window(db, shop.shop_id, window)
    if db.dialect == "postgresql":  # written chunk by chunk while read, as in ingest_finance
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="finance-writer") as writer:
            batch, streamed = _read_payments_streaming(
                writer, db, graph, shop.shop_id, window, order_ids
            )
            streamed.result()
    else:
        batch = read_payments(graph, order_ids)
        write_payments(db, shop.shop_id, window, order_ids, batch)
    return _payment_result(batch, graph.calls - calls_before)


def read_payments(
    graph: GraphClient, order_ids: list[str],
    on_table: Callable[[pd.DataFrame], None] | None = None,
) -> PaymentBatch:  # fmt: skip
    columns = PaymentColumns(on_table)  # as normalize_payments, column-wise (`columnar.py`)
    with _bulk_reading():
        for order_id in order_ids:
            columns.add(order_id, fetch_payments(graph, order_id))
        return columns.finish()


def write_payments(
    db: MetasyncDatabase, shop_id: str, window: Window, order_ids: list[str], batch: PaymentBatch
) -> None:
    with db.begin() as conn:
        store.fast_load_session(conn)
        store.replace_payment_batch(conn, shop_id, window.day, order_ids, batch)
        _record_payments(conn, shop_id, window, batch)


def _record_payments(conn: Connection, shop_id: str, window: Window, batch: PaymentBatch) -> None:
    _record_partition_load(
        conn, shop_id, window, "payments", batch.rejects, payments_loaded=len(batch)
    )


def _record_partition_load(
    conn: Connection,
    shop_id: str,
    window: Window,
    source: str,
    rejects: list[Rejected],
    **loaded: int,
) -> None:
    """A load step's quarantine and its load record, with the partition's quarantine count."""
    store.record_quarantine(conn, shop_id, window.day, source, rejects)
    store.record_load(
        conn,
        shop_id,
        window.day,
        window.start,
        window.day,
        quarantined=store.quarantined_in_partition(conn, shop_id, window.day),
        **loaded,
    )


def _payment_result(batch: PaymentBatch, api_calls: int) -> StepResult:
    return StepResult(
        len(batch), len(batch.rejects), api_calls, batch.rows(PREVIEW_ROWS), batch.rejects,
        batch.totals(),
    )  # fmt: skip


def load_transactions_and_payments(
    db: MetasyncDatabase, graph: GraphClient, shop: ShopProfile, window: Window,
    on_transactions_written: Callable[[], Any] | None = None,
) -> tuple[StepResult, StepResult]:  # fmt: skip
    """`load_transactions` then `load_order_payments` on Postgres, using both cores: once the
    transactions are read, a second connection writes them while this thread fetches the
    payments of their orders, and a third writes those payments chunk by chunk as they are
    read (from the transactions' commit on). Each write stays one atomic transaction, and the
    payments commit after the transactions, as in the sequential steps. The orders fetched are
    the batch's; when the partition's orders as stored differ (rows an earlier load of the day
    left outside this window), the stored orders' payments are fetched and written instead.
    `on_transactions_written` is called (on the writer's thread) once the transactions have
    committed, to start what needs them but not the payments."""
    calls_before = graph.calls
    refs = _payout_refs_of_day(db, shop.shop_id, window.day)
    batch, rejects = read_transactions(graph, shop, window, refs)
    transaction_calls = graph.calls - calls_before
    expected_orders = sorted(set(batch.table["order_id"].tolist()))
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="finance-writer") as writers:
        written = writers.submit(
            _write_then_orders, db, shop.shop_id, window, batch, rejects, on_transactions_written
        )
        payments, streamed = _read_payments_streaming(
            writers, db, graph, shop.shop_id, window, expected_orders, written
        )
        order_ids = written.result()
        committed = streamed.result()
    if not committed:
        payments = read_payments(graph, order_ids)
        write_payments(db, shop.shop_id, window, order_ids, payments)
    payment_calls = graph.calls - calls_before - transaction_calls
    return (
        _transaction_result(batch, rejects, transaction_calls),
        _payment_result(payments, payment_calls),
    )


def _write_then_orders(
    db: MetasyncDatabase, shop_id: str, window: Window, batch: TransactionBatch,
    rejects: list[Rejected], on_written: Callable[[], Any] | None = None,
) -> list[str]:  # fmt: skip
    write_transactions(db, shop_id, window, batch, rejects)
    if on_written is not None:
        on_written()
    return _orders_in_window(db, shop_id, window)


def _read_payments_streaming(
    writers: ThreadPoolExecutor, db: MetasyncDatabase, graph: GraphClient, shop_id: str,
    window: Window, order_ids: list[str], written: "Future[list[str]] | None" = None,
) -> tuple[PaymentBatch, "Future[bool]"]:  # fmt: skip
    """The payments of `order_ids` read here, each chunk handed to a writer as it is read."""
    return _read_while_writing(
        writers,
        lambda put: read_payments(graph, order_ids, on_table=put),
        lambda chunks, batch_read: _write_payments_streamed(
            db, shop_id, window, order_ids, chunks, batch_read, written
        ),
    )


def _write_payments_streamed(
    db: MetasyncDatabase, shop_id: str, window: Window, order_ids: list[str],
    chunks: Iterable[pd.DataFrame], batch_read: "Future[PaymentBatch]",
    written: "Future[list[str]] | None",
) -> bool:  # fmt: skip
    """`write_payments`, fed while the payments are read. With `written` (the transactions
    being written meanwhile), starts once they are committed (two bulk COPYs at once would only
    share Postgres's one core), and only if the partition's orders are `order_ids`: False,
    nothing written, otherwise."""
    if written is not None and written.result() != order_ids:
        return False
    now = utcnow()
    with db.begin() as conn:
        store.fast_load_session(conn)
        store.copy_payment_chunks(conn, shop_id, window.day, order_ids, chunks, now)
        batch = batch_read.result()
        store.insert_slow_payments(conn, shop_id, window.day, now, batch)
        _record_payments(conn, shop_id, window, batch)
    return True


_END = object()


class _ChunkPipe:
    """Chunks handed from the reading thread to a writing one; iterating yields them until
    `close`, and a closing error is raised to the writer. Unbounded: the chunks are kept by
    the batch being read anyway, so a writer that starts late costs no memory."""

    def __init__(self) -> None:
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def put(self, item: Any) -> None:
        self._queue.put(item)

    def close(self, error: BaseException | None = None) -> None:
        self.put(_END if error is None else error)

    def __iter__(self) -> Iterator[Any]:
        while (item := self._queue.get()) is not _END:
            if isinstance(item, BaseException):
                raise item
            yield item


def _payout_refs_of_day(db: MetasyncDatabase, shop_id: str, day: date) -> list[str]:
    with db.begin() as conn:
        return list(
            conn.execute(
                select(finance_payouts.c.payout_reference_id)
                .where(
                    finance_payouts.c.shop_id == shop_id,
                    finance_payouts.c.partition_date == day,
                )
                .order_by(finance_payouts.c.payout_reference_id)
            ).scalars()
        )


def _orders_in_window(db: MetasyncDatabase, shop_id: str, window: Window) -> list[str]:
    """The partition's orders in code point order (Python's, whatever the database collation),
    so the batch's own order ids can be compared with them as they are."""
    with db.begin() as conn:
        return sorted(
            conn.execute(
                select(finance_transactions.c.order_id)
                .where(
                    finance_transactions.c.shop_id == shop_id,
                    finance_transactions.c.partition_date == window.day,
                )
                .distinct()
            ).scalars()
        )


# -- reconcile, gate, publish ----------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    """The outcome of the checks that decide whether analysts see a reconciliation."""

    payouts_balanced: bool
    unbalanced_payouts: list[str]
    mismatch_rate: float
    mismatch_rate_ok: bool
    open_quarantine: int

    @property
    def passed(self) -> bool:
        """Blocking checks only; open quarantine is reported but never blocks publishing."""
        return self.payouts_balanced and self.mismatch_rate_ok


def reconcile_loaded(
    db: MetasyncDatabase, oms: OmsAdapter, shop_id: str, settings: FinanceSettings,
    expected: "Future[pd.DataFrame] | None" = None,
    meta_side: "Future[setbased.MetaSide] | None" = None,
) -> FrameReconciliation:  # fmt: skip
    """The shop's whole reconciliation, as of the latest day loaded (so reruns and backfills in
    any order compute the same rows); set-based over the loaded tables (`setbased.py`), the
    same rules as the pure `reconcile.reconcile_shop`."""
    # TODO(finance-scale): 1M transactions (cold first load, benchmarks/finance_bench.py) take
    # 41.5-45.7 s through `ingest_finance` and 49.6-52.6 s through the assets' steps one after the
    # other (`--asset-steps`) on this 2-core machine; a machine 1.5x slower (session 2's) puts
    # the assets' path over 60 s. About 60-65 CPU-s in all, half of it Postgres, and both
    # cores are busy through the loads, so what is left is less work: reading the payloads
    # (~10 s of Python for the transactions, ~8 s for the payments), writing them (~10 s, most
    # of it Postgres index upkeep), the tax summary (~4.5 s) and the analyst order rows (~5 s).
    # Next: reconcile only the orders whose transactions, payments or lag status changed, and
    # skip payments of known orders (TODO(finance-payments)).
    return reconcile_set_based(db, oms, shop_id, settings.reconcile(), expected, meta_side)


def evaluate_gate(
    db: MetasyncDatabase, shop_id: str, result: FrameReconciliation, settings: FinanceSettings
) -> Gate:
    with db.begin() as conn:
        open_count = len(store.open_quarantine(conn, shop_id))
    return Gate(
        payouts_balanced=not result.unbalanced_payouts,
        unbalanced_payouts=[p.payout_reference_id for p in result.unbalanced_payouts],
        mismatch_rate=result.mismatch_rate,
        mismatch_rate_ok=result.mismatch_rate <= settings.mismatch_rate_threshold,
        open_quarantine=open_count,
    )


def stage(
    db: MetasyncDatabase, oms: OmsAdapter, shop_id: str, settings: FinanceSettings,
    expected: "Future[pd.DataFrame] | None" = None,
) -> tuple[FrameReconciliation, Gate]:  # fmt: skip
    """Reconcile (with the OMS expected side `expected` when already being read), check, stage."""
    result = reconcile_loaded(db, oms, shop_id, settings, expected)
    gate = evaluate_gate(db, shop_id, result, settings)
    store.stage_reconciliation(db, shop_id, result, checks_passed=gate.passed)
    return result, gate


# -- everything, without Dagster -------------------------------------------------------------------


@dataclass(frozen=True)
class FinanceSummary:
    shop_id: str
    day: date
    payouts_loaded: int
    transactions_loaded: int
    payments_loaded: int
    quarantined: int
    api_calls: int
    order_statuses: dict[str, int]
    published: bool
    gate: Gate


def ingest_finance(
    metasync: Any,
    oms: OmsAdapter,
    shop_id: str,
    day: date,
    settings: FinanceSettings | None = None,
) -> FinanceSummary:
    """Load, reconcile and (when the blocking checks pass) publish one shop's day.

    `metasync` is a `pipelines.resources.MetasyncResource` (anything with `.db()`,
    `.registry()` and `.graph_for(shop_id)`); the assets run the same steps.
    """
    settings = settings or FinanceSettings()
    db = metasync.db()
    shop = metasync.registry().get(shop_id)
    window = Window.for_day(day, settings)
    overlap = db.dialect == "postgresql"  # SQLite: one writer at a time, nothing to overlap
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="finance-side") as side:
        # Postgres: the OMS expected side (its own database, independent of Meta's rows) is read
        # while the payloads are (Postgres would otherwise idle then), and the Meta side per
        # order once the transactions are in, while the payments are still being written; the
        # reconciliation waits for both. The OMS may change meanwhile as it may during any run:
        # the next run sees it.
        expected = side.submit(setbased.expected_frame, oms, shop_id) if overlap else None
        meta_side: list[Future[setbased.MetaSide]] = []  # started by the transactions' writer

        def read_meta_side() -> None:
            meta_side.append(side.submit(setbased.read_meta_side, db, shop_id))

        with metasync.graph_for(shop_id) as graph:
            payouts = load_payouts(db, graph, shop, window)
            if overlap:
                transactions, payments = load_transactions_and_payments(
                    db, graph, shop, window, on_transactions_written=read_meta_side
                )
            else:
                transactions = load_transactions(db, graph, shop, window)
                payments = load_order_payments(db, graph, shop, window)
        early = meta_side[0] if meta_side else None
        result = reconcile_loaded(db, oms, shop_id, settings, expected, early)
    gate = evaluate_gate(db, shop_id, result, settings)
    if gate.passed:  # staged and published at once: the same tables as the two asset steps
        store.stage_and_publish(db, shop_id, result)
    else:
        store.stage_reconciliation(db, shop_id, result, checks_passed=False)
    logger.info(
        "finance %s %s: %d payouts, %d transactions, %d payments, %d quarantined, published=%s",
        shop_id, day, payouts.loaded, transactions.loaded, payments.loaded,
        payouts.quarantined + transactions.quarantined + payments.quarantined, gate.passed,
    )  # fmt: skip
    return FinanceSummary(
        shop_id=shop_id,
        day=day,
        payouts_loaded=payouts.loaded,
        transactions_loaded=transactions.loaded,
        payments_loaded=payments.loaded,
        quarantined=payouts.quarantined + transactions.quarantined + payments.quarantined,
        api_calls=payouts.api_calls + transactions.api_calls + payments.api_calls,
        order_statuses=result.status_counts(),
        published=gate.passed,
        gate=gate,
    )


__all__ = [
    "FinanceSettings",
    "FinanceSummary",
    "Gate",
    "PayoutRow",
    "TransactionRow",
    "Window",
    "ingest_finance",
]

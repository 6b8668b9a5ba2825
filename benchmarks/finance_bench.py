"""Finance at scale: 1,000,000 Meta transactions ingested and reconciled on PostgreSQL.

    python -m benchmarks finance
    python -m benchmarks.finance_bench --transactions 100000   # a smaller run

What "ingested and reconciled" covers here: one `ingest_finance(metasync, oms, shop, day)` call,
the same function the demo and (step by step) the Dagster assets run, for a partition day whose
trailing window (Meta's 3-business-day lag, the default setting) holds 1,000,000 transactions of
one big shop (~250k a day, Mon-Thu). Every step runs for real: payouts of the day, transactions of
the window plus every transaction of the day's payout (fetched again by payout_reference_id, as
the asset does), the payments edge of every order the partition touched (one call per order),
pydantic validation and normalisation of every payload, the partition replace in the metasync
database, the OMS expected side read from the reference OMS (its own Postgres database), the
reconciliation of the whole shop, the blocking checks, staging and the publish of the analyst
tables. Only the Graph API is replaced, by an in-process fake that pages generated payloads (no
HTTP, no throttling: the per-order payments calls would take far longer against Meta); the fake
builds each payload dict from per-order text prepared in setup, so its own cost (about what a JSON
decoder would cost) stays small inside the timed call.

The machine is shared: wall time depends on what else runs. The report gives the load average,
the CPU time of this process and of the Postgres server processes, per stage wall and CPU time.

Data: ~909k orders (one line, shipped, 8% tax, card fee), 10% of them refunded in full (a REFUND
transaction and an OMS refund), 0.1% of orders Meta reports that the OMS lacks (missing_in_oms),
5 transactions of an unknown type (quarantined, named by a payout adjustment). The setup (data
generation, bulk-loading the OMS with COPY) is not timed.

Target: <= 60 s for the ingest call, the tables published, every transaction accounted for.
The last line says whether it was met, and the CPU seconds of this process and of Postgres behind
it (top-level steps show their Postgres CPU too; it counts every postgres process of the
machine, so other users' queries show up in it). On Postgres the loads run as one step
("2+3"): the transactions are written while the payments are read, so the CPU of the two sides
overlaps and wall time is less than their sum. Steps 4-6: the Meta side per order is read as
soon as the transactions are in (while the payments are written), and the analyst order rows are
written beside the staging. Measured on the 2-core machine of 2026-12-04: 41.5-45.7 s wall,
about 65 CPU-s in all (the code before these overlaps: 73 s on the slower machine of an earlier
day). `--asset-steps` runs the Dagster assets' steps one after the other instead: 49.6-52.6 s
(TODO(finance-scale) in pipelines/finance/ingest.py says where the time goes). The `from`/`to`
columns give each stage's first start and last end since the call began.
"""

import argparse
import io
import os
import resource
import tempfile
import time
import uuid
from collections import defaultdict
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
from cryptography.fernet import Fernet
from sqlalchemy import create_engine, func, select, text
from sqlalchemy.engine import make_url

TRANSACTIONS = 1_000_000
TARGET_SECONDS = 60.0
DAY = date(2026, 3, 5)  # a Thursday: the 3-business-day window is Mon 2 .. Thu 5 March
REFUND_SHARE = 10  # one order in 10 is refunded in full
MISSING_IN_OMS_PER_MILLE = 1  # 0.1% of orders: Meta reports them, the OMS lacks them
UNKNOWN_TYPE = 5
SHOP_ID = "bench-shop"
ADMIN_URL = os.environ.get(
    "METASYNC_TEST_PG_ADMIN_URL", "postgresql+psycopg2://postgres@127.0.0.1:5432/postgres"
)


# -- throwaway databases ---------------------------------------------------------------------------


@contextmanager
def throwaway_database(label: str) -> Iterator[str]:
    """A fresh database on the machine's PostgreSQL, dropped afterwards (as tests/conftest.py)."""
    name = f"metasync_bench_{label}_{uuid.uuid4().hex[:10]}"
    admin = create_engine(ADMIN_URL, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(ADMIN_URL).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.execute(
                text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = :n"),
                {"n": name},
            )
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


# -- generated history (compact numpy columns; payload dicts are built while paging) ---------------


class History:
    """Orders and transactions of one shop over the partition's window, as integer columns."""

    def __init__(self, transactions: int, seed: int = 11) -> None:
        rng = np.random.default_rng(seed)
        real = transactions - UNKNOWN_TYPE
        self.orders = (real * REFUND_SHARE) // (REFUND_SHARE + 1)
        refunds = real - self.orders
        self.refunded = np.zeros(self.orders, dtype=bool)
        self.refunded[rng.choice(self.orders, size=refunds, replace=False)] = True
        self.price = rng.integers(1_000, 10_000, size=self.orders)  # cents
        self.tax = (self.price * 8 + 50) // 100
        self.fee = -((self.price + self.tax) * 29 // 1000 + 30)
        window_start = DAY - timedelta(days=3)
        self.order_day = rng.integers(0, 4, size=self.orders)  # 0 = Monday .. 3 = Thursday
        self.order_second = rng.integers(0, 86_400 - 3_600, size=self.orders)
        self.start = datetime(window_start.year, window_start.month, window_start.day, tzinfo=UTC)
        self.in_oms = np.ones(self.orders, dtype=bool)
        missing = max(1, self.orders * MISSING_IN_OMS_PER_MILLE // 1000)
        self.in_oms[rng.choice(self.orders, size=missing, replace=False)] = False
        # Transactions: every order's SALE, then REFUNDs an hour later, then the unknown ones.
        refunded_ids = np.flatnonzero(self.refunded)
        self.txn_order = np.concatenate(
            [np.arange(self.orders), refunded_ids, np.arange(UNKNOWN_TYPE) % self.orders]
        )
        self.txn_kind = np.concatenate(
            [
                np.zeros(self.orders, dtype=np.int8),
                np.ones(len(refunded_ids), dtype=np.int8),
                np.full(UNKNOWN_TYPE, 2, dtype=np.int8),
            ]
        )
        self.txn_day = self.order_day[self.txn_order]
        by_day = np.argsort(self.txn_day, kind="stable")
        self.day_index = {d: by_day[self.txn_day[by_day] == d] for d in range(4)}
        self.count = len(self.txn_order)
        self._prepare_text()

    def _prepare_text(self) -> None:
        """Per-order strings made once in setup, so paging builds payloads at the speed of a JSON
        decoder rather than of datetime arithmetic and f-strings (the fake is not what is timed)."""
        self.order_ids = [order_id(o) for o in range(self.orders)]
        seconds = self.order_day.astype("int64") * 86_400 + self.order_second
        base = np.datetime64(self.start.replace(tzinfo=None), "s")
        self.sale_at = [
            f"{t}+00:00" for t in np.datetime_as_string(base + seconds.astype("timedelta64[s]"))
        ]
        self.refund_at = [
            f"{t}+00:00"
            for t in np.datetime_as_string(base + (seconds + 3_600).astype("timedelta64[s]"))
        ]
        gross = self.price + self.tax
        self.price_text = [amount_text(c) for c in self.price.tolist()]
        self.tax_text = [amount_text(c) for c in self.tax.tolist()]
        self.fee_text = [amount_text(c) for c in self.fee.tolist()]
        self.gross_text = [amount_text(c) for c in gross.tolist()]
        self.sale_net_text = [amount_text(c) for c in (gross + self.fee).tolist()]
        self.refund_net_text = [amount_text(-c) for c in gross.tolist()]

    def moment(self, order: int, kind: int) -> datetime:
        seconds = int(self.order_second[order]) + (3_600 if kind else 0)
        return self.start + timedelta(days=int(self.order_day[order]), seconds=seconds)

    def payout_of_day(self, day: int) -> str | None:
        """Transactions of day d are paid out the next day (Thursday's are still in the balance)."""
        return f"PAYOUT-{day}" if day < 3 else None

    def transaction(self, i: int) -> dict[str, Any]:
        order, kind = int(self.txn_order[i]), int(self.txn_kind[i])
        if kind == 0:
            kind_name, at = "SALE", self.sale_at[order]
            fee, net, tax = self.fee_text[order], self.sale_net_text[order], self.tax_text[order]
        elif kind == 1:
            kind_name, at = "REFUND", self.refund_at[order]
            fee, net, tax = "0.00", self.refund_net_text[order], self.tax_text[order]
        else:
            kind_name, at, fee, net, tax = (
                "MYSTERY_ADJUSTMENT",
                self.sale_at[order],
                "0.00",
                "1.00",
                "0.00",
            )
        payload = {
            "id": f"txn{i:08d}",
            "transaction_type": kind_name,
            "transaction_date": at,
            "order_id": self.order_ids[order],
            "processing_fee": {"amount": fee, "currency": "USD"},
            "net_payment_amount": {"amount": net, "currency": "USD"},
            "tax_details": {
                "data": [
                    {
                        "tax_category": "FBMP_OTHER_TAXABLE",
                        "jurisdiction": "CALIFORNIA",
                        "imposition": "Sales and Use Tax",
                        "item_tax_rate": "8%",
                        "item_tax_amount": {"amount": tax, "currency": "USD"},
                    }
                ]
            },
        }
        if ref := self.payout_of_day(int(self.txn_day[i])):
            payload["payout_reference_id"] = ref
        return payload

    def payout_amount(self, day: int) -> int:
        cents = 0
        for i in self.day_index[day]:
            order, kind = int(self.txn_order[i]), int(self.txn_kind[i])
            gross = int(self.price[order] + self.tax[order])
            cents += gross + int(self.fee[order]) if kind == 0 else (-gross if kind == 1 else 100)
        return cents

    def payment(self, order: int) -> dict[str, Any]:
        oid = self.order_ids[order]
        return {
            "id": f"pay-{oid}",
            "subtotal": {
                "items": {"amount": self.price_text[order], "currency": "USD"},
                "shipping": {"amount": "0.00", "currency": "USD"},
            },
            "tax": {"amount": self.tax_text[order], "currency": "USD"},
            "tax_remitted": False,
            "total_amount": {"amount": self.gross_text[order], "currency": "USD"},
            "shipments": {"data": [{"id": f"shp-{oid}"}]},
            "transaction_details": {"data": [{"transaction_type": "SALE"}]},
            "items": {"data": [{"id": f"item-{oid}", "quantity": 1}]},
        }


def order_id(order: int) -> str:
    return f"{10_000_000_000 + order}"


def amount_text(cents: int) -> str:
    sign = "-" if cents < 0 else ""
    cents = abs(cents)
    return f"{sign}{cents // 100}.{cents % 100:02d}"


def money(cents: int) -> dict[str, str]:
    return {"amount": amount_text(cents), "currency": "USD"}


class FakeFinanceGraph:
    """commerce_payouts, commerce_transactions (by window or payout) and /{order}/payments,
    paged from the generated history; `.calls` counts pages like GraphClient counts requests."""

    PAGE = 500

    def __init__(self, history: History) -> None:
        self.history = history
        self.calls = 0
        # Thursday's partition sees the payout of Wednesday's transactions, paid on Thursday.
        self.payouts = [
            {
                "amount": money(history.payout_amount(2)),
                "payout_date": (history.start + timedelta(days=3, hours=12)).isoformat(),
                "payout_reference_id": history.payout_of_day(2),
                "status": "COMPLETED",
            }
        ]

    def __enter__(self) -> "FakeFinanceGraph":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def paginate(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        if path.endswith("/commerce_payouts"):
            return self._paged(self.payouts)
        if path.endswith("/commerce_transactions"):
            return self._paged(self._transactions(params), self.history.transaction)
        if path.endswith("/payments"):
            return self._paged([int(path.split("/")[0]) - 10_000_000_000], self.history.payment)
        raise AssertionError(f"unexpected Graph path {path}")

    def _transactions(self, params: dict[str, Any]) -> Any:
        ref = params.get("payout_reference_id")
        if ref is not None:
            return self.history.day_index[int(ref.removeprefix("PAYOUT-"))]
        days = [
            d
            for d in range(4)
            if params["start_time"]
            <= (self.history.start + timedelta(days=d)).timestamp()
            < params["end_time"]
        ]
        return np.concatenate([self.history.day_index[d] for d in days])

    def _paged(self, items: Any, build: Callable[[Any], dict] | None = None) -> Iterator[dict]:
        if len(items) == 0:
            self.calls += 1
        for start in range(0, len(items), self.PAGE):
            self.calls += 1
            for item in items[start : start + self.PAGE]:
                yield build(int(item)) if build else item


class FakeMetasync:
    def __init__(self, db: Any, registry: Any, graph: FakeFinanceGraph) -> None:
        self._db, self._registry, self.graph = db, registry, graph

    def db(self) -> Any:
        return self._db

    def registry(self) -> Any:
        return self._registry

    def graph_for(self, shop_id: str) -> FakeFinanceGraph:
        return self.graph


# -- the OMS side, bulk-loaded with COPY -----------------------------------------------------------


def load_oms(oms: Any, history: History) -> None:
    """The reference OMS as it looks after these orders were imported, shipped and refunded."""
    from resources.oms.schema import (
        oms_event_lines,
        oms_order_lines,
        oms_orders,
        oms_refunds,
        oms_shipments,
    )

    orders, lines, shipments, events, refunds = (io.StringIO() for _ in range(5))
    for order in np.flatnonzero(history.in_oms):
        order = int(order)
        key = order + 1
        price, tax = cents(history.price[order]), cents(history.tax[order])
        shipped_at = history.moment(order, 0).isoformat()
        refunded = bool(history.refunded[order])
        orders.write(
            f"{key}\tOMS-{key:08d}\t{SHOP_ID}\tmeta\t{order_id(order)}\tprocessing\tUSD\t{price}"
            f"\t0\t0\t0\t0\t{tax}\t{cents(history.price[order] + history.tax[order])}\t\\N\t\\N"
            f"\tf\t\\N\t\\N\t\\N\t{shipped_at}\t{shipped_at}\t{shipped_at}\n"
        )
        lines.write(
            f"{key}\t{key}\t1\titem-{order_id(order)}\tSKU-{order % 997}\tShirt\t1\t{price}\t0\t0"
            f"\t0\t{tax}\t1\t0\t{int(refunded)}\t{price if refunded else 0}\n"
        )
        shipments.write(f"{key}\t{key}\t\\N\tups\t1Z{key}\t\\N\t{shipped_at}\t{shipped_at}\n")
        events.write(f"{key}\tshipment\t{key}\t{key}\t1\t\\N\n")
        if refunded:
            refunded_at = history.moment(order, 1).isoformat()
            refunds.write(
                f"{key}\t{key}\tbuyer_request\t\\N\t{price}\t0\t0\t{price}\tt\t\\N\toms\t\\N"
                f"\t{refunded_at}\n"
            )
    raw = oms.engine.raw_connection()
    try:
        with raw.cursor() as cursor:
            for table, buffer in (
                (oms_orders, orders),
                (oms_order_lines, lines),
                (oms_shipments, shipments),
                (oms_event_lines, events),
                (oms_refunds, refunds),
            ):
                buffer.seek(0)
                columns = ", ".join(column.name for column in table.columns)
                cursor.copy_expert(f"COPY {table.name} ({columns}) FROM STDIN", buffer)
                key = next(iter(table.primary_key.columns)).name
                cursor.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table.name}', '{key}'), "
                    f"(SELECT COALESCE(MAX({key}), 1) FROM {table.name}))"
                )
            cursor.execute("ANALYZE")  # a live OMS has planner statistics; a fresh COPY has none
        raw.commit()
    finally:
        raw.close()


def cents(value: Any) -> str:
    value = int(value)
    return f"{value // 100}.{value % 100:02d}"


# -- stage timing ----------------------------------------------------------------------------------


class StageClock:
    """Wraps module functions to add up their wall time (inclusive) by label."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.cpu: dict[str, float] = defaultdict(float)  # this process, all threads; not Postgres
        self.server: dict[str, float] = {}  # Postgres CPU, top-level steps only (a /proc scan)
        self.calls: dict[str, int] = defaultdict(int)
        # first start and last end of each label, in seconds since `origin` (set at the run's
        # start): which stages overlap and which one the run waits for
        self.origin = time.perf_counter()
        self.span: dict[str, tuple[float, float]] = {}

    def wrap(self, stack: ExitStack, module: Any, name: str, label: str) -> None:
        original = getattr(module, name, None)
        if original is None:
            return
        top_level = label[0].isdigit()

        def timed(*args: Any, **kwargs: Any) -> Any:
            started, cpu = time.perf_counter(), time.process_time()
            server = postgres_cpu_seconds() if top_level else 0.0
            try:
                return original(*args, **kwargs)
            finally:
                ended = time.perf_counter()
                self.seconds[label] += ended - started
                first = self.span.get(label, (started - self.origin, 0.0))[0]
                self.span[label] = (first, ended - self.origin)
                self.cpu[label] += time.process_time() - cpu
                self.calls[label] += 1
                if top_level:
                    spent = postgres_cpu_seconds() - server
                    self.server[label] = self.server.get(label, 0.0) + spent

        setattr(module, name, timed)
        stack.callback(setattr, module, name, original)


STEPS = (
    # (module, function, label); the first four are the top-level steps of ingest_finance.
    ("ingest", "load_payouts", "1 load payouts"),
    ("ingest", "load_transactions", "2 load transactions"),
    ("ingest", "load_order_payments", "3 load order payments"),
    # Postgres: 2 and 3 as one step, transactions written while the payments are fetched
    ("ingest", "load_transactions_and_payments", "2+3 load transactions + payments"),
    ("ingest", "reconcile_loaded", "4 reconcile"),
    ("ingest", "evaluate_gate", "5 blocking checks"),
    ("store", "stage_and_publish", "6 stage + publish analyst tables (side by side)"),
    ("store", "stage_reconciliation", "  stage (staged tables)"),
    ("store", "_copy_published_orders", "  publish: order rows from the result"),
    # --asset-steps: the Dagster assets' path, one step after the other
    ("ingest", "stage", "4-5 reconcile + checks + stage (asset step)"),
    ("store", "publish_reconciliation", "6 publish analyst tables (asset step)"),
    ("ingest", "fetch_payments", "  fetch payments (fake Graph, per order)"),
    ("ingest", "read_transactions", "  read transactions (fake Graph)"),
    ("ingest", "read_payments", "  read payments (fake Graph)"),
    ("ingest", "write_payments", "  write payments (step)"),
    ("ingest", "_write_then_orders", "  write transactions (step, 2nd connection)"),
    ("ingest", "_write_payments_streamed", "  write payments (streamed, 3rd connection)"),
    ("store", "replace_transaction_batch", "  write transactions"),
    ("store", "replace_payment_batch", "  write payments"),
    ("setbased", "_meta_by_order", "  Meta side per order (SQL)"),
    ("setbased", "expected_frame", "  OMS expected side (set-based)"),
    ("setbased", "_orders_frame", "  per-order reconcile (vectorised)"),
    ("setbased", "_slow_orders", "  per-order reconcile (exact pure path)"),
    ("setbased", "_daily", "  daily settlement (SQL)"),
    ("setbased", "_taxes", "  tax summary (SQL)"),
)


def postgres_cpu_seconds() -> float:
    """CPU time (user + system) of every postgres process of this machine, from /proc: the
    server's share of the work (other engineers' queries count too when they run any)."""
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)
        except OSError:
            continue
        if "(postgres" not in fields[0]:
            continue
        parts = fields[1].split()
        total += int(parts[11]) + int(parts[12])  # utime, stime
    return total / ticks


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


# -- the run ---------------------------------------------------------------------------------------


def asset_steps(metasync: Any, oms: Any, shop_id: str, day: date) -> Any:
    """The steps of the finance assets (`pipelines/finance/assets.py`) one after the other, as a
    Dagster run of one partition executes them (each asset a step, nothing overlapped across
    steps); summarised as `ingest_finance` summarises its own run."""
    from pipelines.finance import ingest, store

    settings = ingest.FinanceSettings()
    db, shop = metasync.db(), metasync.registry().get(shop_id)
    window = ingest.Window.for_day(day, settings)
    with metasync.graph_for(shop_id) as graph:
        payouts = ingest.load_payouts(db, graph, shop, window)
        transactions = ingest.load_transactions(db, graph, shop, window)
        payments = ingest.load_order_payments(db, graph, shop, window)
    result, gate = ingest.stage(db, oms, shop_id, settings)
    if gate.passed:
        store.publish_reconciliation(db, shop_id)
    steps = (payouts, transactions, payments)
    return ingest.FinanceSummary(
        shop_id=shop_id, day=day, payouts_loaded=payouts.loaded,
        transactions_loaded=transactions.loaded, payments_loaded=payments.loaded,
        quarantined=sum(step.quarantined for step in steps),
        api_calls=sum(step.api_calls for step in steps),
        order_statuses=result.status_counts(), published=gate.passed, gate=gate,
    )  # fmt: skip


def run(transactions: int, steps: bool = False) -> int:
    with tempfile.TemporaryDirectory(prefix="metasync-finance-bench-") as workdir:
        os.environ["METASYNC_STATE_DIR"] = os.path.join(workdir, "state")
        os.environ["METASYNC_VAULT_KEY"] = Fernet.generate_key().decode()
        from resources.settings import get_settings

        get_settings.cache_clear()
        with throwaway_database("meta") as meta_url, throwaway_database("oms") as oms_url:
            return _run(transactions, meta_url, oms_url, steps)


def _run(transactions: int, meta_url: str, oms_url: str, steps: bool = False) -> int:
    from pipelines.finance import ingest, setbased, store
    from resources.db import MetasyncDatabase
    from resources.db.finance_tables import (
        finance_order_reconciliation,
        finance_transactions,
    )
    from resources.oms.adapter import OmsAdapter
    from resources.shops import ShopProfile, ShopRegistry, TokenVault

    started = time.perf_counter()
    history = History(transactions)
    db = MetasyncDatabase(meta_url)
    db.create_schema()
    registry = ShopRegistry(db, TokenVault.from_settings())
    registry.add(
        ShopProfile(
            shop_id=SHOP_ID, name="Bench", catalog_id="cat-1", cms_id="cms-1", page_id="page-1",
            currency="USD", source_kind="shopify_csv", source_location="",
        ),
        token="bench-token-not-real",
    )  # fmt: skip
    oms = OmsAdapter(oms_url)
    oms.create_schema()
    load_oms(oms, history)
    graph = FakeFinanceGraph(history)
    metasync = FakeMetasync(db, registry, graph)
    setup_seconds = time.perf_counter() - started
    rss_before = peak_rss_mb()
    print(
        f"setup (not timed): {history.count:,} transactions, {history.orders:,} orders, "
        f"OMS bulk-loaded on Postgres in {setup_seconds:.1f} s; peak RSS so far {rss_before:.0f} MB"
    )

    clock = StageClock()
    modules = {"ingest": ingest, "store": store, "setbased": setbased}
    with ExitStack() as stack:
        for module, name, label in STEPS:
            clock.wrap(stack, modules[module], name, label)
        started, cpu_started = time.perf_counter(), time.process_time()
        clock.origin = started
        server_started = postgres_cpu_seconds()
        call = asset_steps if steps else ingest.ingest_finance
        summary = call(metasync, oms, SHOP_ID, DAY)
        elapsed = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
        server = postgres_cpu_seconds() - server_started

    with db.begin() as conn:
        loaded = conn.execute(select(func.count()).select_from(finance_transactions)).scalar_one()
        published = conn.execute(
            select(func.count()).select_from(finance_order_reconciliation)
        ).scalar_one()
    oms.dispose()
    db.dispose()

    accounted = loaded + summary.quarantined
    what = "the finance assets' steps" if steps else "ingest_finance"
    print(f"{what}({SHOP_ID}, {DAY}): {elapsed:.1f} s (target <= {TARGET_SECONDS:.0f} s)")
    print(
        f"  CPU: this process {cpu:.1f} s, Postgres backends {server:.1f} s "
        f"(load average now {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)"
    )
    print(f"  {'stage':<40} {'wall':>9} {'cpu':>9} {'postgres':>9}  {'from':>6} {'to':>6}")
    for label in sorted(clock.seconds):
        on_server = f"{clock.server[label]:7.2f} s" if label in clock.server else " " * 9
        first, last = clock.span[label]
        print(
            f"  {label:<40} {clock.seconds[label]:7.2f} s {clock.cpu[label]:7.2f} s {on_server}"
            f"  {first:6.1f} {last:6.1f}  ({clock.calls[label]:,} calls)"
        )
    print(
        f"rows: {summary.transactions_loaded:,} transactions loaded, {summary.quarantined} "
        f"quarantined, {summary.payouts_loaded} payouts, {summary.payments_loaded:,} payments; "
        f"{published:,} order reconciliation rows published; Graph pages {summary.api_calls:,}"
    )
    print(f"order statuses: {summary.order_statuses}")
    print(
        f"throughput: {history.count / elapsed:,.0f} transactions/s; "
        f"peak RSS {peak_rss_mb():.0f} MB (after setup {rss_before:.0f} MB)"
    )
    ok = (
        elapsed <= TARGET_SECONDS
        and summary.published
        and accounted == history.count
        and loaded == summary.transactions_loaded
    )
    verdict = "MET" if elapsed <= TARGET_SECONDS else "MISSED"
    print(
        f"target {verdict}: {elapsed:.1f} s wall against <= {TARGET_SECONDS:.0f} s "
        f"({elapsed / TARGET_SECONDS:.0%} of it); CPU {cpu:.1f} s here + {server:.1f} s Postgres "
        f"= {cpu + server:.1f} s on {os.cpu_count()} shared cores"
    )
    if accounted != history.count:
        print(f"MISSED: {accounted:,} of {history.count:,} transactions accounted for")
    if not summary.published:
        print(f"MISSED: not published (gate {summary.gate})")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    print(f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--transactions", type=int, default=TRANSACTIONS)
    parser.add_argument(
        "--asset-steps", action="store_true",
        help="time the Dagster assets' steps one after the other instead of ingest_finance",
    )  # fmt: skip
    args = parser.parse_args(argv or [])
    return run(args.transactions, args.asset_steps)


if __name__ == "__main__":
    import sys

    sys.exit(main(sys.argv[1:]))

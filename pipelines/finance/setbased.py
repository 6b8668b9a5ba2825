"""The shop's reconciliation computed set-based: SQL sums over the `*_minor` integer columns and
numpy over the OMS lines, instead of one Python object per transaction.

    result = reconcile_set_based(db, oms, "acme", settings)   # FrameReconciliation
    result.orders            # DataFrame: one row per order, money in minor units (int64)
    result.payouts, result.daily, result.taxes                 # small: dataclasses as before

Same rules and results as the pure `reconcile.reconcile_shop` (which stays the reference): an
order whose data the integer path cannot represent exactly (transactions in several currencies,
OMS amounts finer than the minor unit, a line with cancellations to replay, conflicting merchant
order ids) is reconciled by the pure code, from its own rows only.
"""

import io
from collections import defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from decimal import Decimal
from functools import lru_cache
from typing import Any

import numpy as np
import pandas as pd
from sqlalchemy import (
    BigInteger,
    Boolean,
    Connection,
    Date,
    DateTime,
    and_,
    case,
    cast,
    func,
    literal_column,
    select,
)

from pipelines.finance import expected as expected_side
from pipelines.finance.money import ZERO, MoneyError, exponent, to_minor
from pipelines.finance.reconcile import (
    MISMATCH_STATUSES,
    DailySettlement,
    OrderReconciliation,
    OrderStatus,
    PayoutAdjustment,
    PayoutReconciliation,
    PayoutStatus,
    ReconcileSettings,
    TaxSummary,
    _reconcile_order,
    completed_payout_refs,
    payouts_from_totals,
)
from resources.db import MetasyncDatabase
from resources.db.finance_tables import (
    finance_order_payments,
    finance_partition_loads,
    finance_payouts,
    finance_quarantine,
    finance_transaction_taxes,
    finance_transactions,
)
from resources.oms.adapter import OmsAdapter
from resources.oms.models import OrderSource
from resources.oms.schema import (
    oms_event_lines,
    oms_order_lines,
    oms_orders,
    oms_refunds,
    oms_shipments,
)

#: Money columns of finance_order_reconciliation, kept as minor units in the frame.
ORDER_MONEY = (
    "expected_items", "expected_shipping", "expected_tax", "expected_seller_discount",
    "expected_meta_discount", "expected_refunds", "expected_gross", "meta_sales", "meta_refunds",
    "meta_other", "meta_gross", "meta_fees", "meta_tax", "meta_net", "meta_paid_out",
    "difference",
)  # fmt: skip
ORDER_COLUMNS = (
    "order_id", "merchant_order_id", "currency", *(f"{m}_minor" for m in ORDER_MONEY),
    "tax_remitted", "status", "reason", "transaction_count", "as_of_date",
)  # fmt: skip


def minor_to_decimal(minor: int, currency: str) -> Decimal:
    return Decimal(int(minor)).scaleb(-exponent(currency))


@lru_cache(maxsize=65_536)
def _text(minor: int, currency: str) -> str:
    """Exact text of a minor-unit amount (cached: reasons repeat the same amounts a lot)."""
    return format(minor_to_decimal(minor, currency), "f")


@dataclass(frozen=True)
class FrameReconciliation:
    """`reconcile.ShopReconciliation` with the per-order rows as a DataFrame (minor units)."""

    as_of_date: date
    orders: pd.DataFrame
    payouts: list[PayoutReconciliation]
    adjustments: list[PayoutAdjustment]
    daily: list[DailySettlement]
    taxes: list[TaxSummary]

    @property
    def mismatch_rate(self) -> float:
        """Share of orders in a mismatch status; a ratio for the check, never money."""
        if self.orders.empty:
            return 0.0
        bad = self.orders["status"].isin([str(s) for s in MISMATCH_STATUSES]).sum()
        return int(bad) / len(self.orders)

    @property
    def unbalanced_payouts(self) -> list[PayoutReconciliation]:
        return [p for p in self.payouts if p.status == PayoutStatus.UNBALANCED]

    def status_counts(self) -> dict[str, int]:
        counts = {str(status): 0 for status in OrderStatus}
        for status, count in self.orders["status"].value_counts().items():
            counts[str(status)] = int(count)
        return counts

    def order_totals(self, money: str) -> dict[str, str]:
        """{currency: total} of one order money column, exact text."""
        sums = self.orders.groupby("currency")[f"{money}_minor"].sum()
        return {str(c): _text(int(v), str(c)) for c, v in sorted(sums.items())}

    def preview(self, columns: Sequence[str], limit: int = 10, matched: bool = False) -> list:
        rows = self.orders if matched else self.orders[self.orders["status"] != "matched"]
        out = []
        for record in rows.head(limit).to_dict("records"):
            out.append(
                {
                    c: _text(record[f"{c}_minor"], record["currency"])
                    if f"{c}_minor" in record
                    else record.get(c)
                    for c in columns
                }
            )
        return out


# -- entry -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MetaSide:
    """The Meta side per order (`_meta_by_order`), as read for these completed payouts."""

    completed: frozenset[str]
    frame: pd.DataFrame


def read_meta_side(db: MetasyncDatabase, shop_id: str) -> MetaSide:
    """The Meta side per order on its own connection: it needs the transactions and payouts
    only, so `ingest_finance` reads it while the payments are still being written."""
    with db.begin() as conn:
        _session_for_scans(conn)
        completed = completed_payout_refs(_payouts(conn, shop_id))
        return MetaSide(completed, _meta_by_order(conn, shop_id, set(completed)))


def reconcile_set_based(
    db: MetasyncDatabase, oms: OmsAdapter, shop_id: str, settings: ReconcileSettings,
    expected: "Future[pd.DataFrame] | None" = None, meta_side: "Future[MetaSide] | None" = None,
) -> FrameReconciliation:  # fmt: skip
    """`expected`: the OMS expected side (`expected_frame`) already being read elsewhere;
    `meta_side`: the Meta side per order, read once the transactions were loaded (used when
    the payouts it was read for are still the completed ones)."""
    with db.begin() as conn:
        _session_for_scans(conn)
        as_of = _as_date(
            conn.execute(
                select(func.max(finance_partition_loads.c.partition_date)).where(
                    finance_partition_loads.c.shop_id == shop_id
                )
            ).scalar()
        )
        if as_of is None:
            raise ValueError(f"shop {shop_id}: no finance partition loaded yet")
        payouts = _payouts(conn, shop_id)
        completed = set(completed_payout_refs(payouts))
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="finance-sums") as side:
            sums = _summaries_beside(side, db, shop_id, completed, payouts)
            early = meta_side.result() if meta_side is not None else None
            if early is not None and early.completed == completed:
                meta = early.frame
            else:
                meta = _meta_by_order(conn, shop_id, completed)
            remitted = _remitted_by_order(conn, shop_id)
            quarantined = _quarantined_transactions(conn, shop_id)
            net_by_payout, count_by_payout = _payout_totals(conn, shop_id)
            expected = expected.result() if expected is not None else expected_frame(oms, shop_id)
            orders, slow_ids = _orders_frame(expected, meta, remitted, as_of, settings)
            daily, taxes = sums.result() if sums else _summaries(conn, shop_id, completed, payouts)
        if slow_ids:
            orders = pd.concat(
                [orders, _slow_orders(conn, oms, shop_id, slow_ids, expected, payouts, as_of,
                                      settings)],
                ignore_index=True,
            )  # fmt: skip
    payout_rows, adjustments = payouts_from_totals(
        payouts, net_by_payout, count_by_payout, quarantined, as_of, settings
    )
    orders = orders.sort_values("order_id", kind="stable").reset_index(drop=True)
    return FrameReconciliation(as_of, orders, payout_rows, adjustments, daily, taxes)


def _summaries_beside(
    side: ThreadPoolExecutor, db: MetasyncDatabase, shop_id: str, completed: set[str],
    payouts: list,
) -> "Future[tuple[list[DailySettlement], list[TaxSummary]]] | None":  # fmt: skip
    """Postgres: the daily and tax summaries (whole-table scans and joins, a third of the
    reconcile's server time) on a second connection, while this one reads the per-order sums
    and Python reconciles the orders. None elsewhere (SQLite: one connection does it all).
    Each query of a READ COMMITTED transaction sees its own snapshot anyway; partition loads
    commit atomically, so either connection sees whole loads."""
    if db.dialect != "postgresql":
        return None

    def summaries() -> tuple[list[DailySettlement], list[TaxSummary]]:
        with db.begin() as conn:
            _session_for_scans(conn)
            return _summaries(conn, shop_id, completed, payouts)

    return side.submit(summaries)


def _summaries(
    conn: Connection, shop_id: str, completed: set[str], payouts: list
) -> tuple[list[DailySettlement], list[TaxSummary]]:
    return _daily(conn, shop_id, completed, payouts), _taxes(conn, shop_id)


def _as_date(value: Any) -> date | None:
    if value is None or isinstance(value, date) and not isinstance(value, datetime):
        return value
    if isinstance(value, datetime):
        return value.date()
    return date.fromisoformat(str(value)[:10])


# -- reading query results column-wise -----------------------------------------------------------


def read_frame(conn: Connection, query: Any) -> pd.DataFrame:
    """A query's rows as a DataFrame. On Postgres through COPY .. TO STDOUT and pandas' C CSV
    parser (a million rows in about a second, against several through DB-API tuples): text
    columns stay text (NULL -> None), integers int64 (nullable ones float until filled),
    booleans bool. Elsewhere (SQLite) through the DB-API rows."""
    columns = list(query.selected_columns.keys())
    if conn.dialect.name != "postgresql":
        return pd.DataFrame.from_records(conn.execute(query).all(), columns=columns)
    sql = str(query.compile(dialect=conn.dialect, compile_kwargs={"literal_binds": True}))
    buffer = io.StringIO()
    cursor = conn.connection.cursor()
    try:
        cursor.copy_expert(f"COPY ({sql}) TO STDOUT WITH (FORMAT csv, NULL '\\N')", buffer)
    finally:
        cursor.close()
    buffer.seek(0)
    kinds = {name: c.type for name, c in zip(columns, query.selected_columns, strict=True)}
    text_columns = {name for name, kind in kinds.items() if _is_text(kind)}
    frame = pd.read_csv(
        buffer, header=None, names=columns, keep_default_na=False, na_values={
            name: ["\\N"] for name in columns}, dtype={name: object for name in text_columns},
    )  # fmt: skip
    for name in columns:
        kind = kinds[name]
        if name in text_columns:
            frame[name] = frame[name].where(frame[name].notna(), None)
        elif isinstance(kind, Boolean):
            frame[name] = frame[name].map({"t": True, "f": False, True: True, False: False})
        elif isinstance(kind, Date | DateTime):
            frame[name] = frame[name].where(frame[name].notna(), None)
    return frame


def _is_text(kind: Any) -> bool:
    try:
        return kind.python_type is str
    except NotImplementedError:
        return False


# -- the Meta side, summed in SQL ------------------------------------------------------------------


def _payouts(conn: Connection, shop_id: str) -> list:
    from pipelines.finance.normalize import PayoutRow

    t = finance_payouts
    rows = conn.execute(
        select(t.c.payout_reference_id, t.c.payout_date, t.c.status, t.c.amount, t.c.currency,
               t.c.transfer_id).where(t.c.shop_id == shop_id).order_by(t.c.payout_reference_id)
    ).all()  # fmt: skip
    return [PayoutRow(*row) for row in rows]


def _completed_net(conn: Connection, completed: set[str]) -> Any:
    t = finance_transactions
    if not completed:
        return literal_column("0")
    return case((t.c.payout_reference_id.in_(sorted(completed)), t.c.net_amount_minor), else_=0)


def _meta_by_order(conn: Connection, shop_id: str, completed: set[str]) -> pd.DataFrame:
    t = finance_transactions
    kind = t.c.transaction_type
    gross = t.c.gross_amount_minor
    query = (
        select(
            t.c.order_id,
            t.c.currency.label("meta_currency"),
            func.count().label("transaction_count"),
            func.sum(case((kind == "SALE", gross), else_=0)).label("meta_sales_minor"),
            func.sum(case((kind == "REFUND", -gross), else_=0)).label("meta_refunds_minor"),
            func.sum(case((kind.in_(["SALE", "REFUND"]), 0), else_=gross)).label(
                "meta_other_minor"
            ),
            func.sum(t.c.processing_fee_minor).label("meta_fees_minor"),
            func.sum(t.c.tax_amount_minor).label("meta_tax_minor"),
            func.sum(t.c.net_amount_minor).label("meta_net_minor"),
            func.sum(_completed_net(conn, completed)).label("meta_paid_out_minor"),
            # min and max rather than count(distinct): hash aggregation instead of a sort
            func.min(t.c.merchant_order_id).label("first_merchant_order_id"),
            func.max(t.c.merchant_order_id).label("meta_merchant_order_id"),
        )
        .where(t.c.shop_id == shop_id)
        .group_by(t.c.order_id, t.c.currency)
    )
    frame = read_frame(conn, query)
    columns = list(frame.columns)
    for name in columns:
        if name.endswith("_minor") or name == "transaction_count":
            frame[name] = frame[name].astype("int64")
    return frame


def _remitted_by_order(conn: Connection, shop_id: str) -> pd.Series:
    """By order id: True if any payment of the order says Meta remitted the tax, False if one
    says it did not, absent when none says (as `reconcile._tax_remitted_by_order`)."""
    p = finance_order_payments
    flag = case((p.c.tax_remitted.is_(True), 1), (p.c.tax_remitted.is_(False), 0))
    query = (
        select(p.c.order_id, func.max(flag).label("remitted"))
        .where(p.c.shop_id == shop_id)
        .group_by(p.c.order_id)
        .having(func.max(flag).is_not(None))
    )
    frame = read_frame(conn, query)
    flags = frame["remitted"].to_numpy(dtype="int64") != 0
    return pd.Series(flags, index=frame["order_id"].to_numpy(), dtype=object)


def _quarantined_transactions(conn: Connection, shop_id: str) -> list:
    from pipelines.finance.normalize import Rejected

    q = finance_quarantine
    rows = conn.execute(
        select(q.c.source, q.c.record_key, q.c.reason, q.c.payout_reference_id, q.c.net_amount,
               q.c.currency)
        .where(q.c.shop_id == shop_id, q.c.source == "transactions")
        .order_by(q.c.quarantine_id)
    ).all()  # fmt: skip
    return [Rejected(r.source, r.record_key, r.reason, {}, *r[3:]) for r in rows]


def _payout_totals(conn: Connection, shop_id: str) -> tuple[dict[str, Decimal], dict[str, int]]:
    t = finance_transactions
    query = (
        select(t.c.payout_reference_id, t.c.currency, func.sum(t.c.net_amount_minor), func.count())
        .where(t.c.shop_id == shop_id, t.c.payout_reference_id.is_not(None))
        .group_by(t.c.payout_reference_id, t.c.currency)
    )
    net: dict[str, Decimal] = defaultdict(lambda: ZERO)
    count: dict[str, int] = defaultdict(int)
    for ref, currency, minor, n in conn.execute(query):
        if not ref:
            continue
        net[ref] += minor_to_decimal(minor, currency)
        count[ref] += n
    return dict(net), dict(count)


def _daily(
    conn: Connection, shop_id: str, completed: set[str], payouts: list
) -> list[DailySettlement]:
    t = finance_transactions
    kind, gross, net = t.c.transaction_type, t.c.gross_amount_minor, t.c.net_amount_minor
    pending = (
        case((t.c.payout_reference_id.in_(sorted(completed)), 0), else_=net) if completed else net
    )
    query = (
        select(
            t.c.transaction_day,
            t.c.currency,
            func.sum(case((kind == "SALE", gross), else_=0)),
            func.sum(case((kind == "REFUND", -gross), else_=0)),
            func.sum(case((kind.in_(["SALE", "REFUND"]), 0), else_=gross)),
            func.sum(t.c.processing_fee_minor),
            func.sum(t.c.tax_amount_minor),
            func.sum(net),
            func.sum(pending),
            func.count(),
            func.count(func.distinct(t.c.order_id)),
        )
        .where(t.c.shop_id == shop_id)
        .group_by(t.c.transaction_day, t.c.currency)
    )
    days: dict[tuple[date, str], dict[str, Any]] = {}
    names = ("sales_gross", "refunds_gross", "other_gross", "fees", "tax", "net",
             "pending_payout_net")  # fmt: skip
    for day, currency, *sums, count, orders in conn.execute(query):
        values = {n: minor_to_decimal(v, currency) for n, v in zip(names, sums, strict=True)}
        days[(_as_date(day), currency)] = values | {
            "transaction_count": count, "order_count": orders
        }  # fmt: skip
    for payout in payouts:
        if payout.completed:
            entry = days.setdefault((payout.payout_date.date(), payout.currency), {})
            entry["paid_out"] = entry.get("paid_out", ZERO) + payout.amount
            entry["payout_count"] = entry.get("payout_count", 0) + 1
    return [DailySettlement(day=k[0], currency=k[1], **days[k]) for k in sorted(days)]


def _taxes(conn: Connection, shop_id: str) -> list[TaxSummary]:
    """Tax per month, jurisdiction, category, imposition and currency. Summed in SQL per day and
    per who remits (Meta or the seller, from the order's payments); months added up here."""
    t, x, p = finance_transactions, finance_transaction_taxes, finance_order_payments
    amount = x.c.tax_amount_minor
    group = (x.c.transaction_key, x.c.jurisdiction, x.c.tax_category, x.c.imposition,
             x.c.currency)  # fmt: skip
    per_txn = (
        select(
            *group,
            func.sum(case((amount >= 0, amount), else_=0)).label("on_sales"),
            func.sum(case((amount < 0, -amount), else_=0)).label("on_refunds"),
            func.sum(amount).label("net"),
        )
        .where(x.c.shop_id == shop_id)
        .group_by(*group)
        .subquery()
    )
    flag = case((p.c.tax_remitted.is_(True), 1), (p.c.tax_remitted.is_(False), 0))
    by_order = (
        select(p.c.order_id, func.max(flag).label("remitted"))
        .where(p.c.shop_id == shop_id)
        .group_by(p.c.order_id)
        .subquery()
    )
    meta_remits = case((by_order.c.remitted == 1, 1), else_=0).label("meta_remits")
    keys = (t.c.transaction_day, per_txn.c.jurisdiction, per_txn.c.tax_category,
            per_txn.c.imposition, per_txn.c.currency, meta_remits)  # fmt: skip
    query = (
        select(
            *keys,
            func.sum(per_txn.c.on_sales), func.sum(per_txn.c.on_refunds), func.sum(per_txn.c.net),
            func.count(),
        )
        .select_from(
            per_txn.join(t, and_(t.c.shop_id == shop_id,
                                 t.c.transaction_key == per_txn.c.transaction_key))
            .outerjoin(by_order, by_order.c.order_id == t.c.order_id)
        )
        .group_by(*keys)
    )  # fmt: skip
    sums: dict[tuple, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day, jurisdiction, category, imposition, currency, by_meta, *values in conn.execute(query):
        key = (_as_date(day).strftime("%Y-%m"), jurisdiction, category, imposition, currency)
        on_sales, on_refunds, net, count = values
        bucket = sums[key]
        bucket["tax_on_sales"] += on_sales
        bucket["tax_on_refunds"] += on_refunds
        bucket["net_tax"] += net
        bucket["remitted_by_meta" if by_meta else "remitted_by_seller"] += net
        bucket["transaction_count"] += count
    rows = []
    money = ("tax_on_sales", "tax_on_refunds", "net_tax", "remitted_by_meta",
             "remitted_by_seller")  # fmt: skip
    for key in sorted(sums):
        bucket, currency = sums[key], key[4]
        rows.append(
            TaxSummary(
                *key,
                **{m: minor_to_decimal(bucket[m], currency) for m in money},
                transaction_count=bucket["transaction_count"],
            )
        )
    return rows


# -- the OMS side, as integer columns --------------------------------------------------------------


def _factor_case(currency: Any) -> Any:
    """10 ** exponent(currency) as a SQL expression (Postgres path)."""
    from pipelines.finance.money import _EXPONENTS

    by_factor: dict[int, list[str]] = {}
    for code, places in _EXPONENTS.items():
        by_factor.setdefault(10**places, []).append(code)
    whens = [(currency.in_(sorted(codes)), factor) for factor, codes in sorted(by_factor.items())]
    return case(*whens, else_=100)


_MICRO = 10**6  # ExactDecimal is NUMERIC(20, 6) on Postgres: amount * 10**6 is an exact integer


def _money_select(dialect: str, column: Any, factor: Any, label: str) -> list[Any]:
    """The amount as an exact integer: on Postgres in millionths (NUMERIC(20, 6) times 10**6,
    computed by the OMS database), elsewhere the raw exact value (converted in Python)."""
    if dialect != "postgresql":
        return [column.label(label)]
    return [cast(column * _MICRO, BigInteger).label(label)]


def _micro_step(currency: str) -> int:
    """Millionths per minor unit of the currency."""
    return 10 ** (6 - exponent(currency))


def _session_for_scans(conn: Connection) -> None:
    """Postgres: this transaction scans and aggregates whole tables; JIT compilation costs
    seconds on such queries and gains nothing, and sorts fit in memory with more work_mem.
    No nested loops: right after a load the statistics still count the tables as they were
    before it (autovacuum analyses them later), and on such a guess of a few rows the planner
    nests loops over what are really tens of thousands (the tax summary of 20,000 fresh
    transactions took 24 s that way, 0.1 s with hash joins)."""
    if conn.dialect.name == "postgresql":
        conn.exec_driver_sql("SET LOCAL jit = off")
        conn.exec_driver_sql("SET LOCAL work_mem = '256MB'")
        conn.exec_driver_sql("SET LOCAL enable_nestloop = off")


def _frame(conn: Connection, query: Any, money: dict[str, str]) -> pd.DataFrame:
    """Run a query built by `_money_select`; money columns become int64 minor units plus one
    `inexact` flag per row (amounts finer than the minor unit go to the exact slow path)."""
    frame = read_frame(conn, query)
    inexact = np.zeros(len(frame), dtype=bool)
    if conn.dialect.name == "postgresql":
        steps: dict[str, np.ndarray] = {}
        for name, currency_column in money.items():
            if currency_column not in steps:
                codes = frame[currency_column]
                by_code = {c: _micro_step(c) for c in codes.dropna().unique().tolist()}
                steps[currency_column] = codes.map(by_code).to_numpy(dtype="int64")
            step = steps[currency_column]
            micro = frame[name].fillna(0).to_numpy(dtype="int64")
            inexact |= micro % step != 0
            frame[name] = micro // step
    else:
        for name, currency_column in money.items():
            values, bad = [], []
            for amount, currency in zip(frame[name], frame[currency_column], strict=True):
                try:
                    values.append(to_minor(amount, currency))
                    bad.append(False)
                except MoneyError:
                    values.append(0)
                    bad.append(True)
            frame[name] = np.array(values, dtype="int64")
            inexact |= np.array(bad, dtype=bool)
    frame["inexact"] = inexact
    return frame


def expected_frame(oms: OmsAdapter, shop_id: str) -> pd.DataFrame:
    """One row per Meta order the OMS knows: what Meta should settle, in minor units; `slow`
    marks the orders only the exact Decimal path (expected.py) can compute."""
    o, line, r = oms_orders, oms_order_lines, oms_refunds
    source = str(OrderSource.META)
    mine = and_(o.c.shop_id == shop_id, o.c.source == source)
    with oms.engine.begin() as conn:
        dialect = conn.dialect.name
        _session_for_scans(conn)
        factor = _factor_case(o.c.currency)
        orders = _frame(
            conn,
            select(o.c.order_id, o.c.external_ref, o.c.reference, o.c.currency,
                   *_money_select(dialect, o.c.shipping_total, factor, "ship"),
                   *_money_select(dialect, o.c.shipping_discount_total, factor, "ship_disc"))
            .where(mine).order_by(o.c.order_id),
            {"ship": "currency", "ship_disc": "currency"},
        )  # fmt: skip
        money = {name: "currency" for name in ("price", "odisc", "mdisc", "tax", "refunded")}
        lines = _frame(
            conn,
            select(line.c.order_id, line.c.line_id, line.c.quantity, line.c.qty_shipped,
                   o.c.currency,
                   *_money_select(dialect, line.c.unit_price, factor, "price"),
                   *_money_select(dialect, line.c.order_discount, factor, "odisc"),
                   *_money_select(dialect, line.c.meta_funded_discount, factor, "mdisc"),
                   *_money_select(dialect, line.c.tax, factor, "tax"),
                   *_money_select(dialect, line.c.refunded_amount, factor, "refunded"))
            .select_from(line.join(o, o.c.order_id == line.c.order_id)).where(mine),
            money,
        )  # fmt: skip
        refunds = _frame(
            conn,
            select(r.c.order_id, o.c.currency,
                   *_money_select(dialect, r.c.total_amount, factor, "refund"))
            .select_from(r.join(o, o.c.order_id == r.c.order_id)).where(mine),
            {"refund": "currency"},
        )  # fmt: skip
        replay = _lines_needing_replay(conn, mine)
        activity = _last_activity(conn, mine)
    return _expected_from_frames(orders, lines, refunds, replay, activity)


def _lines_needing_replay(conn: Connection, mine: Any) -> set[int]:
    """Lines whose shipment/cancellation events the integer path cannot shortcut: any
    cancellation, or shipment events that do not add up to qty_shipped."""
    e, line, o = oms_event_lines, oms_order_lines, oms_orders
    query = (
        select(
            e.c.line_id,
            func.sum(case((e.c.event_kind == "cancellation", 1), else_=0)),
            func.sum(case((e.c.event_kind == "shipment", func.coalesce(e.c.quantity, 0)),
                          else_=0)),
            func.max(line.c.qty_shipped),
            func.max(line.c.quantity),
        )
        .select_from(e.join(line, line.c.line_id == e.c.line_id)
                     .join(o, o.c.order_id == line.c.order_id))
        .where(mine, e.c.event_kind.in_(["shipment", "cancellation"]))
        .group_by(e.c.line_id)
    )  # fmt: skip
    events = read_frame(conn, query)
    if events.empty:
        return set()
    cancels, shipped, qty_shipped, quantity = (
        events[name].to_numpy(dtype="int64") for name in events.columns[1:]
    )
    odd = (cancels != 0) | (shipped != qty_shipped) | (quantity <= 0)
    return set(events.loc[odd, events.columns[0]].tolist())


def _last_activity(conn: Connection, mine: Any) -> pd.Series:
    """UTC day of the last shipment or refund per OMS order (datetime64[D], by OMS order id)."""
    o, s, r = oms_orders, oms_shipments, oms_refunds
    parts = []
    for table in (s, r):
        at = func.max(table.c.created_at)
        if conn.dialect.name == "postgresql":
            at = cast(func.timezone("UTC", at), Date)
        query = (
            select(table.c.order_id, at.label("at"))
            .select_from(table.join(o, o.c.order_id == table.c.order_id))
            .where(mine)
            .group_by(table.c.order_id)
        )
        frame = read_frame(conn, query)
        if conn.dialect.name != "postgresql":
            frame["at"] = [None if v is None else expected_side._as_date(v).isoformat()
                           for v in frame["at"]]  # fmt: skip
        parts.append(frame.dropna())
    both = pd.concat(parts, ignore_index=True)
    days = pd.to_datetime(both["at"].astype(str)).to_numpy().astype("datetime64[D]")
    return pd.Series(days, index=both["order_id"].to_numpy()).groupby(level=0).max()


def _share(total: np.ndarray, shipped: np.ndarray, quantity: np.ndarray) -> np.ndarray:
    """charged_share in minor units: floor(total * shipped / quantity), all of it when shipped."""
    safe_q = np.where(quantity > 0, quantity, 1)
    part = (total * shipped) // safe_q
    out = np.where(shipped >= quantity, total, part)
    return np.where((quantity <= 0) | (shipped <= 0), 0, out)


def _half_up_div(num: np.ndarray, den: np.ndarray) -> np.ndarray:
    """num / den rounded half away from zero (Decimal ROUND_HALF_UP), den > 0."""
    magnitude = (2 * np.abs(num) + den) // (2 * den)
    return np.where(num < 0, -magnitude, magnitude)


def _expected_from_frames(
    orders: pd.DataFrame,
    lines: pd.DataFrame,
    refunds: pd.DataFrame,
    replay: set[int],
    activity: pd.Series,
) -> pd.DataFrame:
    q = lines["quantity"].to_numpy(dtype="int64")
    shipped = lines["qty_shipped"].to_numpy(dtype="int64")
    price = lines["price"].to_numpy(dtype="int64")
    tax = _share(lines["tax"].to_numpy(dtype="int64"), shipped, q)
    seller = _share(lines["odisc"].to_numpy(dtype="int64"), shipped, q)
    meta = _share(lines["mdisc"].to_numpy(dtype="int64"), shipped, q)
    refunded = lines["refunded"].to_numpy(dtype="int64")
    base = price * shipped - seller
    safe_base = np.where(base > 0, base, 1)
    refunded_tax = np.where(
        (refunded != 0) & (base > 0),
        _half_up_div(tax * np.minimum(refunded, base), safe_base),
        0,
    )
    per_line = pd.DataFrame(
        {
            "order_id": lines["order_id"].to_numpy(),
            "items": price * shipped,
            "tax": tax,
            "seller_discount": seller,
            "meta_discount": meta,
            "refunded_tax": refunded_tax,
            "shipped_any": shipped != 0,
            "slow": lines["inexact"].to_numpy() | lines["line_id"].isin(replay).to_numpy(),
        }
    )
    by_order = per_line.groupby("order_id").agg(
        items=("items", "sum"), tax=("tax", "sum"), seller_discount=("seller_discount", "sum"),
        meta_discount=("meta_discount", "sum"), refunded_tax=("refunded_tax", "sum"),
        shipped_any=("shipped_any", "any"), slow=("slow", "any"),
    )  # fmt: skip
    refund_sums = refunds.groupby("order_id").agg(
        refunds=("refund", "sum"), r_slow=("inexact", "any")
    )
    frame = orders.set_index("order_id").join(by_order).join(refund_sums)
    for name in ("items", "tax", "seller_discount", "meta_discount", "refunded_tax", "refunds"):
        frame[name] = frame[name].fillna(0).astype("int64")
    shipped_any = frame["shipped_any"].fillna(False).astype(bool)
    frame["shipping"] = np.where(shipped_any, frame["ship"] - frame["ship_disc"], 0).astype("int64")
    frame["slow"] = (
        frame["slow"].fillna(False).astype(bool)
        | frame["r_slow"].fillna(False).astype(bool)
        | frame["inexact"]
    )
    frame["last_activity"] = activity.reindex(frame.index)
    frame["meta_order_id"] = frame["external_ref"].where(
        frame["external_ref"].fillna("") != "", frame["reference"]
    )
    frame = frame.reset_index().rename(columns={"order_id": "oms_order_id"})
    # Two OMS orders naming one Meta order: the later one wins, as in the pure path.
    frame = frame.drop_duplicates("meta_order_id", keep="last")
    return frame[
        ["oms_order_id", "meta_order_id", "reference", "currency", "items", "shipping", "tax",
         "seller_discount", "meta_discount", "refunds", "refunded_tax", "last_activity", "slow"]
    ]  # fmt: skip


# -- per order -------------------------------------------------------------------------------------


def _lagging(last_activity: pd.Series, as_of: date, lag: int) -> np.ndarray:
    """business_days_between(last_activity, as_of) <= lag, for each order (False when absent)."""
    days = pd.to_datetime(last_activity).to_numpy().astype("datetime64[D]")
    present = ~np.isnat(days)
    starts = np.where(present, days, np.datetime64(as_of, "D"))
    end = np.datetime64(as_of + timedelta(days=1), "D")
    counts = np.busday_count(starts + np.timedelta64(1, "D"), end)
    return present & (np.maximum(counts, 0) <= lag)


def _orders_frame(
    expected: pd.DataFrame,
    meta: pd.DataFrame,
    remitted: pd.Series,
    as_of: date,
    settings: ReconcileSettings,
) -> tuple[pd.DataFrame, set[str]]:
    """The vectorised per-order reconciliation, and the ids left to the exact pure path."""
    multi = meta["order_id"].duplicated(keep=False)
    several_merchant_ids = meta["first_merchant_order_id"].fillna("") != meta[
        "meta_merchant_order_id"
    ].fillna("")
    slow = set(meta.loc[multi | several_merchant_ids, "order_id"])
    slow |= set(expected.loc[expected["slow"], "meta_order_id"])
    merged = expected.merge(
        meta, how="outer", left_on="meta_order_id", right_on="order_id", indicator=True
    )
    merged["order_id"] = merged["meta_order_id"].where(
        merged["meta_order_id"].notna(), merged["order_id"]
    )
    in_oms = merged["_merge"] != "right_only"
    has_txns = merged["_merge"] != "left_only"
    currency_clash = in_oms & has_txns & (merged["currency"] != merged["meta_currency"])
    slow |= set(merged.loc[currency_clash, "order_id"])
    merged = merged[~merged["order_id"].isin(slow)].copy()
    in_oms = merged["_merge"] != "right_only"
    has_txns = merged["_merge"] != "left_only"

    money_in = ["items", "shipping", "tax", "seller_discount", "meta_discount", "refunds",
                "refunded_tax", "meta_sales_minor", "meta_refunds_minor", "meta_other_minor",
                "meta_fees_minor", "meta_tax_minor", "meta_net_minor", "meta_paid_out_minor",
                "transaction_count"]  # fmt: skip
    for name in money_in:
        merged[name] = merged[name].fillna(0).astype("int64")
    charged = (merged["items"] + merged["shipping"] + merged["tax"]) != 0
    merged = merged[~(in_oms & ~has_txns & ~charged)].copy()
    in_oms = (merged["_merge"] != "right_only").to_numpy()
    has_txns = (merged["_merge"] != "left_only").to_numpy()

    merged["currency"] = merged["currency"].where(in_oms, merged["meta_currency"])
    flags = remitted.reindex(merged["order_id"].to_numpy())
    flags.index = merged.index
    keeps = (flags == True).to_numpy() & (not settings.remitted_tax_paid_to_seller)  # noqa: E712
    settled_refunds = merged["refunds"].to_numpy() + np.where(
        keeps, 0, merged["refunded_tax"].to_numpy()
    )
    gross = (
        merged["items"].to_numpy()
        + merged["shipping"].to_numpy()
        + np.where(keeps, 0, merged["tax"].to_numpy())
        - merged["seller_discount"].to_numpy()
        - settled_refunds
    )
    expected_gross = np.where(in_oms, gross, 0)
    meta_gross = (
        merged["meta_sales_minor"].to_numpy()
        - merged["meta_refunds_minor"].to_numpy()
        + merged["meta_other_minor"].to_numpy()
    )
    difference = meta_gross - expected_gross
    currencies = merged["currency"].to_numpy()
    tolerances = {c: _tolerance_minor(settings.tolerance, c) for c in set(currencies)}
    tolerance = merged["currency"].map(tolerances).to_numpy(dtype="int64")
    over = np.abs(difference) > tolerance if len(merged) else np.zeros(0, dtype=bool)
    lagging = _lagging(merged["last_activity"], as_of, settings.lag_business_days)
    lagging &= in_oms
    net = merged["meta_net_minor"].to_numpy()
    unpaid = net - merged["meta_paid_out_minor"].to_numpy()

    status = np.select(
        [~in_oms, ~has_txns & lagging, ~has_txns, over & lagging, over, unpaid != 0],
        [str(OrderStatus.MISSING_IN_OMS), str(OrderStatus.PENDING_PAYOUT),
         str(OrderStatus.MISSING_IN_META), str(OrderStatus.PENDING_PAYOUT),
         str(OrderStatus.AMOUNT_MISMATCH), str(OrderStatus.PENDING_PAYOUT)],
        default=str(OrderStatus.MATCHED),
    ).astype(object)  # fmt: skip
    reason = _reasons(in_oms, has_txns, lagging, over, difference, unpaid, currencies)

    zero = lambda name: np.where(in_oms, merged[name].to_numpy(), 0)  # noqa: E731
    merchant = merged["reference"].where(
        merged["reference"].fillna("") != "", merged["meta_merchant_order_id"]
    )
    frame = pd.DataFrame(
        {
            "order_id": merged["order_id"].to_numpy(),
            "merchant_order_id": merchant.where(merchant.notna(), None).to_numpy(),
            "currency": currencies,
            "expected_items_minor": zero("items"),
            "expected_shipping_minor": zero("shipping"),
            "expected_tax_minor": zero("tax"),
            "expected_seller_discount_minor": zero("seller_discount"),
            "expected_meta_discount_minor": zero("meta_discount"),
            "expected_refunds_minor": np.where(in_oms, settled_refunds, 0),
            "expected_gross_minor": expected_gross,
            "meta_sales_minor": merged["meta_sales_minor"].to_numpy(),
            "meta_refunds_minor": merged["meta_refunds_minor"].to_numpy(),
            "meta_other_minor": merged["meta_other_minor"].to_numpy(),
            "meta_gross_minor": meta_gross,
            "meta_fees_minor": merged["meta_fees_minor"].to_numpy(),
            "meta_tax_minor": merged["meta_tax_minor"].to_numpy(),
            "meta_net_minor": net,
            "meta_paid_out_minor": merged["meta_paid_out_minor"].to_numpy(),
            "tax_remitted": flags.astype(object).where(flags.notna(), None).to_numpy(),
            "difference_minor": difference,
            "status": status,
            "reason": reason,
            "transaction_count": merged["transaction_count"].to_numpy(),
            "as_of_date": as_of,
        }
    )
    return frame, slow


def _tolerance_minor(tolerance: Decimal, currency: str) -> int:
    """For integer differences d: |d| > tolerance * 10**e  <=>  |d| > floor(that)."""
    return int(tolerance.scaleb(exponent(currency)).to_integral_value(rounding="ROUND_FLOOR"))


def _reasons(in_oms, has_txns, lagging, over, difference, unpaid, currencies) -> np.ndarray:
    """The pure path's reason texts, formatted only for the rows that carry one: amounts as
    whole columns (Arrow), the texts joined per kind of reason."""
    out = np.full(len(in_oms), None, dtype=object)
    out[~in_oms] = "Meta reported transactions for an order the OMS lacks"
    no_txns = in_oms & ~has_txns
    out[no_txns & lagging] = "no Meta transaction yet; within Meta's lag"
    out[no_txns & ~lagging] = "charged in the OMS, no Meta transaction"
    differs = in_oms & has_txns & over
    unpaid_only = in_oms & has_txns & ~over & (unpaid != 0)
    for mask, amounts, before, after in (
        (differs & lagging, difference, "", " open; within Meta's lag"),
        (differs & ~lagging, difference, "Meta gross differs by ", ""),
        (unpaid_only, unpaid, "", " unpaid"),
    ):
        rows = np.flatnonzero(mask)
        if rows.size:
            texts = _amount_texts(amounts[rows], currencies[rows])
            out[rows] = [before + text + after for text in texts]
    return out


def _amount_texts(minor: np.ndarray, currencies: np.ndarray) -> list[str]:
    """`f"{_text(m, c)} {c}"` for each row, formatted by Arrow per currency."""
    import pyarrow as pa
    import pyarrow.compute as pc

    from pipelines.finance.columnar import decimal_column

    out = np.empty(len(minor), dtype=object)
    codes = pd.Series(currencies)
    for currency in codes.unique().tolist():
        mine = (codes == currency).to_numpy()
        texts = decimal_column(minor[mine], exponent(currency)).cast(pa.string())
        out[mine] = pc.binary_join_element_wise(texts, f" {currency}", "").to_numpy(
            zero_copy_only=False
        )
    return out.tolist()


def _reasons_by_row(in_oms, has_txns, lagging, over, difference, unpaid, currencies) -> np.ndarray:
    """The reasons one row at a time (the reference `_reasons` is checked against)."""
    out = np.full(len(in_oms), None, dtype=object)
    for i in np.flatnonzero(~in_oms | ~has_txns | over | (unpaid != 0)):
        currency = currencies[i]
        if not in_oms[i]:
            out[i] = "Meta reported transactions for an order the OMS lacks"
        elif not has_txns[i]:
            out[i] = (
                "no Meta transaction yet; within Meta's lag"
                if lagging[i]
                else "charged in the OMS, no Meta transaction"
            )
        elif over[i]:
            amount = _text(difference[i], currency)
            out[i] = (
                f"{amount} {currency} open; within Meta's lag"
                if lagging[i]
                else f"Meta gross differs by {amount} {currency}"
            )
        else:
            out[i] = f"{_text(unpaid[i], currency)} {currency} unpaid"
    return out


def _slow_orders(
    conn: Connection,
    oms: OmsAdapter,
    shop_id: str,
    order_ids: set[str],
    expected: pd.DataFrame,
    payouts: list,
    as_of: date,
    settings: ReconcileSettings,
) -> pd.DataFrame:
    """The pure per-order reconciliation for the few orders the integer path leaves out."""
    from pipelines.finance.store import key_in, read_transactions_of_orders

    ids = sorted(order_ids)
    oms_ids = expected.loc[expected["meta_order_id"].isin(ids), "oms_order_id"].tolist()
    by_id = {
        order.order_id: order
        for order in expected_side.expected_orders_from_oms(oms, shop_id, only=oms_ids)
    }
    txns = read_transactions_of_orders(conn, shop_id, ids)
    p = finance_order_payments
    payments = conn.execute(
        select(p.c.order_id, p.c.tax_remitted).where(
            p.c.shop_id == shop_id, key_in(conn, p.c.order_id, ids), p.c.tax_remitted.is_not(None)
        )
    ).all()
    remitted: dict[str, bool] = {}
    for order_id, flag in payments:
        remitted[order_id] = remitted.get(order_id) or flag
    completed = completed_payout_refs(payouts)
    rows = []
    for order_id in ids:
        order, order_txns = by_id.get(order_id), txns.get(order_id, [])
        if order is None and not order_txns:
            continue
        if order is not None and not order_txns and not order.charged:
            continue
        rows.append(
            _reconcile_order(
                order_id, order, order_txns, remitted.get(order_id), completed, as_of, settings
            )
        )
    return orders_frame_from_rows(rows)


def orders_frame_from_rows(rows: Iterable[OrderReconciliation]) -> pd.DataFrame:
    records = []
    for row in rows:
        record = {name: getattr(row, name) for name in ORDER_COLUMNS if not name.endswith("_minor")}
        for money in ORDER_MONEY:
            record[f"{money}_minor"] = to_minor(getattr(row, money), row.currency)
        records.append(record)
    frame = pd.DataFrame.from_records(records, columns=list(ORDER_COLUMNS))
    for money in ORDER_MONEY:
        frame[f"{money}_minor"] = frame[f"{money}_minor"].astype("int64")
    return frame

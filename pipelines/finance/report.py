"""The monthly finance report an accountant asks for, as CSV, from the published analyst tables.

    write_finance_report(db, "acme", "2026-03", Path("acme-2026-03.csv"))

One file, two sections told apart by the `section` column: `settlement` (one row per day and
currency, then a `settlement_total` row per currency) and `tax` (one row per jurisdiction, tax
category, imposition and currency). Amounts are exact decimal strings in major units with their
currency. A total's `order_count` counts each order once even when it has transactions on several
days of the month (a sale and its refund), so it is not the sum of the days' counts.
"""

import csv
import re
from collections import defaultdict
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TextIO

from sqlalchemy import and_, func, or_, select

from pipelines.finance.money import ZERO, exponent
from resources.db import MetasyncDatabase
from resources.db.finance_tables import (
    finance_daily_settlement,
    finance_tax_summary,
    finance_transactions,
)

SETTLEMENT_AMOUNTS = (
    "sales_gross",
    "refunds_gross",
    "other_gross",
    "fees",
    "tax",
    "net",
    "pending_payout_net",
    "paid_out",
)
TAX_AMOUNTS = (
    "tax_on_sales",
    "tax_on_refunds",
    "net_tax",
    "remitted_by_meta",
    "remitted_by_seller",
)
COLUMNS = (
    "section",
    "shop_id",
    "period",
    "day",
    "currency",
    *SETTLEMENT_AMOUNTS,
    "payout_count",
    "transaction_count",
    "order_count",
    "jurisdiction",
    "tax_category",
    "imposition",
    *TAX_AMOUNTS,
)


def month_bounds(month: str) -> tuple[date, date]:
    """First and last day of "YYYY-MM"; a clear error for anything else."""
    if not re.fullmatch(r"\d{4}-(0[1-9]|1[0-2])", month):
        raise ValueError(f"month must look like 2026-03, got {month!r}")
    year, number = (int(part) for part in month.split("-"))
    first = date(year, number, 1)
    following = date(year + (number == 12), number % 12 + 1, 1)
    return first, date.fromordinal(following.toordinal() - 1)


def write_finance_report(db: MetasyncDatabase, shop_id: str, month: str, out_path: Path) -> int:
    """Write the settlement and tax report of one shop and month; returns the data rows written.
    The folder of `out_path` must exist."""
    rows = finance_report_rows(db, shop_id, month)
    with Path(out_path).open("w", newline="") as handle:
        write_finance_csv(rows, handle)
    return len(rows)


def finance_report_rows(db: MetasyncDatabase, shop_id: str, month: str) -> list[dict[str, str]]:
    """The report's data rows (settlement, settlement totals, tax), in the order written."""
    first, last = month_bounds(month)
    with db.begin() as conn:
        days = conn.execute(
            select(finance_daily_settlement)
            .where(
                finance_daily_settlement.c.shop_id == shop_id,
                finance_daily_settlement.c.day.between(first, last),
            )
            .order_by(finance_daily_settlement.c.day, finance_daily_settlement.c.currency)
        ).all()
        taxes = conn.execute(
            select(finance_tax_summary)
            .where(finance_tax_summary.c.shop_id == shop_id, finance_tax_summary.c.period == month)
            .order_by(*finance_tax_summary.primary_key.columns)
        ).all()
        orders = _distinct_orders(conn, shop_id, days)

    rows = [_settlement_row(shop_id, month, day) for day in days]
    rows += _settlement_totals(shop_id, month, days, orders)
    rows += [_tax_row(shop_id, month, tax) for tax in taxes]
    return rows


def write_finance_csv(rows: list[dict[str, str]], handle: TextIO) -> None:
    """The header and `rows` as CSV into an open text file (opened with newline="")."""
    writer = csv.DictWriter(handle, fieldnames=COLUMNS, restval="")
    writer.writeheader()
    writer.writerows(rows)


def _distinct_orders(conn, shop_id: str, days) -> dict[str, int]:
    """Per currency, the distinct orders with a transaction on the month's published days.

    The daily rows count an order once per day, so their sum counts an order with a sale and a
    refund on different days twice; the loaded transactions give the true count. Only the days
    and currencies published in `days` are counted: a day loaded but held back from publishing
    (a blocking check failed) is not in the report, so its orders are not either."""
    published: dict[str, set[date]] = defaultdict(set)
    for day in days:
        published[day.currency].add(day.day)
    if not published:
        return {}
    t = finance_transactions
    query = (
        select(t.c.currency, func.count(func.distinct(t.c.order_id)))
        .where(
            t.c.shop_id == shop_id,
            or_(
                *(
                    and_(t.c.currency == currency, t.c.transaction_day.in_(sorted(on)))
                    for currency, on in published.items()
                )
            ),
        )
        .group_by(t.c.currency)
    )
    return {currency: count for currency, count in conn.execute(query)}


def _text(amount: Decimal, currency: str) -> str:
    """Exact text at the currency's precision (Postgres NUMERIC hands back six decimals; every
    stored amount is whole minor units, so this never rounds)."""
    return format(amount.quantize(Decimal(1).scaleb(-exponent(currency))), "f")


def _settlement_row(shop_id: str, month: str, day) -> dict[str, str]:
    row = {"section": "settlement", "shop_id": shop_id, "period": month}
    row |= {"day": day.day.isoformat(), "currency": day.currency}
    row |= {name: _text(getattr(day, name), day.currency) for name in SETTLEMENT_AMOUNTS}
    row |= {name: str(getattr(day, name)) for name in ("payout_count", "transaction_count")}
    return row | {"order_count": str(day.order_count)}


def _settlement_totals(
    shop_id: str, month: str, days, orders: dict[str, int]
) -> list[dict[str, str]]:
    sums: dict[str, dict[str, Decimal]] = defaultdict(lambda: defaultdict(lambda: ZERO))
    counts: dict[str, dict[str, int]] = defaultdict(lambda: defaultdict(int))
    for day in days:
        for name in SETTLEMENT_AMOUNTS:
            sums[day.currency][name] += getattr(day, name)
        for name in ("payout_count", "transaction_count"):
            counts[day.currency][name] += getattr(day, name)
    return [
        {"section": "settlement_total", "shop_id": shop_id, "period": month, "currency": currency}
        | {name: _text(sums[currency][name], currency) for name in SETTLEMENT_AMOUNTS}
        | {name: str(value) for name, value in counts[currency].items()}
        | {"order_count": str(orders.get(currency, 0))}
        for currency in sorted(sums)
    ]


def _tax_row(shop_id: str, month: str, tax) -> dict[str, str]:
    row = {"section": "tax", "shop_id": shop_id, "period": month, "currency": tax.currency}
    row |= {name: getattr(tax, name) for name in ("jurisdiction", "tax_category", "imposition")}
    row |= {name: _text(getattr(tax, name), tax.currency) for name in TAX_AMOUNTS}
    return row | {"transaction_count": str(tax.transaction_count)}

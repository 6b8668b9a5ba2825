"""Reconciliation: what the OMS expected Meta to settle vs what Meta reported paying.

    result = reconcile_shop(expected_orders, transactions, payments, payouts, quarantined,
                            as_of=date(2026, 3, 2), settings=ReconcileSettings())
    result.orders          # one OrderReconciliation per order, with a status and a difference
    result.payouts         # payout amount vs the sum of its transactions (+ adjustment rows)
    result.daily           # settlement per day and currency
    result.taxes           # tax per period, jurisdiction, category, imposition

Pure: plain dataclasses and Decimals in, dataclasses out; no database, no Dagster.

The money equation (documented in docs/data-dictionary.md):

    expected_gross = items + shipping + tax - seller_discount - refunds
                     (tax left out when Meta remits it: the seller never receives that tax)
    meta_gross     = sum(net_amount - processing_fee) over the order's transactions
    difference     = meta_gross - expected_gross

Meta-funded discounts do not appear in expected_gross: Meta pays the seller their value (orders.md
§11.4), so they only move money between buyer and Meta. Every cent of meta_net is either matched
to the OMS (difference 0) or named by the difference, and every payout equals the sum of its
transactions plus explicit adjustment rows.
"""

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum

from pipelines.finance.money import ZERO
from pipelines.finance.normalize import PaymentRow, PayoutRow, Rejected, TransactionRow


class OrderStatus(StrEnum):
    MATCHED = "matched"
    AMOUNT_MISMATCH = "amount_mismatch"
    MISSING_IN_META = "missing_in_meta"
    MISSING_IN_OMS = "missing_in_oms"
    PENDING_PAYOUT = "pending_payout"


class PayoutStatus(StrEnum):
    BALANCED = "balanced"
    ADJUSTED = "adjusted"  # the difference is named by adjustment rows (quarantined transactions)
    AWAITING_TRANSACTIONS = "awaiting_transactions"  # within Meta's lag: transactions may follow
    UNBALANCED = "unbalanced"


MISMATCH_STATUSES = frozenset(
    {OrderStatus.AMOUNT_MISMATCH, OrderStatus.MISSING_IN_META, OrderStatus.MISSING_IN_OMS}
)


@dataclass(frozen=True)
class ReconcileSettings:
    #: Meta's transactions may lag a payout by up to 3 business days (orders.md §13.3).
    lag_business_days: int = 3
    #: Differences up to this (in major units) still count as matched; 0 = to the cent.
    tolerance: Decimal = ZERO
    #: Where Meta remits the tax as marketplace facilitator it keeps that tax, so the seller
    #: expects it neither in sales nor in refunds. Unconfirmed for every market: a setting.
    remitted_tax_paid_to_seller: bool = False


@dataclass(frozen=True)
class ExpectedOrder:
    """What the OMS says Meta should settle for one order (charged units only), in one currency.

    Amounts are positive: `items` before any discount, `seller_discount` / `meta_discount` the
    discounts by sponsor, `refunds` everything refunded (items, shipping and tax, buyer and Meta
    parts). `last_activity` is the day of the last shipment or refund, for Meta's lag.
    """

    order_id: str
    currency: str
    items: Decimal
    shipping: Decimal
    tax: Decimal
    seller_discount: Decimal
    meta_discount: Decimal
    refunds: Decimal
    merchant_order_id: str | None = None
    last_activity: date | None = None
    #: Tax given back with the refunds (the OMS records refunds before tax).
    refunded_tax: Decimal = ZERO

    def settled_refunds(self, tax_remitted: bool | None, settings: "ReconcileSettings") -> Decimal:
        """Refunds as they reduce the seller's settlement: with their tax when the seller had it."""
        if _meta_keeps_tax(tax_remitted, settings):
            return self.refunds
        return self.refunds + self.refunded_tax

    def gross(self, tax_remitted: bool | None, settings: "ReconcileSettings") -> Decimal:
        """What Meta should settle to the seller before fees."""
        tax = ZERO if _meta_keeps_tax(tax_remitted, settings) else self.tax
        return (
            self.items
            + self.shipping
            + tax
            - self.seller_discount
            - self.settled_refunds(tax_remitted, settings)
        )

    @property
    def charged(self) -> bool:
        return (self.items + self.shipping + self.tax) != ZERO


def _meta_keeps_tax(tax_remitted: bool | None, settings: "ReconcileSettings") -> bool:
    return bool(tax_remitted) and not settings.remitted_tax_paid_to_seller


@dataclass(frozen=True)
class OrderReconciliation:
    order_id: str
    merchant_order_id: str | None
    currency: str
    expected_items: Decimal
    expected_shipping: Decimal
    expected_tax: Decimal
    expected_seller_discount: Decimal
    expected_meta_discount: Decimal
    expected_refunds: Decimal
    expected_gross: Decimal
    meta_sales: Decimal
    meta_refunds: Decimal
    meta_other: Decimal
    meta_gross: Decimal
    meta_fees: Decimal
    meta_tax: Decimal
    meta_net: Decimal
    meta_paid_out: Decimal
    tax_remitted: bool | None
    difference: Decimal
    status: str
    reason: str | None
    transaction_count: int
    as_of_date: date


@dataclass(frozen=True)
class PayoutReconciliation:
    payout_reference_id: str
    payout_date: object  # datetime | None; kept loose so the staging JSON round-trips it
    payout_status: str | None
    currency: str
    payout_amount: Decimal
    transactions_net: Decimal
    adjustment_amount: Decimal
    difference: Decimal
    transaction_count: int
    status: str
    reason: str | None
    as_of_date: date


@dataclass(frozen=True)
class PayoutAdjustment:
    payout_reference_id: str
    adjustment_type: str
    amount: Decimal
    currency: str
    reason: str


@dataclass(frozen=True)
class DailySettlement:
    day: date
    currency: str
    sales_gross: Decimal = ZERO
    refunds_gross: Decimal = ZERO
    other_gross: Decimal = ZERO
    fees: Decimal = ZERO
    tax: Decimal = ZERO
    net: Decimal = ZERO
    pending_payout_net: Decimal = ZERO
    paid_out: Decimal = ZERO
    payout_count: int = 0
    transaction_count: int = 0
    order_count: int = 0


@dataclass(frozen=True)
class TaxSummary:
    period: str
    jurisdiction: str
    tax_category: str
    imposition: str
    currency: str
    tax_on_sales: Decimal
    tax_on_refunds: Decimal
    net_tax: Decimal
    remitted_by_meta: Decimal
    remitted_by_seller: Decimal
    transaction_count: int


@dataclass(frozen=True)
class ShopReconciliation:
    as_of_date: date
    orders: list[OrderReconciliation] = field(default_factory=list)
    payouts: list[PayoutReconciliation] = field(default_factory=list)
    adjustments: list[PayoutAdjustment] = field(default_factory=list)
    daily: list[DailySettlement] = field(default_factory=list)
    taxes: list[TaxSummary] = field(default_factory=list)

    @property
    def mismatch_rate(self) -> float:
        """Share of orders in a mismatch status; a ratio for the check, never money."""
        if not self.orders:
            return 0.0
        bad = sum(1 for order in self.orders if order.status in MISMATCH_STATUSES)
        return bad / len(self.orders)

    @property
    def unbalanced_payouts(self) -> list[PayoutReconciliation]:
        return [p for p in self.payouts if p.status == PayoutStatus.UNBALANCED]

    def status_counts(self) -> dict[str, int]:
        counts = {str(status): 0 for status in OrderStatus}
        for order in self.orders:
            counts[order.status] += 1
        return counts


# -- calendar --------------------------------------------------------------------------------------


def business_days_between(start: date, end: date) -> int:
    """Mon-Fri days in (start, end]; 0 when end <= start."""
    days, current = 0, start
    while current < end:
        current += timedelta(days=1)
        if current.weekday() < 5:
            days += 1
    return days


def trailing_window_start(day: date, lag_business_days: int) -> date:
    """The first day of the window that re-pulls Meta's lagging data for partition `day`."""
    current, remaining = day, lag_business_days
    while remaining > 0:
        current -= timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current


def within_lag(event_day: date | None, as_of: date, settings: ReconcileSettings) -> bool:
    if event_day is None:
        return False
    return business_days_between(event_day, as_of) <= settings.lag_business_days


# -- per order -------------------------------------------------------------------------------------


def reconcile_orders(
    expected: Iterable[ExpectedOrder],
    transactions: Iterable[TransactionRow],
    payments: Iterable[PaymentRow],
    payouts: Iterable[PayoutRow],
    as_of: date,
    settings: ReconcileSettings,
) -> list[OrderReconciliation]:
    by_order_txns: dict[str, list[TransactionRow]] = defaultdict(list)
    for txn in transactions:
        by_order_txns[txn.order_id].append(txn)
    remitted = _tax_remitted_by_order(payments)
    completed = completed_payout_refs(payouts)
    expected_by_id = {order.order_id: order for order in expected}

    rows = []
    for order_id in sorted(set(expected_by_id) | set(by_order_txns)):
        order = expected_by_id.get(order_id)
        txns = by_order_txns.get(order_id, [])
        if order is not None and not txns and not order.charged:
            continue  # nothing shipped, nothing to settle
        rows.append(
            _reconcile_order(
                order_id, order, txns, remitted.get(order_id), completed, as_of, settings
            )
        )
    return rows


def _tax_remitted_by_order(payments: Iterable[PaymentRow]) -> dict[str, bool | None]:
    remitted: dict[str, bool | None] = {}
    for payment in payments:
        if payment.tax_remitted is not None:
            remitted[payment.order_id] = remitted.get(payment.order_id) or payment.tax_remitted
    return remitted


def _reconcile_order(
    order_id: str,
    order: ExpectedOrder | None,
    txns: list[TransactionRow],
    tax_remitted: bool | None,
    completed_payouts: set[str],
    as_of: date,
    settings: ReconcileSettings,
) -> OrderReconciliation:
    currency = order.currency if order else txns[0].currency
    meta = _meta_totals(txns, completed_payouts)
    expected_gross = order.gross(tax_remitted, settings) if order else ZERO
    difference = meta["gross"] - expected_gross
    status, reason = _order_status(order, txns, difference, meta, currency, as_of, settings)
    zero_expected = order is None
    return OrderReconciliation(
        order_id=order_id,
        merchant_order_id=(order.merchant_order_id if order else None)
        or next((t.merchant_order_id for t in txns if t.merchant_order_id), None),
        currency=currency,
        expected_items=ZERO if zero_expected else order.items,
        expected_shipping=ZERO if zero_expected else order.shipping,
        expected_tax=ZERO if zero_expected else order.tax,
        expected_seller_discount=ZERO if zero_expected else order.seller_discount,
        expected_meta_discount=ZERO if zero_expected else order.meta_discount,
        expected_refunds=ZERO if zero_expected else order.settled_refunds(tax_remitted, settings),
        expected_gross=expected_gross,
        meta_sales=meta["sales"],
        meta_refunds=meta["refunds"],
        meta_other=meta["other"],
        meta_gross=meta["gross"],
        meta_fees=meta["fees"],
        meta_tax=meta["tax"],
        meta_net=meta["net"],
        meta_paid_out=meta["paid_out"],
        tax_remitted=tax_remitted,
        difference=difference,
        status=str(status),
        reason=reason,
        transaction_count=len(txns),
        as_of_date=as_of,
    )


def _meta_totals(txns: list[TransactionRow], completed_payouts: set[str]) -> dict[str, Decimal]:
    totals = dict.fromkeys(("sales", "refunds", "other", "fees", "tax", "net", "paid_out"), ZERO)
    for txn in txns:
        gross = txn.gross_amount
        if txn.transaction_type == "SALE":
            totals["sales"] += gross
        elif txn.transaction_type == "REFUND":
            totals["refunds"] -= gross  # refunds are shown positive, as money given back
        else:
            totals["other"] += gross
        totals["fees"] += txn.processing_fee
        totals["tax"] += txn.tax_amount
        totals["net"] += txn.net_amount
        if txn.payout_reference_id in completed_payouts:
            totals["paid_out"] += txn.net_amount
    totals["gross"] = totals["sales"] - totals["refunds"] + totals["other"]
    return totals


def _order_status(
    order: ExpectedOrder | None,
    txns: list[TransactionRow],
    difference: Decimal,
    meta: dict[str, Decimal],
    currency: str,
    as_of: date,
    settings: ReconcileSettings,
) -> tuple[OrderStatus, str | None]:
    if order is None:
        return OrderStatus.MISSING_IN_OMS, "Meta reported transactions for an order the OMS lacks"
    if other := {t.currency for t in txns} - {order.currency}:
        return OrderStatus.AMOUNT_MISMATCH, f"Meta paid in {sorted(other)}, OMS in {currency}"
    lagging = within_lag(order.last_activity, as_of, settings)
    if not txns:
        if lagging:
            return OrderStatus.PENDING_PAYOUT, "no Meta transaction yet; within Meta's lag"
        return OrderStatus.MISSING_IN_META, "charged in the OMS, no Meta transaction"
    if abs(difference) > settings.tolerance:
        if lagging:
            return OrderStatus.PENDING_PAYOUT, f"{difference} {currency} open; within Meta's lag"
        return OrderStatus.AMOUNT_MISMATCH, f"Meta gross differs by {difference} {currency}"
    if meta["paid_out"] != meta["net"]:
        return OrderStatus.PENDING_PAYOUT, f"{meta['net'] - meta['paid_out']} {currency} unpaid"
    return OrderStatus.MATCHED, None


# -- per payout ------------------------------------------------------------------------------------


def reconcile_payouts(
    payouts: Iterable[PayoutRow],
    transactions: Iterable[TransactionRow],
    quarantined: Iterable[Rejected],
    as_of: date,
    settings: ReconcileSettings,
) -> tuple[list[PayoutReconciliation], list[PayoutAdjustment]]:
    """Each payout against the sum of its transactions; a difference quarantined transactions
    explain becomes an adjustment row, so payout = transactions_net + adjustments always."""
    net_by_payout: dict[str, Decimal] = defaultdict(lambda: ZERO)
    count_by_payout: dict[str, int] = defaultdict(int)
    for txn in transactions:
        if txn.payout_reference_id:
            net_by_payout[txn.payout_reference_id] += txn.net_amount
            count_by_payout[txn.payout_reference_id] += 1
    return payouts_from_totals(
        payouts, net_by_payout, count_by_payout, quarantined, as_of, settings
    )


def payouts_from_totals(
    payouts: Iterable[PayoutRow],
    net_by_payout: dict[str, Decimal],
    count_by_payout: dict[str, int],
    quarantined: Iterable[Rejected],
    as_of: date,
    settings: ReconcileSettings,
) -> tuple[list[PayoutReconciliation], list[PayoutAdjustment]]:
    """`reconcile_payouts` from each payout's transaction net and count (summed elsewhere, e.g.
    in SQL over the loaded table)."""
    quarantined_by_payout: dict[str, Decimal] = defaultdict(lambda: ZERO)
    for reject in quarantined:
        if reject.payout_reference_id and reject.net_amount is not None:
            quarantined_by_payout[reject.payout_reference_id] += reject.net_amount

    rows, adjustments = [], []
    for payout in sorted(payouts, key=lambda p: p.payout_reference_id):
        ref = payout.payout_reference_id
        txn_net = net_by_payout.get(ref, ZERO)
        gap = payout.amount - txn_net
        adjustment = quarantined_by_payout.get(ref, ZERO)
        if adjustment:
            adjustments.append(
                PayoutAdjustment(
                    ref,
                    "quarantined_transactions",
                    adjustment,
                    payout.currency,
                    "net of transactions metasync quarantined (see finance_quarantine)",
                )
            )
        difference = gap - adjustment
        status, reason = _payout_status(payout, difference, adjustment, as_of, settings)
        rows.append(
            PayoutReconciliation(
                payout_reference_id=ref,
                payout_date=payout.payout_date,
                payout_status=payout.status,
                currency=payout.currency,
                payout_amount=payout.amount,
                transactions_net=txn_net,
                adjustment_amount=adjustment,
                difference=difference,
                transaction_count=count_by_payout.get(ref, 0),
                status=str(status),
                reason=reason,
                as_of_date=as_of,
            )
        )
    return rows, adjustments


def _payout_status(
    payout: PayoutRow,
    difference: Decimal,
    adjustment: Decimal,
    as_of: date,
    settings: ReconcileSettings,
) -> tuple[PayoutStatus, str | None]:
    if abs(difference) <= settings.tolerance:
        if adjustment:
            return PayoutStatus.ADJUSTED, f"{adjustment} {payout.currency} quarantined"
        return PayoutStatus.BALANCED, None
    payout_day = payout.payout_date.date() if payout.payout_date else None
    if payout_day is None or within_lag(payout_day, as_of, settings):
        return (
            PayoutStatus.AWAITING_TRANSACTIONS,
            f"{difference} {payout.currency} not yet explained; within Meta's lag",
        )
    return PayoutStatus.UNBALANCED, f"{difference} {payout.currency} not explained"


# -- settlement and tax ----------------------------------------------------------------------------


def completed_payout_refs(payouts: Iterable[PayoutRow]) -> frozenset[str]:
    """The references of the COMPLETED payouts: their transactions are paid out."""
    return frozenset(p.payout_reference_id for p in payouts if p.completed)


def daily_settlement(
    transactions: Iterable[TransactionRow], payouts: Iterable[PayoutRow]
) -> list[DailySettlement]:
    payouts = list(payouts)
    completed = completed_payout_refs(payouts)
    sums: dict[tuple[date, str], dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    counts: dict[tuple[date, str], dict[str, int]] = defaultdict(lambda: defaultdict(int))
    orders: dict[tuple[date, str], set[str]] = defaultdict(set)

    for txn in transactions:
        key = (txn.transaction_day, txn.currency)
        bucket = {"SALE": "sales_gross", "REFUND": "refunds_gross"}.get(
            txn.transaction_type, "other_gross"
        )
        sign = -1 if bucket == "refunds_gross" else 1
        sums[key][bucket] += sign * txn.gross_amount
        sums[key]["fees"] += txn.processing_fee
        sums[key]["tax"] += txn.tax_amount
        sums[key]["net"] += txn.net_amount
        if txn.payout_reference_id not in completed:
            sums[key]["pending_payout_net"] += txn.net_amount
        counts[key]["transaction_count"] += 1
        orders[key].add(txn.order_id)
    for payout in payouts:
        if payout.completed:
            key = (payout.payout_date.date(), payout.currency)
            sums[key]["paid_out"] += payout.amount
            counts[key]["payout_count"] += 1

    return [
        DailySettlement(
            day=day,
            currency=currency,
            **{name: value for name, value in sums[(day, currency)].items()},
            payout_count=counts[(day, currency)]["payout_count"],
            transaction_count=counts[(day, currency)]["transaction_count"],
            order_count=len(orders[(day, currency)]),
        )
        for day, currency in sorted(set(sums) | set(counts))
    ]


def tax_summary(
    transactions: Iterable[TransactionRow], payments: Iterable[PaymentRow]
) -> list[TaxSummary]:
    remitted = _tax_remitted_by_order(payments)
    sums: dict[tuple, dict[str, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    txn_keys: dict[tuple, set[str]] = defaultdict(set)
    for txn in transactions:
        period = txn.transaction_date.strftime("%Y-%m")
        for line in txn.taxes:
            key = (period, line.jurisdiction, line.tax_category, line.imposition, line.currency)
            side = "tax_on_sales" if line.tax_amount >= 0 else "tax_on_refunds"
            sums[key][side] += abs(line.tax_amount)
            sums[key]["net_tax"] += line.tax_amount
            payer = "remitted_by_meta" if remitted.get(txn.order_id) else "remitted_by_seller"
            sums[key][payer] += line.tax_amount
            txn_keys[key].add(txn.transaction_key)
    return [
        TaxSummary(
            *key,
            tax_on_sales=sums[key]["tax_on_sales"],
            tax_on_refunds=sums[key]["tax_on_refunds"],
            net_tax=sums[key]["net_tax"],
            remitted_by_meta=sums[key]["remitted_by_meta"],
            remitted_by_seller=sums[key]["remitted_by_seller"],
            transaction_count=len(txn_keys[key]),
        )
        for key in sorted(sums)
    ]


# -- everything for one shop -----------------------------------------------------------------------


def reconcile_shop(
    expected: Iterable[ExpectedOrder],
    transactions: Iterable[TransactionRow],
    payments: Iterable[PaymentRow],
    payouts: Iterable[PayoutRow],
    quarantined: Iterable[Rejected],
    as_of: date,
    settings: ReconcileSettings,
) -> ShopReconciliation:
    transactions, payments, payouts = list(transactions), list(payments), list(payouts)
    payout_rows, adjustments = reconcile_payouts(
        payouts, transactions, quarantined, as_of, settings
    )
    return ShopReconciliation(
        as_of_date=as_of,
        orders=reconcile_orders(expected, transactions, payments, payouts, as_of, settings),
        payouts=payout_rows,
        adjustments=adjustments,
        daily=daily_settlement(transactions, payouts),
        taxes=tax_summary(transactions, payments),
    )

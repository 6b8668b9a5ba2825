"""Reconciliation statuses, payout balance, settlement and tax, on plain rows."""

from datetime import date
from decimal import Decimal

from pipelines.finance.normalize import (
    normalize_payments,
    normalize_payouts,
    normalize_transactions,
)
from pipelines.finance.reconcile import (
    ExpectedOrder,
    ReconcileSettings,
    business_days_between,
    reconcile_shop,
    trailing_window_start,
)
from tests.unit.finance.factories import payment, payout, transaction

D = Decimal
SETTINGS = ReconcileSettings()
LATE = date(2026, 3, 20)  # well past Meta's lag for every event in these tests


def _expected(order_id: str, items="10.00", refunds="0", seller="0", meta="0", **kw):
    return ExpectedOrder(
        order_id=order_id,
        currency="USD",
        items=D(items),
        shipping=D(kw.get("shipping", "0")),
        tax=D(kw.get("tax", "0")),
        seller_discount=D(seller),
        meta_discount=D(meta),
        refunds=D(refunds),
        last_activity=kw.get("last_activity", date(2026, 3, 2)),
    )


def _run(expected, txns, payouts=(), payments=(), as_of=LATE):
    txn_rows, quarantined = normalize_transactions(txns)
    payout_rows, _ = normalize_payouts(payouts)
    return reconcile_shop(expected, txn_rows, payments, payout_rows, quarantined, as_of, SETTINGS)


def _status(result):
    return {row.order_id: (row.status, row.difference) for row in result.orders}


def test_statuses_cover_match_mismatch_missing_and_pending():
    result = _run(
        [_expected("paid"), _expected("short"), _expected("lost"), _expected("unpaid")],
        [
            transaction("paid", net="9.67", fee="-0.33", payout="P1"),
            transaction("short", net="8.67", fee="-0.33", payout="P1"),
            transaction("unknown-order", net="4.85", fee="-0.15", payout="P1"),
            transaction("unpaid", net="9.67", fee="-0.33", payout=None),
        ],
        payouts=[payout("P1", "23.19")],
    )
    assert _status(result) == {
        "paid": ("matched", D("0")),
        "short": ("amount_mismatch", D("-1.00")),
        "lost": ("missing_in_meta", D("-10.00")),
        "unknown-order": ("missing_in_oms", D("5.00")),
        "unpaid": ("pending_payout", D("0")),
    }
    assert result.mismatch_rate == 3 / 5


def test_meta_funded_discount_is_paid_by_meta_so_the_seller_expects_full_value():
    expected = _expected("o1", items="20.00", seller="2.00", meta="3.00", tax="1.60")
    result = _run([expected], [transaction("o1", net="19.00", fee="-0.60")], [payout("P1", "19")])
    (row,) = result.orders
    assert row.expected_gross == D("19.60") and row.status == "matched"


def test_partial_refund_reconciles_against_oms_refunds():
    result = _run(
        [_expected("o1", items="10.00", refunds="4.00")],
        [
            transaction("o1", net="9.67", fee="-0.33"),
            transaction("o1", "REFUND", net="-3.87", fee="0.13", day=3),
        ],
        [payout("P1", "5.80")],
    )
    (row,) = result.orders
    assert (row.meta_sales, row.meta_refunds, row.meta_fees) == (D("10"), D("4"), D("-0.20"))
    assert row.status == "matched"


def test_recent_shortfall_is_pending_not_a_mismatch():
    result = _run([_expected("o1", last_activity=date(2026, 3, 19))], [], as_of=LATE)
    assert _status(result) == {"o1": ("pending_payout", D("-10.00"))}


def test_unshipped_order_with_nothing_to_settle_is_left_out():
    result = _run([_expected("o1", items="0")], [])
    assert result.orders == []


def test_payout_balances_or_names_the_difference():
    result = _run(
        [_expected("o1")],
        [
            transaction("o1", net="9.67", payout="P1"),
            transaction("o1", "MYSTERY", net="1.00", payout="P1"),
            transaction("o1", net="9.67", payout="P2"),
        ],
        payouts=[payout("P1", "10.67"), payout("P2", "12.00")],
    )
    by_ref = {p.payout_reference_id: p for p in result.payouts}
    assert (by_ref["P1"].status, by_ref["P1"].adjustment_amount) == ("adjusted", D("1.00"))
    assert (by_ref["P2"].status, by_ref["P2"].difference) == ("unbalanced", D("2.33"))
    (adjustment,) = result.adjustments
    assert adjustment.payout_reference_id == "P1"
    assert [p.payout_reference_id for p in result.unbalanced_payouts] == ["P2"]


def test_recent_unbalanced_payout_awaits_transactions():
    result = _run([], [], payouts=[payout("P1", "5.00", day=19)], as_of=LATE)
    assert result.payouts[0].status == "awaiting_transactions"


def test_daily_settlement_sums_each_day_and_payouts():
    result = _run(
        [_expected("o1")],
        [
            transaction("o1", net="9.67", fee="-0.33", day=2, taxes=[("T", "CA", "0.60")]),
            transaction("o1", "REFUND", net="-4.84", fee="0.16", day=3, taxes=[("T", "CA", "0.3")]),
        ],
        payouts=[payout("P1", "4.83", day=5)],
    )
    by_day = {row.day.day: row for row in result.daily}
    assert (by_day[2].sales_gross, by_day[2].tax, by_day[2].net) == (D("10"), D("0.6"), D("9.67"))
    assert (by_day[3].refunds_gross, by_day[3].tax) == (D("5.00"), D("-0.3"))
    assert (by_day[5].paid_out, by_day[5].payout_count) == (D("4.83"), 1)


CAT = "FBMP_OTHER_TAXABLE"


def test_tax_summary_by_jurisdiction_category_and_period():
    payments, _ = normalize_payments("o1", [payment("pay1", items="10", tax="0.9", remitted=True)])
    result = _run(
        [_expected("o1")],
        [
            transaction("o1", taxes=[(CAT, "CA", "0.60"), ("X", "LA", "0.30")]),
            transaction("o1", "REFUND", net="-1", fee="0", taxes=[(CAT, "CA", "0.1")]),
            transaction("o2", taxes=[(CAT, "CA", "0.25")]),
        ],
        payments=payments,
    )
    ca = next(r for r in result.taxes if r.jurisdiction == "CA")
    expected = ("2026-03", D("0.85"), D("0.1"), D("0.75"))
    assert (ca.period, ca.tax_on_sales, ca.tax_on_refunds, ca.net_tax) == expected
    assert (ca.remitted_by_meta, ca.remitted_by_seller) == (D("0.50"), D("0.25"))


def test_business_day_window_skips_weekends():
    monday = date(2026, 3, 9)
    assert trailing_window_start(monday, 3) == date(2026, 3, 4)  # Wed, Thu, Fri back
    assert business_days_between(date(2026, 3, 6), monday) == 1


def test_tax_meta_remits_is_not_expected_by_the_seller_unless_configured():
    payments, _ = normalize_payments("o1", [payment("pay1", items="10", tax="0.8", remitted=True)])
    txn_rows, _ = normalize_transactions([transaction("o1", net="9.67", fee="-0.33")])
    payout_rows, _ = normalize_payouts([payout("P1", "9.67")])
    expected = [_expected("o1", tax="0.80")]

    kept = reconcile_shop(expected, txn_rows, payments, payout_rows, [], LATE, SETTINGS)
    assert (kept.orders[0].status, kept.orders[0].expected_gross) == ("matched", D("10.00"))

    paid = ReconcileSettings(remitted_tax_paid_to_seller=True)
    counted = reconcile_shop(expected, txn_rows, payments, payout_rows, [], LATE, paid)
    assert (counted.orders[0].status, counted.orders[0].difference) == (
        "amount_mismatch",
        D("-0.80"),
    )

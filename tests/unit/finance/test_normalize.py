"""Meta finance payloads become exact rows, or quarantine records with a reason."""

import json
from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.finance.money import MoneyError, to_minor
from pipelines.finance.normalize import (
    merge_transactions,
    normalize_payments,
    normalize_payouts,
    normalize_transactions,
)
from tests.conftest import REPO_ROOT
from tests.unit.finance.factories import payment, payout, transaction

SAMPLES = REPO_ROOT.parent / "shared" / "meta-api" / "samples" / "orders"


def _sample(name: str) -> dict:
    return json.loads(Path(SAMPLES / name).read_text())


def test_meta_payout_sample_loads_with_exact_amounts():
    rows, rejects = normalize_payouts(_sample("commerce_payouts.response.json")["data"])
    assert rejects == []
    assert [(r.payout_reference_id, r.amount) for r in rows] == [
        ("FBMPUSR5191ox2x", Decimal("0.10")),
        ("FBMPUSS5191u01g", Decimal("0.70")),
    ]
    assert all(r.completed for r in rows)


def test_refund_from_meta_sample_is_signed_and_its_tax_lines_are_negative():
    refund = _sample("payments.response.json")["data"][0]["transaction_details"]["data"][1]
    rows, rejects = normalize_transactions([refund | {"order_id": "o1"}])
    assert rejects == []
    (row,) = rows
    assert row.gross_amount == Decimal("-1.00")  # net -0.67 minus fee +0.33
    assert row.tax_amount == Decimal("-0.07")
    assert {line.jurisdiction: line.tax_amount for line in row.taxes} == {
        "CALIFORNIA": Decimal("-0.06"),
        "ALAMEDA": Decimal("-0.01"),
    }


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        (transaction("o1", "MYSTERY_BONUS"), "unknown transaction_type 'MYSTERY_BONUS'"),
        ({**transaction("o1"), "order_id": None}, "transaction without an order id"),
        ({**transaction("o1"), "net_payment_amount": None}, "without net_payment_amount"),
        (transaction("o1", net="1.234"), "more decimals than USD allows"),
        ({**transaction("o1"), "processing_fee": {"amount": 0.33, "currency": "USD"}}, "float"),
    ],
)
def test_payloads_metasync_cannot_read_are_quarantined_with_their_reason(payload, reason):
    rows, rejects = normalize_transactions([payload, transaction("ok")])
    assert [r.order_id for r in rows] == ["ok"]
    (reject,) = rejects
    assert reason in reject.reason
    assert reject.payload["transaction_type"] == payload["transaction_type"]


def test_quarantined_transaction_keeps_payout_and_net_for_the_payout_check():
    _, (reject,) = normalize_transactions([transaction("o1", "MYSTERY", net="2.50", payout="P9")])
    assert (reject.payout_reference_id, reject.net_amount) == ("P9", Decimal("2.50"))


def test_transaction_key_survives_meta_filling_in_the_payout_later():
    (early,), _ = normalize_transactions([transaction("o1", payout=None)])
    (late,), _ = normalize_transactions([transaction("o1", payout="P1")])
    assert early.transaction_key == late.transaction_key
    (merged,) = merge_transactions([early], [late])
    assert merged.payout_reference_id == "P1"


def test_two_identical_transactions_stay_two_rows():
    rows, _ = normalize_transactions([transaction("o1"), transaction("o1")])
    assert len({r.transaction_key for r in rows}) == 2


def test_meta_transaction_id_is_the_key_when_sent():
    (row,), _ = normalize_transactions([transaction("o1", txn_id="987")])
    assert row.transaction_key == "id:987"


def test_payment_with_promotion_allocations():
    (row,), rejects = normalize_payments("o1", [payment("pay1", items="40.00", tax="0.06")])
    assert rejects == []
    assert row.total_amount == Decimal("40.06")
    assert row.promotion_allocation_amount == Decimal("0.47")
    assert row.captured and row.tax_remitted


def test_payout_without_reference_is_quarantined():
    raw = payout("P1", "1.00") | {"payout_reference_id": None}
    rows, (reject,) = normalize_payouts([raw])
    assert rows == [] and "payout_reference_id" in reject.reason


def test_minor_units_follow_the_currency_exponent():
    assert to_minor(Decimal("12.30"), "EUR") == 1230
    assert to_minor(Decimal("1200"), "JPY") == 1200
    assert to_minor(Decimal("-1.005"), "KWD") == -1005
    with pytest.raises(MoneyError):
        to_minor(Decimal("1.5"), "JPY")

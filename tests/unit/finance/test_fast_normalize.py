"""The fast (no pydantic) normalisation gives exactly the pydantic path's row, or steps aside so
the pydantic path decides (and quarantines with its reason)."""

from collections import Counter
from copy import deepcopy

from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.finance.normalize import (
    _fast_payment_row,
    _fast_transaction_row,
    _payment_row,
    _transaction_row,
    normalize_payments,
    normalize_transactions,
)
from tests.unit.finance.factories import money, transaction

AMOUNTS = st.sampled_from(
    ["9.67", "-0.33", "5", "0.001", "1e2", " 1.00", "NaN", "12.3", "-0", 7, None, "abc"]
)
CURRENCIES = st.sampled_from(["USD", "usd", "JPY", "EUR", "US", 5])
DATES = st.sampled_from(
    ["2026-03-02T10:00:00+00:00", "2026-03-02T23:30:00-05:00", "2026-03-02T10:00:00Z",
     "2026-03-02T10:00:00", "2026-03-02 10:00:00+00:00", "yesterday", 1772445600, None]
)  # fmt: skip
KINDS = st.sampled_from(["SALE", "REFUND", "CHARGEBACK", "LOYALTY_BONUS", "", None])


def _pydantic_transaction(raw):
    try:
        return _transaction_row(raw, Counter())
    except Exception:  # noqa: BLE001 - any refusal: the fast path must have stepped aside
        return "refused"


@settings(max_examples=300, deadline=None)
@given(
    net=AMOUNTS, fee=AMOUNTS, currency=CURRENCIES, fee_currency=CURRENCIES, date=DATES,
    kind=KINDS, tax=AMOUNTS, txn_id=st.sampled_from(["t1", "", None, "x" * 80]),
    order_id=st.sampled_from(["o1", "", None, 5]), extra=st.sampled_from([None, "items", "x"]),
    edge=st.sampled_from(["data", "list", "bare", "none"]),
)  # fmt: skip
def test_fast_transaction_equals_pydantic_or_steps_aside(
    net, fee, currency, fee_currency, date, kind, tax, txn_id, order_id, extra, edge
):
    raw = transaction("o1", txn_id="t1", taxes=[("C", "CALIFORNIA", "0.80")])
    raw.update(transaction_type=kind, transaction_date=date, order_id=order_id, id=txn_id)
    raw["net_payment_amount"] = {"amount": net, "currency": currency}
    raw["processing_fee"] = {"amount": fee, "currency": fee_currency}
    details = raw["tax_details"]["data"]
    details[0]["item_tax_amount"] = {"amount": tax, "currency": currency}
    raw["tax_details"] = {"data": details, "list": details, "bare": details[0], "none": None}[edge]
    if extra == "items":
        raw["items"] = {"data": [{"id": "i1", "quantity": 1}]}
    elif extra == "x":
        raw["unexpected"] = 1
    fast = _fast_transaction_row(deepcopy(raw))
    if fast is not None:
        assert fast == _pydantic_transaction(raw)
        assert fast.transaction_date == _pydantic_transaction(raw).transaction_date


def test_common_shapes_take_the_fast_path_and_bad_rows_are_still_quarantined():
    good = transaction("o1", txn_id="t1", taxes=[("C", "CALIFORNIA", "0.80")])
    unknown = transaction("o2", "LOYALTY_BONUS", txn_id="t2")
    assert _fast_transaction_row(good) is not None
    rows, rejects = normalize_transactions([good, unknown])
    assert [r.order_id for r in rows] == ["o1"]
    assert len(rejects) == 1 and "LOYALTY_BONUS" in rejects[0].reason


@settings(max_examples=200, deadline=None)
@given(
    items=AMOUNTS, tax=AMOUNTS, currency=CURRENCIES, remitted=st.sampled_from([True, None, "x"]),
    shipments=st.sampled_from([None, {"data": [{"id": "s1"}]}, [{"external_shipment_id": "e"}],
                               {"data": [{"id": 3}]}, {"paging": {}}]),
    details=st.sampled_from([None, {"data": [{"transaction_type": "SALE"}]}, {"data": [{}]},
                             {"data": [{"transaction_type": "SALE", "net_payment_amount": 1}]}]),
    allocations=st.booleans(),
)  # fmt: skip
def test_fast_payment_equals_pydantic_or_steps_aside(
    items, tax, currency, remitted, shipments, details, allocations
):
    raw = {
        "id": "pay-1",
        "subtotal": {"items": {"amount": items, "currency": currency}, "shipping": money("0")},
        "tax": {"amount": tax, "currency": currency},
        "tax_remitted": remitted,
        "total_amount": money("10.80"),
        "shipments": shipments,
        "transaction_details": details,
        "items": {"data": [{"id": "i1", "quantity": 1}]},
    }
    if allocations:
        raw["items"]["data"][0]["promotion_allocations"] = [
            {"promotion_id": "p", "allocation_amount": money("0.47")}
        ]
    fast = _fast_payment_row("o1", deepcopy(raw))
    if fast is not None:
        assert fast == _payment_row("o1", raw)
        assert normalize_payments("o1", [raw])[0] == [fast]


def test_common_payment_shape_takes_the_fast_path():
    raw = {
        "id": "pay-1",
        "subtotal": {"items": money("10.00"), "shipping": money("0")},
        "tax": money("0.80"),
        "tax_remitted": False,
        "total_amount": money("10.80"),
        "shipments": {"data": [{"id": "s1"}]},
        "transaction_details": {"data": [{"transaction_type": "SALE"}]},
        "items": {"data": [{"id": "i1", "quantity": 1}]},
    }
    fast = _fast_payment_row("o1", raw)
    assert fast is not None and fast == _payment_row("o1", raw)
    assert (str(fast.total_amount), fast.shipment_ids, fast.captured) == ("10.80", ("s1",), True)

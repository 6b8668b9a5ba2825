"""The column-wise reads (`columnar.py`) give exactly the rows and rejects of the per-row path
(`normalize_transactions` + `merge_transactions`, `normalize_payments`), and exact minor units."""

from collections import Counter
from copy import deepcopy

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipelines.finance.columnar import (
    PaymentColumns,
    TransactionColumns,
    decimal_column,
    minor_units,
    moments,
)
from pipelines.finance.normalize import (
    merge_transactions,
    normalize_payments,
    normalize_transactions,
)
from tests.unit.finance.factories import money, transaction
from tests.unit.finance.test_fast_normalize import AMOUNTS, CURRENCIES, DATES, KINDS


def _payload(net, fee, currency, date, kind, tax, txn_id, payout, extra):
    raw = transaction("o1", txn_id=txn_id, taxes=[("C", "CALIFORNIA", "0.80")], payout=payout)
    raw.update(transaction_type=kind, transaction_date=date)
    raw["net_payment_amount"] = {"amount": net, "currency": currency}
    raw["processing_fee"] = {"amount": fee, "currency": currency}
    raw["tax_details"]["data"][0]["item_tax_amount"] = {"amount": tax, "currency": currency}
    if extra:
        raw["unexpected"] = 1
    return raw


def _comparable(rejects):
    """Rejects with their amounts as text (a refused 'NaN' amount is never equal to itself)."""
    return [(r.source, r.record_key, r.reason, r.payout_reference_id, str(r.net_amount),
             r.currency) for r in rejects]  # fmt: skip


PAYLOADS = st.builds(
    _payload, net=AMOUNTS, fee=AMOUNTS, currency=CURRENCIES, date=DATES, kind=KINDS, tax=AMOUNTS,
    txn_id=st.sampled_from(["t1", "t2", "t3", None, "", "x" * 80]),
    payout=st.sampled_from(["P1", None, ""]), extra=st.booleans(),
)  # fmt: skip


@settings(max_examples=200, deadline=None)
@given(fetches=st.lists(st.lists(PAYLOADS, max_size=6), min_size=1, max_size=3))
def test_columns_give_the_rows_and_rejects_of_the_per_row_path(fetches):
    expected_rows, expected_rejects = [], []
    for fetch in fetches:
        rows, rejects = normalize_transactions(deepcopy(fetch))
        expected_rows.append(rows)
        expected_rejects.extend(rejects)
    columns = TransactionColumns()
    for fetch in fetches:
        columns.extend(deepcopy(fetch))
    batch = columns.finish()
    assert batch.rows() == merge_transactions(*expected_rows, ordered=False)
    assert _comparable(batch.rejects) == _comparable(expected_rejects)
    assert len(batch) == len(batch.keys()) == len(set(batch.keys()))


def test_plain_amounts_become_exact_minor_units_and_others_are_flagged():
    texts = ["12.3", "-0.33", "5", "-0", None, "0.001", "1e2", "١٢", "1200", "1.5"]
    currencies = ["USD"] * 6 + ["USD", "USD", "JPY", "JPY"]
    minor, bad = minor_units(texts, currencies)
    assert minor[:5].tolist() == [1230, -33, 500, 0, 0]
    assert minor[8] == 1200
    assert bad.tolist() == [False] * 5 + [True, True, True, False, True]
    assert decimal_column(np.array([1230, -33, 0]), 2).to_pylist()[1] == __import__(
        "decimal"
    ).Decimal("-0.33")


def test_moments_are_utc_microseconds_and_impossible_dates_step_aside():
    micros, bad = moments(
        ["2026-03-02T23:30:00.5-05:00", "2026-02-30T10:00:00+00:00", "2026-03-02T10:00:00"]
    )
    assert bad.tolist() == [False, True, True]
    assert micros[0] == (1772512200 * 1_000_000) + 500_000


@settings(max_examples=100, deadline=None)
@given(
    items=AMOUNTS, tax=AMOUNTS, currency=CURRENCIES,
    remitted=st.sampled_from([True, False, None, "x"]),
    shipments=st.sampled_from([None, {"data": [{"id": "s1"}]}, [{"external_shipment_id": "é"}],
                               {"data": [{"id": 3}]}, {"data": [{"id": 'a"b'}, {"id": "c"}]}]),
    allocations=st.booleans(), not_a_dict=st.booleans(),
)  # fmt: skip
def test_payment_columns_give_the_rows_and_rejects_of_the_per_row_path(
    items, tax, currency, remitted, shipments, allocations, not_a_dict
):
    raw = {
        "id": "pay-1",
        "subtotal": {"items": {"amount": items, "currency": currency}, "shipping": money("0")},
        "tax": {"amount": tax, "currency": currency},
        "tax_remitted": remitted,
        "total_amount": money("10.80"),
        "shipments": shipments,
        "transaction_details": {"data": [{"transaction_type": "SALE"}]},
        "items": {"data": [{"id": "i1", "quantity": 1}]},
    }
    if allocations:
        raw["items"]["data"][0]["promotion_allocations"] = [
            {"promotion_id": "p", "allocation_amount": money("0.47")}
        ]
    good = deepcopy(raw) | {"id": "pay-0", "subtotal": None, "tax": money("1.00")}
    raws = [good, raw, {"id": 5}] if not_a_dict else [good, raw]
    expected_rows, expected_rejects = normalize_payments("o1", deepcopy(raws))
    columns = PaymentColumns()
    columns.add("o1", deepcopy(raws))
    batch = columns.finish()
    assert batch.rows() == expected_rows
    assert batch.rejects == expected_rejects
    assert len(batch) == len(expected_rows)


def test_hash_keys_of_id_less_payloads_count_per_fetch():
    twice = [transaction("o1", txn_id=None), transaction("o1", txn_id=None)]
    columns = TransactionColumns()
    columns.extend(deepcopy(twice))
    columns.extend(deepcopy(twice))
    keys = [row.transaction_key for row in columns.finish().rows()]
    expected = merge_transactions(
        normalize_transactions(deepcopy(twice))[0],
        normalize_transactions(deepcopy(twice))[0],
        ordered=False,
    )
    assert keys == [row.transaction_key for row in expected] and len(keys) == 2
    assert Counter(k.rsplit(":", 1)[1] for k in keys) == Counter({"0": 1, "1": 1})


@settings(max_examples=50, deadline=None)
@given(
    st.lists(
        st.tuples(st.booleans(), st.booleans(), st.booleans(), st.booleans(),
                  st.integers(-(10**12), 10**12), st.integers(-(10**9), 10**9),
                  st.sampled_from(["USD", "JPY", "KWD", "EUR"])),
        max_size=30,
    )
)  # fmt: skip
def test_reasons_by_column_equal_the_reasons_row_by_row(rows):
    from pipelines.finance.setbased import _reasons, _reasons_by_row

    columns = [np.array([row[i] for row in rows], dtype=object if i == 6 else None)
               for i in range(7)]  # fmt: skip
    flags = [np.asarray(c, dtype=bool) for c in columns[:4]]
    numbers = [np.asarray(c, dtype=np.int64) for c in columns[4:6]]
    args = (*flags, *numbers, columns[6])
    assert _reasons(*args).tolist() == _reasons_by_row(*args).tolist()


@given(st.datetimes(min_value=__import__("datetime").datetime(1900, 1, 1),
                    max_value=__import__("datetime").datetime(2200, 1, 1)))  # fmt: skip
def test_utc_texts_are_isoformat_of_the_moment(moment):
    from datetime import UTC

    from pipelines.finance.columnar import _micros, utc_texts

    moment = moment.replace(tzinfo=UTC)
    text = utc_texts(np.array([_micros(moment)])).to_pylist()[0]
    assert __import__("datetime").datetime.fromisoformat(text) == moment

"""The sandbox's allocation arithmetic (orders.md §11.3), exact in minor units."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sandbox.orders.allocation import (
    allocate_by_value,
    business_days_after,
    cumulative_rounded,
    cumulative_share,
    format_minor,
    to_minor,
)


@given(
    total=st.integers(min_value=0, max_value=10**7),
    weights=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=10),
)
def test_allocation_sums_exactly_and_stays_within_a_cent_of_proportional(total, weights):
    shares = allocate_by_value(total, weights)
    assert sum(shares) == total
    whole = sum(weights)
    for share, weight in zip(shares, weights, strict=True):
        assert abs(Decimal(share) - Decimal(total) * weight / whole) < 1


def test_leftover_cents_go_to_largest_remainder_then_earlier_line():
    assert allocate_by_value(100, [1, 1, 1]) == [34, 33, 33]
    assert allocate_by_value(101, [156, 72]) == [69, 32]


@given(
    total=st.integers(min_value=0, max_value=10**6),
    units=st.integers(min_value=1, max_value=50),
    data=st.data(),
)
def test_cumulative_events_add_up_to_the_line_share(total, units, data):
    """However units are split into events, the event shares sum to the line's share."""
    done, parts = 0, []
    while done < units:
        step = data.draw(st.integers(min_value=1, max_value=units - done))
        parts.append(cumulative_share(total, units, done, done + step))
        done += step
    assert sum(parts) == total and all(p >= 0 for p in parts)


def test_documented_examples():
    """Meta's examples: 1.00 over 3 units -> 33, 33, 34; 0.54 over 2 -> 27 and 27."""
    assert [cumulative_share(100, 3, k, k + 1) for k in range(3)] == [33, 33, 34]
    assert [cumulative_share(54, 2, k, k + 1) for k in range(2)] == [27, 27]


def test_rounded_slices_sum_to_total():
    assert sum(cumulative_rounded(250, 10, a, b) for a, b in [(0, 1), (1, 6), (6, 10)]) == 250


def test_minor_units_round_trip_and_refuse_sub_cent():
    assert to_minor("12.30", "EUR") == 1230 and format_minor(1230, "EUR") == "12.30"
    assert to_minor("1200", "JPY") == 1200 and format_minor(1200, "JPY") == "1200"
    with pytest.raises(ValueError):
        to_minor("0.001", "USD")


def test_business_days_skip_weekends():
    from datetime import date

    assert business_days_after(date(2026, 1, 2), 3) == date(2026, 1, 7)  # Fri -> Wed

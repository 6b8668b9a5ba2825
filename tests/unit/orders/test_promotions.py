"""Discount allocation and refund arithmetic: exact to the minor unit, whatever the inputs."""

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pipelines.orders.promotions import (
    Discount,
    Granularity,
    OrderLine,
    PromotionError,
    Sponsor,
    allocate_largest_remainder,
    cumulative_share,
    from_minor,
    price_order,
    refundable_amount,
    remaining_refundable,
    to_minor,
)

weights_st = st.lists(st.integers(min_value=0, max_value=10_000_00), min_size=1, max_size=12)


@given(total=st.integers(min_value=0, max_value=1_000_000), weights=weights_st)
def test_largest_remainder_shares_sum_exactly_to_the_discount(total, weights):
    """Whatever the line values, the shares add up to the discount and none is negative."""
    if sum(weights) == 0:
        weights = [*weights[:-1], 1]
    shares = allocate_largest_remainder(total, weights)
    assert sum(shares) == total
    assert all(share >= 0 for share in shares)
    # No share strays more than one unit from its exact proportional value.
    for share, weight in zip(shares, weights, strict=True):
        exact = Decimal(total * weight) / Decimal(sum(weights))
        assert abs(Decimal(share) - exact) < 1


def test_largest_remainder_gives_leftover_cents_to_the_largest_fractions_then_earlier_lines():
    """100 over three equal lines: 34/33/33 (tie goes to the first line)."""
    assert allocate_largest_remainder(100, [1, 1, 1]) == [34, 33, 33]
    # 10 over 1:2 is 3.33 + 6.67: the larger fraction (second line) gets the leftover cent.
    assert allocate_largest_remainder(10, [1, 2]) == [3, 7]


def test_cumulative_share_matches_metas_documented_example():
    """orders.md §11.3: D=100c over 3 units, one per event -> 33, 33, 34."""
    steps = [cumulative_share(100, k, 3) - cumulative_share(100, k - 1, 3) for k in (1, 2, 3)]
    assert steps == [33, 33, 34]


def _order(quantities, unit_prices, discount, sponsor=Sponsor.SELLER):
    lines = [
        OrderLine(f"i{n}", f"SKU-{n}", q, Decimal(p))
        for n, (q, p) in enumerate(zip(quantities, unit_prices, strict=True))
    ]
    discounts = [Discount("p1", Decimal(discount), Granularity.ORDER_LEVEL, sponsor)]
    return price_order(lines, discounts, currency="EUR")


def test_order_level_discount_is_spread_by_line_value_and_item_level_stays_on_its_item():
    item_level = Discount(
        "p0", Decimal("3.00"), Granularity.ITEM_LEVEL, Sponsor.SELLER, line_id="a"
    )
    lines = [
        OrderLine("a", "A", 1, Decimal("20.00"), item_discounts=(item_level,)),
        OrderLine("b", "B", 2, Decimal("10.00")),
    ]
    order_level = Discount("p1", Decimal("10.00"), Granularity.ORDER_LEVEL, Sponsor.SELLER)
    free_shipping = Discount("p2", Decimal("4.90"), Granularity.SHIPPING, Sponsor.META)
    priced = price_order(
        lines, [item_level, order_level, free_shipping], currency="EUR", shipping_charged=Decimal(0)
    )
    assert [line.order_discount_total for line in priced.lines] == [Decimal("5.00")] * 2
    assert priced.line("a").item_discount_total == Decimal("3.00")
    assert priced.line("b").item_discount_total == Decimal(0)
    assert priced.shipping.is_free
    assert priced.order_discount_total == Decimal("10.00")


def test_a_discount_bigger_than_the_order_is_refused():
    with pytest.raises(PromotionError):
        _order([1], ["5.00"], "5.01")


prices_st = st.lists(
    st.tuples(st.integers(min_value=1, max_value=6), st.integers(min_value=1, max_value=50_000)),
    min_size=1,
    max_size=6,
)


def _order_with_drawn_discount(lines, data):
    """The order of (quantity, unit price in cents) lines with an order-level discount drawn
    between nothing and the whole order; returns the priced order and the discount in cents."""
    gross = sum(q * p for q, p in lines)
    discount_minor = data.draw(st.integers(min_value=0, max_value=gross))
    priced = _order(
        [q for q, _ in lines], [str(from_minor(p, "EUR")) for _, p in lines],
        str(from_minor(discount_minor, "EUR")),
    )  # fmt: skip
    return priced, discount_minor


@given(lines=prices_st, data=st.data())
def test_allocations_sum_exactly_to_each_order_discount(lines, data):
    priced, discount_minor = _order_with_drawn_discount(lines, data)
    total = sum(to_minor(line.order_discount_total, "EUR") for line in priced.lines)
    assert total == discount_minor
    assert all(line.net >= 0 for line in priced.lines)


@given(lines=prices_st, data=st.data())
def test_refunding_one_unit_at_a_time_returns_exactly_what_was_paid(lines, data):
    """Repeated partial refunds never drift by a cent, and none exceeds what is left to refund."""
    priced, _ = _order_with_drawn_discount(lines, data)
    for line in priced.lines:
        refunded_qty, refunded = 0, Decimal(0)
        while refunded_qty < line.quantity:
            step = data.draw(st.integers(min_value=1, max_value=line.quantity - refunded_qty))
            amount = refundable_amount(
                line, quantity=step, already_refunded_quantity=refunded_qty, currency="EUR"
            )
            left = remaining_refundable(line, refunded_amount=refunded, currency="EUR")
            assert Decimal(0) <= amount <= left
            refunded += amount
            refunded_qty += step
        assert refunded == line.net
        assert remaining_refundable(line, refunded_amount=refunded, currency="EUR") == 0


def test_meta_funded_discounts_do_not_reduce_what_the_seller_refunds():
    """Meta claws its own share back; the seller refunds the full value (orders.md §9.3)."""
    priced = _order([2], ["10.00"], "4.00", sponsor=Sponsor.META)
    line = priced.lines[0]
    assert refundable_amount(line, quantity=2, already_refunded_quantity=0, currency="EUR") == (
        Decimal("20.00")
    )
    assert refundable_amount(
        line, quantity=2, already_refunded_quantity=0, currency="EUR", include_meta_funded=True
    ) == Decimal("16.00")


def test_refunding_more_units_than_ordered_is_refused():
    line = _order([2], ["10.00"], "1.00").lines[0]
    with pytest.raises(PromotionError):
        refundable_amount(line, quantity=2, already_refunded_quantity=1, currency="EUR")


def test_minor_units_follow_the_currency():
    assert to_minor(Decimal("1500"), "JPY") == 1500
    assert to_minor(Decimal("1.234"), "KWD") == 1234
    with pytest.raises(PromotionError):
        to_minor(Decimal("1.234"), "EUR")

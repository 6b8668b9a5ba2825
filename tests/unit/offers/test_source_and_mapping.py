"""The store-discount CSV contract and its mapping to Meta offer rows."""

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pipelines.offers.mapping import OfferSettings, deactivated, offer_row, row_hash
from pipelines.offers.source import DiscountType, parse_discounts
from resources.meta.offers import TargetGranularity, offer_money

BASE = {"code": "X", "starts_at": "2026-01-01T00:00:00+00:00"}


def parse(**row):
    return parse_discounts([BASE | row], "EUR")


@pytest.mark.parametrize(
    ("row", "reason"),
    [
        ({"type": "percent", "value": "0"}, "1 to 100"),
        ({"type": "percent", "value": "12.5"}, "1 to 100"),
        ({"type": "fixed", "value": "5.001", "currency": "EUR"}, "more than two decimals"),
        ({"type": "fixed", "value": "5.00"}, "currency is required"),
        ({"type": "fixed", "value": "5.00", "currency": "USD"}, "not the shop's currency"),
        ({"type": "free_shipping", "value": "10"}, "takes no value"),
        ({"type": "bxgy", "buy_quantity": "2"}, "get_quantity"),
        ({"type": "percent", "value": "10", "starts_at": "2026-01-01T00:00:00"}, "UTC offset"),
        ({"type": "percent", "value": "10", "ends_at": "2025-01-01T00:00:00+00:00"}, "after"),
        ({"type": "coupon"}, "type must be one of"),
        ({"type": "percent", "value": "10", "code": "HAS SPACE"}, "letters, digits"),
    ],
)
def test_rows_breaking_the_contract_are_rejected_with_a_reason(row, reason):
    discounts, rejects = parse(**row)
    assert discounts == []
    [reject] = rejects
    assert reason in reject.reason and reject.row_number == 2


def test_duplicate_codes_are_rejected_case_insensitively():
    rows = [BASE | {"type": "percent", "value": "10"}, BASE | {"code": "x", "type": "percent",
                                                                "value": "5"}]  # fmt: skip
    discounts, rejects = parse_discounts(rows, "EUR")
    assert [d.code for d in discounts] == ["X"] and rejects[0].row_number == 3


def test_fixed_discount_maps_to_an_order_level_fixed_amount_in_money_string_form():
    [discount], _ = parse(type="fixed", value="5", currency="EUR", min_subtotal="30",
                          coupon="yes", retailer_ids="B|A")  # fmt: skip
    assert discount.amount == Decimal("5") and discount.type == DiscountType.FIXED
    row = offer_row(discount, "EUR").to_feed_row()
    assert (row["fixed_amount_off"], row["min_subtotal"]) == ("5.00 EUR", "30.00 EUR")
    assert (row["application_type"], row["coupon_codes"]) == ("BUYER_APPLIED", "X")
    assert (row["target_selection"], row["target_product_retailer_ids"]) == (
        "SPECIFIC_PRODUCTS", "A,B",
    )  # fmt: skip
    assert row["target_granularity"] == "ORDER_LEVEL"


def test_free_shipping_granularity_is_a_setting_and_ending_changes_the_hash():
    [discount], _ = parse(type="free_shipping")
    doc = offer_row(discount, "EUR")
    plugin = offer_row(discount, "EUR", OfferSettings(TargetGranularity.ORDER_LEVEL))
    assert (doc.target_granularity, plugin.target_granularity) == ("ITEM_LEVEL", "ORDER_LEVEL")
    assert doc.to_feed_row()["percent_off"] == "100"
    ended = deactivated(doc, datetime(2026, 2, 1, tzinfo=UTC))
    assert ended.to_feed_row()["end_date_time"] == str(
        int(datetime(2026, 2, 1, tzinfo=UTC).timestamp())
    )
    assert row_hash(ended) != row_hash(doc) and row_hash(doc) == row_hash(
        offer_row(discount, "EUR")
    )


def test_offer_money_refuses_sub_cent_amounts_and_floats():
    assert offer_money(Decimal("30.99"), "usd") == "30.99 USD"
    with pytest.raises(ValueError):
        offer_money(Decimal("0.001"), "USD")
    with pytest.raises(TypeError):
        offer_money(30.99, "USD")  # type: ignore[arg-type]

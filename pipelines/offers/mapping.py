"""Store discounts as Meta offers (orders.md §12.1). Pure.

    row = offer_row(discount, currency="EUR")

| store type    | Meta offer                                                                   |
|---------------|------------------------------------------------------------------------------|
| percent       | PERCENTAGE, LINE_ITEM, ITEM_LEVEL (every target unit gets the percent)       |
| fixed         | FIXED_AMOUNT, LINE_ITEM, ORDER_LEVEL (once across the order's target items)  |
| free_shipping | PERCENTAGE 100, SHIPPING, ITEM_LEVEL per the docs (the Woo plugin sends      |
|               | ORDER_LEVEL: a setting), every shipping option type                          |
| bxgy          | PERCENTAGE (value, default 100), min_quantity = buy, target_quantity = get   |

`coupon` = yes -> BUYER_APPLIED with coupon_codes [code]; else AUTOMATIC_AT_CHECKOUT. Listed
retailer_ids -> SPECIFIC_PRODUCTS with target_product_retailer_ids; none -> ALL_CATALOG_PRODUCTS.
Order-level, BXGY and API offer sync are capabilities Meta gates per seller (§12).
"""

import hashlib
import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from pipelines.offers.source import DiscountType, StoreDiscount
from resources.meta.offers import (
    ApplicationType,
    OfferRow,
    TargetGranularity,
    TargetSelection,
    TargetType,
    ValueType,
)


@dataclass(frozen=True)
class OfferSettings:
    free_shipping_granularity: TargetGranularity = TargetGranularity.ITEM_LEVEL
    shipping_option_types: tuple[str, ...] = ("STANDARD", "RUSH", "EXPEDITED")


def offer_row(discount: StoreDiscount, currency: str, settings: OfferSettings = OfferSettings()):
    """The OFFER feed row for a store discount."""
    common = {
        "offer_id": discount.code,
        "title": discount.title,
        "currency": currency,
        "start_date_time": discount.starts_at,
        "end_date_time": discount.ends_at,
        "min_subtotal": discount.min_subtotal,
        "application_type": ApplicationType.BUYER_APPLIED
        if discount.coupon
        else ApplicationType.AUTOMATIC_AT_CHECKOUT,
        "coupon_codes": (discount.code,) if discount.coupon else (),
        "target_selection": TargetSelection.SPECIFIC_PRODUCTS
        if discount.retailer_ids
        else TargetSelection.ALL_CATALOG_PRODUCTS,
        "target_product_retailer_ids": tuple(sorted(discount.retailer_ids)),
    }
    if discount.type == DiscountType.PERCENT:
        return OfferRow(
            **common, value_type=ValueType.PERCENTAGE, percent_off=discount.percent,
            target_granularity=TargetGranularity.ITEM_LEVEL,
        )  # fmt: skip
    if discount.type == DiscountType.FIXED:
        return OfferRow(
            **common, value_type=ValueType.FIXED_AMOUNT, fixed_amount_off=discount.amount,
            target_granularity=TargetGranularity.ORDER_LEVEL,
        )  # fmt: skip
    if discount.type == DiscountType.FREE_SHIPPING:
        # Shipping offers target shipping options, never products.
        common |= {
            "target_selection": TargetSelection.ALL_CATALOG_PRODUCTS,
            "target_product_retailer_ids": (),
        }
        return OfferRow(
            **common, value_type=ValueType.PERCENTAGE, percent_off=100,
            target_type=TargetType.SHIPPING,
            target_shipping_option_types=settings.shipping_option_types,
            target_granularity=settings.free_shipping_granularity,
        )  # fmt: skip
    return OfferRow(
        **common, value_type=ValueType.PERCENTAGE, percent_off=discount.percent,
        target_granularity=TargetGranularity.ITEM_LEVEL,
        min_quantity=discount.buy_quantity, target_quantity=discount.get_quantity,
    )  # fmt: skip


def deactivated(row: OfferRow, at: datetime) -> OfferRow:
    """The same offer ending at `at` (at the earliest one second after it starts: Meta wants the
    end after the start). Offers are ended, not deleted: past orders name them."""
    end = max(at, row.start_date_time + timedelta(seconds=1))
    return row.model_copy(update={"end_date_time": end})


def row_hash(row: OfferRow) -> str:
    """A hash of exactly what the feed row says, to tell a changed offer from an unchanged one."""
    text = json.dumps(row.to_feed_row(), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()

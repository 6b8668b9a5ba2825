"""Realistic orders from a seeded RNG: same seed, same orders (ids aside).

Several lines with catalog-like prices, quantities, tax rates of a jurisdiction, a shipping
option, and now and then an item-level offer, an order-level offer, free shipping or a
Buy-X-Get-Y pair of lines, each seller- or Meta-funded.
"""

import random
from decimal import Decimal

from sandbox.orders.models import LineSpec, OrderDiscountSpec, OrderSpec

# (jurisdiction, tax rate): US states marketplace-facilitator style; "VAT" for other currencies.
US_JURISDICTIONS = (
    ("CALIFORNIA", Decimal("0.0725")),
    ("WASHINGTON", Decimal("0.065")),
    ("NEW_YORK", Decimal("0.04")),
    ("TEXAS", Decimal("0.0625")),
)
VAT_JURISDICTIONS = (("GERMANY", Decimal("0.19")), ("FRANCE", Decimal("0.20")))
CATEGORIES = ("FBMP_OTHER_TAXABLE", "FBMP_CLOTHING", "FBMP_ELECTRONICS")
SHIPPING = (("STANDARD", 499), ("RUSH", 999), ("STANDARD", 0))
NAMES = ("Ada Lovelace", "Alan Turing", "Grace Hopper", "Edsger Dijkstra", "Barbara Liskov")


def generate_order_specs(
    count: int, seed: int, currency: str, retailer_ids: list[str] | None = None
) -> list[OrderSpec]:
    rng = random.Random(seed)
    catalog = retailer_ids or [f"SKU-{n:04d}" for n in range(1, 41)]
    prices = {rid: rng.choice((999, 1499, 1999, 2450, 3900, 5999, 8900, 12000)) for rid in catalog}
    return [_one_order(rng, catalog, prices, currency, n) for n in range(count)]


def _one_order(rng, catalog, prices, currency, number) -> OrderSpec:
    jurisdictions = US_JURISDICTIONS if currency == "USD" else VAT_JURISDICTIONS
    jurisdiction, rate = rng.choice(jurisdictions)
    picked = rng.sample(catalog, k=min(len(catalog), rng.randint(1, 4)))
    lines = [
        LineSpec(
            retailer_id=rid,
            quantity=rng.randint(1, 3),
            unit_price=prices[rid],
            product_name=f"Product {rid}",
            tax_rate=rate,
            tax_category=rng.choice(CATEGORIES),
        )
        for rid in picked
    ]
    sponsor = "facebook" if rng.random() < 0.15 else "merchant"
    if rng.random() < 0.3:
        line = rng.choice(lines)
        line.item_discount_per_unit = line.unit_price // 10
        line.item_discount_sponsor = sponsor
        line.item_discount_name = "10% off"
    if rng.random() < 0.1:
        lines.append(_buy_x_get_y(lines[0]))
    discounts = []
    if rng.random() < 0.25:
        value = sum((ln.unit_price - ln.item_discount_per_unit) * ln.quantity for ln in lines)
        discounts.append(
            OrderDiscountSpec(
                amount=min(value, rng.choice((500, 1000, 1501))),
                sponsor=sponsor,
                campaign_name="Order offer",
                coupon_code=rng.choice((None, "WELCOME")),
            )
        )
    shipping_name, shipping_price = rng.choice(SHIPPING)
    free = sponsor if shipping_price and rng.random() < 0.2 else None
    name = rng.choice(NAMES)
    return OrderSpec(
        lines=lines,
        shipping_name=shipping_name,
        shipping_price=shipping_price,
        free_shipping_sponsor=free,
        order_discounts=discounts,
        channel=rng.choice(("facebook", "instagram")),
        buyer={
            "name": name,
            "email": f"buyer{number}x{rng.randint(1000, 9999)}@marketplace.facebook.com",
            "email_remarketing_option": rng.random() < 0.3,
        },
        shipping_address={
            "name": name,
            "street1": f"{rng.randint(1, 999)} Main St",
            "city": "Springfield",
            "state": "CA",
            "postal_code": f"{rng.randint(10000, 99999)}",
            "country": "US" if currency == "USD" else "DE",
        },
        tax_remitted=currency == "USD",
        jurisdiction=jurisdiction,
    )


def _buy_x_get_y(base: LineSpec) -> LineSpec:
    """The 'get' line of a Buy-X-Get-Y offer: the same product, one unit, free."""
    return LineSpec(
        retailer_id=base.retailer_id,
        quantity=1,
        unit_price=base.unit_price,
        product_name=base.product_name,
        tax_rate=base.tax_rate,
        tax_category=base.tax_category,
        product_id=None,
        item_discount_per_unit=base.unit_price,
        item_discount_name="Buy one get one free",
    )

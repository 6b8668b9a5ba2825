"""Meta's money arithmetic for orders, in integer minor units (cents), as the sandbox applies it.

    allocate_by_value(100, [300, 100])     -> [75, 25]   order-level discount across lines
    cumulative_share(100, units=3, before=1, now=2) -> 33 units 1..2 of a 1.00 line share

Across lines (order creation): each line gets floor(D x value / total); the leftover cents go one
by one to the lines with the largest fractional parts, ties to the earlier line (orders.md §11.3:
Meta does not document this rule; it is our stated assumption). Within a line (each fulfilment
or cancellation event): cumulative truncation, floor(D x k / Q) after k of Q units, so the last
unit takes the remainder (documented).
"""

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 currencies without minor units; everything else has two decimals.
ZERO_DECIMAL_CURRENCIES = frozenset({"JPY", "KRW", "VND", "CLP", "ISK", "HUF", "TWD", "UGX"})


def minor_exponent(currency: str) -> int:
    return 0 if currency.upper() in ZERO_DECIMAL_CURRENCIES else 2


def to_minor(amount: Decimal | str, currency: str) -> int:
    """An exact decimal amount as integer minor units; refuses fractions of a minor unit."""
    scaled = Decimal(str(amount)).scaleb(minor_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise ValueError(f"{amount} {currency} has more decimals than the currency allows")
    return int(scaled)


def from_minor(units: int, currency: str) -> Decimal:
    exponent = minor_exponent(currency)
    return Decimal(units).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


def format_minor(units: int, currency: str) -> str:
    """Meta's decimal string in major units: "12.30" (always the currency's decimals)."""
    return str(from_minor(units, currency))


def allocate_by_value(total: int, weights: list[int]) -> list[int]:
    """Split `total` minor units across lines in proportion to `weights` (largest remainder)."""
    if total < 0 or any(w < 0 for w in weights):
        raise ValueError("allocation needs a non-negative total and weights")
    whole = sum(weights)
    if not weights or total == 0:
        return [0] * len(weights)
    if whole == 0:
        raise ValueError("cannot allocate a discount over lines worth nothing")
    shares = [total * w // whole for w in weights]
    remainders = [total * w % whole for w in weights]
    leftover = total - sum(shares)
    # Largest remainder first; the sort is stable, so ties go to the earlier line.
    order = sorted(range(len(weights)), key=lambda i: -remainders[i])
    for index in order[:leftover]:
        shares[index] += 1
    return shares


def cumulative_share(total: int, units: int, before: int, now: int) -> int:
    """The part of `total` (spread over `units`) that falls to units before+1..now (floor)."""
    if not 0 <= before <= now <= units or units == 0:
        raise ValueError(f"units {before}..{now} out of 0..{units}")
    return total * now // units - total * before // units


def rounded_share(total: int, part: int, whole: int) -> int:
    """total x part / whole, rounded half up (tax follows units and refunded amounts)."""
    if whole == 0:
        return 0
    exact = Decimal(total) * Decimal(part) / Decimal(whole)
    return int(exact.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def cumulative_rounded(total: int, whole: int, before: int, now: int) -> int:
    """Half-up cumulative share of `total` for the slice before..now of `whole`, so the slices
    always add up to exactly `total` once `now` reaches `whole`."""
    return rounded_share(total, now, whole) - rounded_share(total, before, whole)


def tax_on(base: int, rate: Decimal) -> int:
    """Tax in minor units of a base in minor units at a rate (0.0725 for 7.25%), half up."""
    return int((Decimal(base) * rate).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def business_days_after(day: date, count: int) -> date:
    """The date `count` business days (Mon-Fri) after `day`."""
    current = day
    remaining = count
    while remaining > 0:
        current += timedelta(days=1)
        if current.weekday() < 5:
            remaining -= 1
    return current

"""Exact money helpers: minor units per ISO 4217 currency, and sums that never mix currencies.

    to_minor(Decimal("12.30"), "EUR")   # 1230
    to_minor(Decimal("1200"), "JPY")    # 1200

An amount finer than its currency's minor unit is an error, never rounded silently.
"""

from decimal import Decimal

# ISO 4217 minor-unit exponents that differ from 2. Meta pays out in a handful of currencies;
# anything not listed here has two decimals.
_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip

ZERO = Decimal("0")


class MoneyError(ValueError):
    """An amount that cannot be stored exactly (too many decimals, wrong type, mixed currency)."""


def exponent(currency: str) -> int:
    return _EXPONENTS.get(currency.upper(), 2)


def to_minor(amount: Decimal, currency: str) -> int:
    """The amount in the currency's minor units; refuses amounts finer than the minor unit."""
    if not isinstance(amount, Decimal):
        raise MoneyError(f"money must be Decimal, got {type(amount).__name__}")
    scaled = amount.scaleb(exponent(currency))
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} {currency} has more decimals than {currency} allows")
    return int(scaled)


def money_columns(name: str, amount: Decimal, currency: str) -> dict[str, object]:
    """`{name: amount, name_minor: minor}` ready for an insert."""
    return {name: amount, f"{name}_minor": to_minor(amount, currency)}

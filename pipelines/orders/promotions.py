"""Discounts on Meta orders: who funds them, which line carries them, what a refund returns.

    lines = [OrderLine("i1", "SKU-1", 2, Decimal("10.00")), OrderLine("i2", "SKU-2", 1, ...)]
    priced = price_order(lines, [Discount("p1", Decimal("5.00"), Granularity.ORDER_LEVEL,
                                          Sponsor.SELLER)], currency="EUR")
    priced.lines[0].net               # what the buyer paid for line i1, after its share of p1
    refundable_amount(priced.lines[0], quantity=1, already_refunded_quantity=0, currency="EUR")

Meta's rules (orders.md §11): an item-level discount is already inside `price_per_unit`, so it
stays on its item; an order-level discount is split across the lines it applies to by their
relative value, in minor units. Meta does not document how the leftover cents of that split are
placed, so we use the largest-remainder method (ties go to the earlier line): it is exact (the
shares always sum to the discount) and deterministic. Inside one line, Meta allocates a discount
over units with cumulative truncation (`floor(D * k / Q)` after k units); refunds use the same
rule, so refunding a line one unit at a time returns exactly what was paid for it, never a cent
more or less in total.

All amounts are Decimal in major units at the boundary and integers in minor units inside.
"""

from dataclasses import dataclass, field
from decimal import ROUND_HALF_EVEN, Decimal
from enum import StrEnum

# ISO 4217 minor-unit exponents that are not 2. Every other code uses 2.
_MINOR_UNIT_EXPONENTS = {
    "BIF": 0, "CLP": 0, "DJF": 0, "GNF": 0, "ISK": 0, "JPY": 0, "KMF": 0, "KRW": 0, "PYG": 0,
    "RWF": 0, "UGX": 0, "UYI": 0, "VND": 0, "VUV": 0, "XAF": 0, "XOF": 0, "XPF": 0,
    "BHD": 3, "IQD": 3, "JOD": 3, "KWD": 3, "LYD": 3, "OMR": 3, "TND": 3,
}  # fmt: skip


class Sponsor(StrEnum):
    """Who pays for a discount: the seller, or Meta (Meta pays the seller the difference)."""

    SELLER = "seller"
    META = "meta"

    @classmethod
    def from_meta(cls, value: str | None) -> "Sponsor":
        """Meta sends `merchant` / `facebook` (lowercase); anything but facebook is the seller's."""
        return cls.META if (value or "").lower() == "facebook" else cls.SELLER


class Granularity(StrEnum):
    ITEM_LEVEL = "item_level"
    ORDER_LEVEL = "order_level"
    SHIPPING = "shipping"


class PromotionError(ValueError):
    """A discount that cannot be applied as given (wrong currency, bigger than its base)."""


def minor_exponent(currency: str) -> int:
    return _MINOR_UNIT_EXPONENTS.get(currency.upper(), 2)


def to_minor(amount: Decimal, currency: str) -> int:
    """Major units to an exact integer of minor units; refuses amounts finer than the currency."""
    scaled = amount.scaleb(minor_exponent(currency))
    if scaled != scaled.to_integral_value():
        raise PromotionError(f"{amount} {currency} has more decimals than the currency allows")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    exponent = minor_exponent(currency)
    return Decimal(minor).scaleb(-exponent).quantize(Decimal(1).scaleb(-exponent))


@dataclass(frozen=True)
class Discount:
    """One applied promotion as Meta reports it (`promotion_details`)."""

    promotion_id: str
    amount: Decimal
    granularity: Granularity
    sponsor: Sponsor
    campaign_name: str = ""
    coupon_code: str | None = None
    offer_id: str | None = None  # Meta's `retailer_id` of the promotion: the seller's offer id
    applied_after_tax: bool = False
    line_id: str | None = None  # the line an item-level discount belongs to


@dataclass(frozen=True)
class OrderLine:
    """A line as Meta sold it: `unit_price` is already net of item-level discounts."""

    line_id: str
    retailer_id: str
    quantity: int
    unit_price: Decimal
    item_discounts: tuple[Discount, ...] = ()


@dataclass(frozen=True)
class Allocation:
    promotion_id: str
    sponsor: Sponsor
    amount: Decimal


@dataclass(frozen=True)
class PricedLine:
    line_id: str
    retailer_id: str
    quantity: int
    unit_price: Decimal
    gross: Decimal  # unit_price x quantity: after item-level, before order-level discounts
    item_discount_total: Decimal  # already inside unit_price; kept for reporting
    allocations: tuple[Allocation, ...] = ()

    @property
    def order_discount_total(self) -> Decimal:
        return sum((a.amount for a in self.allocations), Decimal(0))

    def funded_by(self, sponsor: Sponsor) -> Decimal:
        return sum((a.amount for a in self.allocations if a.sponsor == sponsor), Decimal(0))

    @property
    def net(self) -> Decimal:
        """What this line costs after every order-level discount (whoever funds it)."""
        return self.gross - self.order_discount_total


@dataclass(frozen=True)
class PricedShipping:
    charged: Decimal  # what the buyer paid for shipping, after shipping discounts
    discounts: tuple[Discount, ...] = ()

    @property
    def discount_total(self) -> Decimal:
        return sum((d.amount for d in self.discounts), Decimal(0))

    @property
    def is_free(self) -> bool:
        return self.charged == 0 and self.discount_total > 0


@dataclass(frozen=True)
class PricedOrder:
    currency: str
    lines: tuple[PricedLine, ...]
    shipping: PricedShipping
    discounts: tuple[Discount, ...] = field(default_factory=tuple)

    @property
    def items_gross(self) -> Decimal:
        return sum((line.gross for line in self.lines), Decimal(0))

    @property
    def order_discount_total(self) -> Decimal:
        return sum((line.order_discount_total for line in self.lines), Decimal(0))

    def line(self, line_id: str) -> PricedLine:
        for line in self.lines:
            if line.line_id == line_id:
                return line
        raise KeyError(f"no line {line_id!r} in this order")


def allocate_largest_remainder(total: int, weights: list[int]) -> list[int]:
    """Split `total` minor units in proportion to `weights`, exactly, by largest remainder.

    Each share is floor(total * w / sum(w)); the leftover units go one each to the shares with
    the largest fractional part, ties to the earlier position. The result always sums to total.
    """
    if total < 0:
        raise PromotionError("cannot allocate a negative amount")
    weight_sum = sum(weights)
    if not weights or weight_sum <= 0:
        if total == 0:
            return [0] * len(weights)
        raise PromotionError("a discount needs at least one line with a positive value")
    if any(w < 0 for w in weights):
        raise PromotionError("line values must not be negative")

    shares = [total * w // weight_sum for w in weights]
    remainders = [total * w % weight_sum for w in weights]
    leftover = total - sum(shares)
    order = sorted(range(len(weights)), key=lambda i: (-remainders[i], i))
    for index in order[:leftover]:
        shares[index] += 1
    return shares


def cumulative_share(total: int, units: int, quantity: int) -> int:
    """Meta's per-line rule: after `units` of `quantity`, floor(total * units / quantity)."""
    if not 0 <= units <= quantity:
        raise PromotionError(f"{units} units is outside 0..{quantity}")
    return total * units // quantity


def price_order(
    lines: list[OrderLine],
    discounts: list[Discount],
    *,
    currency: str,
    shipping_charged: Decimal = Decimal(0),
) -> PricedOrder:
    """Place every discount: item-level on its line, order-level over lines, shipping apart."""
    order_level = [d for d in discounts if d.granularity == Granularity.ORDER_LEVEL]
    shipping_discounts = tuple(d for d in discounts if d.granularity == Granularity.SHIPPING)
    gross_minor = [to_minor(line.unit_price, currency) * line.quantity for line in lines]

    allocations: list[list[Allocation]] = [[] for _ in lines]
    for discount in order_level:
        discount_minor = to_minor(discount.amount, currency)
        if discount_minor > sum(gross_minor):
            raise PromotionError(
                f"order-level discount {discount.promotion_id} ({discount.amount} {currency}) "
                "is bigger than the lines it applies to"
            )
        for index, share in enumerate(allocate_largest_remainder(discount_minor, gross_minor)):
            if share:
                allocations[index].append(
                    Allocation(discount.promotion_id, discount.sponsor, from_minor(share, currency))
                )

    priced = tuple(
        PricedLine(
            line_id=line.line_id,
            retailer_id=line.retailer_id,
            quantity=line.quantity,
            unit_price=line.unit_price,
            gross=from_minor(gross, currency),
            item_discount_total=sum((d.amount for d in line.item_discounts), Decimal(0)),
            allocations=tuple(allocations[index]),
        )
        for index, (line, gross) in enumerate(zip(lines, gross_minor, strict=True))
    )
    return PricedOrder(
        currency=currency,
        lines=priced,
        shipping=PricedShipping(charged=shipping_charged, discounts=shipping_discounts),
        discounts=tuple(discounts),
    )


def paid_for_units(
    line: PricedLine, units: int, currency: str, *, include_meta_funded: bool = False
) -> Decimal:
    """What the first `units` units of a line cost, net of their order-level discount share.

    By default only seller-funded discounts reduce the amount: Meta pays the seller its own
    discounts back and claws its share back from a refund itself (orders.md §9.3, §11.4).
    """
    unit_minor = to_minor(line.unit_price, currency)
    discount_minor = sum(
        to_minor(a.amount, currency)
        for a in line.allocations
        if include_meta_funded or a.sponsor == Sponsor.SELLER
    )
    share = cumulative_share(discount_minor, units, line.quantity)
    return from_minor(unit_minor * units - share, currency)


def refundable_amount(
    line: PricedLine,
    *,
    quantity: int,
    already_refunded_quantity: int,
    currency: str,
    include_meta_funded: bool = False,
) -> Decimal:
    """The pre-tax amount to refund for `quantity` more units of a line.

    Refunds walk the line's units in order, so the sum of any sequence of partial refunds of a
    line equals what was paid for the whole line, to the cent.
    """
    if quantity <= 0:
        raise PromotionError("refund at least one unit")
    upto = already_refunded_quantity + quantity
    if upto > line.quantity:
        raise PromotionError(
            f"line {line.line_id}: refunding {quantity} after {already_refunded_quantity} "
            f"exceeds the {line.quantity} ordered"
        )
    return paid_for_units(
        line, upto, currency, include_meta_funded=include_meta_funded
    ) - paid_for_units(
        line, already_refunded_quantity, currency, include_meta_funded=include_meta_funded
    )


def remaining_refundable(
    line: PricedLine, *, refunded_amount: Decimal, currency: str, include_meta_funded: bool = False
) -> Decimal:
    """What is left to refund on a line after earlier refunds (by amount or by quantity)."""
    paid = paid_for_units(line, line.quantity, currency, include_meta_funded=include_meta_funded)
    return max(paid - refunded_amount, Decimal(0))


def round_money(amount: Decimal, currency: str) -> Decimal:
    """Round to the currency's minor unit (banker's rounding); for computed, not parsed, values."""
    return amount.quantize(Decimal(1).scaleb(-minor_exponent(currency)), rounding=ROUND_HALF_EVEN)

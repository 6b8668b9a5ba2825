"""The finance backend: transactions and payouts derived from what happened to orders.

A captured payment (a shipment) becomes a SALE transaction, a refund a REFUND transaction.
Each transaction settles a fixed number of business days after its date (`payout_lag_days`); all
transactions of a shop settling on the same day form one payout, which exists once the sandbox
clock has passed its date. So the sum of a payout's transactions equals the payout amount by
construction, and a test moves the clock to see payouts appear.

Seller side of a SALE: items net of merchant-funded order-level discounts, plus shipping, plus
tax unless Meta remits it (tax_remitted). Meta-funded discounts are paid to the seller by Meta
(orders.md §11.4), so they do not reduce the seller's amount. The processing fee is a rate of the
seller amount (negative on SALE, given back pro rata on REFUND).
"""

import hashlib
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time
from decimal import Decimal
from fractions import Fraction
from typing import Any

from sandbox.core.state import SandboxState
from sandbox.orders.allocation import business_days_after, rounded_share
from sandbox.orders.generator import VAT_JURISDICTIONS

VAT_JURISDICTION_NAMES = frozenset(name for name, _ in VAT_JURISDICTIONS)

DOMAIN = "finance"


@dataclass
class FinanceConfig:
    processing_fee_rate: Decimal = Decimal("0.05")
    # Business days between a transaction and the payout that carries it (Meta: "up to 3").
    payout_lag_days: int = 3
    payout_hour_utc: int = 12


@dataclass
class TransactionRecord:
    id: str
    shop_id: str
    transaction_type: str
    transaction_date: datetime
    currency: str
    order_id: str | None
    merchant_order_id: str | None
    gross: int  # seller amount before the fee, minor units (negative for refunds)
    processing_fee: int  # negative on SALE, positive on REFUND
    tax: int
    tax_rate: str | None
    tax_details: list[dict[str, Any]] = field(default_factory=list)
    items: list[dict[str, Any]] = field(default_factory=list)
    payment_id: str | None = None
    refund_id: str | None = None

    @property
    def net(self) -> int:
        return self.gross + self.processing_fee


@dataclass
class PayoutView:
    reference_id: str
    payout_date: datetime
    currency: str
    amount: int
    transactions: list[TransactionRecord]


@dataclass
class FinanceBackend:
    config: FinanceConfig = field(default_factory=FinanceConfig)
    transactions: list[TransactionRecord] = field(default_factory=list)

    # -- recording -----------------------------------------------------------------------------

    def record_sale(self, state: SandboxState, order, payment) -> TransactionRecord:
        seller = payment.items_subtotal - payment.merchant_discount + payment.shipping
        if not order.tax_remitted:
            seller += payment.tax
        fee = -rounded_share(seller, int(self.config.processing_fee_rate * 10_000), 10_000)
        record = TransactionRecord(
            id=state.new_id(),
            shop_id=order.shop_id,
            transaction_type="SALE",
            transaction_date=payment.captured_at or state.now(),
            currency=order.currency,
            order_id=order.id,
            merchant_order_id=order.merchant_order_id,
            gross=seller,
            processing_fee=fee,
            tax=payment.tax,
            tax_rate=_rate_text(order, [i for i, _, _ in payment.items]),
            tax_details=_tax_details(order, [(i, q) for i, q, _ in payment.items], payment.tax),
            items=[_item_row(order, item_id, q) for item_id, q, _ in payment.items],
            payment_id=payment.id,
        )
        self.transactions.append(record)
        return record

    def record_refund(self, state: SandboxState, order, refund) -> TransactionRecord:
        refunded = refund.subtotal + refund.shipping - refund.deductions
        if not order.tax_remitted:
            refunded += refund.tax
        fee_back = rounded_share(refunded, int(self.config.processing_fee_rate * 10_000), 10_000)
        record = TransactionRecord(
            id=state.new_id(),
            shop_id=order.shop_id,
            transaction_type="REFUND",
            transaction_date=refund.created,
            currency=order.currency,
            order_id=order.id,
            merchant_order_id=order.merchant_order_id,
            gross=-refunded,
            processing_fee=fee_back,
            tax=-refund.tax,
            tax_rate=_rate_text(order, [line[0] for line in refund.items]),
            tax_details=_tax_details(
                order, [(line[0], line[1] or 0) for line in refund.items], -refund.tax
            ),
            items=[_item_row(order, line[0], line[1] or 0) for line in refund.items],
            refund_id=refund.id,
        )
        self.transactions.append(record)
        return record

    def inject(
        self,
        state: SandboxState,
        shop_id: str,
        transaction_type: str,
        amount: int,
        order_id: str | None,
    ) -> TransactionRecord:
        """An odd transaction (unknown type, no order) so quarantine paths can be tested."""
        shop = state.shops[shop_id]
        record = TransactionRecord(
            id=state.new_id(),
            shop_id=shop_id,
            transaction_type=transaction_type,
            transaction_date=state.now(),
            currency=shop.currency,
            order_id=order_id,
            merchant_order_id=None,
            gross=amount,
            processing_fee=0,
            tax=0,
            tax_rate=None,
        )
        self.transactions.append(record)
        return record

    # -- payouts -------------------------------------------------------------------------------

    def settlement_time(self, record: TransactionRecord) -> datetime:
        day = business_days_after(record.transaction_date.date(), self.config.payout_lag_days)
        return datetime.combine(day, time(self.config.payout_hour_utc), tzinfo=UTC)

    def payouts(self, state: SandboxState, shop_id: str) -> list[PayoutView]:
        """Every payout already made (settlement time passed), newest first."""
        now = state.now()
        groups: dict[tuple[datetime, str], list[TransactionRecord]] = {}
        for record in self.transactions:
            if record.shop_id != shop_id:
                continue
            settles = self.settlement_time(record)
            if settles <= now:
                groups.setdefault((settles, record.currency), []).append(record)
        views = [
            PayoutView(
                reference_id=payout_reference(shop_id, settles.date(), currency),
                payout_date=settles,
                currency=currency,
                amount=sum(r.net for r in records),
                transactions=records,
            )
            for (settles, currency), records in groups.items()
        ]
        return sorted(views, key=lambda v: v.payout_date, reverse=True)

    def payout_reference_of(self, state: SandboxState, record: TransactionRecord) -> str | None:
        settles = self.settlement_time(record)
        if settles > state.now():
            return None
        return payout_reference(record.shop_id, settles.date(), record.currency)

    def shop_transactions(self, shop_id: str) -> list[TransactionRecord]:
        rows = [r for r in self.transactions if r.shop_id == shop_id]
        return sorted(rows, key=lambda r: (r.transaction_date, r.id), reverse=True)


def payout_reference(shop_id: str, day: date, currency: str) -> str:
    """Deterministic bank reference of a shop's payout of one day, shaped like Meta's."""
    digest = hashlib.sha256(f"{shop_id}:{day.isoformat()}:{currency}".encode()).hexdigest()
    return f"FBMP{currency[:2]}{digest[:11]}"


def finance_backend(state: SandboxState) -> FinanceBackend:
    backend = state.domains.get(DOMAIN)
    if backend is None:
        backend = state.domains[DOMAIN] = FinanceBackend()
    return backend


def _rate_text(order, item_ids: list[str]) -> str | None:
    rates = sorted({order.item(i).tax_rate for i in item_ids})
    return ";".join(_percent(r) for r in rates) or None


def _percent(rate: Decimal) -> str:
    text = f"{(rate * 100).normalize():f}"
    return f"{text}%"


def _tax_details(order, lines: list[tuple[str, int]], tax: int) -> list[dict[str, Any]]:
    """One row per tax category (and rate) of the lines, the transaction's tax split between
    them in proportion to each line's estimated tax (largest remainders take the odd minor
    units), so a refund's tax lands in the categories its sale's did. Categories left with no
    tax are left out, unless no line carries any."""
    weights: dict[tuple[str, Decimal], Fraction] = {}
    for item_id, quantity in lines:
        item = order.item(item_id)
        share = Fraction(item.estimated_tax * quantity, item.quantity) if item.quantity else 0
        key = (item.tax_category, item.tax_rate)
        weights[key] = weights.get(key, Fraction(0)) + share
    if not weights:
        return []
    amounts = _split(abs(tax), weights)
    if not any(amounts.values()):
        amounts = {min(weights): abs(tax)}
    imposition = "VAT" if order.jurisdiction in VAT_JURISDICTION_NAMES else "Sales and Use Tax"
    return [
        {
            "tax_category": category,
            "jurisdiction": order.jurisdiction,
            "imposition": imposition,
            "item_tax_rate": _percent(rate),
            "item_tax_amount": amount if tax >= 0 else -amount,
        }
        for (category, rate), amount in sorted(amounts.items())
        if amount or len(amounts) == 1
    ]


def _split(total: int, weights: dict[Any, Fraction]) -> dict[Any, int]:
    """`total` minor units in proportion to `weights` (largest remainder; all to the first key
    when every weight is zero)."""
    whole = sum(weights.values())
    if not whole:
        return {key: total if index == 0 else 0 for index, key in enumerate(sorted(weights))}
    exact = {key: total * weight / whole for key, weight in weights.items()}
    amounts = {key: int(value) for key, value in exact.items()}
    left = total - sum(amounts.values())
    by_remainder = sorted(exact, key=lambda key: (-(exact[key] - amounts[key]), key))
    for key in by_remainder[:left]:
        amounts[key] += 1
    return amounts


def _item_row(order, item_id: str, quantity: int) -> dict[str, Any]:
    item = order.item(item_id)
    return {
        "id": item.retailer_id,  # Meta gives the retailer id here (orders.md §13.3)
        "product_id": item.product_id,
        "product_name": item.product_name,
        "quantity": quantity,
        "price_per_unit": item.unit_price,
    }

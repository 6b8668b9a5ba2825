"""Meta finance payloads -> plain rows, or a quarantine record saying why a payload was refused.

    rows, rejects = normalize_transactions(api.transactions(start, end))
    payouts, rejects = normalize_payouts(api.payouts(start, end))

Pure: no database, no HTTP. Each input is a pydantic model from `resources.meta.orders_models`
(or its raw dict); nothing Meta sends is dropped: it becomes a row or a `Rejected` with a reason.
"""

import hashlib
import json
import re
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, NamedTuple

from pydantic import BaseModel, ValidationError

from pipelines.finance.money import ZERO, MoneyError, exponent, to_minor
from resources.meta.orders_models import OrderPayment, Payout, Transaction, TransactionType

# Transaction types metasync understands, and the direction each moves the seller's money
# (tax lines are signed with it: Meta prints refund tax as a positive amount).
DIRECTION = {
    TransactionType.SALE: 1,
    TransactionType.REFUND: -1,
    TransactionType.CHARGEBACK: -1,
    TransactionType.CHARGEBACK_FEE: -1,
    TransactionType.CHARGEBACK_REVERSAL: 1,
    TransactionType.GOODWILL_TRANSFER: 1,
}


@dataclass(frozen=True)
class Rejected:
    """A payload metasync could not load, kept whole with the reason (finance_quarantine)."""

    source: str
    record_key: str
    reason: str
    payload: dict[str, Any]
    payout_reference_id: str | None = None
    net_amount: Decimal | None = None
    currency: str | None = None


@dataclass(frozen=True)
class PayoutRow:
    payout_reference_id: str
    payout_date: datetime | None
    status: str | None
    amount: Decimal
    currency: str
    transfer_id: str | None

    @property
    def completed(self) -> bool:
        return (self.status or "").upper() == "COMPLETED" and self.payout_date is not None


class TaxLine(NamedTuple):
    tax_category: str
    jurisdiction: str
    imposition: str
    item_tax_rate: str | None
    tax_amount: Decimal
    currency: str


class TransactionRow(NamedTuple):
    transaction_key: str
    meta_transaction_id: str | None
    transaction_type: str
    transaction_date: datetime
    order_id: str
    merchant_order_id: str | None
    payout_reference_id: str | None
    transfer_id: str | None
    currency: str
    gross_amount: Decimal
    processing_fee: Decimal
    net_amount: Decimal
    tax_amount: Decimal
    tax_rate: str | None
    taxes: tuple[TaxLine, ...] = ()

    @property
    def transaction_day(self) -> date:
        """The UTC day (Meta may print an offset; windows, settlement and tax periods are UTC)."""
        return self.transaction_date.astimezone(UTC).date()


class AllocationRow(NamedTuple):
    item_id: str
    promotion_id: str
    allocation_amount: Decimal
    currency: str


class PaymentRow(NamedTuple):
    payment_id: str
    order_id: str
    items_amount: Decimal
    shipping_amount: Decimal
    tax_amount: Decimal
    total_amount: Decimal
    promotion_allocation_amount: Decimal
    currency: str
    tax_remitted: bool | None
    captured: bool
    shipment_ids: tuple[str, ...]
    allocations: tuple[AllocationRow, ...] = ()


class _Refused(ValueError):
    """Raised inside a normalizer; becomes a Rejected with this message as the reason."""


def payload_of(raw: BaseModel | dict[str, Any]) -> dict[str, Any]:
    if isinstance(raw, BaseModel):
        return raw.model_dump(mode="json", exclude_none=True)
    return dict(raw)


def record_key(payload: dict[str, Any]) -> str:
    """A stable hash of a payload: the same payload always quarantines under the same key."""
    canonical = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()[:40]


# -- payouts ---------------------------------------------------------------------------------------


def normalize_payouts(
    raws: Iterable[Payout | dict[str, Any]],
) -> tuple[list[PayoutRow], list[Rejected]]:
    rows: dict[str, PayoutRow] = {}
    rejects: list[Rejected] = []
    for raw in raws:
        payload = payload_of(raw)
        try:
            row = _payout_row(raw)
        except (_Refused, ValidationError, MoneyError) as exc:
            rejects.append(Rejected("payouts", record_key(payload), _reason(exc), payload))
            continue
        rows[row.payout_reference_id] = row
    return sorted(rows.values(), key=lambda r: r.payout_reference_id), rejects


def _payout_row(raw: Payout | dict[str, Any]) -> PayoutRow:
    payout = raw if isinstance(raw, Payout) else Payout.model_validate(raw)
    if not payout.payout_reference_id:
        # Before 2019-05-15 Meta had no reference; without one no transaction can be tied to it.
        raise _Refused("payout without payout_reference_id: its transactions cannot be matched")
    to_minor(payout.amount.amount, payout.amount.currency)
    return PayoutRow(
        payout_reference_id=payout.payout_reference_id,
        payout_date=payout.payout_date,
        status=payout.status,
        amount=payout.amount.amount,
        currency=payout.amount.currency,
        transfer_id=payout.transfer_id,
    )


# -- transactions ----------------------------------------------------------------------------------


def normalize_transactions(
    raws: Iterable[Transaction | dict[str, Any]],
) -> tuple[list[TransactionRow], list[Rejected]]:
    """Rows keyed by `transaction_key`; identical payloads seen twice stay two transactions."""
    rows: list[TransactionRow] = []
    rejects: list[Rejected] = []
    seen: Counter[str] = Counter()
    for raw in raws:
        row = transaction_row_or_reject(raw, seen)
        (rejects if isinstance(row, Rejected) else rows).append(row)
    return rows, rejects


def transaction_row_or_reject(
    raw: Transaction | dict[str, Any], seen: Counter[str]
) -> TransactionRow | Rejected:
    """One payload: its row (fast path, else pydantic), or why it is refused. `seen` counts the
    hash keys of id-less payloads within one fetch."""
    row = _fast_transaction_row(raw) if type(raw) is dict else None
    if row is not None:
        return row
    payload = payload_of(raw)
    try:
        return _transaction_row(raw, seen)
    except (_Refused, ValidationError, MoneyError) as exc:
        return _rejected_transaction(raw, payload, _reason(exc))


# -- the fast path: the payload shape Meta sends nearly always, read without pydantic ------------
# Anything outside it (another key, a non-string where a string goes, an amount that is not plain
# digits, a date that is not plain ISO 8601 with an offset, no id) returns None and takes the
# pydantic path, so refusals and their reasons stay exactly those of the models.

_TXN_KEYS = frozenset(
    {"id", "transaction_type", "transaction_date", "order_id", "merchant_order_id",
     "processing_fee", "net_payment_amount", "tax_details", "payout_reference_id", "transfer_id",
     "tax_rate"}
)  # fmt: skip
_TAX_KEYS = frozenset(
    {"tax_category", "jurisdiction", "imposition", "item_tax_rate", "item_tax_amount"}
)
_PLAIN_MOMENT = re.compile(
    r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})"
).fullmatch
_DIRECTION_BY_NAME = {str(kind): direction for kind, direction in DIRECTION.items()}
_AMOUNT_FITS: dict[str, Any] = {}


def _amount_fits(currency: str) -> Any:
    """`fullmatch` of plain amounts with no more decimals than the currency has (so they are
    exact in minor units); any other amount takes the pydantic path."""
    places = exponent(currency)
    fraction = rf"(\.\d{{1,{places}}})?" if places else ""
    return _AMOUNT_FITS.setdefault(currency, re.compile(rf"-?\d{{1,15}}{fraction}").fullmatch)


def _fast_money(value: Any) -> tuple[Decimal, str] | None:
    if type(value) is not dict or len(value) != 2:
        return None
    amount, currency = value.get("amount"), value.get("currency")
    if type(amount) is not str or type(currency) is not str or len(currency) != 3:
        return None
    currency = currency.upper()
    fits = _AMOUNT_FITS.get(currency) or _amount_fits(currency)
    if fits(amount) is None:
        return None
    return Decimal(amount), currency


def _text_or_none(*values: Any) -> bool:
    for value in values:
        if value is not None and type(value) is not str:
            return False
    return True


def _edge(value: Any) -> list | None:
    """A nested edge as `unwrap_edge` reads it, or None where the models might refuse it."""
    if value is None:
        return []
    if type(value) is dict:
        if "data" not in value:
            return None
        value = value["data"]
    return value if type(value) is list else None


def _fast_transaction_row(raw: dict[str, Any]) -> TransactionRow | None:
    if not raw.keys() <= _TXN_KEYS:
        return None
    get = raw.get
    txn_id, kind, order_id = get("id"), get("transaction_type"), get("order_id")
    when = get("transaction_date")
    if type(txn_id) is not str or not txn_id or len(txn_id) > 76:
        return None
    direction = _DIRECTION_BY_NAME.get(kind) if type(kind) is str else None
    if direction is None or type(order_id) is not str or not order_id:
        return None
    if type(when) is not str or _PLAIN_MOMENT(when) is None:
        return None
    try:
        moment = datetime.fromisoformat(when)
    except ValueError:  # a plain shape but no real moment (30 February): pydantic decides
        return None
    merchant, payout = get("merchant_order_id"), get("payout_reference_id")
    transfer, tax_rate = get("transfer_id"), get("tax_rate")
    if not _text_or_none(merchant, payout, transfer, tax_rate):
        return None
    net = _fast_money(get("net_payment_amount"))
    if net is None:
        return None
    net_amount, currency = net
    fee_amount = ZERO
    if (fee_raw := get("processing_fee")) is not None:
        fee = _fast_money(fee_raw)
        if fee is None or fee[1] != currency:
            return None
        fee_amount = fee[0]
    taxes = _fast_tax_lines(get("tax_details"), currency, direction)
    if taxes is None:
        return None
    tax_amount = ZERO
    for line in taxes:
        tax_amount += line.tax_amount
    return TransactionRow(
        "id:" + txn_id, txn_id, kind, moment, order_id, merchant or None,
        payout or None, transfer, currency, net_amount - fee_amount, fee_amount, net_amount,
        tax_amount, tax_rate, taxes,
    )  # fmt: skip


def _fast_tax_lines(details: Any, currency: str, direction: int) -> tuple[TaxLine, ...] | None:
    plain = plain_tax_details(details, currency, _fast_money)
    if plain is None:
        return None
    lines = []
    for category, jurisdiction, imposition, rate, amount in plain:
        magnitude = amount.copy_abs()
        lines.append(
            TaxLine(
                category,
                jurisdiction,
                imposition,
                rate,
                magnitude if direction > 0 else -magnitude,
                currency,
            )  # fmt: skip
        )
    return tuple(lines)


def plain_tax_details(
    details: Any, currency: str, parse_money: Callable[[Any], tuple[Any, str] | None]
) -> list[tuple] | None:
    """Tax details of the common shape as (category, jurisdiction, imposition, rate, amount),
    the amount as `parse_money` reads it; None when any detail is not of that shape (the caller
    then takes the validating path)."""
    details = _edge(details)
    if details is None:
        return None
    lines = []
    for detail in details:
        if type(detail) is not dict or not detail.keys() <= _TAX_KEYS:
            return None
        get = detail.get
        category, jurisdiction = get("tax_category"), get("jurisdiction")
        imposition, rate = get("imposition"), get("item_tax_rate")
        if not _text_or_none(category, jurisdiction, imposition, rate):
            return None
        money = parse_money(get("item_tax_amount"))
        if money is None or money[1] != currency:
            return None
        lines.append(
            (category or "UNSPECIFIED", jurisdiction or "UNSPECIFIED",
             imposition or "UNSPECIFIED", rate, money[0])
        )  # fmt: skip
    return lines


def merge_transactions(
    *batches: list[TransactionRow], ordered: bool = True
) -> list[TransactionRow]:
    """One row per key across fetches (by window, by payout); a row tied to a payout wins.
    In date order, or in arrival order with `ordered=False` (a bulk write needs no order)."""
    merged: dict[str, TransactionRow] = {}
    for batch in batches:
        for row in batch:
            current = merged.get(row.transaction_key)
            if current is None or (row.payout_reference_id and not current.payout_reference_id):
                merged[row.transaction_key] = row
    if not ordered:
        return list(merged.values())
    return sorted(merged.values(), key=lambda r: (r.transaction_date, r.transaction_key))


def _transaction_row(raw: Transaction | dict[str, Any], seen: Counter[str]) -> TransactionRow:
    txn = raw if isinstance(raw, Transaction) else Transaction.model_validate(raw)
    if txn.transaction_type not in TransactionType.__members__:
        raise _Refused(f"unknown transaction_type {txn.transaction_type!r}")
    order_id = txn.resolved_order_id
    if not order_id:
        raise _Refused("transaction without an order id")
    if txn.transaction_date is None:
        raise _Refused("transaction without transaction_date")
    if txn.net_payment_amount is None:
        raise _Refused("transaction without net_payment_amount")

    currency = txn.net_payment_amount.currency
    net = txn.net_payment_amount.amount
    fee = txn.processing_fee.amount if txn.processing_fee is not None else ZERO
    if txn.processing_fee is not None and txn.processing_fee.currency != currency:
        raise _Refused(f"processing_fee in {txn.processing_fee.currency}, net in {currency}")
    direction = DIRECTION[TransactionType(txn.transaction_type)]
    taxes = tuple(_tax_lines(txn, currency, direction))
    for amount in (net, fee):
        to_minor(amount, currency)

    key = _transaction_key(txn, order_id, seen)
    return TransactionRow(
        transaction_key=key,
        meta_transaction_id=txn.id,
        transaction_type=txn.transaction_type,
        transaction_date=txn.transaction_date,
        order_id=order_id,
        merchant_order_id=txn.merchant_order_id
        or (txn.order_details.merchant_order_id if txn.order_details else None),
        payout_reference_id=txn.payout_reference_id or None,
        transfer_id=txn.transfer_id,
        currency=currency,
        gross_amount=net - fee,
        processing_fee=fee,
        net_amount=net,
        tax_amount=sum((line.tax_amount for line in taxes), ZERO),
        tax_rate=txn.tax_rate,
        taxes=taxes,
    )


def _tax_lines(txn: Transaction, currency: str, direction: int) -> Iterable[TaxLine]:
    for detail in txn.tax_details:
        if detail.item_tax_amount is None:
            raise _Refused("tax detail without item_tax_amount")
        if detail.item_tax_amount.currency != currency:
            raise _Refused(f"tax in {detail.item_tax_amount.currency}, transaction in {currency}")
        to_minor(detail.item_tax_amount.amount, currency)
        yield TaxLine(
            tax_category=detail.tax_category or "UNSPECIFIED",
            jurisdiction=detail.jurisdiction or "UNSPECIFIED",
            imposition=detail.imposition or "UNSPECIFIED",
            item_tax_rate=detail.item_tax_rate,
            tax_amount=direction * abs(detail.item_tax_amount.amount),
            currency=currency,
        )


def _transaction_key(txn: Transaction, order_id: str, seen: Counter[str]) -> str:
    """Meta's id when it sends one; otherwise a hash of the fields that never change later.

    payout_reference_id and transfer_id are left out on purpose: Meta fills them in after the
    transaction first appears, and the row must keep its key when that happens.
    """
    if txn.id and len(txn.id) <= 76:
        return f"id:{txn.id}"
    fee = txn.processing_fee.amount if txn.processing_fee is not None else ZERO
    material = "|".join(
        (
            order_id,
            txn.transaction_type,
            txn.transaction_date.isoformat() if txn.transaction_date else "",
            str(txn.net_payment_amount.amount if txn.net_payment_amount else ""),
            str(fee),
            ",".join(f"{item.id}x{item.quantity}" for item in txn.items),
        )
    )
    base = hashlib.sha256(material.encode()).hexdigest()[:40]
    occurrence = seen[base]
    seen[base] += 1
    return f"h:{base}:{occurrence}"


def _rejected_transaction(
    raw: Transaction | dict[str, Any], payload: dict[str, Any], reason: str
) -> Rejected:
    """Keep what the payout check needs (payout, net) even from a transaction we refuse."""
    net = payload.get("net_payment_amount") or {}
    amount = net.get("amount") if isinstance(net, dict) else None
    try:
        net_amount = Decimal(str(amount)) if amount is not None else None
    except ArithmeticError:
        net_amount = None
    return Rejected(
        source="transactions",
        record_key=record_key(payload),
        reason=reason,
        payload=payload,
        payout_reference_id=payload.get("payout_reference_id") or None,
        net_amount=net_amount,
        currency=net.get("currency") if isinstance(net, dict) else None,
    )


# -- order payments --------------------------------------------------------------------------------


def normalize_payments(
    order_id: str, raws: Iterable[OrderPayment | dict[str, Any]]
) -> tuple[list[PaymentRow], list[Rejected]]:
    rows: list[PaymentRow] = []
    rejects: list[Rejected] = []
    for raw in raws:
        row = payment_row_or_reject(order_id, raw)
        (rejects if isinstance(row, Rejected) else rows).append(row)
    return rows, rejects


def payment_row_or_reject(
    order_id: str, raw: OrderPayment | dict[str, Any]
) -> PaymentRow | Rejected:
    """One payment payload: its row (fast path, else pydantic), or why it is refused."""
    row = _fast_payment_row(order_id, raw) if type(raw) is dict else None
    if row is not None:
        return row
    payload = payload_of(raw)
    try:
        return _payment_row(order_id, raw)
    except (_Refused, ValidationError, MoneyError) as exc:
        payload = payload | {"order_id": order_id}
        return Rejected("payments", record_key(payload), _reason(exc), payload)


def _payment_row(order_id: str, raw: OrderPayment | dict[str, Any]) -> PaymentRow:
    payment = raw if isinstance(raw, OrderPayment) else OrderPayment.model_validate(raw)
    if payment.total_amount is None:
        raise _Refused("payment without total_amount")
    currency = payment.total_amount.currency
    items = payment.subtotal.items if payment.subtotal and payment.subtotal.items else None
    shipping = payment.subtotal.shipping if payment.subtotal and payment.subtotal.shipping else None
    amounts = [m for m in (items, shipping, payment.tax) if m is not None]
    if any(m.currency != currency for m in amounts):
        raise _Refused("payment amounts in more than one currency")

    allocations = tuple(
        AllocationRow(
            item_id=item.id,
            promotion_id=allocation.promotion_id,
            allocation_amount=allocation.allocation_amount.amount,
            currency=allocation.allocation_amount.currency,
        )
        for item in payment.items
        for allocation in item.promotion_allocations
    )
    if any(a.currency != currency for a in allocations):
        raise _Refused("promotion allocation in another currency than the payment")
    row = PaymentRow(
        payment_id=payment.id,
        order_id=order_id,
        items_amount=items.amount if items else ZERO,
        shipping_amount=shipping.amount if shipping else ZERO,
        tax_amount=payment.tax.amount if payment.tax else ZERO,
        total_amount=payment.total_amount.amount,
        promotion_allocation_amount=sum((a.allocation_amount for a in allocations), ZERO),
        currency=currency,
        tax_remitted=payment.tax_remitted,
        captured=payment.captured,
        shipment_ids=tuple(s.id or s.external_shipment_id or "" for s in payment.shipments),
        allocations=allocations,
    )
    for amount in (row.items_amount, row.shipping_amount, row.tax_amount, row.total_amount):
        to_minor(amount, currency)
    return row


_PAYMENT_KEYS = frozenset(
    {"id", "subtotal", "tax", "tax_remitted", "total_amount", "shipments",
     "transaction_details", "items"}
)  # fmt: skip


def _fast_payment_row(order_id: str, raw: dict[str, Any]) -> PaymentRow | None:
    """The common payment shape (no promotion allocations) without pydantic; None otherwise."""
    if not raw.keys() <= _PAYMENT_KEYS or type(raw.get("id")) is not str:
        return None
    remitted = raw.get("tax_remitted")
    if remitted is not None and type(remitted) is not bool:
        return None
    total = _fast_money(raw.get("total_amount"))
    if total is None:
        return None
    currency = total[1]
    subtotal = raw.get("subtotal") or {}
    if type(subtotal) is not dict or not subtotal.keys() <= {"items", "shipping"}:
        return None
    amounts = [total[0]]
    for part in (subtotal.get("items"), subtotal.get("shipping"), raw.get("tax")):
        if part is None:
            amounts.append(ZERO)
            continue
        money = _fast_money(part)
        if money is None or money[1] != currency:
            return None
        amounts.append(money[0])
    shipments = _fast_shipment_ids(raw.get("shipments"))
    details, items = _edge(raw.get("transaction_details")), _edge(raw.get("items"))
    if shipments is None or details is None or items is None:
        return None
    for detail in details:
        if type(detail) is not dict or not detail.keys() <= {"id", "transaction_type"}:
            return None
        if type(detail.get("transaction_type")) is not str:
            return None
        if not _text_or_none(detail.get("id")):
            return None
    for item in items:
        if type(item) is not dict or not item.keys() <= {"id", "quantity"}:
            return None
        if type(item.get("id")) is not str or type(item.get("quantity")) not in (int, type(None)):
            return None
    return PaymentRow(
        raw["id"], order_id, amounts[1], amounts[2], amounts[3], amounts[0], ZERO, currency,
        remitted, bool(details), shipments, (),
    )  # fmt: skip


def _fast_shipment_ids(value: Any) -> tuple[str, ...] | None:
    shipments = _edge(value)
    if shipments is None:
        return None
    ids = []
    for shipment in shipments:
        if type(shipment) is not dict or not shipment.keys() <= {"id", "external_shipment_id"}:
            return None
        ref, external = shipment.get("id"), shipment.get("external_shipment_id")
        if not _text_or_none(ref, external):
            return None
        ids.append(ref or external or "")
    return tuple(ids)


def _reason(exc: Exception) -> str:
    if isinstance(exc, ValidationError):
        first = exc.errors()[0]
        where = ".".join(str(part) for part in first["loc"]) or "payload"
        return f"invalid payload at {where}: {first['msg']}"
    return str(exc)

"""Builders of Meta finance payloads (wire shapes of orders.md §13) for the finance tests."""

from datetime import UTC, datetime
from decimal import Decimal
from typing import Any


def money(amount: str | Decimal, currency: str = "USD") -> dict[str, str]:
    return {"amount": str(amount), "currency": currency}


def transaction(
    order_id: str,
    kind: str = "SALE",
    *,
    net: str = "9.67",
    fee: str = "-0.33",
    day: int = 2,
    payout: str | None = "P1",
    currency: str = "USD",
    taxes: list[tuple[str, str, str]] | None = None,
    txn_id: str | None = None,
) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "transaction_type": kind,
        "transaction_date": datetime(2026, 3, day, 10, tzinfo=UTC).isoformat(),
        "order_id": order_id,
        "processing_fee": money(fee, currency),
        "net_payment_amount": money(net, currency),
    }
    if txn_id:
        payload["id"] = txn_id
    if payout:
        payload["payout_reference_id"] = payout
    if taxes:
        payload["tax_details"] = {
            "data": [
                {
                    "tax_category": category,
                    "jurisdiction": jurisdiction,
                    "imposition": "Sales and Use Tax",
                    "item_tax_rate": "6%",
                    "item_tax_amount": money(amount, currency),
                }
                for category, jurisdiction, amount in taxes
            ]
        }
    return payload


def payout(ref: str, amount: str, *, day: int = 5, status: str = "COMPLETED") -> dict[str, Any]:
    return {
        "amount": money(amount),
        "payout_date": datetime(2026, 3, day, 12, tzinfo=UTC).isoformat(),
        "payout_reference_id": ref,
        "status": status,
    }


def payment(
    payment_id: str, *, items: str, shipping: str = "0", tax: str = "0", remitted: bool = True
) -> dict[str, Any]:
    total = Decimal(items) + Decimal(shipping) + Decimal(tax)
    return {
        "id": payment_id,
        "subtotal": {"items": money(items), "shipping": money(shipping)},
        "tax": money(tax),
        "tax_remitted": remitted,
        "total_amount": money(total),
        "transaction_details": {"data": [transaction("x")]},
        "items": {
            "data": [
                {
                    "id": "item-1",
                    "promotion_allocations": [
                        {"promotion_id": "promo-1", "allocation_amount": money("0.47")}
                    ],
                }
            ]
        },
    }

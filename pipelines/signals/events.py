"""Conversions API Purchase events for paid orders. Pure: builds payloads, sends nothing.

    event = purchase_event(shop_id="acme", order=oms_order, meta_order_id="1001",
                           event_time=order.placed_at)
    event["event_id"]            # stable per (shop, order): a resend is deduplicated by Meta
    event["user_data"]["em"]     # ["<sha256 of the trimmed, lowercased email>"]

Normalisation and hashing follow Meta's customer-information rules (catalog.md §8.3): trim,
lowercase, field-specific clean-up, then SHA-256 hex of the UTF-8 text. Values that already look
like a SHA-256 hex digest pass through unchanged (never hashed twice). Plain personal data never
leaves this module: only hashes go into the payload, and the payload is what the outbox stores.
"""

import hashlib
import re
import unicodedata
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

from resources.oms.models import OmsOrder, OmsOrderStatus

_SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_PUNCTUATION = re.compile(r"[^\w]", re.UNICODE)
UNPAID_META_STATES = frozenset({"FB_PROCESSING"})


class EventError(ValueError):
    """An event that Meta would reject as a whole batch; never enqueued."""


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def normalise_email(value: str) -> str | None:
    email = value.strip().lower()
    return email if _EMAIL.match(email) else None


def normalise_phone(value: str) -> str | None:
    """Digits only with the country code, no leading zeros (Meta: `16505551212`)."""
    digits = re.sub(r"\D", "", value).lstrip("0")
    return digits if len(digits) >= 7 else None


def normalise_name(value: str) -> str | None:
    """Lowercase, no punctuation; letters outside ASCII are kept (`Valéry` -> `valéry`)."""
    name = _PUNCTUATION.sub("", unicodedata.normalize("NFC", value.strip().lower()))
    return name.replace("_", "") or None


def normalise_city(value: str) -> str | None:
    city = re.sub(r"[\d\s\W_]", "", value.strip().lower())
    return city or None


def normalise_state(value: str) -> str | None:
    state = re.sub(r"[\s\W_]", "", value.strip().lower())
    return state or None


def normalise_zip(value: str) -> str | None:
    """Lowercase, no spaces; a US ZIP+4 keeps its first five digits."""
    code = value.strip().lower().split("-")[0].replace(" ", "")
    return code or None


def normalise_country(value: str) -> str | None:
    country = value.strip().lower()
    return country if re.fullmatch(r"[a-z]{2}", country) else None


_NORMALISERS: dict[str, Callable[[str], str | None]] = {
    "em": normalise_email,
    "ph": normalise_phone,
    "fn": normalise_name,
    "ln": normalise_name,
    "ct": normalise_city,
    "st": normalise_state,
    "zp": normalise_zip,
    "country": normalise_country,
    "external_id": lambda value: value.strip().lower() or None,
}


def hash_user_data(raw: dict[str, str | None]) -> dict[str, list[str]]:
    """Normalise and hash every known identifier; unknown keys and empty values are dropped."""
    hashed: dict[str, list[str]] = {}
    for key, value in raw.items():
        if not value or key not in _NORMALISERS:
            continue
        if _SHA256_HEX.match(value):
            hashed[key] = [value]
            continue
        normalised = _NORMALISERS[key](value)
        if normalised:
            hashed[key] = [sha256_hex(normalised)]
    return hashed


def purchase_event_id(shop_id: str, meta_order_id: str) -> str:
    """One event id per order, forever: Meta deduplicates a resent Purchase by it."""
    return f"purchase-{sha256_hex(f'{shop_id}:{meta_order_id}')[:32]}"


def is_paid(order: OmsOrder, meta_state: str | None) -> bool:
    """Meta finalised the payment (not FB_PROCESSING), something was charged, not cancelled."""
    return (
        meta_state not in UNPAID_META_STATES
        and order.status != OmsOrderStatus.CANCELLED
        and order.grand_total > 0
    )


def purchase_event(
    *,
    shop_id: str,
    order: OmsOrder,
    meta_order_id: str,
    event_time: datetime,
    action_source: str = "system_generated",
) -> dict[str, Any]:
    """The server event for one paid order. Money stays a decimal string (never a float)."""
    if event_time.tzinfo is None:
        raise EventError("event_time must be timezone-aware")
    names = (order.buyer_name or "").split()
    address = order.shipping_address or {}
    user_data = hash_user_data(
        {
            "em": order.buyer_email,
            "fn": names[0] if names else None,
            "ln": names[-1] if len(names) > 1 else None,
            "ct": address.get("city"),
            "st": address.get("state"),
            "zp": address.get("postal_code"),
            "country": address.get("country"),
            "external_id": f"{shop_id}:{meta_order_id}",
        }
    )
    if not user_data:
        raise EventError(f"order {meta_order_id} has no customer information to match on")
    contents = [
        {"id": line.sku, "quantity": line.quantity, "item_price": _decimal(line.unit_price)}
        for line in order.lines
    ]
    return {
        "event_name": "Purchase",
        "event_time": int(event_time.timestamp()),
        "event_id": purchase_event_id(shop_id, meta_order_id),
        "action_source": action_source,
        "user_data": user_data,
        "custom_data": {
            # Meta reads `value` as a number; a decimal string keeps the exact cents here and
            # in the outbox. TODO(capi-value): confirm the sandbox and Meta accept the string.
            "value": _decimal(order.grand_total),
            "currency": order.currency,
            "content_type": "product",
            "content_ids": [line.sku for line in order.lines],
            "contents": contents,
            "num_items": sum(line.quantity for line in order.lines),
            "order_id": meta_order_id,
        },
    }


def _decimal(amount: Decimal) -> str:
    return format(amount, "f")

"""The sandbox's Conversions API backend (catalog.md §8): validate, deduplicate, record.

    backend = conversions_backend(state)
    backend.receive(shop, events, test_event_code=None)   # {"events_received": n, ...}

Validation is all-or-nothing, as Meta's is: one bad event refuses the whole request. Accepted
events are deduplicated on (event_name, event_id) within the dedup window; the record of what
arrived and what was dropped is what tests assert exactly-once delivery against.
"""

import ipaddress
import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.core.errors import GraphApiError
from sandbox.core.state import SandboxShop, SandboxState

ACTION_SOURCES = frozenset(
    {
        "email",
        "website",
        "app",
        "phone_call",
        "chat",
        "physical_store",
        "system_generated",
        "business_messaging",
        "other",
    }
)
HASHED_FIELDS = ("em", "ph", "fn", "ln", "db", "ge", "ct", "st", "zp", "country")
UNHASHED_IDENTIFIERS = (
    "client_ip_address",
    "client_user_agent",
    "fbc",
    "fbp",
    "external_id",
    "subscription_id",
    "fb_login_id",
    "lead_id",
    "anon_id",
    "madid",
    "page_id",
    "page_scoped_user_id",
    "ctwa_clid",
    "ig_account_id",
    "ig_sid",
)
SHA256_HEX = re.compile(r"^[0-9a-f]{64}$")
FB_COOKIE = re.compile(r"^fb\.\d\.\d+\.\S+$")
CURRENCY = re.compile(r"^[A-Za-z]{3}$")


@dataclass
class ConversionsSettings:
    max_events: int = 1000
    max_age: timedelta = timedelta(days=7)
    max_age_physical_store: timedelta = timedelta(days=62)
    # Meta refuses events from the future; a little clock skew is tolerated (unconfirmed size).
    max_future: timedelta = timedelta(minutes=5)
    dedup_window: timedelta = timedelta(hours=48)
    # Website events need event_source_url and client_user_agent per Meta's parameter docs.
    strict_website_fields: bool = True


@dataclass
class ReceivedEvent:
    shop_id: str
    pixel_id: str
    received_at: datetime
    event: dict[str, Any]
    test_event_code: str | None
    duplicate: bool


@dataclass
class ConversionsBackend:
    state: SandboxState
    settings: ConversionsSettings = field(default_factory=ConversionsSettings)
    events: list[ReceivedEvent] = field(default_factory=list)
    seen: dict[tuple[str, str, str], datetime] = field(default_factory=dict)

    def receive(self, shop: SandboxShop, data: Any, test_event_code: str | None) -> dict[str, Any]:
        events = self._decode(data)
        now = self.state.now()
        for index, event in enumerate(events):
            self._validate(index, event, now)

        for event in events:
            duplicate = self._is_duplicate(shop, event, now)
            self.events.append(
                ReceivedEvent(shop.shop_id, shop.pixel_id, now, event, test_event_code, duplicate)
            )
        return {
            "events_received": len(events),
            "messages": [],
            "fbtrace_id": secrets.token_urlsafe(12),
        }

    def log(self, shop_id: str) -> dict[str, Any]:
        mine = [e for e in self.events if e.shop_id == shop_id]
        return {
            "events_received": len(mine),
            "duplicates_dropped": sum(1 for e in mine if e.duplicate),
            "events": [
                {
                    "event_name": e.event.get("event_name"),
                    "event_id": e.event.get("event_id"),
                    "event_time": e.event.get("event_time"),
                    "received_at": e.received_at.isoformat(),
                    "duplicate": e.duplicate,
                    "test_event_code": e.test_event_code,
                    "custom_data": e.event.get("custom_data"),
                }
                for e in mine
            ],
        }

    # -- rules ----------------------------------------------------------------------------------

    def _decode(self, data: Any) -> list[dict[str, Any]]:
        if isinstance(data, str):
            try:
                data = json.loads(data)
            except ValueError as exc:
                raise _invalid("data must be a JSON array of events") from exc
        if not isinstance(data, list) or not data:
            raise _invalid("data must be a non-empty array of events")
        if len(data) > self.settings.max_events:
            raise _invalid(
                f"{len(data)} events in one request; at most {self.settings.max_events} are allowed"
            )
        events = []
        for index, event in enumerate(data):
            # The Python SDK sends each event as a JSON-encoded string; the docs send objects.
            if isinstance(event, str):
                try:
                    event = json.loads(event)
                except ValueError as exc:
                    raise _invalid(f"event {index} is not a JSON object") from exc
            if not isinstance(event, dict):
                raise _invalid(f"event {index} is not an object")
            events.append(event)
        return events

    def _validate(self, index: int, event: dict[str, Any], now: datetime) -> None:
        where = f"event {index}"
        name = event.get("event_name")
        if not isinstance(name, str) or not name.strip():
            raise _invalid(f"{where}: event_name is required")
        source = event.get("action_source")
        if source not in ACTION_SOURCES:
            raise _invalid(
                f"{where}: action_source must be one of {', '.join(sorted(ACTION_SOURCES))}"
            )
        self._check_time(where, event.get("event_time"), source, now)
        if source == "website" and self.settings.strict_website_fields:
            if not event.get("event_source_url"):
                raise _invalid(f"{where}: event_source_url is required for website events")
        self._check_user_data(where, event.get("user_data"), source)
        self._check_custom_data(where, name, event.get("custom_data"))

    def _check_time(self, where: str, value: Any, source: str, now: datetime) -> None:
        if isinstance(value, bool) or not isinstance(value, int | str):
            raise _invalid(f"{where}: event_time must be a unix timestamp in seconds")
        try:
            moment = datetime.fromtimestamp(int(value), tz=now.tzinfo)
        except (ValueError, OverflowError, OSError) as exc:
            raise _invalid(f"{where}: event_time must be a unix timestamp in seconds") from exc
        max_age = (
            self.settings.max_age_physical_store
            if source == "physical_store"
            else self.settings.max_age
        )
        if moment < now - max_age:
            raise _invalid(
                f"{where}: event_time is more than {max_age.days} days in the past",
                subcode=2804003,
            )
        if moment > now + self.settings.max_future:
            raise _invalid(f"{where}: event_time is in the future", subcode=2804004)

    def _check_user_data(self, where: str, user_data: Any, source: str) -> None:
        if not isinstance(user_data, dict) or not user_data:
            raise _invalid(f"{where}: user_data is required", subcode=2804050)
        for key in HASHED_FIELDS:
            for value in _values(user_data.get(key)):
                if not isinstance(value, str) or not SHA256_HEX.match(value):
                    raise _invalid(
                        f"{where}: user_data.{key} must be hashed: a lowercase SHA-256 hex "
                        "digest of the normalised value"
                    )
        ip = user_data.get("client_ip_address")
        if ip is not None:
            try:
                ipaddress.ip_address(str(ip))
            except ValueError as exc:
                raise _invalid(f"{where}: client_ip_address is not an IP address") from exc
        for key in ("fbc", "fbp"):
            value = user_data.get(key)
            if value is not None and not (isinstance(value, str) and FB_COOKIE.match(value)):
                raise _invalid(f"{where}: user_data.{key} must look like fb.1.<time>.<value>")
        identifiers = [k for k in (*HASHED_FIELDS, *UNHASHED_IDENTIFIERS) if user_data.get(k)]
        if not identifiers:
            raise _invalid(
                f"{where}: This event has insufficient customer information.", subcode=2804050
            )
        if source == "website" and self.settings.strict_website_fields:
            if not user_data.get("client_user_agent"):
                raise _invalid(f"{where}: client_user_agent is required for website events")

    def _check_custom_data(self, where: str, name: str, custom_data: Any) -> None:
        if custom_data is None:
            if name == "Purchase":
                raise _invalid(f"{where}: Purchase events need custom_data value and currency")
            return
        if not isinstance(custom_data, dict):
            raise _invalid(f"{where}: custom_data must be an object")
        currency, value = custom_data.get("currency"), custom_data.get("value")
        if name == "Purchase" and (currency is None or value is None):
            raise _invalid(f"{where}: Purchase events need custom_data value and currency")
        if currency is not None and not (isinstance(currency, str) and CURRENCY.match(currency)):
            raise _invalid(f"{where}: custom_data.currency must be an ISO 4217 code")
        if value is not None and not _is_number(value):
            raise _invalid(f"{where}: custom_data.value must be a number")
        contents = custom_data.get("contents")
        if contents is not None:
            if not isinstance(contents, list):
                raise _invalid(f"{where}: custom_data.contents must be a list")
            for content in contents:
                if not isinstance(content, dict) or not content.get("id"):
                    raise _invalid(f"{where}: every custom_data.contents entry needs an id")
                quantity = content.get("quantity")
                if quantity is not None and (
                    isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1
                ):
                    raise _invalid(f"{where}: contents quantity must be a positive integer")

    def _is_duplicate(self, shop: SandboxShop, event: dict[str, Any], now: datetime) -> bool:
        event_id = event.get("event_id")
        if not event_id:
            return False  # Meta cannot deduplicate an event without an id
        key = (shop.pixel_id, str(event["event_name"]), str(event_id))
        first = self.seen.get(key)
        if first is not None and now - first <= self.settings.dedup_window:
            return True
        self.seen[key] = now
        return False


def _values(value: Any) -> list[Any]:
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _is_number(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int | float):
        return True
    if isinstance(value, str):
        try:
            Decimal(value)
        except InvalidOperation:
            return False
        return True
    return False


def _invalid(message: str, subcode: int | None = None) -> GraphApiError:
    # Meta's 2804xxx subcodes are known only from third-party fixtures (unconfirmed).
    return GraphApiError(
        f"(#100) Invalid parameter: {message}",
        code=100,
        subcode=subcode or 2804001,
        error_type="OAuthException",
        user_title="Invalid event",
        user_message=message,
        is_transient=False,
    )


def conversions_backend(state: SandboxState) -> ConversionsBackend:
    backend = state.domains.get("conversions")
    if backend is None:
        backend = state.domains["conversions"] = ConversionsBackend(state)
    return backend

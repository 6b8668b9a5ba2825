"""The sandbox's Offers backend: OFFER feeds of a catalog, their uploads, and the offers they hold
(orders.md §12).

    backend = offers_backend(state)
    feed = backend.create_feed(shop, "metasync offers")
    session = backend.upload(shop, feed, csv_bytes, update_only=True)
    backend.offers_of(shop)        # offer_id -> StoredOffer

Offers are catalog items uploaded as a feed (`feed_type=OFFER`), one row per offer, keyed by the
seller's `offer_id`: a row for a known offer_id updates it, so uploading the same file twice
changes nothing. Every row is checked against the §12.1 field rules; a row that breaks one is
reported in the upload session's errors and leaves the stored offer as it was. Uploads finish at
once (Meta's are asynchronous; metasync reads the session either way).

Choices Meta's documents leave open are settings (OffersSettings).
"""

import csv
import io
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from sandbox.core.errors import InvalidParameter, UnknownObject
from sandbox.core.state import SandboxShop, SandboxState

APPLICATION_TYPES = ("SALE", "AUTOMATIC_AT_CHECKOUT", "BUYER_APPLIED")
VALUE_TYPES = ("FIXED_AMOUNT", "PERCENTAGE")
TARGET_TYPES = ("LINE_ITEM", "SHIPPING")
GRANULARITIES = ("ITEM_LEVEL", "ORDER_LEVEL")
SELECTIONS = ("ALL_CATALOG_PRODUCTS", "SPECIFIC_PRODUCTS")
SHIPPING_OPTION_TYPES = ("STANDARD", "RUSH", "EXPEDITED")
TARGET_FIELDS = (
    "target_filter",
    "target_product_retailer_ids",
    "target_product_group_retailer_ids",
    "target_product_set_retailer_ids",
)
PREREQUISITE_FIELDS = (
    "prerequisite_filter",
    "prerequisite_product_retailer_ids",
    "prerequisite_product_group_retailer_ids",
    "prerequisite_product_set_retailer_ids",
)
LIST_FIELDS = (
    "coupon_codes",
    "target_shipping_option_types",
    "target_product_retailer_ids",
    "target_product_group_retailer_ids",
    "target_product_set_retailer_ids",
    "prerequisite_product_retailer_ids",
    "prerequisite_product_group_retailer_ids",
    "prerequisite_product_set_retailer_ids",
)
INT_FIELDS = (
    "percent_off",
    "min_quantity",
    "target_quantity",
    "redeem_limit_per_user",
    "redemption_limit_per_order",
)
MONEY_STRING = re.compile(r"^(\d+(?:\.\d+)?) ([A-Z]{3})$")


@dataclass
class OffersSettings:
    # The docs allow free shipping only at ITEM_LEVEL; Meta's WooCommerce plugin sends
    # ORDER_LEVEL (orders.md §12, open question 15). False follows the docs.
    allow_order_level_free_shipping: bool = False
    max_active_automatic: int = 25
    max_active_public_codes: int = 10
    max_coupon_codes: int = 100
    # Meta does not say whether an offer's money must be in the catalog's currency; we require it.
    require_shop_currency: bool = True


@dataclass
class OfferFeed:
    feed_id: str
    name: str
    created_time: datetime
    latest_upload: str | None = None


@dataclass
class StoredOffer:
    graph_id: str
    offer_id: str
    data: dict[str, Any]
    feed_id: str
    updated_time: datetime
    version: int = 1


@dataclass
class OfferUpload:
    session_id: str
    feed_id: str
    update_only: bool
    start_time: datetime
    end_time: datetime
    counts: dict[str, int]
    errors: list[dict[str, Any]]  # {"row_number", "offer_id", "summary", "description"}


@dataclass
class ShopOffers:
    feeds: dict[str, OfferFeed] = field(default_factory=dict)
    offers: dict[str, StoredOffer] = field(default_factory=dict)
    uploads: dict[str, OfferUpload] = field(default_factory=dict)


class RowError(ValueError):
    def __init__(self, summary: str, description: str) -> None:
        super().__init__(description)
        self.summary = summary
        self.description = description


class OffersBackend:
    def __init__(self, state: SandboxState) -> None:
        self.state = state
        self.settings = OffersSettings()
        self.shops: dict[str, ShopOffers] = {}

    def of(self, shop: SandboxShop) -> ShopOffers:
        return self.shops.setdefault(shop.shop_id, ShopOffers())

    def offers_of(self, shop: SandboxShop) -> dict[str, StoredOffer]:
        return self.of(shop).offers

    # -- feeds ----------------------------------------------------------------------------------

    def create_feed(self, shop: SandboxShop, name: str) -> OfferFeed:
        feed = OfferFeed(self.state.new_id(), name, self.state.now())
        self.of(shop).feeds[feed.feed_id] = feed
        self.state.register_node(feed.feed_id, "offer_feed", shop.shop_id)
        return feed

    def feed(self, shop: SandboxShop, feed_id: str) -> OfferFeed:
        feed = self.of(shop).feeds.get(feed_id)
        if feed is None:
            raise UnknownObject(feed_id)
        return feed

    def feed_view(self, shop: SandboxShop, feed: OfferFeed) -> dict[str, Any]:
        count = sum(1 for o in self.of(shop).offers.values() if o.feed_id == feed.feed_id)
        view = {
            "id": feed.feed_id,
            "name": feed.name,
            "created_time": _iso(feed.created_time),
            "catalog_item_type": "OFFER_ITEM",
            "product_count": count,
        }
        if feed.latest_upload:
            view["latest_upload"] = {"id": feed.latest_upload}
        return view

    # -- uploads --------------------------------------------------------------------------------

    def upload(
        self, shop: SandboxShop, feed: OfferFeed, content: bytes | None, *, update_only: bool
    ) -> OfferUpload:
        if content is None:
            raise InvalidParameter("(#100) An upload needs a file")
        rows = _parse_csv(content)
        offers = self.of(shop).offers
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        persisted = 0
        for row_number, row in rows:
            offer_id = str(row.get("offer_id") or "")
            try:
                if not offer_id:
                    raise RowError("Missing offer_id", "offer_id is required on every row")
                if offer_id in seen:
                    raise RowError("Duplicate offer_id", f"offer_id {offer_id} appears twice")
                seen.add(offer_id)
                data = self._checked(shop, row, offers)
            except RowError as error:
                errors.append(
                    {"row_number": row_number, "offer_id": offer_id, "summary": error.summary,
                     "description": error.description}
                )  # fmt: skip
                continue
            persisted += self._store(shop, feed, offer_id, data)
        deleted = 0
        if not update_only:
            for offer_id in [k for k, o in offers.items() if o.feed_id == feed.feed_id]:
                if offer_id not in seen:
                    del offers[offer_id]
                    deleted += 1
        now = self.state.now()
        upload = OfferUpload(
            self.state.new_id(), feed.feed_id, update_only, now, now,
            {"num_detected_items": len(rows), "num_invalid_items": len(errors),
             "num_persisted_items": persisted, "num_deleted_items": deleted},
            errors,
        )  # fmt: skip
        self.of(shop).uploads[upload.session_id] = upload
        self.state.register_node(upload.session_id, "offer_feed_upload", shop.shop_id)
        feed.latest_upload = upload.session_id
        return upload

    def upload_session(self, shop: SandboxShop, session_id: str) -> OfferUpload:
        upload = self.of(shop).uploads.get(session_id)
        if upload is None:
            raise UnknownObject(session_id)
        return upload

    @staticmethod
    def session_view(upload: OfferUpload) -> dict[str, Any]:
        return {
            "id": upload.session_id,
            "start_time": _iso(upload.start_time),
            "end_time": _iso(upload.end_time),
            "input_method": "Manual Upload",
            **upload.counts,
        }

    @staticmethod
    def session_errors(upload: OfferUpload) -> list[dict[str, Any]]:
        groups: dict[str, list[dict[str, Any]]] = {}
        for error in upload.errors:
            groups.setdefault(error["summary"], []).append(error)
        return [
            {
                "id": f"{upload.session_id}{index:02d}",
                "summary": summary,
                "description": rows[0]["description"],
                "severity": "fatal",
                "total_count": len(rows),
                "samples": {
                    "data": [
                        {
                            "row_number": r["row_number"],
                            "retailer_id": r["offer_id"],
                            "description": r["description"],
                        }
                        for r in rows
                    ]
                },  # fmt: skip
            }
            for index, (summary, rows) in enumerate(groups.items())
        ]

    # -- rows -----------------------------------------------------------------------------------

    def _store(self, shop: SandboxShop, feed: OfferFeed, offer_id: str, data: dict) -> int:
        offers = self.of(shop).offers
        existing = offers.get(offer_id)
        if existing is not None and existing.data == data:
            return 0  # the same row again: nothing changes
        now = self.state.now()
        if existing is None:
            graph_id = self.state.new_id()
            self.state.register_node(graph_id, "offer", shop.shop_id)
            offers[offer_id] = StoredOffer(graph_id, offer_id, data, feed.feed_id, now)
        else:
            existing.data, existing.feed_id = data, feed.feed_id
            existing.updated_time, existing.version = now, existing.version + 1
        return 1

    def _checked(self, shop: SandboxShop, row: dict[str, Any], offers: dict) -> dict[str, Any]:
        data = _typed(row)
        _check_required(data)
        _check_value(data, shop.currency if self.settings.require_shop_currency else None)
        self._check_target(data)
        self._check_codes(data)
        _check_quantities(data, shop.currency if self.settings.require_shop_currency else None)
        self._check_active_limits(data, offers)
        return data

    def _check_target(self, data: dict[str, Any]) -> None:
        if data["target_type"] == "SHIPPING":
            if not data.get("target_shipping_option_types"):
                raise RowError(
                    "Missing shipping option types",
                    "target_shipping_option_types is required when target_type is SHIPPING",
                )
            unknown = set(data["target_shipping_option_types"]) - set(SHIPPING_OPTION_TYPES)
            if unknown:
                raise RowError("Invalid shipping option type", f"unknown: {sorted(unknown)}")
            if data["value_type"] != "PERCENTAGE" or data.get("percent_off") != 100:
                raise RowError(
                    "Unsupported shipping offer",
                    "only free shipping is supported: PERCENTAGE with percent_off 100",
                )
            if (
                data["target_granularity"] != "ITEM_LEVEL"
                and not self.settings.allow_order_level_free_shipping
            ):
                raise RowError(
                    "Invalid target granularity",
                    "a SHIPPING offer must have target_granularity ITEM_LEVEL",
                )
        given = [name for name in TARGET_FIELDS if data.get(name)]
        if data["target_selection"] == "SPECIFIC_PRODUCTS" and len(given) != 1:
            raise RowError(
                "Invalid target selection",
                "SPECIFIC_PRODUCTS needs exactly one of " + ", ".join(TARGET_FIELDS),
            )
        if data["target_selection"] == "ALL_CATALOG_PRODUCTS" and given:
            raise RowError(
                "Invalid target selection",
                f"ALL_CATALOG_PRODUCTS takes no target fields (got {', '.join(given)})",
            )
        if sum(1 for name in PREREQUISITE_FIELDS if data.get(name)) > 1:
            raise RowError("Invalid prerequisites", "at most one prerequisite_* field may be given")

    def _check_codes(self, data: dict[str, Any]) -> None:
        codes, public = data.get("coupon_codes"), data.get("public_coupon_code")
        buyer_applied = data["application_type"] == "BUYER_APPLIED"
        if (codes or public or data.get("redeem_limit_per_user")) and not buyer_applied:
            raise RowError(
                "Coupon on a non buyer-applied offer",
                "coupon_codes, public_coupon_code and redeem_limit_per_user need "
                "application_type BUYER_APPLIED",
            )
        if buyer_applied and not (codes or public):
            raise RowError(
                "Missing coupon code",
                "a BUYER_APPLIED offer needs coupon_codes or public_coupon_code",
            )
        if codes and public:
            raise RowError(
                "Conflicting coupon codes",
                "coupon_codes and public_coupon_code are mutually exclusive",
            )
        if codes and len(codes) > self.settings.max_coupon_codes:
            raise RowError(
                "Too many coupon codes", f"at most {self.settings.max_coupon_codes} coupon_codes"
            )
        if public and len(public) > 20:
            raise RowError("Coupon code too long", "public_coupon_code is at most 20 characters")

    def _check_active_limits(self, data: dict[str, Any], offers: dict) -> None:
        now = self.state.now()
        if not _active(data, now):
            return
        others = [
            o.data
            for o in offers.values()
            if o.offer_id != data["offer_id"] and _active(o.data, now)
        ]
        if data["application_type"] == "AUTOMATIC_AT_CHECKOUT":
            count = sum(1 for o in others if o["application_type"] == "AUTOMATIC_AT_CHECKOUT")
            if count >= self.settings.max_active_automatic:
                raise RowError(
                    "Too many automatic offers",
                    f"at most {self.settings.max_active_automatic} AUTOMATIC_AT_CHECKOUT offers "
                    "may be active in a catalog",
                )
        if data.get("public_coupon_code"):
            count = sum(1 for o in others if o.get("public_coupon_code"))
            if count >= self.settings.max_active_public_codes:
                raise RowError(
                    "Too many public coupon codes",
                    f"at most {self.settings.max_active_public_codes} offers with a "
                    "public_coupon_code may be active in a catalog",
                )


def offers_backend(state: SandboxState) -> OffersBackend:
    backend = state.domains.get("offers")
    if backend is None:
        backend = state.domains["offers"] = OffersBackend(state)
    return backend


def offer_is_active(offer: StoredOffer, now: datetime) -> bool:
    return _active(offer.data, now)


# -- row parsing and field rules (pure) ---------------------------------------------------------


def _parse_csv(content: bytes) -> list[tuple[int, dict[str, Any]]]:
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InvalidParameter("(#100) The offer feed is not UTF-8 text") from exc
    reader = csv.DictReader(io.StringIO(text))
    if not reader.fieldnames or "offer_id" not in [f.strip() for f in reader.fieldnames]:
        raise InvalidParameter("(#100) The offer feed needs a header row with offer_id")
    reader.fieldnames = [f.strip() for f in reader.fieldnames]
    return [
        (index + 2, {k: v.strip() for k, v in raw.items() if k and v not in (None, "")})
        for index, raw in enumerate(reader)
    ]


def _typed(row: dict[str, Any]) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for name, value in row.items():
        if name in LIST_FIELDS:
            data[name] = _list(name, value)
        elif name in INT_FIELDS:
            data[name] = _int(name, value)
        elif name in ("start_date_time", "end_date_time"):
            data[name] = _timestamp(name, value)
        else:
            data[name] = value
    return data


def _check_required(data: dict[str, Any]) -> None:
    for name, allowed in (
        ("application_type", APPLICATION_TYPES),
        ("value_type", VALUE_TYPES),
        ("target_type", TARGET_TYPES),
        ("target_granularity", GRANULARITIES),
        ("target_selection", SELECTIONS),
    ):
        if not data.get(name):
            raise RowError(f"Missing {name}", f"{name} is required")
        if data[name] not in allowed:
            raise RowError(f"Invalid {name}", f"{name} must be one of {', '.join(allowed)}")
    if "start_date_time" not in data:
        raise RowError("Missing start_date_time", "start_date_time is required")
    end = data.get("end_date_time")
    if end is not None and end <= data["start_date_time"]:
        raise RowError("Invalid end_date_time", "end_date_time must be after start_date_time")
    if data.get("exclude_sale_priced_products", "NO") not in ("YES", "NO"):
        raise RowError("Invalid exclude_sale_priced_products", "must be YES or NO")
    if len(data.get("offer_terms", "")) > 2500:
        raise RowError("Offer terms too long", "offer_terms is at most 2500 characters")


def _check_value(data: dict[str, Any], currency: str | None) -> None:
    fixed, percent = data.get("fixed_amount_off"), data.get("percent_off")
    if data["value_type"] == "FIXED_AMOUNT":
        if fixed is None or percent is not None:
            raise RowError(
                "Invalid value",
                'FIXED_AMOUNT needs fixed_amount_off ("30.99 USD") and no percent_off',
            )
        _money("fixed_amount_off", fixed, currency)
    else:
        if percent is None or fixed is not None:
            raise RowError("Invalid value", "PERCENTAGE needs percent_off and no fixed_amount_off")
        if not 0 <= percent <= 100:
            raise RowError("Invalid percent_off", "percent_off must be between 0 and 100")


def _check_quantities(data: dict[str, Any], currency: str | None) -> None:
    if data.get("min_quantity") and data.get("min_subtotal"):
        raise RowError(
            "Conflicting prerequisites", "min_quantity and min_subtotal are mutually exclusive"
        )
    if data.get("min_subtotal"):
        _money("min_subtotal", data["min_subtotal"], currency)
    for name in INT_FIELDS:
        if data.get(name, 0) < 0:
            raise RowError(f"Invalid {name}", f"{name} cannot be negative")
    if data.get("redemption_limit_per_order") and not data.get("target_quantity"):
        raise RowError(
            "Invalid redemption limit", "redemption_limit_per_order needs target_quantity > 0"
        )


def _money(name: str, value: str, currency: str | None) -> Decimal:
    match = MONEY_STRING.match(value)
    if match is None:
        raise RowError(f"Invalid {name}", f'{name} must read like "30.99 USD", got {value!r}')
    if currency and match.group(2) != currency:
        raise RowError(
            f"Invalid {name} currency",
            f"{name} is in {match.group(2)}; the catalog's currency is {currency}",
        )
    try:
        return Decimal(match.group(1))
    except InvalidOperation as exc:  # pragma: no cover - the pattern admits only numbers
        raise RowError(f"Invalid {name}", str(exc)) from exc


def _list(name: str, value: str) -> list[str]:
    if value.startswith("["):
        try:
            parsed = json.loads(value)
        except ValueError as exc:
            raise RowError(f"Invalid {name}", f"{name} is not a JSON array") from exc
        if not isinstance(parsed, list):
            raise RowError(f"Invalid {name}", f"{name} must be an array")
        return [str(v) for v in parsed]
    return [part.strip() for part in value.split(",") if part.strip()]


def _int(name: str, value: str) -> int:
    try:
        return int(value)
    except ValueError as exc:
        raise RowError(f"Invalid {name}", f"{name} must be a whole number") from exc


def _timestamp(name: str, value: str) -> int:
    """Unix seconds or ISO-8601 (a timezone is required for ISO) -> unix seconds."""
    if value.isdigit():
        return int(value)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise RowError(f"Invalid {name}", f"{name} must be unix seconds or ISO-8601") from exc
    if moment.tzinfo is None:
        raise RowError(f"Invalid {name}", f"{name} needs a timezone offset")
    return int(moment.timestamp())


def _active(data: dict[str, Any], now: datetime) -> bool:
    at = int(now.timestamp())
    end = data.get("end_date_time")
    return data["start_date_time"] <= at and (end is None or at < end)


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S+0000")

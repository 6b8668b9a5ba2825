"""Meta's Offers API (orders.md §12): offers are catalog items sent as an OFFER feed.

    api = OffersApi(graph, catalog_id)
    feed_id = api.find_offer_feed("metasync offers") or api.create_offer_feed("metasync offers")
    session_id = api.upload_offers(feed_id, render_offer_feed([offer, ...]), update_only=True)
    api.upload_session(session_id).end_time, api.upload_errors(session_id)

`OfferRow` holds the §12.1 fields metasync sends, typed: money is Decimal + ISO 4217 code and is
written in the Offers API's single-string form ("30.99 USD") only when rendered.
"""

import csv
import io
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum

from pydantic import BaseModel, ConfigDict, Field, field_validator

from resources.meta.catalog_models import UploadError, UploadSession
from resources.meta.transport import GraphClient

OFFER_FEED_TYPE = "OFFER"

# The §12.1 columns metasync writes, in this order (a subset of Meta's WooCommerce plugin header).
OFFER_FEED_COLUMNS = (
    "offer_id",
    "title",
    "application_type",
    "value_type",
    "percent_off",
    "fixed_amount_off",
    "target_type",
    "target_shipping_option_types",
    "target_granularity",
    "target_selection",
    "target_product_retailer_ids",
    "start_date_time",
    "end_date_time",
    "coupon_codes",
    "min_subtotal",
    "min_quantity",
    "target_quantity",
    "offer_terms",
)


class ApplicationType(StrEnum):
    SALE = "SALE"
    AUTOMATIC_AT_CHECKOUT = "AUTOMATIC_AT_CHECKOUT"
    BUYER_APPLIED = "BUYER_APPLIED"


class ValueType(StrEnum):
    FIXED_AMOUNT = "FIXED_AMOUNT"
    PERCENTAGE = "PERCENTAGE"


class TargetType(StrEnum):
    LINE_ITEM = "LINE_ITEM"
    SHIPPING = "SHIPPING"


class TargetGranularity(StrEnum):
    ITEM_LEVEL = "ITEM_LEVEL"
    ORDER_LEVEL = "ORDER_LEVEL"


class TargetSelection(StrEnum):
    ALL_CATALOG_PRODUCTS = "ALL_CATALOG_PRODUCTS"
    SPECIFIC_PRODUCTS = "SPECIFIC_PRODUCTS"


def offer_money(amount: Decimal, currency: str) -> str:
    """The Offers API money form, "30.99 USD"; refuses amounts finer than a cent."""
    if not isinstance(amount, Decimal):
        raise TypeError("offer money must be a Decimal")
    cents = amount.quantize(Decimal("0.01"))
    if cents != amount or amount < 0:
        raise ValueError(f"{amount} {currency} is not a non-negative amount in cents")
    return f"{cents} {currency.upper()}"


class OfferRow(BaseModel):
    """One row of an OFFER feed (§12.1), for the fields metasync uses."""

    model_config = ConfigDict(frozen=True)

    offer_id: str = Field(min_length=1, max_length=100)
    title: str | None = None
    application_type: ApplicationType
    value_type: ValueType
    percent_off: int | None = Field(default=None, ge=0, le=100)
    fixed_amount_off: Decimal | None = None
    currency: str = Field(min_length=3, max_length=3)
    target_type: TargetType = TargetType.LINE_ITEM
    target_shipping_option_types: tuple[str, ...] = ()
    target_granularity: TargetGranularity
    target_selection: TargetSelection = TargetSelection.ALL_CATALOG_PRODUCTS
    target_product_retailer_ids: tuple[str, ...] = ()
    start_date_time: datetime
    end_date_time: datetime | None = None
    coupon_codes: tuple[str, ...] = ()
    min_subtotal: Decimal | None = None
    min_quantity: int = Field(default=0, ge=0)
    target_quantity: int = Field(default=0, ge=0)
    offer_terms: str | None = Field(default=None, max_length=2500)

    @field_validator("fixed_amount_off", "min_subtotal", mode="before")
    @classmethod
    def _refuse_float(cls, value):
        if isinstance(value, float):
            raise ValueError("money amounts must be Decimal, never floats")
        return value

    @field_validator("start_date_time", "end_date_time")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("offer times need a timezone")
        return value

    def to_feed_row(self) -> dict[str, str]:
        """The row as feed text: lists as JSON-free comma lists, times as unix seconds."""
        row = {
            "offer_id": self.offer_id,
            "title": self.title or "",
            "application_type": str(self.application_type),
            "value_type": str(self.value_type),
            "percent_off": "" if self.percent_off is None else str(self.percent_off),
            "fixed_amount_off": ""
            if self.fixed_amount_off is None
            else offer_money(self.fixed_amount_off, self.currency),
            "target_type": str(self.target_type),
            "target_shipping_option_types": ",".join(self.target_shipping_option_types),
            "target_granularity": str(self.target_granularity),
            "target_selection": str(self.target_selection),
            "target_product_retailer_ids": ",".join(self.target_product_retailer_ids),
            "start_date_time": str(_unix(self.start_date_time)),
            "end_date_time": "" if self.end_date_time is None else str(_unix(self.end_date_time)),
            "coupon_codes": ",".join(self.coupon_codes),
            "min_subtotal": ""
            if self.min_subtotal is None
            else offer_money(self.min_subtotal, self.currency),
            "min_quantity": str(self.min_quantity) if self.min_quantity else "",
            "target_quantity": str(self.target_quantity) if self.target_quantity else "",
            "offer_terms": self.offer_terms or "",
        }
        return row


def render_offer_feed(rows: list[OfferRow]) -> bytes:
    """A CSV OFFER feed, one row per offer, in offer_id order (same offers, same bytes)."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=OFFER_FEED_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for row in sorted(rows, key=lambda r: r.offer_id):
        writer.writerow(row.to_feed_row())
    return buffer.getvalue().encode()


class OfferFeed(BaseModel):
    model_config = ConfigDict(extra="allow")

    id: str
    name: str | None = None
    catalog_item_type: str | None = None


class OffersApi:
    def __init__(self, graph: GraphClient, catalog_id: str) -> None:
        self.graph = graph
        self.catalog_id = catalog_id

    def list_feeds(self) -> list[OfferFeed]:
        rows = self.graph.paginate(
            f"{self.catalog_id}/product_feeds", {"fields": "id,name,catalog_item_type"}
        )
        return [OfferFeed.model_validate(row) for row in rows]

    def find_offer_feed(self, name: str) -> str | None:
        """The id of the catalog's OFFER feed called `name`, if one exists."""
        for feed in self.list_feeds():
            if feed.catalog_item_type == "OFFER_ITEM" and feed.name == name:
                return feed.id
        return None

    def create_offer_feed(self, name: str) -> str:
        answer = self.graph.post(
            f"{self.catalog_id}/product_feeds", {"name": name, "feed_type": OFFER_FEED_TYPE}
        )
        return str(answer["id"])

    def upload_offers(
        self,
        feed_id: str,
        content: bytes,
        *,
        update_only: bool = True,
        filename: str = "offers.csv",
    ) -> str:
        """Upload an OFFER feed file; the upload session id. A row for a known offer_id updates
        it; a replace upload (update_only=False) removes the feed's offers missing from it."""
        answer = self.graph.post(
            f"{feed_id}/uploads",
            files={"file": (filename, content, "text/csv")},
            form={"update_only": update_only, "file_name": filename},
        )
        return str(answer["id"])

    def upload_session(self, session_id: str) -> UploadSession:
        return UploadSession.model_validate(self.graph.get(session_id))

    def upload_errors(self, session_id: str) -> list[UploadError]:
        return [UploadError.model_validate(r) for r in self.graph.paginate(f"{session_id}/errors")]


def _unix(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp())

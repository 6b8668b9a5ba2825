"""The Conversions API (catalog.md §8): server events to one shop's pixel.

    capi = ConversionsApi(graph, shop.pixel_id)
    event = ServerEvent(event_name="Purchase", event_time=1767225600, event_id="order-123",
                        action_source="website", event_source_url="https://shop.example/",
                        user_data=UserData(em=[sha256_hex], client_user_agent="..."),
                        custom_data=CustomData(value=Decimal("49.90"), currency="EUR"))
    capi.send_events([event]).events_received

Meta deduplicates on (event_name, event_id) for 48 hours, so a Purchase resent with the same
event_id after a crash is counted once: the event_id is the idempotency key of this write.
Hashing user data is the caller's job (pipelines/signals); this module sends what it is given.
Money leaves as a decimal string (`"49.90"`), never a float.
"""

from collections.abc import Mapping, Sequence
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from resources.meta.transport import GraphClient

MAX_EVENTS_PER_REQUEST = 1000


class _CapiModel(BaseModel):
    model_config = ConfigDict(extra="allow")


class UserData(_CapiModel):
    """Customer information: `em`, `ph`, `fn`, ... already normalised and SHA-256 hashed;
    client_ip_address, client_user_agent, fbc and fbp are sent as they are."""

    em: list[str] | None = None
    ph: list[str] | None = None
    fn: list[str] | None = None
    ln: list[str] | None = None
    ct: list[str] | None = None
    st: list[str] | None = None
    zp: list[str] | None = None
    country: list[str] | None = None
    external_id: list[str] | None = None
    client_ip_address: str | None = None
    client_user_agent: str | None = None
    fbc: str | None = None
    fbp: str | None = None


class Content(_CapiModel):
    id: str  # the catalog's retailer_id, so Meta can match the event to the item
    quantity: int = Field(ge=1)
    item_price: Decimal | None = None


class CustomData(_CapiModel):
    value: Decimal | None = None
    currency: str | None = Field(default=None, pattern=r"^[A-Z]{3}$")
    content_type: str | None = None
    content_ids: list[str] | None = None
    contents: list[Content] | None = None
    order_id: str | None = None
    num_items: int | None = None


class ServerEvent(_CapiModel):
    event_name: str
    event_time: int  # unix seconds
    action_source: str
    event_id: str | None = None
    event_source_url: str | None = None
    user_data: UserData
    custom_data: CustomData | None = None
    opt_out: bool | None = None


class EventsResponse(_CapiModel):
    events_received: int
    messages: list[str] = Field(default_factory=list)
    fbtrace_id: str | None = None


class ConversionsApi:
    def __init__(self, graph: GraphClient, pixel_id: str) -> None:
        self.graph = graph
        self.pixel_id = pixel_id

    def send_events(
        self,
        events: Sequence[ServerEvent | Mapping[str, Any]],
        test_event_code: str | None = None,
    ) -> EventsResponse:
        """Send up to 1000 events in one request; Meta accepts all of them or none."""
        if not events:
            raise ValueError("send_events needs at least one event")
        if len(events) > MAX_EVENTS_PER_REQUEST:
            raise ValueError(
                f"{len(events)} events in one request; the Conversions API takes at most "
                f"{MAX_EVENTS_PER_REQUEST}: send them in several requests"
            )
        body: dict[str, Any] = {"data": [_wire(event) for event in events]}
        if test_event_code:
            body["test_event_code"] = test_event_code
        return EventsResponse.model_validate(self.graph.post(f"{self.pixel_id}/events", body))


def _wire(event: ServerEvent | Mapping[str, Any]) -> dict[str, Any]:
    if isinstance(event, ServerEvent):
        # mode="json" turns Decimal into its exact string, never a float.
        return event.model_dump(mode="json", exclude_none=True)
    return _plain(event)


def _plain(value: Any) -> Any:
    """Decimals (at any depth) as exact strings, so a hand-built event never carries a float."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value

"""Conversions API through the real HTTP sandbox, with ConversionsApi as the client."""

import hashlib
import time
from decimal import Decimal

import pytest

from resources.meta.conversions import (
    Content,
    ConversionsApi,
    CustomData,
    ServerEvent,
    UserData,
)
from resources.meta.errors import GraphValidationError
from resources.meta.transport import GraphClient

EMAIL_HASH = hashlib.sha256(b"jane@example.com").hexdigest()


def purchase(
    event_id: str | None = "order-1", *, age_seconds: int = 60, **overrides
) -> ServerEvent:
    fields = {
        "event_name": "Purchase",
        "event_time": int(time.time()) - age_seconds,
        "event_id": event_id,
        "action_source": "website",
        "event_source_url": "https://shop.example/checkout",
        "user_data": UserData(
            em=[EMAIL_HASH], client_ip_address="192.0.2.1", client_user_agent="Mozilla/5.0"
        ),
        "custom_data": CustomData(
            value=Decimal("49.90"),
            currency="EUR",
            contents=[Content(id="SKU-1", quantity=2, item_price=Decimal("24.95"))],
        ),
    }
    return ServerEvent(**(fields | overrides))


@pytest.fixture
def capi(onboard, sandbox):
    profile = onboard("acme")
    graph = GraphClient("acme", sandbox.state.shops["acme"].token, base_url=sandbox.url)
    yield ConversionsApi(graph, profile.pixel_id)
    graph.close()


def test_valid_events_are_received_with_exact_value(capi, sandbox_admin):
    answer = capi.send_events([purchase("order-1"), purchase("order-2")])

    assert answer.events_received == 2 and answer.messages == [] and answer.fbtrace_id
    log = sandbox_admin.conversion_events("acme")
    assert [e["event_id"] for e in log["events"]] == ["order-1", "order-2"]
    assert log["events"][0]["custom_data"]["value"] == "49.90"


def test_resent_event_is_deduplicated_within_48_hours(capi, sandbox_admin):
    capi.send_events([purchase("order-1")])
    capi.send_events([purchase("order-1"), purchase("order-2")])
    log = sandbox_admin.conversion_events("acme")
    assert (log["events_received"], log["duplicates_dropped"]) == (3, 1)

    sandbox_admin.advance_clock(49 * 3600)
    capi.send_events([purchase("order-1", age_seconds=-49 * 3600 + 60)])
    assert sandbox_admin.conversion_events("acme")["duplicates_dropped"] == 1


def test_events_without_event_id_are_never_deduplicated(capi, sandbox_admin):
    capi.send_events([purchase(None), purchase(None)])
    assert sandbox_admin.conversion_events("acme")["duplicates_dropped"] == 0


@pytest.mark.parametrize(
    ("bad_event", "words"),
    [
        (purchase(age_seconds=8 * 24 * 3600), "days in the past"),
        (purchase(age_seconds=-3600), "future"),
        (purchase(action_source="web"), "action_source"),
        (purchase(user_data=UserData(em=["jane@example.com"])), "must be hashed"),
        (purchase(user_data=UserData(client_ip_address="not-an-ip")), "IP address"),
        (purchase(custom_data=CustomData(value=Decimal("1"))), "value and currency"),
        (purchase(event_source_url=None), "event_source_url"),
    ],
)
def test_one_invalid_event_refuses_the_whole_request(capi, sandbox_admin, bad_event, words):
    with pytest.raises(GraphValidationError) as refused:
        capi.send_events([purchase("good"), bad_event])

    assert refused.value.code == 100 and words in refused.value.message
    assert "event 1" in refused.value.message
    assert sandbox_admin.conversion_events("acme")["events_received"] == 0


def test_unhashed_identifiers_are_accepted_as_they_are(capi):
    user = UserData(
        client_ip_address="2001:db8::1",
        client_user_agent="Mozilla/5.0",
        fbc="fb.1.1554763741205.AbCdEf",
        fbp="fb.1.1596403881668.1116446470",
    )
    assert capi.send_events([purchase(user_data=user)]).events_received == 1


def test_test_event_code_is_recorded(capi, sandbox_admin):
    capi.send_events([purchase()], test_event_code="TEST123")
    assert sandbox_admin.conversion_events("acme")["events"][0]["test_event_code"] == "TEST123"


def test_batch_limit(capi, sandbox):
    with pytest.raises(ValueError, match="at most 1000"):
        capi.send_events([purchase(f"o{n}") for n in range(1001)])

    sandbox.state.domains["conversions"].settings.max_events = 2
    with pytest.raises(GraphValidationError, match="at most 2"):
        capi.send_events([purchase(f"o{n}") for n in range(3)])


def test_sdk_style_json_string_events_are_accepted(capi, sandbox_admin):
    """The Python SDK sends each event as a JSON string inside `data`."""
    event = purchase("sdk-1").model_dump_json(exclude_none=True)
    answer = capi.graph.post(f"{capi.pixel_id}/events", form={"data": [event]})
    assert answer["events_received"] == 1
    assert sandbox_admin.conversion_events("acme")["events"][0]["event_id"] == "sdk-1"

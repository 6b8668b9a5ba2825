"""CAPI payloads: Meta's documented normalisation/hash examples, stable ids, no plain PII."""

import json
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from pipelines.signals.events import (
    EventError,
    hash_user_data,
    is_paid,
    purchase_event,
    purchase_event_id,
)
from resources.oms.models import OmsLine, OmsOrder


@pytest.mark.parametrize(
    ("key", "raw", "digest"),
    [
        ("em", " John_Smith@gmail.com ",
         "62a14e44f765419d10fea99367361a727c12365e2520f32218d505ed9aa0f62f"),
        ("ph", "+1 (650) 555-1212",
         "e323ec626319ca94ee8bff2e4c87cf613be6ea19919ed1364124e16807ab3176"),
        ("fn", "Mary", "6915771be1c5aa0c886870b6951b03d7eafc121fea0e80a5ea83beb7c449f4ec"),
        ("fn", "Valéry", "08e1996b5dd49e62a4b4c010d44e4345592a863bb9f8e3976219bac29417149c"),
        ("country", "US", "79adb2a2fce5c6ba215fe5f27f532d4e7edbac4b6a5e09e1ef3a08084a904621"),
    ],
)  # fmt: skip
def test_user_data_matches_metas_documented_hashes(key, raw, digest):
    assert hash_user_data({key: raw}) == {key: [digest]}


def test_already_hashed_values_pass_through_and_junk_is_dropped():
    digest = "a" * 64
    assert hash_user_data({"em": digest, "ph": "abc", "zz": "x", "ct": None}) == {"em": [digest]}


def _order(status="processing", total="25.00") -> OmsOrder:
    line = OmsLine(1, 1, "it1", "SKU-1", None, 2, Decimal("12.50"), Decimal(0), Decimal(0),
                   Decimal(0), Decimal(0), 0, 0, 0, Decimal(0))  # fmt: skip
    return OmsOrder(
        1, "OMS-1", "acme", "meta", "1001", status, "EUR", Decimal("25.00"), Decimal(0),
        Decimal(0), Decimal(0), Decimal(0), Decimal(0), Decimal(total), "Ada Lovelace",
        "Ada@Example.com", False, {"city": "New York", "country": "US"}, None, (line,),
    )  # fmt: skip


def test_purchase_event_is_stable_hashed_and_exact():
    when = datetime(2026, 3, 1, 10, tzinfo=UTC)
    event = purchase_event(shop_id="acme", order=_order(), meta_order_id="1001", event_time=when)
    again = purchase_event(shop_id="acme", order=_order(), meta_order_id="1001", event_time=when)
    assert event["event_id"] == again["event_id"] == purchase_event_id("acme", "1001")
    assert purchase_event_id("other", "1001") != event["event_id"]
    assert event["custom_data"]["value"] == "25.00"
    assert event["custom_data"]["contents"] == [
        {"id": "SKU-1", "quantity": 2, "item_price": "12.50"}
    ]
    text = json.dumps(event)
    assert "Ada" not in text and "ada@example.com" not in text and "New York" not in text


def test_unpaid_or_cancelled_orders_are_not_purchases():
    assert is_paid(_order(), "CREATED")
    assert not is_paid(_order(), "FB_PROCESSING")
    assert not is_paid(_order(status="cancelled"), "IN_PROGRESS")
    assert not is_paid(_order(total="0.00"), "CREATED")


def test_naive_event_time_is_refused():
    with pytest.raises(EventError):
        purchase_event(
            shop_id="acme", order=_order(), meta_order_id="1", event_time=datetime(2026, 1, 1)
        )

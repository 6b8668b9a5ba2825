"""The Graph write outbox: deterministic keys, stored before the call, one body per key."""

from decimal import Decimal

import pytest

from resources.db.outbox import GraphWriteOutbox, OutboxConflict, idempotency_key


def test_keys_are_deterministic_and_distinguish_every_input():
    base = idempotency_key("acme", "refund", "1001", "r-1")

    assert base == idempotency_key("acme", "refund", "1001", "r-1")
    variants = {
        idempotency_key("bolt", "refund", "1001", "r-1"),
        idempotency_key("acme", "cancel", "1001", "r-1"),
        idempotency_key("acme", "refund", "1002", "r-1"),
        idempotency_key("acme", "refund", "1001", "r-2"),
    }
    assert base not in variants and len(variants) == 4
    assert len(base) <= 100 and base.replace("-", "").isalnum()


def test_intent_is_stored_before_the_call_and_replayed(metasync_db):
    outbox = GraphWriteOutbox(metasync_db)
    key = idempotency_key("acme", "refund", "1001", "r-1")
    body = {"items": [{"retailer_id": "SKU-1", "quantity": 1}], "amount": Decimal("9.99")}

    first = outbox.record_intent(key, shop_id="acme", action="refund", target_id="1001", body=body)
    assert first.status == "pending"
    assert [w.idempotency_key for w in outbox.pending("acme")] == [key]

    outbox.mark_succeeded(key, {"id": "refund-1"})
    again = outbox.record_intent(key, shop_id="acme", action="refund", target_id="1001", body=body)
    assert again.status == "succeeded" and again.response == {"id": "refund-1"}
    assert outbox.pending("acme") == []


def test_same_key_for_another_body_is_refused(metasync_db):
    outbox = GraphWriteOutbox(metasync_db)
    key = idempotency_key("acme", "refund", "1001", "r-1")
    outbox.record_intent(key, shop_id="acme", action="refund", target_id="1001", body={"q": 1})

    with pytest.raises(OutboxConflict):
        outbox.record_intent(key, shop_id="acme", action="refund", target_id="1001", body={"q": 2})

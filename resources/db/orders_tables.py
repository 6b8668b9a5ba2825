"""metasync's own order tables (the OMS keeps its orders in its own database).

* ``order_map``          (shop, Meta order id) -> OMS order id and reference; what happened to it.
* ``order_acks``         every acknowledgement batch outcome per order, with its idempotency key.
* ``order_issues``       orders that need a person: why (a code), what we did (a policy action).
* ``order_change_sync``  per OMS change: was it sent to Meta, with which key, what Meta said.
* ``order_watermarks``   per shop and stream, how far Meta-side changes have been pulled.
* ``order_meta_events``  Meta's cancellation / refund / return ids and who caused each.
* ``order_write_intents`` what each cancellation / refund push asked for, recorded before it is
                         sent, so a Meta event is matched to it by content (event_origin.py).
* ``offer_feeds``, ``offers_ledger``, ``offer_uploads``  store discounts synced as Meta offers
                         (pipelines/offers).

The seller-issue table of the catalog is keyed by retailer_id; an order problem is keyed by the
order, so orders keep their own table with the same spirit (reason + call to action).
"""

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from resources.db.schema import metadata
from resources.db.types import UtcDateTime

order_map = Table(
    "order_map",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("meta_order_id", String(64), primary_key=True),
    Column("oms_order_id", Integer, nullable=True),
    Column("merchant_order_reference", String(64), nullable=True),
    Column(
        "state",
        String(16),
        nullable=False,
        comment="imported | acknowledged | issue | cancelled_on_meta",
    ),
    Column("meta_created_at", UtcDateTime, nullable=True),
    Column("meta_last_updated", UtcDateTime, nullable=True),
    Column("imported_at", UtcDateTime, nullable=True),
    Column("acknowledged_at", UtcDateTime, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_order_map_shop_state", "shop_id", "state"),
    Index("ix_order_map_oms", "shop_id", "oms_order_id"),
)

order_acks = Table(
    "order_acks",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", String(64), nullable=False),
    Column("meta_order_id", String(64), nullable=False),
    Column("idempotency_key", String(80), nullable=False),
    Column("merchant_order_reference", String(64), nullable=True),
    Column("state", String(24), nullable=True, comment="Meta's state after the ack"),
    Column("error_code", Integer, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("acked_at", UtcDateTime, nullable=False),
    UniqueConstraint("idempotency_key", "meta_order_id", name="uq_order_acks_key_order"),
)

order_issues = Table(
    "order_issues",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", String(64), nullable=False),
    Column("meta_order_id", String(64), nullable=False),
    Column("code", String(64), nullable=False, comment="import issue code or Meta error code"),
    Column("reason", Text, nullable=False),
    Column("call_to_action", Text, nullable=False),
    Column("action_taken", String(32), nullable=False, comment="held | cancelled_on_meta | ..."),
    Column("admin_url", Text, nullable=True),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    UniqueConstraint("shop_id", "meta_order_id", "code", name="uq_order_issue"),
)

order_change_sync = Table(
    "order_change_sync",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("oms_change_id", Integer, primary_key=True),
    Column("meta_order_id", String(64), nullable=False),
    Column("action", String(32), nullable=False),
    Column("idempotency_key", String(80), nullable=False),
    Column(
        "status",
        String(16),
        nullable=False,
        comment="synced | retry | gave_up | issue | skipped",
    ),
    Column("attempts", Integer, nullable=False, default=0),
    Column("error_code", Integer, nullable=True),
    Column("error_message", Text, nullable=True),
    Column("response", JSON, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
    Index("ix_order_change_sync_status", "shop_id", "status"),
)

order_watermarks = Table(
    "order_watermarks",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("stream", String(32), primary_key=True, comment="meta_changes | meta_returns"),
    Column("watermark", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Meta's cancellation / refund / return ids of an order and who caused each: metasync (a write we
# pushed) or Meta (support, SLA auto-cancel, a buyer's return). Meta answers writes with only
# {"success": true}, so after a push the new ids are claimed here; an unclaimed id found later is
# Meta's own doing and is applied to the OMS.
order_meta_events = Table(
    "order_meta_events",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("kind", String(16), primary_key=True, comment="cancellation | refund | return"),
    Column("meta_event_id", String(64), primary_key=True),
    Column("meta_order_id", String(64), nullable=False),
    Column("origin", String(16), nullable=False, comment="metasync | meta"),
    Column("oms_ref_id", Integer, nullable=True),
    Column("recorded_at", UtcDateTime, nullable=False),
)

# -- offers (orders.md §12): the store's discounts synced to Meta as an OFFER feed ---------------

# The shop's OFFER feed on its catalog (created once, found again by name after a crash).
offer_feeds = Table(
    "offer_feeds",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("feed_id", String(64), nullable=False),
    Column("name", String(128), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
)

# Per shop and offer_id (the store discount's code): what Meta last accepted, or refused.
offers_ledger = Table(
    "offers_ledger",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("offer_id", String(100), primary_key=True),
    Column("content_hash", String(64), nullable=True, comment="row Meta accepted; null: never"),
    Column("rejected_hash", String(64), nullable=True, comment="row Meta refused; not resent"),
    Column("row", JSON, nullable=True, comment="the feed row Meta accepted"),
    Column("status", String(16), nullable=False, comment="active | deactivated | rejected"),
    Column("last_error", Text, nullable=True),
    Column("last_upload_key", String(80), nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Every offer feed upload, recorded (with its file) before it is sent; a rerun after a crash
# resends the recorded file under the same key instead of computing a new one.
offer_uploads = Table(
    "offer_uploads",
    metadata,
    Column("idempotency_key", String(80), primary_key=True),
    Column("shop_id", String(64), nullable=False),
    Column("feed_id", String(64), nullable=False),
    Column("content", Text, nullable=False),
    Column("offers", JSON, nullable=False, comment="[[offer_id, content_hash, action, row], ...]"),
    Column("status", String(16), nullable=False, comment="recorded | finished"),
    Column("session_id", String(64), nullable=True),
    Column("errors", JSON, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Index("ix_offer_uploads_shop_status", "shop_id", "status"),
)

# What each cancellation / refund push asked Meta for, recorded before it is sent. Meta's answer
# carries no id, so a Meta event is ours when it matches an intent of the same order and kind by
# its items, quantities and amounts (not by when it appeared); `meta_event_id` is the claim.
order_write_intents = Table(
    "order_write_intents",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("idempotency_key", String(80), primary_key=True),
    Column("meta_order_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False, comment="cancellation | refund"),
    Column("signature", JSON, nullable=False, comment="items, quantities, amounts, reason"),
    Column("meta_event_id", String(64), nullable=True, comment="the Meta event it became"),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_order_write_intents_order", "shop_id", "meta_order_id", "kind"),
)

"""metasync's Conversions API outbox: one Purchase event per paid order, sent once.

A row is written when the order is imported (after its acknowledgement) and marked `sent` only
after Meta accepted the batch that carried it. The payload holds hashed customer data only.
"""

from sqlalchemy import JSON, Column, Index, Integer, String, Table, Text

from resources.db.schema import metadata
from resources.db.types import UtcDateTime

capi_events = Table(
    "capi_events",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("event_id", String(64), primary_key=True, comment="stable per order"),
    Column("meta_order_id", String(64), nullable=False),
    Column("pixel_id", String(64), nullable=True),
    Column("event_name", String(32), nullable=False),
    Column("event_time", UtcDateTime, nullable=False),
    Column("payload", JSON, nullable=False, comment="the server event, hashed user_data only"),
    Column("status", String(16), nullable=False, comment="pending | sent | failed | expired"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("last_error", Text, nullable=True),
    Column("next_attempt_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("sent_at", UtcDateTime, nullable=True),
    Index("ix_capi_events_shop_status", "shop_id", "status"),
)

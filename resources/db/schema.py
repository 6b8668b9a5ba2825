"""The metasync database schema that every domain shares: shops and the Graph write outbox.

Domain tables live beside this module (``catalog_tables``, ``orders_tables``,
``finance_tables``) on the same ``metadata`` so one ``create_all`` builds everything.
"""

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
)

from resources.db.types import UtcDateTime

metadata = MetaData()

shops = Table(
    "shops",
    metadata,
    Column("shop_id", String(64), primary_key=True, comment="slug, ^[a-z0-9_-]+$"),
    Column("name", String(200), nullable=False),
    Column("catalog_id", String(64), nullable=False),
    Column("cms_id", String(64), nullable=True, comment="commerce merchant settings id"),
    Column("page_id", String(64), nullable=True),
    Column("pixel_id", String(64), nullable=True),
    Column("business_id", String(64), nullable=True),
    Column("currency", String(3), nullable=False),
    Column("timezone", String(64), nullable=False),
    Column("source_kind", String(32), nullable=False),
    Column("source_location", Text, nullable=False),
    Column("capabilities", JSON, nullable=False),
    Column("admin_url_template", Text, nullable=True),
    Column("storefront_url_template", Text, nullable=True),
    Column("default_brand", String(200), nullable=True),
    Column("status", String(16), nullable=False),
    Column("status_reason", Text, nullable=True),
    Column("token_ciphertext", LargeBinary, nullable=False),
    Column("token_fingerprint", String(16), nullable=False),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

# Every Graph write is recorded here, keyed by its deterministic idempotency key, *before* it is
# sent. A rerun finds the row and either replays the same key or skips a write already done.
graph_writes = Table(
    "graph_writes",
    metadata,
    Column("idempotency_key", String(80), primary_key=True),
    Column("shop_id", String(64), nullable=False),
    Column("action", String(64), nullable=False),
    Column("target_id", String(128), nullable=False),
    Column("request_hash", String(64), nullable=False),
    Column("status", String(16), nullable=False, comment="pending | succeeded | failed"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("response", JSON, nullable=True),
    Column("error", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("completed_at", UtcDateTime, nullable=True),
    Index("ix_graph_writes_shop_status", "shop_id", "status"),
)

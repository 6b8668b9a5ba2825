"""Catalog tables: what metasync sent to Meta, what Meta accepted, and what the seller must fix.

    with db.begin() as conn:
        conn.execute(select(catalog_ledger).where(catalog_ledger.c.shop_id == "acme"))

* ``catalog_snapshots``  one row per snapshot taken from the store (counts, last good flag).
* ``catalog_rejects``    every source row that did not become a Meta item, with its reason.
* ``catalog_ledger``     per shop and retailer_id: the hashes Meta last ACCEPTED. The diff runs
                         snapshot vs ledger, so a lost or failed write is retried next run.
* ``item_status_history`` each item's PENDING / ACCEPTED / REJECTED transitions.
* ``batch_handles``      every items_batch call, recorded before it is sent; the handle is stored
                         the moment Meta returns it so a rerun follows it instead of resending.
* ``upload_sessions``    every feed upload and how its session ended.
* ``seller_issues``      what the seller must fix, with a call to action and a store admin link.
* ``product_set_map``    store collection -> Meta product set.
"""

from sqlalchemy import (
    JSON,
    Boolean,
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

catalog_snapshots = Table(
    "catalog_snapshots",
    metadata,
    Column("snapshot_id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", String(64), nullable=False),
    Column("cadence", String(16), nullable=False, comment="full | delta | stock_price | plan"),
    Column("taken_at", UtcDateTime, nullable=False),
    Column("source_rows", Integer, nullable=False),
    Column("items", Integer, nullable=False),
    Column("excluded", Integer, nullable=False),
    Column("rejected", Integer, nullable=False),
    Column("status", String(16), nullable=False, comment="taken | synced | refused | failed"),
    Column("status_reason", Text, nullable=True),
    Column(
        "last_good",
        Boolean,
        nullable=False,
        default=False,
        comment="the snapshot the shrink guard compares against (one per shop)",
    ),
    Index("ix_catalog_snapshots_shop_taken", "shop_id", "taken_at"),
)

catalog_rejects = Table(
    "catalog_rejects",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("snapshot_id", Integer, nullable=False),
    Column("shop_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False, comment="excluded | rejected"),
    Column("source_row", Integer, nullable=False),
    Column("retailer_id", String(128), nullable=True),
    Column("product_id", String(128), nullable=True),
    Column("reason", String(64), nullable=False),
    Column("detail", Text, nullable=True),
    Column("fix_url", Text, nullable=True),
    Index("ix_catalog_rejects_snapshot", "snapshot_id"),
)

catalog_ledger = Table(
    "catalog_ledger",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("retailer_id", String(128), primary_key=True),
    Column("item_group_id", String(128), nullable=True),
    Column("product_id", String(128), nullable=True),
    Column(
        "content_hash",
        String(64),
        nullable=True,
        comment="hash of every Meta field Meta last accepted; null: never accepted",
    ),
    Column("volatile_hash", String(32), nullable=True, comment="price/sale/stock part"),
    Column(
        "rejected_hash",
        String(64),
        nullable=True,
        comment="content Meta rejected; not resent until the store changes it",
    ),
    Column("meta_status", String(16), nullable=False, comment="PENDING | ACCEPTED | REJECTED"),
    Column("last_handle", String(128), nullable=True, comment="batch handle or upload session"),
    Column("last_error", Text, nullable=True),
    Column("updated_at", UtcDateTime, nullable=False),
)

item_status_history = Table(
    "item_status_history",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", String(64), nullable=False),
    Column("retailer_id", String(128), nullable=False),
    Column("status", String(16), nullable=False, comment="PENDING | ACCEPTED | REJECTED"),
    Column("method", String(16), nullable=True, comment="CREATE | UPDATE | DELETE | FEED"),
    Column("reason", Text, nullable=True),
    Column("handle", String(128), nullable=True),
    Column("upload_session_id", String(128), nullable=True),
    Column("at", UtcDateTime, nullable=False),
    Index("ix_item_status_history_item", "shop_id", "retailer_id", "at"),
)

batch_handles = Table(
    "batch_handles",
    metadata,
    Column("idempotency_key", String(80), primary_key=True),
    Column("shop_id", String(64), nullable=False),
    Column("cadence", String(16), nullable=False),
    Column("handle", String(128), nullable=True, comment="null until Meta returned it"),
    Column("request_count", Integer, nullable=False),
    Column(
        "requests",
        JSON,
        nullable=False,
        comment="[[retailer_id, method, content_hash, volatile_hash, item_group_id], ...]",
    ),
    Column("status", String(16), nullable=False, comment="recorded | sent | finished | error"),
    Column("errors", JSON, nullable=True),
    Column("errors_total_count", Integer, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
    Index("ix_batch_handles_shop_status", "shop_id", "status"),
)

upload_sessions = Table(
    "upload_sessions",
    metadata,
    Column("idempotency_key", String(80), primary_key=True),
    Column("shop_id", String(64), nullable=False),
    Column("snapshot_id", Integer, nullable=True),
    Column("feed_id", String(128), nullable=False),
    Column("session_id", String(128), nullable=True, comment="null until Meta returned it"),
    Column("update_only", Boolean, nullable=False),
    Column("status", String(16), nullable=False, comment="recorded | sent | finished | error"),
    Column("num_detected_items", Integer, nullable=True),
    Column("num_invalid_items", Integer, nullable=True),
    Column("num_persisted_items", Integer, nullable=True),
    Column("errors", JSON, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("finished_at", UtcDateTime, nullable=True),
)

seller_issues = Table(
    "seller_issues",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", String(64), nullable=False),
    Column("issue_type", String(96), nullable=False),
    Column(
        "retailer_id",
        String(128),
        nullable=False,
        comment="'' for an issue about the whole catalog",
    ),
    Column("severity", String(16), nullable=False, comment="error | warning"),
    Column(
        "source", String(32), nullable=False, comment="store | items_batch | feed | diagnostics"
    ),
    Column("title", Text, nullable=False),
    Column("call_to_action", Text, nullable=False),
    Column("admin_url", Text, nullable=True),
    Column("detail", Text, nullable=True),
    Column("affected_retailer_ids", JSON, nullable=False),
    Column("first_seen", UtcDateTime, nullable=False),
    Column("last_seen", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    UniqueConstraint("shop_id", "issue_type", "retailer_id", name="uq_seller_issue"),
    Index("ix_seller_issues_open", "shop_id", "resolved_at"),
)

product_set_map = Table(
    "product_set_map",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("collection", String(200), primary_key=True),
    Column("product_set_id", String(128), nullable=False),
    Column("filter_hash", String(64), nullable=False),
    Column("filter", JSON, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

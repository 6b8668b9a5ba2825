"""Operations tables: raised alerts (deduplicated per condition) and step outputs shared by
workers.

* ``alerts``        one row per alert condition (``alert_key``). A condition that persists across
                    sensor ticks stays one row and notifies once; when it clears the row is
                    resolved, and a recurrence opens a new row (the key carries no clock, the
                    partial uniqueness is enforced in code: one open row per key).
* ``step_outputs``  pickled step outputs for multi-worker execution (dagster-celery): every worker
                    reads what another wrote, through the metasync database instead of local disk.
"""

from sqlalchemy import (
    JSON,
    Column,
    Index,
    Integer,
    LargeBinary,
    String,
    Table,
    Text,
)

from resources.db.schema import metadata
from resources.db.types import UtcDateTime

alerts = Table(
    "alerts",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("alert_key", String(200), nullable=False, comment="kind:shop:condition, no clock"),
    Column(
        "kind",
        String(32),
        nullable=False,
        comment="run_failure | catalog_stale | order_ack_late | finance_lag | token_needs_reauth",
    ),
    Column("shop_id", String(64), nullable=True, comment="null: not about one shop"),
    Column("severity", String(16), nullable=False, comment="critical | warning"),
    Column("summary", Text, nullable=False),
    Column("detail", JSON, nullable=False),
    Column("raised_at", UtcDateTime, nullable=False),
    Column("last_seen_at", UtcDateTime, nullable=False),
    Column("resolved_at", UtcDateTime, nullable=True),
    Column(
        "webhook_status",
        String(16),
        nullable=False,
        comment="not_configured | delivered | failed (retried while the alert is open)",
    ),
    Column("webhook_error", Text, nullable=True),
    Index("ix_alerts_key_open", "alert_key", "resolved_at"),
    Index("ix_alerts_shop", "shop_id", "raised_at"),
)

step_outputs = Table(
    "step_outputs",
    metadata,
    Column("storage_key", String(400), primary_key=True, comment="asset/partition or run/step/out"),
    Column("run_id", String(64), nullable=False),
    Column("step_key", String(400), nullable=False),
    Column("output_name", String(200), nullable=False),
    Column("payload", LargeBinary, nullable=False, comment="pickle"),
    Column("byte_size", Integer, nullable=False),
    Column("stored_at", UtcDateTime, nullable=False),
    Index("ix_step_outputs_run", "run_id"),
)

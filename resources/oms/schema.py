"""The reference order management system's own schema, in its own database.

The OMS is the seller's system, not metasync's: it knows orders, lines, shipments, cancellations,
refunds and returns, and keeps an append-only outbox (`oms_changes`) of what its users did, so an
integration can pick the changes up. It knows nothing about Meta beyond an order's `source` and
`external_ref` (the marketplace's order id), which carry a unique constraint: importing the same
marketplace order twice finds the first copy instead of making a second.
"""

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from resources.db.types import ExactDecimal, UtcDateTime

oms_metadata = MetaData()

oms_orders = Table(
    "oms_orders",
    oms_metadata,
    Column("order_id", Integer, primary_key=True, autoincrement=True),
    Column("reference", String(32), nullable=True, unique=True, comment="OMS-00000042"),
    Column("shop_id", String(64), nullable=False),
    Column("source", String(16), nullable=False, comment="meta | web | pos ..."),
    Column("external_ref", String(64), nullable=True, comment="the marketplace's order id"),
    Column("status", String(16), nullable=False, comment="pending|processing|completed|cancelled"),
    Column("currency", String(3), nullable=False),
    Column("items_total", ExactDecimal, nullable=False, comment="after item-level discounts"),
    Column("order_discount_total", ExactDecimal, nullable=False),
    Column("meta_funded_discount_total", ExactDecimal, nullable=False),
    Column("shipping_total", ExactDecimal, nullable=False, comment="charged, after discounts"),
    Column("shipping_discount_total", ExactDecimal, nullable=False),
    Column("tax_total", ExactDecimal, nullable=False),
    Column("grand_total", ExactDecimal, nullable=False),
    Column("buyer_name", String(200), nullable=True),
    Column("buyer_email", String(320), nullable=True),
    Column("buyer_marketing_opt_in", Boolean, nullable=False, default=False),
    Column("shipping_address", JSON, nullable=True),
    Column("shipping_method", String(200), nullable=True),
    Column("channel", String(32), nullable=True),
    Column("placed_at", UtcDateTime, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    UniqueConstraint("shop_id", "source", "external_ref", name="uq_oms_orders_external"),
)

oms_order_lines = Table(
    "oms_order_lines",
    oms_metadata,
    Column("line_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, ForeignKey("oms_orders.order_id"), nullable=False),
    Column("position", Integer, nullable=False),
    Column("external_line_id", String(64), nullable=True, comment="Meta's order item id"),
    Column("sku", String(128), nullable=False, comment="the store's variant id (retailer_id)"),
    Column("name", String(500), nullable=True),
    Column("quantity", Integer, nullable=False),
    Column("unit_price", ExactDecimal, nullable=False, comment="after item-level discounts"),
    Column("item_discount", ExactDecimal, nullable=False, comment="inside unit_price already"),
    Column("order_discount", ExactDecimal, nullable=False, comment="seller-funded order share"),
    Column("meta_funded_discount", ExactDecimal, nullable=False),
    Column("tax", ExactDecimal, nullable=False),
    Column("qty_shipped", Integer, nullable=False, default=0),
    Column("qty_cancelled", Integer, nullable=False, default=0),
    Column("qty_refunded", Integer, nullable=False, default=0),
    Column("refunded_amount", ExactDecimal, nullable=False),
    UniqueConstraint("order_id", "position", name="uq_oms_lines_position"),
)

oms_line_allocations = Table(
    "oms_line_allocations",
    oms_metadata,
    Column("line_id", Integer, ForeignKey("oms_order_lines.line_id"), primary_key=True),
    Column("promotion_id", String(64), primary_key=True),
    Column("sponsor", String(8), nullable=False, comment="seller | meta"),
    Column("amount", ExactDecimal, nullable=False),
)

oms_order_discounts = Table(
    "oms_order_discounts",
    oms_metadata,
    Column("discount_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, ForeignKey("oms_orders.order_id"), nullable=False),
    Column("promotion_id", String(64), nullable=False),
    Column("offer_id", String(128), nullable=True),
    Column("campaign_name", String(200), nullable=True),
    Column("coupon_code", String(100), nullable=True),
    Column("granularity", String(16), nullable=False, comment="item_level|order_level|shipping"),
    Column("sponsor", String(8), nullable=False, comment="seller | meta"),
    Column("amount", ExactDecimal, nullable=False),
    Column("applied_after_tax", Boolean, nullable=False, default=False),
    Column("external_line_id", String(64), nullable=True),
)

oms_shipments = Table(
    "oms_shipments",
    oms_metadata,
    Column("shipment_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, ForeignKey("oms_orders.order_id"), nullable=False),
    Column("external_shipment_id", String(64), nullable=True, unique=True),
    Column("carrier", String(64), nullable=False),
    Column("tracking_number", String(128), nullable=False),
    Column("shipping_method", String(200), nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
)

oms_cancellations = Table(
    "oms_cancellations",
    oms_metadata,
    Column("cancellation_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, ForeignKey("oms_orders.order_id"), nullable=False),
    Column("reason_code", String(64), nullable=True),
    Column("reason_description", Text, nullable=True),
    Column("restock", Boolean, nullable=False, default=False),
    Column("full_order", Boolean, nullable=False, default=False),
    Column("origin", String(8), nullable=False, comment="oms | meta"),
    Column("external_ref", String(64), nullable=True, comment="Meta's cancellation id"),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("order_id", "origin", "external_ref", name="uq_oms_cancellations_ext"),
)

oms_refunds = Table(
    "oms_refunds",
    oms_metadata,
    Column("refund_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, ForeignKey("oms_orders.order_id"), nullable=False),
    Column("reason_code", String(64), nullable=False),
    Column("reason_text", Text, nullable=True),
    Column("items_amount", ExactDecimal, nullable=False),
    Column("shipping_amount", ExactDecimal, nullable=False),
    Column("deduction_amount", ExactDecimal, nullable=False),
    Column("total_amount", ExactDecimal, nullable=False),
    Column("full_refund", Boolean, nullable=False, default=False),
    Column("return_id", Integer, nullable=True),
    Column("origin", String(8), nullable=False, comment="oms | meta"),
    Column("external_ref", String(64), nullable=True, comment="Meta's refund id"),
    Column("created_at", UtcDateTime, nullable=False),
    UniqueConstraint("order_id", "origin", "external_ref", name="uq_oms_refunds_ext"),
)

oms_returns = Table(
    "oms_returns",
    oms_metadata,
    Column("return_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, ForeignKey("oms_orders.order_id"), nullable=False),
    Column("external_ref", String(64), nullable=True, comment="Meta's return id"),
    Column("status", String(16), nullable=False, comment="requested|accepted|declined|closed"),
    Column("reason", String(64), nullable=True),
    Column("message", Text, nullable=True),
    Column("created_at", UtcDateTime, nullable=False),
    Column("decided_at", UtcDateTime, nullable=True),
    UniqueConstraint("order_id", "external_ref", name="uq_oms_returns_ext"),
)

# The lines of a shipment, cancellation, refund or return: one table, told apart by kind.
oms_event_lines = Table(
    "oms_event_lines",
    oms_metadata,
    Column("event_line_id", Integer, primary_key=True, autoincrement=True),
    Column("event_kind", String(16), nullable=False),
    Column("event_id", Integer, nullable=False),
    Column("line_id", Integer, ForeignKey("oms_order_lines.line_id"), nullable=False),
    Column("quantity", Integer, nullable=True),
    Column("amount", ExactDecimal, nullable=True),
    Index("ix_oms_event_lines_event", "event_kind", "event_id"),
)

# Append-only: one row per thing an OMS user did. The change id is the local change id that
# integrations derive their idempotency keys from.
oms_changes = Table(
    "oms_changes",
    oms_metadata,
    Column("change_id", Integer, primary_key=True, autoincrement=True),
    Column("order_id", Integer, ForeignKey("oms_orders.order_id"), nullable=False),
    Column("shop_id", String(64), nullable=False),
    Column(
        "kind",
        String(24),
        nullable=False,
        comment="shipment | tracking_update | cancellation | refund | return_decision",
    ),
    Column("ref_id", Integer, nullable=False, comment="the shipment/cancellation/... id"),
    Column("details", JSON, nullable=True, comment="what the change set, e.g. new tracking"),
    Column("created_at", UtcDateTime, nullable=False),
    Index("ix_oms_changes_shop", "shop_id", "change_id"),
)

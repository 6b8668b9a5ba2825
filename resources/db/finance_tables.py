"""Finance tables: what Meta reported (payouts, transactions, order payments), what metasync could
not understand (quarantine), and the reconciled tables analysts read.

    with db.begin() as conn:
        conn.execute(select(finance_order_reconciliation).where(
            finance_order_reconciliation.c.status == "amount_mismatch"))

Money columns are ``ExactDecimal`` (NUMERIC on Postgres, exact decimal text on SQLite) in major
units, always next to a ``currency`` column. Each has a ``*_minor`` BIGINT companion holding the
same amount in the currency's minor units (cents for EUR/USD, yen for JPY) so SQL can ``SUM`` it
exactly on SQLite too. ``docs/data-dictionary.md`` documents every table and column; a test keeps
the two in step.

Loaded tables (``finance_payouts``, ``finance_transactions``, ...) are replaced per shop and day
partition in one transaction. Analyst tables (``finance_order_reconciliation`` and the other
reconciled tables) are rebuilt per shop from the loaded tables and published only after the
blocking checks passed.
"""

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Date,
    Float,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from resources.db.schema import metadata
from resources.db.types import ExactDecimal, UtcDateTime


def _money(name: str, *, nullable: bool = False, comment: str = "") -> list[Column]:
    """An exact major-unit amount and its minor-unit integer twin."""
    return [
        Column(name, ExactDecimal, nullable=nullable, comment=comment),
        Column(f"{name}_minor", BigInteger, nullable=nullable, comment=f"{name} in minor units"),
    ]


# -- loaded from Meta ------------------------------------------------------------------------------

finance_payouts = Table(
    "finance_payouts",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("payout_reference_id", String(128), primary_key=True),
    Column("partition_date", Date, nullable=False, comment="day partition that loaded the row"),
    Column("payout_date", UtcDateTime, nullable=True, comment="empty: still in the balance"),
    Column("status", String(32), nullable=True, comment="COMPLETED | FAILED (Meta's value)"),
    *_money("amount"),
    Column("currency", String(3), nullable=False),
    Column("transfer_id", String(128), nullable=True),
    Column("loaded_at", UtcDateTime, nullable=False),
    Index("ix_finance_payouts_partition", "shop_id", "partition_date"),
)

finance_transactions = Table(
    "finance_transactions",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("transaction_key", String(80), primary_key=True, comment="stable id, see dictionary"),
    Column("meta_transaction_id", String(128), nullable=True),
    Column("transaction_type", String(32), nullable=False),
    Column("transaction_date", UtcDateTime, nullable=False),
    Column("transaction_day", Date, nullable=False, comment="UTC day of transaction_date"),
    Column("order_id", String(128), nullable=False),
    Column("merchant_order_id", String(128), nullable=True),
    Column("payout_reference_id", String(128), nullable=True),
    Column("transfer_id", String(128), nullable=True),
    Column("currency", String(3), nullable=False),
    *_money("gross_amount", comment="net_amount - processing_fee"),
    *_money("processing_fee"),
    *_money("net_amount"),
    *_money("tax_amount", comment="sum of tax_details, signed like gross_amount"),
    Column("tax_rate", String(64), nullable=True),
    Column("partition_date", Date, nullable=False),
    Column("loaded_at", UtcDateTime, nullable=False),
    # The one secondary index a query uses: the slow reconcile path reads orders' rows by id.
    # Reads by payout or by day scan the shop's rows anyway (whole-shop sums; the window
    # delete's day range sits in an OR with a key-set subquery, which Postgres answers by a
    # scan), and each index costs ~1.3 s of server CPU per million rows loaded.
    # TODO(migrations): databases created earlier keep ix_finance_transactions_day/_payout
    # until a versioned migration drops them.
    Index("ix_finance_transactions_order", "shop_id", "order_id"),
)

finance_transaction_taxes = Table(
    "finance_transaction_taxes",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("transaction_key", String(80), primary_key=True),
    Column("line_no", Integer, primary_key=True),
    Column("tax_category", String(64), nullable=False),
    Column("jurisdiction", String(128), nullable=False),
    Column("imposition", String(128), nullable=False),
    Column("item_tax_rate", String(32), nullable=True),
    *_money("tax_amount"),
    Column("currency", String(3), nullable=False),
)

finance_order_payments = Table(
    "finance_order_payments",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("payment_id", String(128), primary_key=True),
    Column("order_id", String(128), nullable=False),
    *_money("items_amount"),
    *_money("shipping_amount"),
    *_money("tax_amount"),
    *_money("total_amount"),
    *_money("promotion_allocation_amount"),
    Column("currency", String(3), nullable=False),
    Column("tax_remitted", Boolean, nullable=True),
    Column("captured", Boolean, nullable=False),
    Column("shipment_ids", JSON, nullable=False),
    Column("partition_date", Date, nullable=False),
    Column("loaded_at", UtcDateTime, nullable=False),
    Index("ix_finance_order_payments_order", "shop_id", "order_id"),
)

finance_payment_allocations = Table(
    "finance_payment_allocations",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("payment_id", String(128), primary_key=True),
    Column("item_id", String(128), primary_key=True),
    Column("promotion_id", String(128), primary_key=True),
    Column("order_id", String(128), nullable=False),
    *_money("allocation_amount"),
    Column("currency", String(3), nullable=False),
)

finance_quarantine = Table(
    "finance_quarantine",
    metadata,
    Column("quarantine_id", Integer, primary_key=True, autoincrement=True),
    Column("shop_id", String(64), nullable=False),
    Column("partition_date", Date, nullable=False),
    Column("source", String(32), nullable=False, comment="payouts | transactions | payments"),
    Column("record_key", String(80), nullable=False, comment="stable hash of the payload"),
    Column("reason", Text, nullable=False),
    Column("payout_reference_id", String(128), nullable=True),
    Column("net_amount", ExactDecimal, nullable=True),
    Column("currency", String(3), nullable=True),
    Column("payload", JSON, nullable=False),
    Column("detected_at", UtcDateTime, nullable=False),
    Column("acknowledged_at", UtcDateTime, nullable=True),
    Column("acknowledged_by", String(128), nullable=True),
    Column("acknowledgement_note", Text, nullable=True),
    UniqueConstraint("shop_id", "source", "record_key", name="uq_finance_quarantine_record"),
    Index("ix_finance_quarantine_partition", "shop_id", "partition_date"),
)

finance_partition_loads = Table(
    "finance_partition_loads",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("partition_date", Date, primary_key=True),
    Column("window_start", Date, nullable=False),
    Column("window_end", Date, nullable=False, comment="inclusive"),
    Column("payouts_loaded", Integer, nullable=False, default=0),
    Column("transactions_loaded", Integer, nullable=False, default=0),
    Column("payments_loaded", Integer, nullable=False, default=0),
    Column("quarantined", Integer, nullable=False, default=0),
    Column("loaded_at", UtcDateTime, nullable=False),
)

# A reconciliation computed but not yet published (its rows are in the *_staged tables): the
# publish step copies them into the analyst tables only when the blocking checks passed (a failed
# blocking check still records the asset).
finance_reconciliation_staging = Table(
    "finance_reconciliation_staging",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("as_of_date", Date, nullable=False),
    Column("computed_at", UtcDateTime, nullable=False),
    Column("checks_passed", Boolean, nullable=False),
    Column("payload", JSON, nullable=False),
    Column("published_at", UtcDateTime, nullable=True),
)

# -- reconciled, for analysts ----------------------------------------------------------------------

finance_order_reconciliation = Table(
    "finance_order_reconciliation",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("order_id", String(128), primary_key=True),
    Column("merchant_order_id", String(128), nullable=True),
    Column("currency", String(3), nullable=False),
    *_money("expected_items"),
    *_money("expected_shipping"),
    *_money("expected_tax"),
    *_money("expected_seller_discount"),
    *_money("expected_meta_discount"),
    *_money("expected_refunds"),
    *_money("expected_gross"),
    *_money("meta_sales"),
    *_money("meta_refunds"),
    *_money("meta_other"),
    *_money("meta_gross"),
    *_money("meta_fees"),
    *_money("meta_tax"),
    *_money("meta_net"),
    *_money("meta_paid_out"),
    Column("tax_remitted", Boolean, nullable=True),
    *_money("difference"),
    Column("status", String(24), nullable=False),
    Column("reason", Text, nullable=True),
    Column("transaction_count", Integer, nullable=False),
    Column("as_of_date", Date, nullable=False),
    Index("ix_finance_order_reconciliation_status", "shop_id", "status"),
)

finance_payout_reconciliation = Table(
    "finance_payout_reconciliation",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("payout_reference_id", String(128), primary_key=True),
    Column("payout_date", UtcDateTime, nullable=True),
    Column("payout_status", String(32), nullable=True),
    Column("currency", String(3), nullable=False),
    *_money("payout_amount"),
    *_money("transactions_net"),
    *_money("adjustment_amount"),
    *_money("difference"),
    Column("transaction_count", Integer, nullable=False),
    Column("status", String(24), nullable=False),
    Column("reason", Text, nullable=True),
    Column("as_of_date", Date, nullable=False),
)

finance_payout_adjustments = Table(
    "finance_payout_adjustments",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("payout_reference_id", String(128), primary_key=True),
    Column("adjustment_type", String(32), primary_key=True),
    *_money("amount"),
    Column("currency", String(3), nullable=False),
    Column("reason", Text, nullable=False),
)

finance_daily_settlement = Table(
    "finance_daily_settlement",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("day", Date, primary_key=True),
    Column("currency", String(3), primary_key=True),
    *_money("sales_gross"),
    *_money("refunds_gross"),
    *_money("other_gross"),
    *_money("fees"),
    *_money("tax"),
    *_money("net"),
    *_money("pending_payout_net"),
    *_money("paid_out"),
    Column("payout_count", Integer, nullable=False),
    Column("transaction_count", Integer, nullable=False),
    Column("order_count", Integer, nullable=False),
)

finance_tax_summary = Table(
    "finance_tax_summary",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("period", String(7), primary_key=True, comment="YYYY-MM of transaction_date (UTC)"),
    Column("jurisdiction", String(128), primary_key=True),
    Column("tax_category", String(64), primary_key=True),
    Column("imposition", String(128), primary_key=True),
    Column("currency", String(3), primary_key=True),
    *_money("tax_on_sales"),
    *_money("tax_on_refunds"),
    *_money("net_tax"),
    *_money("remitted_by_meta"),
    *_money("remitted_by_seller"),
    Column("transaction_count", Integer, nullable=False),
)

finance_reconciliation_runs = Table(
    "finance_reconciliation_runs",
    metadata,
    Column("shop_id", String(64), primary_key=True),
    Column("published_at", UtcDateTime, primary_key=True),
    Column("as_of_date", Date, nullable=False),
    Column("orders", Integer, nullable=False),
    Column("mismatch_rate", Float, nullable=False, comment="a ratio, not money"),
    Column("unbalanced_payouts", Integer, nullable=False),
)

#: The tables analysts query; `docs/data-dictionary.md` must document each of them.
ANALYST_TABLES = (
    finance_order_reconciliation,
    finance_payout_reconciliation,
    finance_payout_adjustments,
    finance_daily_settlement,
    finance_tax_summary,
)


def _staged(analyst: Table) -> Table:
    """A staging twin of an analyst table: the same rows with money in minor units only (the
    publish step derives the exact major amounts from them and the currency, in SQL)."""
    minor_twins = {
        c.name.removesuffix("_minor") for c in analyst.columns if c.name.endswith("_minor")
    }
    return Table(
        f"{analyst.name}_staged",
        metadata,
        *(
            Column(c.name, c.type, primary_key=c.primary_key, nullable=c.nullable)
            for c in analyst.columns
            if c.name not in minor_twins
        ),
    )


#: Staged reconciliation rows per analyst table, waiting for the blocking checks; published by
#: one INSERT .. SELECT per table.
STAGED_TABLES = {analyst.name: _staged(analyst) for analyst in ANALYST_TABLES}

#: Every finance table (loaded, staging, analyst), for the dictionary test and cleanup.
FINANCE_TABLES = (
    finance_payouts,
    finance_transactions,
    finance_transaction_taxes,
    finance_order_payments,
    finance_payment_allocations,
    finance_quarantine,
    finance_partition_loads,
    finance_reconciliation_staging,
    *STAGED_TABLES.values(),
    *ANALYST_TABLES,
    finance_reconciliation_runs,
)

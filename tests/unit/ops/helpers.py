"""Builders for ops tests: shops and the other domains' rows, written straight to the tables."""

from datetime import date, datetime

from sqlalchemy import Table, update

from resources.db import MetasyncDatabase
from resources.db.catalog_tables import catalog_ledger, seller_issues
from resources.db.finance_tables import finance_partition_loads
from resources.db.orders_tables import order_map
from resources.db.schema import graph_writes, shops
from resources.shops import Capability, ShopProfile, ShopRegistry, ShopStatus


def add_shop(
    registry: ShopRegistry,
    shop_id: str,
    *,
    onsite_orders: bool = True,
    status: ShopStatus = ShopStatus.ACTIVE,
    reason: str | None = None,
    registered_at: datetime | None = None,
) -> ShopProfile:
    profile = ShopProfile(
        shop_id=shop_id,
        name=shop_id.title(),
        catalog_id=f"cat-{shop_id}",
        currency="EUR",
        source_kind="shopify_csv",
        source_location="products.csv",
        capabilities=[Capability.ONSITE_ORDERS] if onsite_orders else [],
        status=status,
        status_reason=reason,
    )
    registry.add(profile, token=f"EAAtoken{shop_id}")
    if registered_at is not None:
        with registry.db.begin() as conn:
            conn.execute(
                update(shops).where(shops.c.shop_id == shop_id).values(created_at=registered_at)
            )
    return profile


def accept_item(
    db: MetasyncDatabase, shop_id: str, retailer_id: str, at: datetime, status: str = "ACCEPTED"
) -> None:
    _insert(
        db,
        catalog_ledger,
        shop_id=shop_id,
        retailer_id=retailer_id,
        content_hash="h",
        meta_status=status,
        updated_at=at,
    )


def open_issue(
    db: MetasyncDatabase,
    shop_id: str,
    issue_type: str,
    severity: str,
    at: datetime,
    resolved: bool = False,
) -> None:
    _insert(
        db,
        seller_issues,
        shop_id=shop_id,
        issue_type=issue_type,
        retailer_id="",
        severity=severity,
        source="diagnostics",
        title=issue_type,
        call_to_action="fix it",
        affected_retailer_ids=[],
        first_seen=at,
        last_seen=at,
        resolved_at=at if resolved else None,
    )


def import_order(
    db: MetasyncDatabase,
    shop_id: str,
    order_id: str,
    created: datetime,
    state: str = "imported",
    acknowledged_at: datetime | None = None,
) -> None:
    _insert(
        db,
        order_map,
        shop_id=shop_id,
        meta_order_id=order_id,
        state=state,
        meta_created_at=created,
        imported_at=created,
        acknowledged_at=acknowledged_at,
        updated_at=created,
    )


def load_finance_day(db: MetasyncDatabase, shop_id: str, day: date, at: datetime) -> None:
    _insert(
        db,
        finance_partition_loads,
        shop_id=shop_id,
        partition_date=day,
        window_start=day,
        window_end=day,
        loaded_at=at,
    )


def record_write(db: MetasyncDatabase, shop_id: str, key: str, status: str, at: datetime) -> None:
    _insert(
        db,
        graph_writes,
        idempotency_key=key,
        shop_id=shop_id,
        action="update",
        target_id="x",
        request_hash="h",
        status=status,
        attempts=0,
        created_at=at,
    )


def _insert(db: MetasyncDatabase, table: Table, **values) -> None:
    """Write one row in its own transaction."""
    with db.begin() as conn:
        conn.execute(table.insert().values(**values))

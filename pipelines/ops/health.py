"""Per-shop health, read from the metasync database.

    health = shop_health(db, "acme")
    health.last_accepted_catalog_write   # datetime | None
    health.open_issues                   # {"error": 2, "warning": 5}
    health.oldest_unacknowledged_order   # datetime | None (imported, not yet acknowledged)
    health.last_finance_day              # date | None
    health.token_state                   # "active" | "paused" | "needs_reauth"

Each figure comes from another domain's table (catalog ledger, seller issues, order map, finance
partition loads). A table or column that is missing (a domain not deployed yet, an older schema)
leaves that figure None and names the source in ``unavailable``; it never fails the whole report,
because health is exactly what an operator reads when something else is broken.
"""

import importlib
import logging
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from sqlalchemy import Table, func, inspect, select
from sqlalchemy.exc import SQLAlchemyError

from resources.db import MetasyncDatabase
from resources.db.schema import graph_writes, shops
from resources.db.types import utcnow
from resources.shops import ShopStatus

logger = logging.getLogger(__name__)

IN_LIST_LIMIT = 500


@dataclass(frozen=True)
class ShopHealth:
    shop_id: str
    token_state: str
    status_reason: str | None
    capabilities: tuple[str, ...]
    registered_at: datetime | None
    last_accepted_catalog_write: datetime | None = None
    open_issues: dict[str, int] = field(default_factory=dict)
    oldest_unacknowledged_order: datetime | None = None
    unacknowledged_orders: int = 0
    last_finance_day: date | None = None
    pending_graph_writes: int = 0
    failed_graph_writes: int = 0
    unavailable: tuple[str, ...] = ()

    @property
    def needs_reauth(self) -> bool:
        return self.token_state == ShopStatus.NEEDS_REAUTH

    def catalog_age_hours(self, now: datetime) -> float | None:
        if self.last_accepted_catalog_write is None:
            return None
        return (now - self.last_accepted_catalog_write).total_seconds() / 3600

    def oldest_order_age_minutes(self, now: datetime) -> float | None:
        if self.oldest_unacknowledged_order is None:
            return None
        return (now - self.oldest_unacknowledged_order).total_seconds() / 60

    def finance_lag_days(self, today: date) -> int | None:
        return None if self.last_finance_day is None else (today - self.last_finance_day).days

    def as_record(self, now: datetime | None = None) -> dict[str, Any]:
        """Flat, scalar-only values (fit for a Dagster TableRecord, JSON and the CLI)."""
        now = now or utcnow()
        age = self.catalog_age_hours(now)
        order_age = self.oldest_order_age_minutes(now)
        return {
            "shop": self.shop_id,
            "token": self.token_state,
            "last_catalog_accept": _iso(self.last_accepted_catalog_write),
            "catalog_age_h": None if age is None else round(age, 1),
            "issues_error": self.open_issues.get("error", 0),
            "issues_warning": self.open_issues.get("warning", 0),
            "unacked_orders": self.unacknowledged_orders,
            "oldest_unacked_min": None if order_age is None else round(order_age, 1),
            "last_finance_day": _day(self.last_finance_day),
            "pending_writes": self.pending_graph_writes,
            "failed_writes": self.failed_graph_writes,
            "unavailable": ",".join(self.unavailable),
        }


def _iso(value: datetime | None) -> str | None:
    return value.isoformat(timespec="seconds") if value else None


def _day(value: date | None) -> str | None:
    return value.isoformat() if value else None


def _domain_table(module: str, name: str) -> Table | None:
    """A domain's Table object, or None when that domain's module is not there yet."""
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError):
        return None


class HealthReader:
    """Reads the figures of many shops with one grouped query per source (not one per shop), so
    a report over thousands of shops stays a handful of queries."""

    def __init__(self, db: MetasyncDatabase) -> None:
        self._db = db
        self._existing = set(inspect(db.engine).get_table_names())

    def table(self, module: str, name: str) -> Table | None:
        table = _domain_table(module, name)
        return table if table is not None and table.name in self._existing else None

    def health(self, shop_ids: list[str] | None = None) -> list[ShopHealth]:
        """Health of the given shops (default: every registered shop), in shop id order."""
        query = select(shops).order_by(shops.c.shop_id)
        if shop_ids is not None:
            query = query.where(shops.c.shop_id.in_(shop_ids))
        with self._db.begin() as conn:
            rows = conn.execute(query).all()
        if shop_ids is not None:
            unknown = sorted(set(shop_ids) - {row.shop_id for row in rows})
            if unknown:
                raise LookupError(f"no shop {', '.join(map(repr, unknown))} in the registry")

        wanted = [row.shop_id for row in rows]
        figures: dict[str, dict[str, Any]] = {shop_id: {} for shop_id in wanted}
        unavailable: list[str] = []
        for source, reader in self._readers():
            try:
                for shop_id, values in reader(wanted).items():
                    if shop_id in figures:
                        figures[shop_id].update(values)
            except _MissingSource:
                unavailable.append(source)
            except SQLAlchemyError as exc:
                # A concurrently evolving schema (renamed column) must not blank the report.
                logger.warning("shop health: %s unreadable (%s)", source, exc)
                unavailable.append(source)
        return [
            ShopHealth(
                shop_id=row.shop_id,
                token_state=row.status,
                status_reason=row.status_reason,
                capabilities=tuple(row.capabilities or ()),
                registered_at=row.created_at,
                unavailable=tuple(unavailable),
                **figures[row.shop_id],
            )
            for row in rows
        ]

    def _readers(self):
        return (
            ("catalog_ledger", self._catalog),
            ("seller_issues", self._issues),
            ("order_map", self._orders),
            ("finance_partition_loads", self._finance),
            ("graph_writes", self._outbox),
        )

    def _require(self, module: str, name: str) -> Table:
        table = self.table(module, name)
        if table is None:
            raise _MissingSource(name)
        return table

    def _rows(self, query, shop_column, shop_ids: list[str]):
        # Few shops: filter in SQL. Many: one pass over the table beats a huge IN list.
        if len(shop_ids) <= IN_LIST_LIMIT:
            query = query.where(shop_column.in_(shop_ids))
        with self._db.begin() as conn:
            return conn.execute(query).all()

    def _catalog(self, shop_ids: list[str]) -> dict[str, dict[str, Any]]:
        ledger = self._require("resources.db.catalog_tables", "catalog_ledger")
        query = (
            select(ledger.c.shop_id, func.max(ledger.c.updated_at))
            .where(ledger.c.meta_status == "ACCEPTED")
            .group_by(ledger.c.shop_id)
        )
        return {
            shop_id: {"last_accepted_catalog_write": self._utc(ledger.c.updated_at, newest)}
            for shop_id, newest in self._rows(query, ledger.c.shop_id, shop_ids)
        }

    def _issues(self, shop_ids: list[str]) -> dict[str, dict[str, Any]]:
        issues = self._require("resources.db.catalog_tables", "seller_issues")
        query = (
            select(issues.c.shop_id, issues.c.severity, func.count())
            .where(issues.c.resolved_at.is_(None))
            .group_by(issues.c.shop_id, issues.c.severity)
        )
        result: dict[str, dict[str, Any]] = {}
        for shop_id, severity, count in self._rows(query, issues.c.shop_id, shop_ids):
            result.setdefault(shop_id, {"open_issues": {}})["open_issues"][severity] = int(count)
        return result

    def _orders(self, shop_ids: list[str]) -> dict[str, dict[str, Any]]:
        orders = self._require("resources.db.orders_tables", "order_map")
        # Imported but not acknowledged; held orders ("issue") wait on a person and Meta still
        # shows them as CREATED, so they count too. Meta-side cancellations do not.
        since = func.coalesce(orders.c.meta_created_at, orders.c.imported_at, orders.c.updated_at)
        query = (
            select(orders.c.shop_id, func.min(since), func.count())
            .where(orders.c.acknowledged_at.is_(None), orders.c.state.in_(("imported", "issue")))
            .group_by(orders.c.shop_id)
        )
        return {
            shop_id: {
                "oldest_unacknowledged_order": self._utc(orders.c.updated_at, oldest),
                "unacknowledged_orders": int(count),
            }
            for shop_id, oldest, count in self._rows(query, orders.c.shop_id, shop_ids)
        }

    def _finance(self, shop_ids: list[str]) -> dict[str, dict[str, Any]]:
        loads = self._require("resources.db.finance_tables", "finance_partition_loads")
        query = select(loads.c.shop_id, func.max(loads.c.partition_date)).group_by(loads.c.shop_id)
        result = {}
        for shop_id, day in self._rows(query, loads.c.shop_id, shop_ids):
            if isinstance(day, str):  # SQLite returns an aggregate over a Date as text
                day = date.fromisoformat(day)
            result[shop_id] = {"last_finance_day": day}
        return result

    def _outbox(self, shop_ids: list[str]) -> dict[str, dict[str, Any]]:
        query = (
            select(graph_writes.c.shop_id, graph_writes.c.status, func.count())
            .where(graph_writes.c.status != "succeeded")
            .group_by(graph_writes.c.shop_id, graph_writes.c.status)
        )
        result: dict[str, dict[str, Any]] = {}
        for shop_id, status, count in self._rows(query, graph_writes.c.shop_id, shop_ids):
            counts = result.setdefault(
                shop_id, {"pending_graph_writes": 0, "failed_graph_writes": 0}
            )
            if status in ("pending", "failed"):
                counts[f"{status}_graph_writes"] = int(count)
        return result

    def _utc(self, column, value) -> datetime | None:
        """Aggregates bypass the column type on SQLite (text comes back); apply it by hand."""
        if value is None:
            return None
        if isinstance(value, str):
            value = datetime.fromisoformat(value)
        return column.type.process_result_value(value, self._db.engine.dialect)


class _MissingSource(LookupError):
    pass


def shop_health(db: MetasyncDatabase, shop_id: str) -> ShopHealth:
    """The health of one registered shop; raises LookupError for an unknown shop."""
    return HealthReader(db).health([shop_id])[0]


def all_shop_health(db: MetasyncDatabase, shop_ids: list[str] | None = None) -> list[ShopHealth]:
    """Health of the given shops (default: every registered shop), in shop id order."""
    return HealthReader(db).health(shop_ids)

"""Catalog sync without Dagster: the three cadences the assets run, as plain functions.

    metasync = MetasyncResource()                      # or anything with db/registry/graph_for
    summary = delta_sync(metasync, "acme", now=now)    # 1 h: changes as items_batch calls
    summary = stock_and_price_sync(metasync, "acme")   # 15 min: price, sale, stock only
    summary = full_sync(metasync, "acme")              # 24 h: replace feed + read back
    plan(metasync, "acme").counts                      # what delta_sync would send (no network)

Every write is followed to its end. An items_batch call is recorded (batch_handles + the Graph
write outbox) under a key derived from its content before it is sent, and its handle is stored
the moment Meta returns it; a rerun after a crash finds the handle and follows it instead of
sending the batch again. The ledger changes only for what Meta accepted, so a rejected or lost
write is retried (a rejected one once its content changes, so an unchanged catalog sends nothing).
"""

import hashlib
import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd
from pydantic import BaseModel, Field
from sqlalchemy import and_, delete, func, insert, select, update

from pipelines.catalog.diff import (
    DEFAULT_MAX_BYTES,
    STATIC_DIGEST_CHARS,
    CatalogChanges,
    chunk_entries,
    deletion_cap,
    diff_catalog,
    request_entries,
    shrink_guard,
    volatile_updates,
)
from pipelines.catalog.feed import render_feed
from pipelines.catalog.issues import (
    SellerIssueStore,
    issues_from_diagnostics,
    issues_from_item_errors,
    issues_from_rejects,
)
from pipelines.catalog.normalise import NormalisedCatalog, ShopContext
from pipelines.catalog.product_sets import (
    ProductSetSummary,
    desired_product_sets,
    sync_product_sets,
)
from pipelines.catalog.snapshot_cache import SnapshotCache, normalise_incremental
from resources.db import MetasyncDatabase
from resources.db.catalog_tables import (
    batch_handles,
    catalog_ledger,
    catalog_rejects,
    catalog_snapshots,
    item_status_history,
    upload_sessions,
)
from resources.db.outbox import GraphWriteOutbox, idempotency_key
from resources.meta.transport import GraphClient
from resources.shops import ShopProfile, ShopRegistry
from resources.store import source_for

logger = logging.getLogger(__name__)

ACCEPTED, REJECTED, PENDING = "ACCEPTED", "REJECTED", "PENDING"
FINAL_BATCH = frozenset({"finished", "canceled", "error"})
ROWS_PER_STATEMENT = 500  # keeps IN lists and executemany batches small on both backends


class SyncSettings(BaseModel):
    """Knobs of the three cadences. Meta leaves several of these open; all are configurable."""

    max_batch_requests: int = Field(3000, gt=0, le=5000, description="Meta advises <= 3000")
    max_batch_bytes: int = Field(DEFAULT_MAX_BYTES, gt=0)
    allow_upsert: bool = True
    max_shrink_share: float = Field(0.2, ge=0, le=1)
    allow_shrink: bool = False
    max_delete_share: float = Field(0.1, ge=0, le=1)
    max_delete_count: int | None = 1000
    allow_mass_deletion: bool = False
    poll_interval_seconds: float = Field(2.0, ge=0)
    poll_timeout_seconds: float = Field(900.0, gt=0)
    feed_name: str = "metasync primary feed"
    # Read-back fields compared with the snapshot to find drift: Meta read name -> item column.
    drift_fields: dict[str, str] = Field(
        default_factory=lambda: {"name": "title", "availability": "availability"}
    )
    # Fallbacks for shops whose profile names no storefront URL template or default brand
    # (placeholders {handle} {product_id} {variant_id} {sku}); the profile's values win.
    product_url_template: str | None = None
    default_brand: str | None = None
    delete_orphans: bool = True
    resend_drift: bool = True
    record_history: bool = True


class MetasyncLike(Protocol):
    def db(self) -> MetasyncDatabase: ...
    def registry(self) -> ShopRegistry: ...
    def graph_for(self, shop_id: str) -> GraphClient: ...


class CatalogRefused(RuntimeError):
    """A sync refused to run (e.g. the snapshot shrank past the guard); `numbers` says why."""

    def __init__(self, message: str, numbers: dict[str, Any]) -> None:
        super().__init__(message)
        self.numbers = numbers


@dataclass
class SyncSummary:
    """What one sync did, for logs, metadata, the demo and tests."""

    shop_id: str
    cadence: str
    snapshot_id: int | None = None
    items: int = 0
    excluded: int = 0
    store_rejected: int = 0
    created: int = 0
    updated: int = 0
    volatile_updated: int = 0
    deleted: int = 0
    unchanged: int = 0
    sent: int = 0
    accepted: int = 0
    rejected: int = 0
    reject_reasons: dict[str, str] = field(default_factory=dict)
    held_deletions: int = 0
    held_reason: str | None = None
    batches: int = 0
    resumed_batches: int = 0
    calls: int = 0
    upload_session_id: str | None = None
    upload_errors: int = 0
    orphans_deleted: int = 0
    drift_resent: int = 0
    issues_opened: int = 0
    issues_resolved: int = 0
    preview: list[dict[str, Any]] = field(default_factory=list)

    @property
    def reject_share(self) -> float:
        return self.rejected / self.sent if self.sent else 0.0

    def line(self) -> str:
        return (
            f"shop {self.shop_id} {self.cadence}: {self.created} created, {self.updated} updated, "
            f"{self.volatile_updated} stock/price, {self.deleted} deleted, {self.unchanged} "
            f"unchanged, {self.rejected} rejected by Meta, {self.store_rejected} rejected in "
            f"store, {self.calls} calls"
        )


@dataclass
class SyncContext:
    shop: ShopProfile
    db: MetasyncDatabase
    graph: GraphClient | None
    settings: SyncSettings
    now: datetime
    sleep: Callable[[float], None] = time.sleep

    @property
    def api(self):
        # Imported here: the catalog client is optional for plan() and the CLI's render.
        from resources.meta.catalog import CatalogApi

        if self.graph is None:
            raise RuntimeError("this step needs a Graph client; plan() works offline")
        return CatalogApi(self.graph, self.shop.catalog_id)

    @property
    def shop_id(self) -> str:
        return self.shop.shop_id


@contextmanager
def sync_context(
    metasync: MetasyncLike,
    shop_id: str,
    now: datetime | None = None,
    settings: SyncSettings | None = None,
    online: bool = True,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[SyncContext]:
    """A shop's profile, database and (when online) Graph client, closed afterwards."""
    shop = metasync.registry().get(shop_id)
    graph = metasync.graph_for(shop_id) if online else None
    try:
        yield SyncContext(
            shop=shop,
            db=metasync.db(),
            graph=graph,
            settings=settings or SyncSettings(),
            now=now or datetime.now(UTC),
            sleep=sleep,
        )
    finally:
        if graph is not None:
            graph.close()


# --- snapshots ------------------------------------------------------------------------------


def shop_context(shop: ShopProfile, settings: SyncSettings) -> ShopContext:
    return ShopContext(
        currency=shop.currency,
        timezone=shop.timezone,
        admin_url_template=shop.admin_url_template,
        product_url_template=shop.storefront_url_template or settings.product_url_template,
        brand=shop.default_brand or settings.default_brand or shop.name,
    )


def read_catalog(shop: ShopProfile, now: datetime, settings: SyncSettings) -> NormalisedCatalog:
    """The store's catalog, normalised; StoreSourceError when the store cannot be read.

    Products whose raw rows did not change since the shop's last snapshot come from its snapshot
    cache (pipelines.catalog.snapshot_cache); the catalog equals normalise_catalog's."""
    raw = source_for(shop.source_kind, shop.source_location).read()
    cache = SnapshotCache.for_shop(shop.shop_id)
    return normalise_incremental(
        raw, shop.source_kind, shop_context(shop, settings), now=now, cache=cache
    )


class SnapshotStore:
    def __init__(self, db: MetasyncDatabase) -> None:
        self._db = db

    def record(
        self, shop_id: str, cadence: str, catalog: NormalisedCatalog, now: datetime, rejects: bool
    ) -> int:
        """One snapshot row and (when `rejects`) every excluded and rejected source row."""
        counts = catalog.counts()
        with self._db.begin() as conn:
            snapshot_id = conn.execute(
                insert(catalog_snapshots).values(
                    shop_id=shop_id,
                    cadence=cadence,
                    taken_at=now,
                    source_rows=sum(counts.values()),
                    items=counts["items"],
                    excluded=counts["excluded"],
                    rejected=counts["rejected"],
                    status="taken",
                    last_good=False,
                )
            ).inserted_primary_key[0]
            if rejects:
                rows = _reject_rows(catalog, snapshot_id, shop_id)
                for start in range(0, len(rows), ROWS_PER_STATEMENT):
                    conn.execute(insert(catalog_rejects), rows[start : start + ROWS_PER_STATEMENT])
        return int(snapshot_id)

    def last_good(self, shop_id: str) -> dict[str, Any] | None:
        query = (
            select(catalog_snapshots)
            .where(catalog_snapshots.c.shop_id == shop_id, catalog_snapshots.c.last_good)
            .order_by(catalog_snapshots.c.snapshot_id.desc())
            .limit(1)
        )
        with self._db.begin() as conn:
            row = conn.execute(query).first()
        return None if row is None else dict(row._mapping)

    def last_taken_at(self, shop_id: str, cadence: str, before_id: int) -> datetime | None:
        query = select(func.max(catalog_snapshots.c.taken_at)).where(
            catalog_snapshots.c.shop_id == shop_id,
            catalog_snapshots.c.cadence == cadence,
            catalog_snapshots.c.snapshot_id < before_id,
            catalog_snapshots.c.status == "synced",
        )
        with self._db.begin() as conn:
            return conn.execute(query).scalar()

    def finish(self, snapshot_id: int, status: str, reason: str | None = None, good=False):
        with self._db.begin() as conn:
            if good:
                shop_id = conn.execute(
                    select(catalog_snapshots.c.shop_id).where(
                        catalog_snapshots.c.snapshot_id == snapshot_id
                    )
                ).scalar_one()
                conn.execute(
                    update(catalog_snapshots)
                    .where(catalog_snapshots.c.shop_id == shop_id, catalog_snapshots.c.last_good)
                    .values(last_good=False)
                )
            conn.execute(
                update(catalog_snapshots)
                .where(catalog_snapshots.c.snapshot_id == snapshot_id)
                .values(status=status, status_reason=reason, last_good=good)
            )


def _reject_rows(catalog: NormalisedCatalog, snapshot_id: int, shop_id: str) -> list[dict]:
    rows = []
    for kind, frame in (("excluded", catalog.excluded), ("rejected", catalog.rejected)):
        for record in frame.to_dict("records"):
            rows.append(
                {
                    "snapshot_id": snapshot_id,
                    "shop_id": shop_id,
                    "kind": kind,
                    "source_row": int(record["source_row"]),
                    "retailer_id": record.get("retailer_id") or None,
                    "product_id": record.get("product_id") or None,
                    "reason": str(record["reason"]),
                    "detail": record.get("detail") or None,
                    "fix_url": record.get("fix_url") or None,
                }
            )
    return rows


def take_snapshot(ctx: SyncContext, cadence: str, summary: SyncSummary) -> NormalisedCatalog:
    """Read and normalise the store, record the snapshot, raise store-side seller issues."""
    catalog = read_catalog(ctx.shop, ctx.now, ctx.settings)
    keep_rejects = cadence != "stock_price"  # every 15 minutes would repeat the same rows
    summary.snapshot_id = SnapshotStore(ctx.db).record(
        ctx.shop_id, cadence, catalog, ctx.now, rejects=keep_rejects
    )
    summary.items = len(catalog.items)
    summary.excluded = len(catalog.excluded)
    summary.store_rejected = len(catalog.rejected)
    if keep_rejects:
        counts = SellerIssueStore(ctx.db).sync(
            ctx.shop_id, "store", issues_from_rejects(catalog.rejected, ctx.shop), ctx.now
        )
        summary.issues_opened += counts.opened
        summary.issues_resolved += counts.resolved
    return catalog


# --- the ledger -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SentItem:
    """One record of a batch, with what the ledger must hold once Meta accepts it."""

    retailer_id: str
    method: str
    content_hash: str | None
    volatile_hash: str | None
    item_group_id: str | None = None
    product_id: str | None = None
    previous_hash: str | None = None

    def as_row(self) -> list[Any]:
        return [
            self.retailer_id,
            self.method,
            self.content_hash,
            self.volatile_hash,
            self.item_group_id,
            self.product_id,
            self.previous_hash,
        ]

    @classmethod
    def from_row(cls, row: list[Any]) -> "SentItem":
        return cls(*row)


class LedgerStore:
    """What Meta accepted, per shop and retailer_id."""

    def __init__(self, db: MetasyncDatabase) -> None:
        self._db = db

    def load(self, shop_id: str) -> pd.DataFrame:
        query = select(
            catalog_ledger.c.retailer_id,
            catalog_ledger.c.content_hash,
            catalog_ledger.c.volatile_hash,
            catalog_ledger.c.rejected_hash,
            catalog_ledger.c.meta_status,
            catalog_ledger.c.product_id,
        ).where(catalog_ledger.c.shop_id == shop_id)
        with self._db.begin() as conn:
            # Plain tuples: building a DataFrame from Row objects costs seconds at 1M rows.
            rows = [tuple(row) for row in conn.execute(query).tuples()]
        columns = [
            "retailer_id",
            "content_hash",
            "volatile_hash",
            "rejected_hash",
            "meta_status",
            "product_id",
        ]
        return pd.DataFrame(rows, columns=columns)

    def apply(
        self,
        shop_id: str,
        accepted: list[SentItem],
        rejected: dict[SentItem, str],
        handle: str,
        now: datetime,
        record_history: bool = True,
        upload_session_id: str | None = None,
    ) -> None:
        """Accepted items take their new hashes (deletions leave); rejected ones keep the old
        accepted hashes and remember the rejected content so it is not resent unchanged."""
        ids = [i.retailer_id for i in accepted] + [i.retailer_id for i in rejected]
        with self._db.begin() as conn:
            existing = self._rows(conn, shop_id, ids)
            rows: dict[str, dict[str, Any]] = {}
            for item in accepted:
                if item.method == "DELETE":
                    existing.pop(item.retailer_id, None)
                    rows.pop(item.retailer_id, None)
                    continue
                rows[item.retailer_id] = {
                    "shop_id": shop_id,
                    "retailer_id": item.retailer_id,
                    "item_group_id": item.item_group_id,
                    "product_id": item.product_id,
                    "content_hash": item.content_hash,
                    "volatile_hash": item.volatile_hash,
                    "rejected_hash": None,
                    "meta_status": ACCEPTED,
                    "last_handle": handle,
                    "last_error": None,
                    "updated_at": now,
                }
            for item, reason in rejected.items():
                old = existing.get(item.retailer_id, {})
                rows[item.retailer_id] = {
                    "shop_id": shop_id,
                    "retailer_id": item.retailer_id,
                    "item_group_id": item.item_group_id or old.get("item_group_id"),
                    "product_id": item.product_id or old.get("product_id"),
                    "content_hash": old.get("content_hash"),
                    "volatile_hash": old.get("volatile_hash"),
                    "rejected_hash": item.content_hash,
                    "meta_status": REJECTED,
                    "last_handle": handle,
                    "last_error": reason[:2000],
                    "updated_at": now,
                }
            self._replace(conn, shop_id, ids, list(rows.values()))
            if record_history:
                self._history(conn, shop_id, accepted, rejected, handle, upload_session_id, now)

    def replace_all(self, shop_id: str, rows: list[dict[str, Any]]) -> None:
        """The whole ledger of a shop at once (after a replace feed was read back)."""
        with self._db.begin() as conn:
            conn.execute(delete(catalog_ledger).where(catalog_ledger.c.shop_id == shop_id))
            for start in range(0, len(rows), 5000):
                conn.execute(insert(catalog_ledger), rows[start : start + 5000])

    def forget(self, shop_id: str, retailer_ids: list[str]) -> None:
        """Drop rows for items that never reached Meta and left the store."""
        with self._db.begin() as conn:
            self._replace(conn, shop_id, retailer_ids, [])

    @staticmethod
    def _rows(conn, shop_id: str, ids: list[str]) -> dict[str, dict[str, Any]]:
        found: dict[str, dict[str, Any]] = {}
        for start in range(0, len(ids), ROWS_PER_STATEMENT):
            part = ids[start : start + ROWS_PER_STATEMENT]
            query = select(catalog_ledger).where(
                catalog_ledger.c.shop_id == shop_id, catalog_ledger.c.retailer_id.in_(part)
            )
            found.update({row.retailer_id: dict(row._mapping) for row in conn.execute(query)})
        return found

    @staticmethod
    def _replace(conn, shop_id: str, ids: list[str], rows: list[dict[str, Any]]) -> None:
        # Delete + insert in one transaction: the same statements on SQLite and Postgres.
        for start in range(0, len(ids), ROWS_PER_STATEMENT):
            conn.execute(
                delete(catalog_ledger).where(
                    catalog_ledger.c.shop_id == shop_id,
                    catalog_ledger.c.retailer_id.in_(ids[start : start + ROWS_PER_STATEMENT]),
                )
            )
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            conn.execute(insert(catalog_ledger), rows[start : start + ROWS_PER_STATEMENT])

    @staticmethod
    def _history(conn, shop_id, accepted, rejected, handle, session_id, now) -> None:
        rows = [
            {
                "shop_id": shop_id,
                "retailer_id": item.retailer_id,
                "status": ACCEPTED,
                "method": item.method,
                "reason": None,
                "handle": None if session_id else handle,
                "upload_session_id": session_id,
                "at": now,
            }
            for item in accepted
        ] + [
            {
                "shop_id": shop_id,
                "retailer_id": item.retailer_id,
                "status": REJECTED,
                "method": item.method,
                "reason": reason[:2000],
                "handle": None if session_id else handle,
                "upload_session_id": session_id,
                "at": now,
            }
            for item, reason in rejected.items()
        ]
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            conn.execute(insert(item_status_history), rows[start : start + ROWS_PER_STATEMENT])


def effective_ledger(ledger: pd.DataFrame) -> pd.DataFrame:
    """The ledger as the diff should see it: content Meta rejected counts as already sent, so
    an unchanged rejected item is not resent every hour (its seller issue stays open)."""
    frame = ledger[["retailer_id", "content_hash", "volatile_hash"]].copy()
    rejected = ledger["rejected_hash"].notna()
    frame.loc[rejected, "content_hash"] = ledger.loc[rejected, "rejected_hash"]
    return frame.loc[frame["content_hash"].notna()]


# --- items_batch: record, send, follow ------------------------------------------------------


class BatchLog:
    """batch_handles rows: every items_batch call, before and after it is sent."""

    def __init__(self, db: MetasyncDatabase) -> None:
        self._db = db

    def get(self, key: str) -> dict[str, Any] | None:
        with self._db.begin() as conn:
            row = conn.execute(
                select(batch_handles).where(batch_handles.c.idempotency_key == key)
            ).first()
        return None if row is None else dict(row._mapping)

    def record(self, key, shop_id, cadence, items: list[SentItem], now) -> dict[str, Any]:
        existing = self.get(key)
        if existing is not None:
            return existing
        values = {
            "idempotency_key": key,
            "shop_id": shop_id,
            "cadence": cadence,
            "handle": None,
            "request_count": len(items),
            "requests": [item.as_row() for item in items],
            "status": "recorded",
            "created_at": now,
        }
        with self._db.begin() as conn:
            conn.execute(insert(batch_handles).values(**values))
        return values

    def set_handle(self, key: str, handle: str) -> None:
        self._set(key, handle=handle, status="sent")

    def finish(self, key: str, status: str, errors: list[dict], total: int, now) -> None:
        self._set(key, status=status, errors=errors, errors_total_count=total, finished_at=now)

    def unfinished(self, shop_id: str) -> list[dict[str, Any]]:
        query = (
            select(batch_handles)
            .where(batch_handles.c.shop_id == shop_id, batch_handles.c.status == "sent")
            .order_by(batch_handles.c.created_at)
        )
        with self._db.begin() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]

    def _set(self, key: str, **values: Any) -> None:
        with self._db.begin() as conn:
            conn.execute(
                update(batch_handles).where(batch_handles.c.idempotency_key == key).values(**values)
            )


def batch_key(shop_id: str, catalog_id: str, items: list[SentItem]) -> str:
    """Derived from what the batch does: each record's method, new content and the content it
    replaces, so a rerun of the same change gets the same key and a later change another one."""
    digest = hashlib.sha256(
        json.dumps(
            [[i.retailer_id, i.method, i.content_hash, i.previous_hash] for i in items],
            separators=(",", ":"),
        ).encode()
    ).hexdigest()
    return idempotency_key(shop_id, "items_batch", catalog_id, digest)


@dataclass
class BatchOutcome:
    accepted: list[SentItem]
    rejected: dict[SentItem, str]
    settled: bool  # False: the handle ended in error/cancel or never finished; retried later


def send_batches(
    ctx: SyncContext,
    cadence: str,
    chunks: list[tuple[list[dict], list[SentItem]]],
    summary: SyncSummary,
) -> None:
    """Send each chunk (or follow its recorded handle), then apply what Meta decided."""
    for requests, items in chunks:
        key = batch_key(ctx.shop_id, ctx.shop.catalog_id, items)
        row = BatchLog(ctx.db).record(key, ctx.shop_id, cadence, items, ctx.now)
        GraphWriteOutbox(ctx.db).record_intent(
            key,
            shop_id=ctx.shop_id,
            action="items_batch",
            target_id=ctx.shop.catalog_id,
            body=[item.as_row() for item in items],
        )
        if row["status"] == "finished":
            logger.info("shop %s: batch %s already settled, not resent", ctx.shop_id, key)
            continue
        # A handle that ended in error or was cancelled applied nothing: send the batch again.
        handle = None if row["status"] in ("error", "canceled") else row["handle"]
        if handle is None:
            handle = _send(ctx, key, requests)
            if ctx.settings.record_history:
                _pending_history(ctx, items, handle)
            summary.batches += 1
        else:
            summary.resumed_batches += 1
        summary.sent += len(items)
        _settle(ctx, key, handle, items, summary)


def _send(ctx: SyncContext, key: str, requests: list[dict]) -> str:
    GraphWriteOutbox(ctx.db).mark_attempt(key)
    handles = ctx.api.items_batch(requests, allow_upsert=ctx.settings.allow_upsert)
    if not handles:
        # An empty handle list means Meta ingested nothing (catalog.md 3.1): retry next run.
        GraphWriteOutbox(ctx.db).mark_failed(key, "items_batch returned no handle")
        raise RuntimeError(f"shop {ctx.shop_id}: items_batch returned no handle; nothing applied")
    handle = handles[0]
    BatchLog(ctx.db).set_handle(key, handle)  # stored at once: a crash after this resumes
    return handle


def _pending_history(ctx: SyncContext, items: list[SentItem], handle: str) -> None:
    rows = [
        {
            "shop_id": ctx.shop_id,
            "retailer_id": item.retailer_id,
            "status": PENDING,
            "method": item.method,
            "reason": None,
            "handle": handle,
            "upload_session_id": None,
            "at": ctx.now,
        }
        for item in items
    ]
    with ctx.db.begin() as conn:
        for start in range(0, len(rows), ROWS_PER_STATEMENT):
            conn.execute(insert(item_status_history), rows[start : start + ROWS_PER_STATEMENT])


def resume_unfinished(ctx: SyncContext, summary: SyncSummary) -> None:
    """Follow handles a crashed run left behind before anything new is diffed or sent."""
    for row in BatchLog(ctx.db).unfinished(ctx.shop_id):
        items = [SentItem.from_row(r) for r in row["requests"]]
        logger.info(
            "shop %s: following handle of an earlier run (%d items)", ctx.shop_id, len(items)
        )
        summary.resumed_batches += 1
        _settle(ctx, row["idempotency_key"], row["handle"], items, summary)


def _settle(ctx, key: str, handle: str, items: list[SentItem], summary: SyncSummary) -> None:
    status = wait_for_batch(ctx, handle)
    outcome = batch_outcome(status, items)
    errors = [e.model_dump() if hasattr(e, "model_dump") else dict(e) for e in status.errors]
    if outcome.settled:
        LedgerStore(ctx.db).apply(
            ctx.shop_id,
            outcome.accepted,
            outcome.rejected,
            handle,
            ctx.now,
            ctx.settings.record_history,
        )
        _batch_issues(ctx, outcome, summary)
    BatchLog(ctx.db).finish(key, status.status, errors, status.errors_total_count, ctx.now)
    outbox = GraphWriteOutbox(ctx.db)
    if outcome.settled:
        outbox.mark_succeeded(key, {"handle": handle, "status": status.status})
    else:
        outbox.mark_failed(key, f"handle {handle} ended {status.status}")
    summary.accepted += len(outcome.accepted)
    summary.rejected += len(outcome.rejected)
    for item, reason in outcome.rejected.items():
        summary.reject_reasons[item.retailer_id] = reason


def wait_for_batch(ctx: SyncContext, handle: str):
    """Poll one handle until it is final; TimeoutError leaves it for the next run to follow."""
    deadline = time.monotonic() + ctx.settings.poll_timeout_seconds
    for delay in poll_delays(ctx.settings.poll_interval_seconds):
        status = ctx.api.batch_status(handle)
        if status.status in FINAL_BATCH:
            return status
        if time.monotonic() > deadline:
            raise TimeoutError(
                f"shop {ctx.shop_id}: handle {handle} still {status.status} after "
                f"{ctx.settings.poll_timeout_seconds:.0f}s; the next run follows it"
            )
        ctx.sleep(delay)
    raise AssertionError("unreachable: poll_delays never ends")


def poll_delays(longest: float, first: float = 0.05) -> Iterator[float]:
    """Waits between polls: short at first (small batches finish fast), doubling up to
    `longest`, so a slow handle costs a few extra calls and a quick one no idle seconds."""
    delay = min(first, longest)
    while True:
        yield delay
        delay = min(delay * 2, longest)


def batch_outcome(status, items: list[SentItem]) -> BatchOutcome:
    """Which records Meta accepted and which it rejected (with its message)."""
    if status.status != "finished":
        return BatchOutcome([], {}, settled=False)
    messages: dict[str, list[str]] = {}
    for error in status.errors:
        rid = error.id
        if not rid and error.line is not None and 0 <= error.line < len(items):
            rid = items[error.line].retailer_id
        messages.setdefault(rid, []).append(error.message)
    invalid = set(status.ids_of_invalid_requests) | set(messages)
    # TODO(batch-error-sample): errors is a sample; when Meta reports more errors than the
    # sample and ids_of_invalid_requests together name, the unnamed ones count as accepted
    # until the daily read-back finds them missing and re-sends them.
    accepted, rejected = [], {}
    for item in items:
        if item.retailer_id in invalid:
            reason = " ".join(messages.get(item.retailer_id, [])) or "rejected by Meta"
            rejected[item] = reason
        else:
            accepted.append(item)
    return BatchOutcome(accepted, rejected, settled=True)


def _batch_issues(ctx: SyncContext, outcome: BatchOutcome, summary: SyncSummary) -> None:
    store = SellerIssueStore(ctx.db)
    if outcome.rejected:
        products = {
            i.retailer_id: {"product_id": i.product_id, "item_group_id": i.item_group_id}
            for i in outcome.rejected
        }
        errors = [(i.retailer_id, reason) for i, reason in outcome.rejected.items()]
        issues = issues_from_item_errors(errors, ctx.shop, products, "items_batch")
        counts = store.sync(
            ctx.shop_id, "items_batch", issues, ctx.now, scope=[i.retailer_id for i in issues]
        )
        summary.issues_opened += counts.opened
    if outcome.accepted:
        store.resolve_items(
            ctx.shop_id, "items_batch", [i.retailer_id for i in outcome.accepted], ctx.now
        )


# --- building requests ----------------------------------------------------------------------


def _item_meta(frame: pd.DataFrame, method: str, ledger: pd.DataFrame) -> list[SentItem]:
    previous = ledger.set_index("retailer_id")["content_hash"] if len(ledger) else pd.Series()
    cols = frame[["retailer_id", "content_hash", "volatile_hash", "item_group_id", "product_id"]]
    return [
        SentItem(
            rid,
            method,
            content,
            volatile,
            group or None,
            product or None,
            _text(previous.get(rid)),
        )
        for rid, content, volatile, group, product in cols.itertuples(index=False, name=None)
    ]


def _text(value: Any) -> str | None:
    return None if value is None or pd.isna(value) else str(value)


def change_chunks(
    changes: CatalogChanges, ledger: pd.DataFrame, now: datetime, settings: SyncSettings
) -> list[tuple[list[dict], list[SentItem]]]:
    """items_batch `requests` arrays with, record for record, what each one means."""
    entries = request_entries(changes, now)
    # request_entries orders records: full UPDATE, CREATE, volatile UPDATE, DELETE.
    items = _item_meta(changes.update, "UPDATE", ledger)
    items += _item_meta(changes.create, "CREATE", ledger)
    items += _item_meta(changes.volatile_only_update, "UPDATE", ledger)
    known = ledger.set_index("retailer_id") if len(ledger) else None
    for rid in changes.delete["retailer_id"]:
        previous = None if known is None else _text(known["content_hash"].get(rid))
        product = None if known is None else _text(known["product_id"].get(rid))
        items.append(SentItem(rid, "DELETE", None, None, None, product, previous))
    return _pair(entries, items, settings)


def _pair(entries: list[dict], items: list[SentItem], settings: SyncSettings):
    if len(entries) != len(items):
        raise RuntimeError(f"{len(entries)} requests but {len(items)} items: a bug, not data")
    for entry, item in zip(entries, items, strict=True):
        if entry["data"].get("id") != item.retailer_id:
            raise RuntimeError(f"request for {entry['data'].get('id')} paired with {item}")
    chunks = chunk_entries(entries, settings.max_batch_requests, settings.max_batch_bytes)
    paired, position = [], 0
    for chunk in chunks:
        paired.append((chunk, items[position : position + len(chunk)]))
        position += len(chunk)
    return paired


# --- delta (1 h) ----------------------------------------------------------------------------


@dataclass
class DeltaPlan:
    changes: CatalogChanges
    chunks: list[tuple[list[dict], list[SentItem]]]
    held_deletions: int
    held_reason: str | None
    forgotten: list[str]

    @property
    def counts(self) -> dict[str, int]:
        return self.changes.counts() | {
            "batches": len(self.chunks),
            "held_deletions": self.held_deletions,
        }


def _diff(items: pd.DataFrame, ledger: pd.DataFrame) -> CatalogChanges:
    if len(ledger):
        return diff_catalog(items, ledger)
    # A first sync: everything is new (kept apart so an empty ledger never reaches the
    # vectorised lookups).
    empty = pd.DataFrame({"retailer_id": pd.Series([], dtype="str")})
    return CatalogChanges(
        create=items.reset_index(drop=True),
        update=items.iloc[0:0],
        volatile_only_update=items.iloc[0:0],
        delete=empty,
        unchanged=empty.copy(),
    )


def plan_delta(
    items: pd.DataFrame, ledger: pd.DataFrame, now: datetime, settings: SyncSettings
) -> DeltaPlan:
    """The delta sync's decisions, pure: changes, held deletions, chunks."""
    changes = _diff(items, effective_ledger(ledger))
    on_meta = set(ledger.loc[ledger["content_hash"].notna(), "retailer_id"])
    gone = changes.delete["retailer_id"]
    deletes = changes.delete.loc[gone.isin(on_meta)].reset_index(drop=True)
    forgotten = sorted(set(gone) - on_meta)
    live = len(on_meta)
    reason = deletion_cap(
        len(deletes),
        live,
        settings.max_delete_share,
        settings.max_delete_count,
        override=settings.allow_mass_deletion,
    )
    held = 0
    if reason is not None:
        held = len(deletes)
        deletes = deletes.iloc[0:0]
    changes = CatalogChanges(
        create=changes.create,
        update=changes.update,
        volatile_only_update=changes.volatile_only_update,
        delete=deletes,
        unchanged=changes.unchanged,
    )
    chunks = change_chunks(changes, ledger, now, settings)
    return DeltaPlan(changes, chunks, held, reason, forgotten)


def delta_sync(
    metasync: MetasyncLike,
    shop_id: str,
    now: datetime | None = None,
    settings: SyncSettings | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncSummary:
    """The hourly sync: snapshot vs ledger -> items_batch chunks -> every handle followed."""
    with sync_context(metasync, shop_id, now, settings, sleep=sleep) as ctx:
        return run_delta(ctx)


def run_delta(ctx: SyncContext) -> SyncSummary:
    summary = SyncSummary(ctx.shop_id, "delta")
    resume_unfinished(ctx, summary)
    catalog = take_snapshot(ctx, "delta", summary)
    ledger = LedgerStore(ctx.db).load(ctx.shop_id)
    delta = plan_delta(catalog.items, ledger, ctx.now, ctx.settings)
    _count(summary, delta)
    if delta.forgotten:
        LedgerStore(ctx.db).forget(ctx.shop_id, delta.forgotten)
    send_batches(ctx, "delta", delta.chunks, summary)
    SnapshotStore(ctx.db).finish(summary.snapshot_id, "synced", delta.held_reason)
    return _finish(ctx, summary)


def _count(summary: SyncSummary, delta: DeltaPlan) -> None:
    counts = delta.changes.counts()
    summary.created = counts["create"]
    summary.updated = counts["update"]
    summary.volatile_updated = counts["volatile_only_update"]
    summary.deleted = counts["delete"]
    summary.unchanged = counts["unchanged"]
    summary.held_deletions = delta.held_deletions
    summary.held_reason = delta.held_reason
    summary.preview = preview_rows(delta.chunks)


def preview_rows(chunks, limit: int = 10) -> list[dict[str, Any]]:
    rows = []
    for requests, _items in chunks:
        for entry in requests:
            data = entry["data"]
            rows.append(
                {
                    "method": entry["method"],
                    "retailer_id": str(data.get("id")),
                    "title": str(data.get("title", "")),
                    "price": str(data.get("price", "")),
                    "availability": str(data.get("availability", "")),
                }
            )
            if len(rows) >= limit:
                return rows
    return rows


def _finish(ctx: SyncContext, summary: SyncSummary) -> SyncSummary:
    summary.calls = ctx.graph.calls if ctx.graph is not None else 0
    logger.info(summary.line())
    return summary


# --- stock and price (15 min) ---------------------------------------------------------------


def stock_and_price_sync(
    metasync: MetasyncLike,
    shop_id: str,
    now: datetime | None = None,
    settings: SyncSettings | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncSummary:
    """Price, sale and stock only, as partial UPDATEs; sale windows evaluated at `now`."""
    with sync_context(metasync, shop_id, now, settings, sleep=sleep) as ctx:
        return run_stock_and_price(ctx)


def run_stock_and_price(ctx: SyncContext) -> SyncSummary:
    summary = SyncSummary(ctx.shop_id, "stock_price")
    resume_unfinished(ctx, summary)
    catalog = take_snapshot(ctx, "stock_price", summary)
    ledger = LedgerStore(ctx.db).load(ctx.shop_id)
    since = SnapshotStore(ctx.db).last_taken_at(ctx.shop_id, "stock_price", summary.snapshot_id)
    chunks = stock_chunks(catalog.items, ledger, ctx.now, since, ctx.settings)
    summary.volatile_updated = sum(len(items) for _, items in chunks)
    summary.unchanged = len(catalog.items) - summary.volatile_updated
    summary.preview = preview_rows(chunks)
    send_batches(ctx, "stock_price", chunks, summary)
    SnapshotStore(ctx.db).finish(summary.snapshot_id, "synced")
    return _finish(ctx, summary)


def stock_chunks(
    items: pd.DataFrame,
    ledger: pd.DataFrame,
    now: datetime,
    since: datetime | None,
    settings: SyncSettings,
) -> list[tuple[list[dict], list[SentItem]]]:
    """Partial UPDATEs for items on Meta whose price/sale/stock moved, or whose sale started or
    ended since the last stock run. New and removed items wait for the hourly delta."""
    live = ledger.loc[
        ledger["content_hash"].notna() & ledger["rejected_hash"].isna(),
        ["retailer_id", "content_hash", "volatile_hash"],
    ].rename(columns={"content_hash": "ledger_content", "volatile_hash": "ledger_volatile"})
    # An inner merge instead of isin(): at 1M keys it is several times faster on arrow strings.
    on_meta = items.merge(live, on="retailer_id", how="inner")
    moved_mask = on_meta["ledger_volatile"] != on_meta["volatile_hash"]
    moved_ids = set(on_meta.loc[moved_mask, "retailer_id"])
    entries = volatile_updates(on_meta, now, since=since, retailer_ids=sorted(moved_ids))
    sent_ids = [entry["data"]["id"] for entry in entries]
    chosen = on_meta.set_index("retailer_id").loc[
        sent_ids, ["ledger_content", "volatile_hash", "product_id"]
    ]
    sent = []
    for rid, old, volatile, product in zip(
        sent_ids,
        chosen["ledger_content"],
        chosen["volatile_hash"],
        chosen["product_id"],
        strict=True,
    ):
        # The static half stays what Meta has: a static change still reaches the hourly delta.
        content = str(old)[:STATIC_DIGEST_CHARS] + str(volatile)
        # A sale starting or ending changes no hash; the run time tells two such updates apart.
        previous = old if rid in moved_ids else f"{old}@sale-window:{now:%Y%m%dT%H%M}"
        sent.append(SentItem(rid, "UPDATE", content, str(volatile), None, _text(product), previous))
    return _pair(entries, sent, settings)


# --- full (24 h) ----------------------------------------------------------------------------


def full_sync(
    metasync: MetasyncLike,
    shop_id: str,
    now: datetime | None = None,
    settings: SyncSettings | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> SyncSummary:
    """The daily sync: replace feed upload, session followed, then the live catalog read back:
    orphans deleted, drift re-sent. Refused (CatalogRefused) when the snapshot shrank too much."""
    with sync_context(metasync, shop_id, now, settings, sleep=sleep) as ctx:
        return run_full(ctx)


def run_full(ctx: SyncContext) -> SyncSummary:
    summary = SyncSummary(ctx.shop_id, "full")
    resume_unfinished(ctx, summary)
    catalog = take_snapshot(ctx, "full", summary)
    guard_shrink(ctx, catalog, summary)
    session_id = upload_feed(ctx, catalog, summary)
    errors = follow_upload(ctx, session_id, summary)
    reconcile(ctx, catalog, errors, session_id, summary)
    SnapshotStore(ctx.db).finish(summary.snapshot_id, "synced", good=True)
    return _finish(ctx, summary)


def guard_shrink(ctx: SyncContext, catalog: NormalisedCatalog, summary: SyncSummary) -> None:
    last = SnapshotStore(ctx.db).last_good(ctx.shop_id)
    if last is None or ctx.settings.allow_shrink:
        return
    reason = shrink_guard(last["items"], len(catalog.items), ctx.settings.max_shrink_share)
    if reason is None:
        return
    SnapshotStore(ctx.db).finish(summary.snapshot_id, "refused", reason)
    raise CatalogRefused(
        f"shop {ctx.shop_id}: replace feed refused: {reason}",
        {
            "last_good_items": int(last["items"]),
            "snapshot_items": len(catalog.items),
            "max_shrink_share": ctx.settings.max_shrink_share,
            "last_good_snapshot_id": int(last["snapshot_id"]),
            "snapshot_id": summary.snapshot_id,
        },
    )


def upload_feed(ctx: SyncContext, catalog: NormalisedCatalog, summary: SyncSummary) -> str:
    """Record, then upload the replace feed; a rerun of the same day and content follows the
    session it already started."""
    feed = render_feed(catalog.items)
    api = ctx.api
    feed_id = str(api.ensure_feed(ctx.settings.feed_name))
    key = idempotency_key(ctx.shop_id, "feed_upload", feed_id, f"{feed.sha256}:{ctx.now:%Y-%m-%d}")
    GraphWriteOutbox(ctx.db).record_intent(
        key,
        shop_id=ctx.shop_id,
        action="feed_upload",
        target_id=feed_id,
        body={"sha256": feed.sha256, "rows": feed.row_count, "update_only": False},
    )
    row = _upload_row(ctx.db, key)
    if row is None:
        with ctx.db.begin() as conn:
            conn.execute(
                insert(upload_sessions).values(
                    idempotency_key=key,
                    shop_id=ctx.shop_id,
                    snapshot_id=summary.snapshot_id,
                    feed_id=feed_id,
                    update_only=False,
                    status="recorded",
                    created_at=ctx.now,
                )
            )
    elif row["session_id"]:
        return str(row["session_id"])
    session_id = str(
        api.upload_feed(feed_id, feed.content, f"{ctx.shop_id}.csv", update_only=False)
    )
    with ctx.db.begin() as conn:
        conn.execute(
            update(upload_sessions)
            .where(upload_sessions.c.idempotency_key == key)
            .values(session_id=session_id, status="sent")
        )
    GraphWriteOutbox(ctx.db).mark_succeeded(key, {"upload_session_id": session_id})
    return session_id


def _upload_row(db: MetasyncDatabase, key: str) -> dict[str, Any] | None:
    with db.begin() as conn:
        row = conn.execute(
            select(upload_sessions).where(upload_sessions.c.idempotency_key == key)
        ).first()
    return None if row is None else dict(row._mapping)


def follow_upload(ctx: SyncContext, session_id: str, summary: SyncSummary) -> list:
    """Poll the upload session to its end, store its counts and errors."""
    summary.upload_session_id = session_id
    api = ctx.api
    deadline = time.monotonic() + ctx.settings.poll_timeout_seconds
    for delay in poll_delays(ctx.settings.poll_interval_seconds):
        session = api.upload_session(session_id)
        if session.is_done:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"shop {ctx.shop_id}: upload session {session_id} did not end")
        ctx.sleep(delay)
    errors = list(api.upload_errors(session_id))
    summary.upload_errors = sum(1 for e in errors if e.is_fatal)
    with ctx.db.begin() as conn:
        conn.execute(
            update(upload_sessions)
            .where(upload_sessions.c.session_id == session_id)
            .values(
                status="finished",
                num_detected_items=session.num_detected_items,
                num_invalid_items=session.num_invalid_items,
                num_persisted_items=session.num_persisted_items,
                errors=[e.model_dump(mode="json") for e in errors],
                finished_at=ctx.now,
            )
        )
    return errors


def reconcile(
    ctx: SyncContext,
    catalog: NormalisedCatalog,
    upload_errors: list,
    session_id: str | None,
    summary: SyncSummary,
) -> None:
    """Read the live catalog back: rebuild the ledger from what Meta holds, delete orphans,
    re-send drifted or missing items (except those the upload rejected with a reason)."""
    fields = ["id", "retailer_id", *ctx.settings.drift_fields]
    live = {p.retailer_id: p for p in ctx.api.list_products(fields) if p.retailer_id}
    items = catalog.items.set_index("retailer_id", drop=False)
    fatal = _fatal_reasons(upload_errors)

    orphans = [p for rid, p in live.items() if rid not in items.index]
    if ctx.settings.delete_orphans:
        for product in orphans:
            ctx.api.delete_product(product.id)
        summary.orphans_deleted = len(orphans)

    present = items.index.isin(list(live))
    drifted = [rid for rid in items.index[present] if _drifted(live[rid], items.loc[rid], ctx)]
    missing = [rid for rid in items.index[~present] if rid not in fatal]
    _rebuild_ledger(ctx, items, live, fatal, set(drifted), session_id)
    _feed_issues(ctx, items, fatal, summary)
    summary.accepted = int(present.sum()) - len(drifted)
    summary.rejected = len(fatal)
    summary.reject_reasons.update(fatal)
    if ctx.settings.resend_drift and (drifted or missing):
        resend = items.loc[drifted + missing].reset_index(drop=True)
        ledger = LedgerStore(ctx.db).load(ctx.shop_id)
        changes = CatalogChanges(
            create=resend.loc[resend["retailer_id"].isin(missing)],
            update=resend.loc[resend["retailer_id"].isin(drifted)],
            volatile_only_update=resend.iloc[0:0],
            delete=pd.DataFrame({"retailer_id": pd.Series([], dtype="str")}),
            unchanged=pd.DataFrame({"retailer_id": pd.Series([], dtype="str")}),
        )
        chunks = change_chunks(changes, ledger, ctx.now, ctx.settings)
        summary.drift_resent = len(drifted) + len(missing)
        send_batches(ctx, "full", chunks, summary)
    summary.created = len(catalog.items)
    summary.preview = [
        {"retailer_id": rid, "problem": reason} for rid, reason in list(fatal.items())[:10]
    ]


def _fatal_reasons(errors: list) -> dict[str, str]:
    reasons: dict[str, str] = {}
    for error in errors:
        if not error.is_fatal:
            continue
        for sample in error.samples:
            if sample.retailer_id:
                reasons.setdefault(sample.retailer_id, error.summary or error.description)
    return reasons


def _drifted(product, item: pd.Series, ctx: SyncContext) -> bool:
    for read_name, column in ctx.settings.drift_fields.items():
        seen = getattr(product, read_name, None)
        if seen is None or column not in item:
            continue  # Meta did not say: no evidence of drift
        if str(seen) != str(item[column]):
            return True
    return False


def _rebuild_ledger(ctx, items, live, fatal, drifted, session_id) -> None:
    rows = []
    for rid, content, volatile, group, product in items[
        ["retailer_id", "content_hash", "volatile_hash", "item_group_id", "product_id"]
    ].itertuples(index=False, name=None):
        on_meta = rid in live and rid not in drifted
        rows.append(
            {
                "shop_id": ctx.shop_id,
                "retailer_id": rid,
                "item_group_id": group or None,
                "product_id": product or None,
                "content_hash": content if on_meta else None,
                "volatile_hash": volatile if on_meta else None,
                "rejected_hash": content if rid in fatal else None,
                "meta_status": ACCEPTED if on_meta else (REJECTED if rid in fatal else PENDING),
                "last_handle": session_id,
                "last_error": fatal.get(rid),
                "updated_at": ctx.now,
            }
        )
    LedgerStore(ctx.db).replace_all(ctx.shop_id, rows)
    if ctx.settings.record_history and fatal:
        with ctx.db.begin() as conn:
            conn.execute(
                insert(item_status_history),
                [
                    {
                        "shop_id": ctx.shop_id,
                        "retailer_id": rid,
                        "status": REJECTED,
                        "method": "FEED",
                        "reason": reason,
                        "handle": None,
                        "upload_session_id": session_id,
                        "at": ctx.now,
                    }
                    for rid, reason in fatal.items()
                ],
            )


def _feed_issues(ctx, items: pd.DataFrame, fatal: dict[str, str], summary) -> None:
    products = {
        rid: {"product_id": items.at[rid, "product_id"]} for rid in fatal if rid in items.index
    }
    issues = issues_from_item_errors(list(fatal.items()), ctx.shop, products, "feed")
    counts = SellerIssueStore(ctx.db).sync(ctx.shop_id, "feed", issues, ctx.now)
    summary.issues_opened += counts.opened
    summary.issues_resolved += counts.resolved


# --- diagnostics ----------------------------------------------------------------------------


def pull_diagnostics(metasync: MetasyncLike, shop_id: str, now: datetime | None = None):
    """Meta's catalog diagnostics -> seller issues; issues no longer reported are resolved."""
    with sync_context(metasync, shop_id, now) as ctx:
        groups = [
            g.model_dump() if hasattr(g, "model_dump") else dict(g) for g in ctx.api.diagnostics()
        ]
        issues = issues_from_diagnostics(groups)
        return SellerIssueStore(ctx.db).sync(shop_id, "diagnostics", issues, ctx.now)


# --- plan (no network) ----------------------------------------------------------------------


def plan(
    metasync: MetasyncLike,
    shop_id: str,
    now: datetime | None = None,
    settings: SyncSettings | None = None,
) -> DeltaPlan:
    """What the next delta sync would send, computed offline from the store and the ledger."""
    with sync_context(metasync, shop_id, now, settings, online=False) as ctx:
        catalog = read_catalog(ctx.shop, ctx.now, ctx.settings)
        ledger = LedgerStore(ctx.db).load(shop_id)
        return plan_delta(catalog.items, ledger, ctx.now, ctx.settings)


def open_batches(db: MetasyncDatabase, shop_id: str) -> int:
    with db.begin() as conn:
        return conn.execute(
            select(func.count()).where(
                and_(batch_handles.c.shop_id == shop_id, batch_handles.c.status == "sent")
            )
        ).scalar_one()


# --- product sets ---------------------------------------------------------------------------


def product_sets_sync(
    metasync: MetasyncLike,
    shop_id: str,
    now: datetime | None = None,
    settings: SyncSettings | None = None,
) -> ProductSetSummary:
    """Product sets created, updated and deleted to match the store's collections."""
    with sync_context(metasync, shop_id, now, settings) as ctx:
        catalog = read_catalog(ctx.shop, ctx.now, ctx.settings)
        return sync_product_sets(ctx, desired_product_sets(catalog.items))

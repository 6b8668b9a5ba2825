"""Seller issues: what a seller must fix, said plainly, with a link to the product in the store.

    issues = issues_from_rejects(catalog.rejected, shop)           # store rows Meta can't take
    issues += issues_from_item_errors(errors, shop, products)      # items Meta rejected
    issues += issues_from_diagnostics(groups, shop)                # Meta's catalog diagnostics
    SellerIssueStore(db).sync("acme", "store", issues, now)        # upsert; gone ones resolved

Building is pure (data in, `SellerIssue` out); `SellerIssueStore` writes them. Each source
(`store`, `items_batch`, `feed`, `diagnostics`) is synced on its own: an issue that its source
no longer reports gets `resolved_at`, one that comes back is reopened.
"""

import logging
import string
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import pandas as pd
from sqlalchemy import and_, select, update

from resources.db import MetasyncDatabase
from resources.db.catalog_tables import seller_issues
from resources.shops import ShopProfile

logger = logging.getLogger(__name__)

ERROR = "error"
WARNING = "warning"

# Store-side reasons (resources.store.RejectionReason values) -> what the seller should do.
REJECT_ACTIONS: dict[str, str] = {
    "malformed_row": (
        "This row has a different number of cells than the header (often a stray comma or "
        "quote); correct the row and export the file again."
    ),
    "missing_id": "Give this variant a stable id (the store's variant id) and save it.",
    "id_too_long": "Shorten the variant or product id to 100 characters or fewer.",
    "unsafe_id": "Change the id so it does not start with =, +, - or @.",
    "duplicate_id": "Two rows share this id; give each variant its own id.",
    "id_used_by_group": "This id is also used as a product (group) id; give the variant its own.",
    "orphan_variation": "This variation has no parent product; attach it to a product.",
    "no_variants": "This product has no sellable variant; add one or mark it as a draft.",
    "missing_title": "Add a title to this product.",
    "missing_price": "Add a price to this variant.",
    "invalid_price": "Write the price as a plain number such as 12.50 (no symbols).",
    "non_positive_price": "Set a price above zero.",
    "price_precision": "Round the price to the currency's decimals (e.g. 2 for EUR, 0 for JPY).",
    "bad_currency": "Use an ISO 4217 currency code such as EUR or USD.",
    "missing_image": "Add a product image (JPEG or PNG, at least 500x500 pixels).",
    "invalid_image": "Use an image address starting with https://.",
    "missing_link": "Add the product's page address (or set the shop's product URL template).",
    "invalid_link": "Use a product page address starting with https://.",
    "missing_brand": "Add a brand (or set the shop's default brand).",
}
DEFAULT_REJECT_ACTION = "Open the product in your store and correct it; it syncs on the next run."
META_REJECT_ACTION = (
    "Meta rejected this item: {message} Correct the product in your store; metasync sends it "
    "again on the next hourly sync."
)


@dataclass(frozen=True)
class SellerIssue:
    issue_type: str
    retailer_id: str  # "" for an issue about the whole catalog
    severity: str
    source: str
    title: str
    call_to_action: str
    admin_url: str | None = None
    detail: str | None = None
    affected_retailer_ids: tuple[str, ...] = field(default_factory=tuple)


class _Blank(dict):
    """format_map helper: unknown placeholders render as ''."""

    def __missing__(self, key: str) -> str:
        return ""


def admin_link(shop: ShopProfile, product: Mapping[str, Any]) -> str | None:
    """The store admin page of a product, from the shop's admin_url_template.

    Placeholders: {product_id} {variant_id} {retailer_id} {handle} {sku}; unknown ones are blank.
    """
    template = shop.admin_url_template
    if not template or not product.get("product_id"):
        return None
    values = _Blank({k: "" if v is None else str(v) for k, v in product.items()})
    values.setdefault("variant_id", values.get("retailer_id", ""))
    names = {name for _, name, _, _ in string.Formatter().parse(template) if name}
    if any(not values.get(name) for name in names & {"product_id", "variant_id"}):
        return None
    return template.format_map(values)


def issues_from_rejects(rejected: pd.DataFrame, shop: ShopProfile) -> list[SellerIssue]:
    """One issue per store row normalisation rejected (items Meta will never see)."""
    issues = []
    for row in rejected.to_dict("records"):
        reason = str(row.get("reason") or "rejected")
        retailer_id = str(row.get("retailer_id") or f"row:{row.get('source_row')}")
        fix_url = row.get("fix_url") or admin_link(shop, row)
        issues.append(
            SellerIssue(
                issue_type=f"store:{reason}",
                retailer_id=retailer_id,
                severity=ERROR,
                source="store",
                title=f"Row {row.get('source_row')} cannot be listed on Meta ({reason})",
                call_to_action=REJECT_ACTIONS.get(reason, DEFAULT_REJECT_ACTION),
                admin_url=fix_url or None,
                detail=str(row.get("detail") or "") or None,
                affected_retailer_ids=(retailer_id,),
            )
        )
    return issues


def issues_from_item_errors(
    errors: Iterable[tuple[str, str]],
    shop: ShopProfile,
    products: Mapping[str, Mapping[str, Any]],
    source: str,
) -> list[SellerIssue]:
    """One issue per item Meta rejected: `errors` is (retailer_id, Meta's message) pairs and
    `products` maps retailer_id -> {product_id, handle, sku...} for the admin link."""
    merged: dict[str, list[str]] = {}
    for retailer_id, message in errors:
        merged.setdefault(retailer_id, [])
        if message and message not in merged[retailer_id]:
            merged[retailer_id].append(message)
    issues = []
    for retailer_id, messages in merged.items():
        message = " ".join(m.rstrip(".") + "." for m in messages) or "no reason given."
        product = {"retailer_id": retailer_id, **products.get(retailer_id, {})}
        issues.append(
            SellerIssue(
                issue_type=f"meta:{source}_rejected",
                retailer_id=retailer_id,
                severity=ERROR,
                source=source,
                title=f"Meta rejected item {retailer_id}",
                call_to_action=META_REJECT_ACTION.format(message=message),
                admin_url=admin_link(shop, product),
                detail=message,
                affected_retailer_ids=(retailer_id,),
            )
        )
    return issues


def issues_from_diagnostics(groups: Iterable[Mapping[str, Any]]) -> list[SellerIssue]:
    """Catalog diagnostics (GET /{catalog_id}/diagnostics) -> one issue per diagnostic type."""
    issues = []
    for group in groups:
        severity = ERROR if group.get("severity") == "MUST_FIX" else WARNING
        entries = group.get("diagnostics") or [group]
        for entry in entries:
            kind = entry.get("type") or group.get("type") or "UNKNOWN"
            samples = entry.get("sample_affected_items") or []
            affected = tuple(
                str(s.get("content_id") or s.get("retailer_id") or s.get("id"))
                for s in samples
                if isinstance(s, Mapping)
            )
            count = entry.get("number_of_affected_items") or group.get("number_of_affected_items")
            title = group.get("title") or kind
            issues.append(
                SellerIssue(
                    issue_type=f"diagnostics:{group.get('type', 'GROUP')}:{kind}",
                    retailer_id="",
                    severity=severity,
                    source="diagnostics",
                    title=f"{title} ({count} items)" if count else title,
                    call_to_action=str(
                        entry.get("call_to_action")
                        or entry.get("details")
                        or "Review this issue in Commerce Manager."
                    ),
                    admin_url=entry.get("action_uri") or entry.get("action_url"),
                    detail=entry.get("description")
                    or entry.get("details")
                    or group.get("subtitle"),
                    affected_retailer_ids=affected,
                )
            )
    return issues


@dataclass(frozen=True)
class IssueCounts:
    opened: int
    still_open: int
    resolved: int


class SellerIssueStore:
    """Seller issues in the metasync database, unique per (shop, issue_type, retailer_id)."""

    def __init__(self, db: MetasyncDatabase) -> None:
        self._db = db

    def sync(
        self,
        shop_id: str,
        source: str,
        issues: list[SellerIssue],
        now: datetime,
        scope: Iterable[str] | None = None,
    ) -> IssueCounts:
        """Record what `source` reports now; its open issues not reported are resolved.

        `scope` limits resolution to these retailer_ids (an items_batch run only knows about the
        items it sent); None resolves across the whole source.
        """
        reported = {(i.issue_type, i.retailer_id): i for i in issues}
        opened = kept = resolved = 0
        with self._db.begin() as conn:
            existing = {
                (row.issue_type, row.retailer_id): row
                for row in conn.execute(
                    select(seller_issues).where(
                        seller_issues.c.shop_id == shop_id, seller_issues.c.source == source
                    )
                )
            }
            for key, issue in reported.items():
                row = existing.get(key)
                values = _issue_values(issue) | {"last_seen": now, "resolved_at": None}
                if row is None:
                    conn.execute(
                        seller_issues.insert().values(shop_id=shop_id, first_seen=now, **values)
                    )
                    opened += 1
                    continue
                if row.resolved_at is not None:
                    opened += 1
                    values["first_seen"] = now
                else:
                    kept += 1
                conn.execute(
                    update(seller_issues).where(seller_issues.c.id == row.id).values(**values)
                )
            scoped = None if scope is None else set(scope)
            for key, row in existing.items():
                if key in reported or row.resolved_at is not None:
                    continue
                if scoped is not None and row.retailer_id not in scoped:
                    continue
                conn.execute(
                    update(seller_issues)
                    .where(seller_issues.c.id == row.id)
                    .values(resolved_at=now)
                )
                resolved += 1
        return IssueCounts(opened=opened, still_open=kept, resolved=resolved)

    def resolve_items(self, shop_id: str, source: str, retailer_ids: Iterable[str], now: datetime):
        """Meta accepted these items: their open `source` issues are resolved."""
        ids = list(retailer_ids)
        for start in range(0, len(ids), 500):
            with self._db.begin() as conn:
                conn.execute(
                    update(seller_issues)
                    .where(
                        and_(
                            seller_issues.c.shop_id == shop_id,
                            seller_issues.c.source == source,
                            seller_issues.c.resolved_at.is_(None),
                            seller_issues.c.retailer_id.in_(ids[start : start + 500]),
                        )
                    )
                    .values(resolved_at=now)
                )

    def open_issues(self, shop_id: str) -> list[dict[str, Any]]:
        query = (
            select(seller_issues)
            .where(seller_issues.c.shop_id == shop_id, seller_issues.c.resolved_at.is_(None))
            .order_by(
                seller_issues.c.severity, seller_issues.c.issue_type, seller_issues.c.retailer_id
            )
        )
        with self._db.begin() as conn:
            return [dict(row._mapping) for row in conn.execute(query)]


def _issue_values(issue: SellerIssue) -> dict[str, Any]:
    return {
        "issue_type": issue.issue_type,
        "retailer_id": issue.retailer_id,
        "severity": issue.severity,
        "source": issue.source,
        "title": issue.title,
        "call_to_action": issue.call_to_action,
        "admin_url": issue.admin_url,
        "detail": issue.detail,
        "affected_retailer_ids": list(issue.affected_retailer_ids),
    }

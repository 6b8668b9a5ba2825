"""Store discounts -> Meta offers, for shops with Capability.OFFERS (orders.md §12).

    summary = sync_shop_offers(metasync, "acme", Path("discounts.csv"))

For a shop with the capability: the store's discounts (pipelines/offers/source.py) become OFFER
feed rows; rows differing from what Meta last accepted (the `offers_ledger`) are uploaded as one
update-only file to the shop's OFFER feed: new discounts are created, changed ones updated, and
discounts removed or disabled in the store are ended (end_date_time = now; offers are not deleted
because past orders name them). A run with no change makes no Graph call at all.

Every upload is recorded with its file in `offer_uploads` and in the Graph write outbox under a
key derived from the file (idempotency_key(shop, "offers_upload", feed, sha256 of the file))
BEFORE it is sent; a rerun after a crash first resends a recorded, unfinished file under the same
key. Re-sending the same update-only rows sets the same values again, so no effect is repeated.

For a shop WITHOUT the capability: nothing is sent; while the store has enabled discounts, a
seller issue (source "offers") says so and links Commerce Manager, where the seller can set them
up by hand. Store rows that break the contract and offers Meta refused are seller issues too.
"""

import hashlib
import logging
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from sqlalchemy import select, update

from pipelines.catalog.issues import ERROR, WARNING, SellerIssue, SellerIssueStore
from pipelines.offers.mapping import OfferSettings, deactivated, offer_row, row_hash
from pipelines.offers.source import DiscountReject, StoreDiscount, read_discounts
from pipelines.resources import MetasyncResource
from resources.db import MetasyncDatabase
from resources.db.orders_tables import offer_feeds, offer_uploads, offers_ledger
from resources.db.outbox import GraphWriteOutbox, idempotency_key
from resources.db.types import utcnow
from resources.meta.offers import OfferRow, OffersApi, render_offer_feed
from resources.shops import Capability, ShopProfile

logger = logging.getLogger(__name__)

OFFER_FEED_NAME = "metasync offers"
ISSUE_SOURCE = "offers"
# orders.md §1.2 documents the Commerce Manager URL facebook.com/commerce_manager/{cms-id}; the
# promotions page under it is our reading of Commerce Manager, not documented: a setting.
COMMERCE_MANAGER_PROMOTIONS = "https://www.facebook.com/commerce_manager/{cms_id}/promotions"


@dataclass
class OffersSummary:
    shop_id: str
    mode: str  # synced | seller_issue
    discounts: int = 0
    store_rejects: int = 0
    created: int = 0  # created, updated, deactivated: rows sent (Meta may refuse some)
    updated: int = 0
    deactivated: int = 0
    unchanged: int = 0
    rejected_by_meta: int = 0
    uploads: int = 0
    resumed: int = 0
    details: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class PlannedOffer:
    offer_id: str
    action: str  # create | update | deactivate
    row: OfferRow
    content_hash: str


def sync_shop_offers(
    metasync: MetasyncResource,
    shop_id: str,
    discounts_path: Path,
    *,
    now: datetime | None = None,
    settings: OfferSettings = OfferSettings(),
    promotions_url_template: str = COMMERCE_MANAGER_PROMOTIONS,
) -> OffersSummary:
    now = now or utcnow()
    shop = metasync.registry().get(shop_id)
    discounts, rejects = read_discounts(discounts_path, shop.currency)
    if Capability.OFFERS not in shop.capabilities:
        return _capability_issue(metasync.db(), shop, discounts, rejects, now,
                                 promotions_url_template.format(cms_id=shop.cms_id))  # fmt: skip
    summary = OffersSummary(shop_id, "synced", len(discounts), len(rejects))
    db = metasync.db()
    with metasync.graph_for(shop_id) as graph:
        api = OffersApi(graph, shop.catalog_id)
        summary.resumed = _resume_recorded_uploads(db, api, shop_id)
        plan = plan_offers(_ledger(db, shop_id), discounts, shop.currency, now, settings)
        enabled = sum(1 for d in discounts if d.enabled)
        summary.unchanged = enabled - sum(1 for p in plan if p.action != "deactivate")
        if plan:
            feed_id = _offer_feed(db, api, shop)
            key = _record_upload(db, shop_id, feed_id, plan)
            _send_upload(db, api, shop_id, key)
            summary.uploads = 1
            for planned in plan:
                setattr(summary, _COUNTER[planned.action],
                        getattr(summary, _COUNTER[planned.action]) + 1)  # fmt: skip
    ledger = _ledger(db, shop_id)
    summary.rejected_by_meta = sum(1 for row in ledger.values() if row["status"] == "rejected")
    _sync_issues(db, shop, rejects, ledger, [], now, None)
    summary.details = [f"{p.offer_id}:{p.action}" for p in plan]
    return summary


_COUNTER = {"create": "created", "update": "updated", "deactivate": "deactivated"}


# -- planning (pure) -----------------------------------------------------------------------------


def plan_offers(
    ledger: dict[str, dict],
    discounts: list[StoreDiscount],
    currency: str,
    now: datetime,
    settings: OfferSettings = OfferSettings(),
) -> list[PlannedOffer]:
    """What to send: new or changed enabled discounts, and ends for discounts gone or disabled.

    A row equal to what Meta accepted, or to what Meta refused (until the store changes it), is
    not sent. An offer already ended is not ended again.
    """
    plan: list[PlannedOffer] = []
    wanted: set[str] = set()
    for discount in discounts:
        if not discount.enabled:
            continue
        wanted.add(discount.code)
        row = offer_row(discount, currency, settings)
        digest = row_hash(row)
        known = ledger.get(discount.code)
        if known and digest in (known["content_hash"], known["rejected_hash"]):
            continue
        action = "create" if known is None or known["content_hash"] is None else "update"
        plan.append(PlannedOffer(discount.code, action, row, digest))
    for offer_id, known in sorted(ledger.items()):
        if offer_id in wanted or known["status"] != "active" or not known["row"]:
            continue
        row = OfferRow.model_validate(known["row"])
        if row.end_date_time is not None and row.end_date_time <= now:
            continue  # it has ended on its own
        ended = deactivated(row, now)
        plan.append(PlannedOffer(offer_id, "deactivate", ended, row_hash(ended)))
    return sorted(plan, key=lambda p: p.offer_id)


# -- the feed and its uploads --------------------------------------------------------------------


def _offer_feed(db: MetasyncDatabase, api: OffersApi, shop: ShopProfile) -> str:
    """The shop's OFFER feed, created once. Creating is a Graph write: its intent is recorded
    first, and a rerun after a crash looks the feed up by name before creating another."""
    with db.begin() as conn:
        feed_id = conn.execute(
            select(offer_feeds.c.feed_id).where(offer_feeds.c.shop_id == shop.shop_id)
        ).scalar()
    if feed_id:
        return feed_id
    outbox = GraphWriteOutbox(db)
    key = idempotency_key(shop.shop_id, "create_offer_feed", shop.catalog_id, OFFER_FEED_NAME)
    recorded = outbox.record_intent(
        key, shop_id=shop.shop_id, action="create_offer_feed", target_id=shop.catalog_id,
        body={"name": OFFER_FEED_NAME},
    )  # fmt: skip
    feed_id = api.find_offer_feed(OFFER_FEED_NAME) if recorded.attempts else None
    if feed_id is None:
        outbox.mark_attempt(key)
        feed_id = api.create_offer_feed(OFFER_FEED_NAME)
    outbox.mark_succeeded(key, {"id": feed_id})
    with db.begin() as conn:
        conn.execute(
            offer_feeds.insert().values(
                shop_id=shop.shop_id, feed_id=feed_id, name=OFFER_FEED_NAME, created_at=utcnow()
            )  # fmt: skip
        )
    return feed_id


def _record_upload(db: MetasyncDatabase, shop_id: str, feed_id: str, plan) -> str:
    content = render_offer_feed([p.row for p in plan])
    digest = hashlib.sha256(content).hexdigest()[:32]
    key = idempotency_key(shop_id, "offers_upload", feed_id, digest)
    with db.begin() as conn:
        exists = conn.execute(
            select(offer_uploads.c.idempotency_key).where(offer_uploads.c.idempotency_key == key)
        ).first()
        if exists is None:
            conn.execute(
                offer_uploads.insert().values(
                    idempotency_key=key,
                    shop_id=shop_id,
                    feed_id=feed_id,
                    content=content.decode(),
                    status="recorded",
                    created_at=utcnow(),
                    offers=[
                        [p.offer_id, p.content_hash, p.action, p.row.model_dump(mode="json")]
                        for p in plan
                    ],
                )  # fmt: skip
            )
    GraphWriteOutbox(db).record_intent(key, shop_id=shop_id, action="offers_upload",
                                       target_id=feed_id, body={"sha256": digest})  # fmt: skip
    return key


def _resume_recorded_uploads(db: MetasyncDatabase, api: OffersApi, shop_id: str) -> int:
    with db.begin() as conn:
        keys = conn.execute(
            select(offer_uploads.c.idempotency_key)
            .where(offer_uploads.c.shop_id == shop_id, offer_uploads.c.status == "recorded")
            .order_by(offer_uploads.c.created_at)
        ).scalars().all()  # fmt: skip
    for key in keys:
        logger.info("shop %s: resending recorded offer upload %s", shop_id, key)
        _send_upload(db, api, shop_id, key)
    return len(keys)


def _send_upload(db: MetasyncDatabase, api: OffersApi, shop_id: str, key: str) -> None:
    with db.begin() as conn:
        upload = conn.execute(
            select(offer_uploads).where(offer_uploads.c.idempotency_key == key)
        ).one()
    outbox = GraphWriteOutbox(db)
    outbox.mark_attempt(key)
    session_id = api.upload_offers(upload.feed_id, upload.content.encode(), update_only=True)
    session = api.upload_session(session_id)
    refused = {
        sample.retailer_id: f"{error.summary}: {_sample_description(sample, error)}"
        for error in api.upload_errors(session_id)
        for sample in error.samples
    }
    now = utcnow()
    with db.begin() as conn:
        for offer_id, digest, action, row in upload.offers:
            _ledger_write(conn, shop_id, offer_id, digest, action, row, refused.get(offer_id), key,
                          now)  # fmt: skip
        conn.execute(
            update(offer_uploads)
            .where(offer_uploads.c.idempotency_key == key)
            .values(status="finished", session_id=session_id, finished_at=now,
                    errors=[{"offer_id": k, "error": v} for k, v in sorted(refused.items())])
        )  # fmt: skip
    outbox.mark_succeeded(key, {"session_id": session_id, "end_time": session.end_time})
    if refused:
        logger.warning("shop %s: Meta refused %d offers: %s", shop_id, len(refused),
                       sorted(refused))  # fmt: skip


def _sample_description(sample, error) -> str:
    # Each sample may carry its own row's description (the sandbox's do); else the group's.
    return getattr(sample, "description", None) or error.description


def _ledger_write(conn, shop_id, offer_id, digest, action, row, error, key, now) -> None:
    current = conn.execute(
        select(offers_ledger).where(
            offers_ledger.c.shop_id == shop_id, offers_ledger.c.offer_id == offer_id
        )
    ).first()
    if error is None:
        values = {"content_hash": digest, "rejected_hash": None, "row": row, "last_error": None,
                  "status": "deactivated" if action == "deactivate" else "active"}  # fmt: skip
    else:
        values = {"rejected_hash": digest, "last_error": error,
                  "status": "rejected" if current is None or current.content_hash is None
                  else current.status}  # fmt: skip
    values |= {"last_upload_key": key, "updated_at": now}
    if current is None:
        conn.execute(offers_ledger.insert().values(shop_id=shop_id, offer_id=offer_id, **values))
    else:
        conn.execute(
            update(offers_ledger)
            .where(offers_ledger.c.shop_id == shop_id, offers_ledger.c.offer_id == offer_id)
            .values(**values)
        )


def _ledger(db: MetasyncDatabase, shop_id: str) -> dict[str, dict]:
    with db.begin() as conn:
        rows = conn.execute(select(offers_ledger).where(offers_ledger.c.shop_id == shop_id))
        return {row.offer_id: dict(row._mapping) for row in rows}


# -- seller issues -------------------------------------------------------------------------------


def _capability_issue(db, shop: ShopProfile, discounts, rejects, now, link) -> OffersSummary:
    enabled = sorted(d.code for d in discounts if d.enabled)
    extra = []
    if enabled:
        extra.append(
            SellerIssue(
                issue_type="offers_not_enabled",
                retailer_id="",
                severity=WARNING,
                source=ISSUE_SOURCE,
                title=f"{len(enabled)} store discounts are not offered on Meta",
                call_to_action=(
                    "Offer sync is not enabled for this shop: set these discounts up as offers "
                    f"in Commerce Manager ({link})."
                ),
                admin_url=link,
                detail="Discount codes: " + ", ".join(enabled),
            )
        )
    _sync_issues(db, shop, rejects, {}, extra, now, None)
    return OffersSummary(shop.shop_id, "seller_issue", len(discounts), len(rejects),
                         details=[f"commerce_manager:{link}"] if enabled else [])  # fmt: skip


def _sync_issues(db, shop, rejects: list[DiscountReject], ledger, extra, now, scope) -> None:
    issues = list(extra)
    for reject in rejects:
        issues.append(
            SellerIssue(
                issue_type="discount_invalid", severity=ERROR, source=ISSUE_SOURCE,
                retailer_id=reject.code or f"row:{reject.row_number}",
                title=f"Store discount {reject.code or '(no code)'} cannot be offered on Meta",
                call_to_action=f"Correct the discount in the store: {reject.reason}.",
                detail=f"row {reject.row_number} of the discounts file",
            )
        )  # fmt: skip
    for offer_id, row in ledger.items():
        if row["last_error"] and row["rejected_hash"]:
            issues.append(
                SellerIssue(
                    issue_type="offer_rejected", retailer_id=offer_id, severity=ERROR,
                    source=ISSUE_SOURCE, title=f"Meta refused the offer for discount {offer_id}",
                    call_to_action="Change the discount in the store so Meta accepts it; it is "
                    "sent again once it changes.",
                    detail=row["last_error"],
                )
            )  # fmt: skip
    SellerIssueStore(db).sync(shop.shop_id, ISSUE_SOURCE, issues, now, scope)

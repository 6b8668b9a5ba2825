"""Rules of the sync that need no sandbox: what a batch's answer means for each item, how the
ledger steers the next diff, idempotency keys, seller issues and their lifecycle, on SQLite and
Postgres."""

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest

from pipelines.catalog.generator import generate_items_frame
from pipelines.catalog.issues import (
    SellerIssueStore,
    admin_link,
    issues_from_diagnostics,
    issues_from_rejects,
)
from pipelines.catalog.product_sets import desired_product_sets
from pipelines.catalog.sync import (
    LedgerStore,
    SentItem,
    SyncSettings,
    batch_key,
    batch_outcome,
    plan_delta,
    stock_chunks,
)
from resources.db import MetasyncDatabase
from resources.meta.catalog_models import BatchStatus
from resources.shops import ShopProfile

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
SETTINGS = SyncSettings(max_batch_requests=3)


def _shop(template: str | None = "https://admin.example/products/{product_id}") -> ShopProfile:
    return ShopProfile(
        shop_id="acme", name="Acme", catalog_id="c1", currency="EUR",
        source_kind="shopify_csv", source_location="x.csv", admin_url_template=template,
    )  # fmt: skip


def _ledger(items: pd.DataFrame, rejected: set[str] = frozenset()) -> pd.DataFrame:
    frame = items[["retailer_id", "content_hash", "volatile_hash", "product_id"]].copy()
    frame["rejected_hash"] = None
    frame["meta_status"] = "ACCEPTED"
    mask = frame["retailer_id"].isin(rejected)
    frame.loc[mask, "rejected_hash"] = frame.loc[mask, "content_hash"]
    frame.loc[mask, ["content_hash", "volatile_hash"]] = None
    return frame


# --- batch answers ----------------------------------------------------------------------------


def _items(*ids: str) -> list[SentItem]:
    return [SentItem(rid, "UPDATE", f"h-{rid}", f"v-{rid}") for rid in ids]


def test_finished_batch_splits_accepted_and_rejected_by_id_or_line():
    status = BatchStatus(
        status="finished",
        errors=[
            {"line": 0, "id": "a", "message": "Image too small"},
            {"line": 2, "id": "", "message": "Bad GTIN"},
        ],  # fmt: skip
        errors_total_count=2,
    )
    outcome = batch_outcome(status, _items("a", "b", "c"))

    assert [i.retailer_id for i in outcome.accepted] == ["b"]
    assert {i.retailer_id: r for i, r in outcome.rejected.items()} == {
        "a": "Image too small",
        "c": "Bad GTIN",
    }


def test_ids_of_invalid_requests_reject_items_missing_from_the_error_sample():
    status = BatchStatus(status="finished", ids_of_invalid_requests=["b"], errors_total_count=1)
    outcome = batch_outcome(status, _items("a", "b"))
    assert [i.retailer_id for i in outcome.accepted] == ["a"]
    assert list(outcome.rejected.values()) == ["rejected by Meta"]


@pytest.mark.parametrize("state", ["error", "canceled"])
def test_handle_ending_in_error_settles_nothing(state):
    outcome = batch_outcome(BatchStatus(status=state), _items("a", "b"))
    assert not outcome.settled and not outcome.accepted and not outcome.rejected


def test_batch_key_depends_on_content_and_on_what_it_replaces():
    base = [SentItem("a", "UPDATE", "h2", "v", previous_hash="h1")]
    same = [SentItem("a", "UPDATE", "h2", "v", previous_hash="h1")]
    back = [SentItem("a", "UPDATE", "h1", "v", previous_hash="h2")]
    assert batch_key("acme", "c1", base) == batch_key("acme", "c1", same)
    assert batch_key("acme", "c1", base) != batch_key("acme", "c1", back)
    assert batch_key("acme", "c1", base) != batch_key("other", "c1", base)


# --- ledger-driven planning -------------------------------------------------------------------


def test_unchanged_snapshot_plans_nothing_and_rejected_content_is_not_resent():
    items = generate_items_frame(20, seed=3)
    plan = plan_delta(items, _ledger(items, rejected={"sku-4"}), NOW, SETTINGS)
    assert plan.chunks == []
    assert plan.counts["unchanged"] == 20


def test_changes_are_chunked_within_the_count_limit():
    items = generate_items_frame(20, seed=3)
    ledger = _ledger(items)
    changed = items.copy()
    changed.loc[:6, "content_hash"] = "0" * 32  # seven full updates
    plan = plan_delta(changed, ledger, NOW, SETTINGS)
    assert [len(requests) for requests, _ in plan.chunks] == [3, 3, 1]
    assert all(
        entry["data"]["id"] == item.retailer_id
        for requests, sent in plan.chunks
        for entry, item in zip(requests, sent, strict=True)
    )


def test_deletions_past_the_cap_are_held_unless_overridden():
    items = generate_items_frame(20, seed=3)
    ledger = _ledger(items)
    held = plan_delta(items.iloc[:10], ledger, NOW, SETTINGS)
    allowed = plan_delta(
        items.iloc[:10], ledger, NOW, SETTINGS.model_copy(update={"allow_mass_deletion": True})
    )
    assert held.held_deletions == 10 and held.chunks == [] and "override" in held.held_reason
    assert allowed.counts["delete"] == 10 and allowed.held_deletions == 0


def test_items_never_accepted_are_forgotten_not_deleted():
    items = generate_items_frame(10, seed=3)
    ledger = _ledger(items, rejected={"sku-9"})
    plan = plan_delta(items.iloc[:9], ledger, NOW, SETTINGS)
    assert plan.forgotten == ["sku-9"] and plan.counts["delete"] == 0


def test_sale_window_crossing_is_sent_once_per_crossing_with_distinct_keys():
    items = generate_items_frame(5, seed=3)
    items.loc[0, "sale_price"] = "1.00 EUR"
    items.loc[0, "sale_end"] = pd.Timestamp(NOW + timedelta(hours=1))
    ledger = _ledger(items)

    before = stock_chunks(items, ledger, NOW, NOW - timedelta(minutes=15), SETTINGS)
    later = NOW + timedelta(hours=2)
    crossed = stock_chunks(items, ledger, later, NOW, SETTINGS)
    next_day = stock_chunks(items, ledger, later + timedelta(days=1), later, SETTINGS)

    assert before == [] and next_day == []
    ((requests, sent),) = crossed
    assert requests[0]["data"] == requests[0]["data"] | {"id": "sku-0", "sale_price": ""}
    assert sent[0].content_hash == ledger.loc[0, "content_hash"]
    assert batch_key("acme", "c1", sent) != batch_key(
        "acme",
        "c1",
        [
            SentItem(
                "sku-0",
                "UPDATE",
                sent[0].content_hash,
                sent[0].volatile_hash,
                previous_hash=ledger.loc[0, "content_hash"],
            )
        ],  # fmt: skip
    )


# --- seller issues ----------------------------------------------------------------------------


def test_admin_link_fills_the_template_and_refuses_to_guess():
    shop = _shop("https://admin.example/products/{product_id}/variants/{variant_id}")
    assert admin_link(shop, {"product_id": "9", "retailer_id": "41"}) == (
        "https://admin.example/products/9/variants/41"
    )
    assert admin_link(shop, {"retailer_id": "41"}) is None
    assert admin_link(_shop(None), {"product_id": "9"}) is None


def test_store_rejects_become_issues_with_an_action_per_reason():
    rejected = pd.DataFrame(
        [{"source_row": 5, "retailer_id": "v1", "item_group_id": "", "product_id": "p1",
          "reason": "missing_image", "detail": "no image", "fix_url": ""}]
    )  # fmt: skip
    (issue,) = issues_from_rejects(rejected, _shop())
    assert issue.issue_type == "store:missing_image"
    assert "image" in issue.call_to_action.lower()
    assert issue.admin_url == "https://admin.example/products/p1"


def test_diagnostics_groups_become_issues_keyed_by_type():
    groups = [
        {"type": "IMAGE_QUALITY", "severity": "MUST_FIX", "title": "Images",
         "diagnostics": [{"type": "IMAGE_RESOLUTION_LOW", "call_to_action": "Use bigger images",
                          "number_of_affected_items": 2,
                          "sample_affected_items": [{"retailer_id": "a"}, {"retailer_id": "b"}]}]}
    ]  # fmt: skip
    (issue,) = issues_from_diagnostics(groups)
    assert issue.issue_type == "diagnostics:IMAGE_QUALITY:IMAGE_RESOLUTION_LOW"
    assert issue.severity == "error" and issue.affected_retailer_ids == ("a", "b")


def _store_roundtrip(db: MetasyncDatabase) -> None:
    store = SellerIssueStore(db)
    rejected = pd.DataFrame(
        [{"source_row": r, "retailer_id": f"v{r}", "item_group_id": "", "product_id": f"p{r}",
          "reason": "missing_price", "detail": "", "fix_url": ""} for r in (2, 3)]
    )  # fmt: skip
    issues = issues_from_rejects(rejected, _shop())

    first = store.sync("acme", "store", issues, NOW)
    again = store.sync("acme", "store", issues, NOW + timedelta(hours=1))
    fixed = store.sync("acme", "store", issues[:1], NOW + timedelta(hours=2))
    back = store.sync("acme", "store", issues, NOW + timedelta(hours=3))

    assert (first.opened, again.opened, again.still_open) == (2, 0, 2)
    assert fixed.resolved == 1
    assert back.opened == 1
    assert {i["retailer_id"] for i in store.open_issues("acme")} == {"v2", "v3"}


def _ledger_roundtrip(db: MetasyncDatabase) -> None:
    ledger = LedgerStore(db)
    a = SentItem("a", "CREATE", "h1", "v1", "g", "p")
    b = SentItem("b", "CREATE", "h2", "v2", "g", "p")
    ledger.apply("acme", [a, b], {}, "handle-1", NOW)
    ledger.apply("acme", [SentItem("a", "DELETE", None, None)],
                 {SentItem("b", "UPDATE", "h3", "v3"): "too small"}, "handle-2", NOW)  # fmt: skip

    frame = ledger.load("acme").set_index("retailer_id")
    assert list(frame.index) == ["b"]
    assert frame.loc["b", "content_hash"] == "h2"  # what Meta last accepted stays
    assert frame.loc["b", "rejected_hash"] == "h3"
    assert frame.loc["b", "meta_status"] == "REJECTED"


def test_issue_store_and_ledger_on_sqlite(metasync_db):
    _store_roundtrip(metasync_db)
    _ledger_roundtrip(metasync_db)


def test_issue_store_and_ledger_on_postgres(postgres_url):
    db = MetasyncDatabase(postgres_url)
    db.create_schema()
    try:
        _store_roundtrip(db)
        _ledger_roundtrip(db)
    finally:
        db.dispose()


def test_product_sets_one_per_collection():
    items = pd.DataFrame({"product_type": ["Mugs", "Mugs", "", "Totes ", None]})
    desired = desired_product_sets(items)
    assert [d.collection for d in desired] == ["Mugs", "Totes"]
    assert desired[0].filter_rule == {"product_type": {"eq": "Mugs"}}
    assert desired[0].filter_hash != desired[1].filter_hash

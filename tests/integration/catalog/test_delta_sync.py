"""The hourly delta sync against the live sandbox: what it sends, what it follows, what it
records, and how it resumes after a crash."""

import math

import pytest
from sqlalchemy import select

from pipelines.catalog.issues import SellerIssueStore
from pipelines.catalog.sync import LedgerStore, delta_sync, plan
from resources.db.catalog_tables import batch_handles, item_status_history
from tests.integration.catalog.conftest import NOW, sandbox_batches, sandbox_items


def test_first_run_creates_every_item_and_an_unchanged_catalog_sends_nothing(
    catalog_shop, sandbox, sandbox_admin
):
    """The first run creates what the store has; the second makes zero Graph calls."""
    shop = catalog_shop()

    first = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    second = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)

    assert first.created == first.items > 0
    assert first.accepted == first.items
    assert first.batches == math.ceil(first.items / shop.settings.max_batch_requests)
    assert set(sandbox_items(sandbox_admin, "acme")) == set(
        LedgerStore(shop.metasync.db()).load("acme")["retailer_id"]
    )
    assert second.calls == 0
    assert second.sent == 0
    assert second.unchanged == first.items


@pytest.mark.parametrize("changed", [1, 3, 5])
def test_k_changes_take_ceil_k_over_chunk_batch_calls(catalog_shop, sandbox, changed):
    """k changed items go out in ceil(k / chunk size) items_batch calls, nothing more."""
    shop = catalog_shop()
    shop.settings = shop.settings.model_copy(update={"max_batch_requests": 2})
    delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    before = sandbox_batches(sandbox, "acme")
    for sku in shop.item_skus()[:changed]:
        shop.edit(sku, "Variant Barcode", f"400000000{changed}{len(sku)}")

    summary = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)

    assert summary.updated + summary.volatile_updated == changed
    assert summary.batches == math.ceil(changed / 2)
    assert sandbox_batches(sandbox, "acme") - before == math.ceil(changed / 2)
    assert summary.accepted == changed


def test_price_change_is_a_partial_update_and_deleted_product_is_deleted(
    catalog_shop, sandbox_admin
):
    shop = catalog_shop()
    shop.settings = shop.settings.model_copy(update={"max_delete_share": 0.5})
    delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    sku = shop.item_skus()[0]
    retailer_id = shop.retailer_id(sku)
    shop.edit(sku, "Variant Price", "99.95")
    rows = shop.rows()
    gone_handle = rows["Handle"].iloc[-1]
    gone = set(LedgerStore(shop.metasync.db()).load("acme")["retailer_id"])
    shop.write(rows[rows["Handle"] != gone_handle])
    gone -= set(
        plan(shop.metasync, "acme", now=NOW, settings=shop.settings).changes.unchanged[
            "retailer_id"
        ]
    ) | {retailer_id}

    summary = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)

    assert summary.volatile_updated == 1
    assert summary.deleted == len(gone) > 0
    items = sandbox_items(sandbox_admin, "acme")
    assert items[retailer_id]["data"]["price"] == "99.95 EUR"
    assert not gone & set(items)


def test_mass_deletion_is_held_without_an_override(catalog_shop, sandbox_admin):
    """Deleting more than the cap needs allow_mass_deletion; other changes still go out."""
    shop = catalog_shop()
    delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    rows = shop.rows()
    shop.write(rows[rows["Handle"].isin(rows["Handle"].unique()[:2])])
    before = len(sandbox_items(sandbox_admin, "acme"))

    held = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    allowed = delta_sync(
        shop.metasync,
        "acme",
        now=NOW,
        settings=shop.settings.model_copy(update={"allow_mass_deletion": True}),
    )

    assert held.held_deletions > 0 and held.deleted == 0
    assert "override" in held.held_reason
    assert len(sandbox_items(sandbox_admin, "acme")) - 0 <= before
    assert allowed.deleted == held.held_deletions
    assert len(sandbox_items(sandbox_admin, "acme")) == before - held.held_deletions


def test_rejected_item_becomes_a_seller_issue_with_call_to_action_and_admin_link(
    catalog_shop, sandbox_admin
):
    shop = catalog_shop()
    delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    sku = shop.item_skus()[1]
    retailer_id = shop.retailer_id(sku)
    sandbox_admin.set_catalog_faults(
        "acme", partial_failure_share=1.0, partial_failure_reason="Image too small (min 500px)"
    )
    shop.edit(sku, "Variant Price", "12.34")

    rejected = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    unchanged = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)

    assert rejected.rejected == 1
    assert "Image too small" in rejected.reject_reasons[retailer_id]
    issue = next(
        i
        for i in SellerIssueStore(shop.metasync.db()).open_issues("acme")
        if i["retailer_id"] == retailer_id
    )
    assert "Image too small" in issue["call_to_action"]
    assert issue["admin_url"].startswith("https://admin.shop.example/products/")
    assert issue["admin_url"] != "https://admin.shop.example/products/"
    # The rejected content is not resent until the store changes it.
    assert unchanged.calls == 0
    with shop.metasync.db().begin() as conn:
        history = (
            conn.execute(
                select(item_status_history.c.status)
                .where(item_status_history.c.retailer_id == retailer_id)
                .order_by(item_status_history.c.id)
            )
            .scalars()
            .all()
        )
    assert history[-2:] == ["PENDING", "REJECTED"]

    sandbox_admin.clear_catalog_faults("acme")
    shop.edit(sku, "Variant Price", "12.35")
    fixed = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)

    assert fixed.accepted == 1
    still_open = SellerIssueStore(shop.metasync.db()).open_issues("acme")
    assert retailer_id not in {i["retailer_id"] for i in still_open}


def test_crash_after_handle_before_ledger_update_is_followed_not_resent(
    catalog_shop, sandbox, monkeypatch
):
    """A run that dies after Meta returned the handle: the rerun follows that handle and
    sends no second batch; the ledger ends up updated once."""
    shop = catalog_shop()
    delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    sku = shop.item_skus()[0]
    shop.edit(sku, "Variant Price", "77.70")
    before = sandbox_batches(sandbox, "acme")

    def crash(*args, **kwargs):
        raise RuntimeError("worker killed")

    with monkeypatch.context() as patch:
        patch.setattr(LedgerStore, "apply", crash)
        with pytest.raises(RuntimeError, match="worker killed"):
            delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    with shop.metasync.db().begin() as conn:
        recorded = conn.execute(select(batch_handles).where(batch_handles.c.status == "sent")).all()
    assert len(recorded) == 1 and recorded[0].handle

    rerun = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    after = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)

    assert sandbox_batches(sandbox, "acme") - before == 1
    assert rerun.batches == 0 and rerun.resumed_batches == 1
    assert rerun.accepted == 1
    assert after.calls == 0


def test_handle_ending_in_error_is_retried_on_the_next_run(catalog_shop, sandbox, sandbox_admin):
    """Meta's batch failed as a whole: nothing reaches the ledger, and the next run sends the
    same change again (a lost write is never taken for a done one)."""
    shop = catalog_shop()
    delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    sku = shop.item_skus()[0]
    retailer_id = shop.retailer_id(sku)
    shop.edit(sku, "Variant Price", "55.50")
    sandbox_admin.set_catalog_faults("acme", handle_error=True)

    failed = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    sandbox_admin.clear_catalog_faults("acme")
    retried = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)

    assert failed.accepted == 0 and failed.batches == 1
    assert retried.batches == 1 and retried.accepted == 1
    assert sandbox_items(sandbox_admin, "acme")[retailer_id]["data"]["price"] == "55.50 EUR"

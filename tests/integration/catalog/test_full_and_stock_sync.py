"""The daily full sync (replace feed, read-back) and the 15-minute stock and price sync,
against the live sandbox."""

from datetime import timedelta

import pytest
from sqlalchemy import select

from pipelines.catalog.sync import (
    CatalogRefused,
    LedgerStore,
    delta_sync,
    full_sync,
    stock_and_price_sync,
    sync_context,
)
from resources.db.catalog_tables import catalog_snapshots, upload_sessions
from tests.integration.catalog.conftest import NOW, sandbox_items


def test_full_sync_uploads_a_replace_feed_and_follows_its_session(catalog_shop, sandbox_admin):
    shop = catalog_shop()

    summary = full_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)

    assert summary.upload_session_id
    on_meta = sandbox_items(sandbox_admin, "acme")
    assert len(on_meta) == summary.items > 0
    ledger = LedgerStore(shop.metasync.db()).load("acme")
    assert set(ledger.loc[ledger["meta_status"] == "ACCEPTED", "retailer_id"]) == set(on_meta)
    with shop.metasync.db().begin() as conn:
        session = conn.execute(select(upload_sessions)).one()
    assert session.status == "finished"
    assert session.num_persisted_items == summary.items
    assert summary.drift_resent == 0 and summary.orphans_deleted == 0
    # After a full sync the hourly delta has nothing to send.
    assert delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings).calls == 0


def test_shrunken_snapshot_is_refused_with_the_numbers(catalog_shop, sandbox_admin):
    shop = catalog_shop()
    full_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    before = len(sandbox_items(sandbox_admin, "acme"))
    rows = shop.rows()
    shop.write(rows[rows["Handle"].isin(rows["Handle"].unique()[:2])])

    with pytest.raises(CatalogRefused) as refused:
        full_sync(shop.metasync, "acme", now=NOW + timedelta(days=1), settings=shop.settings)

    assert refused.value.numbers["last_good_items"] == before
    assert refused.value.numbers["snapshot_items"] < before * 0.8
    assert len(sandbox_items(sandbox_admin, "acme")) == before
    with shop.metasync.db().begin() as conn:
        statuses = (
            conn.execute(
                select(catalog_snapshots.c.status).order_by(catalog_snapshots.c.snapshot_id)
            )
            .scalars()
            .all()
        )
    assert statuses == ["synced", "refused"]


def test_read_back_deletes_orphans_and_resends_missing_items(catalog_shop, sandbox_admin):
    """An item on Meta that the store lacks is deleted; one the store has but Meta lost is
    sent again."""
    shop = catalog_shop()
    full_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    items = sandbox_items(sandbox_admin, "acme")
    lost_id, lost = next(iter(items.items()))
    orphan = dict(lost["data"]) | {"id": "orphan-1"}
    with sync_context(shop.metasync, "acme", NOW, shop.settings) as ctx:
        handles = ctx.api.items_batch([{"method": "CREATE", "data": orphan}])
        ctx.api.wait_for_handles(handles, poll_interval=0)
        ctx.api.delete_product(lost["id"])
    assert "orphan-1" in sandbox_items(sandbox_admin, "acme")

    summary = full_sync(
        shop.metasync,
        "acme",
        now=NOW + timedelta(days=1),
        settings=shop.settings.model_copy(update={"feed_name": "a second feed"}),
    )

    after = sandbox_items(sandbox_admin, "acme")
    assert summary.orphans_deleted == 1
    assert "orphan-1" not in after
    assert lost_id in after


def test_stock_run_sends_only_volatile_fields_and_nothing_when_unchanged(
    catalog_shop, sandbox_admin
):
    shop = catalog_shop()
    delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    sku = shop.item_skus()[0]
    retailer_id = shop.retailer_id(sku)
    title_before = sandbox_items(sandbox_admin, "acme")[retailer_id]["data"]["title"]
    shop.edit(sku, "Variant Inventory Qty", "42")
    shop.edit(sku, "Variant Barcode", "4006381333931")  # static: waits for the hourly delta

    moved = stock_and_price_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    quiet = stock_and_price_sync(
        shop.metasync, "acme", now=NOW + timedelta(minutes=15), settings=shop.settings
    )
    delta = delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)

    data = sandbox_items(sandbox_admin, "acme")[retailer_id]["data"]
    assert moved.volatile_updated == 1 and moved.accepted == 1
    assert data["quantity_to_sell_on_facebook"] == 42
    assert data["title"] == title_before
    assert quiet.calls == 0
    assert delta.updated == 1  # the barcode still reaches Meta, hourly


def test_sale_window_flips_between_two_stock_runs(catalog_shop, sandbox_admin):
    """A sale that ends between two stock runs is cleared; one that starts is switched on."""
    shop = catalog_shop(kind="woocommerce_csv", products=10)
    ending, starting = "woo-4", "woo-6"
    for sku, start, end in ((ending, "2026-02-20", "2026-03-03"),
                            (starting, "2026-03-03", "2026-03-20")):  # fmt: skip
        shop.edit(sku, "Sale price", "9.00")
        shop.edit(sku, "Date sale price starts", start)
        shop.edit(sku, "Date sale price ends", end)
    delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    stock_and_price_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    ending_id, starting_id = shop.retailer_id(ending), shop.retailer_id(starting)
    assert sandbox_items(sandbox_admin, "acme")[ending_id]["data"]["sale_price"] == "9.00 EUR"

    later = NOW + timedelta(days=3)
    flipped = stock_and_price_sync(shop.metasync, "acme", now=later, settings=shop.settings)

    items = sandbox_items(sandbox_admin, "acme")
    assert flipped.volatile_updated == 2
    assert not items[ending_id]["data"].get("sale_price")
    assert items[starting_id]["data"]["sale_price"] == "9.00 EUR"

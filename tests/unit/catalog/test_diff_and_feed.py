"""Diff against the ledger, items_batch chunking, guards, and the feed file."""

import csv
import hashlib
import io
import json
from datetime import timedelta

import pandas as pd
import pytest

from pipelines.catalog.diff import (
    chunk_entries,
    chunk_requests,
    deletion_cap,
    diff_catalog,
    shrink_guard,
    volatile_updates,
)
from pipelines.catalog.feed import render_feed
from pipelines.catalog.generator import generate_items_frame, mutate_catalog, write_shopify_csv
from pipelines.catalog.normalise import META_FIELDS, content_hashes, normalise_catalog
from resources.store import source_for
from tests.unit.catalog.conftest import NOW


def ledger_of(items: pd.DataFrame) -> pd.DataFrame:
    return items[["retailer_id", "content_hash", "volatile_hash"]].copy()


def rehash(items: pd.DataFrame) -> pd.DataFrame:
    items = items.copy()
    items["content_hash"], items["volatile_hash"] = content_hashes(items)
    return items


def test_diff_sorts_items_into_create_update_delete_volatile_unchanged() -> None:
    before = generate_items_frame(10, seed=1)
    ledger = ledger_of(before)
    after = before.copy()
    after.loc[after["id"] == "sku-1", "title"] = "Renamed"
    after.loc[after["id"] == "sku-2", "quantity_to_sell_on_facebook"] = 99
    after.loc[after["id"] == "sku-3", ["price", "title"]] = ["1.00 EUR", "Both"]
    after = rehash(after.loc[after["id"] != "sku-4"])
    new = generate_items_frame(11, seed=1).iloc[[10]]
    after = pd.concat([after, new], ignore_index=True)

    changes = diff_catalog(after, ledger)
    assert changes.create["retailer_id"].tolist() == ["sku-10"]
    assert changes.update["retailer_id"].tolist() == ["sku-1", "sku-3"]
    assert changes.volatile_only_update["retailer_id"].tolist() == ["sku-2"]
    assert changes.delete["retailer_id"].tolist() == ["sku-4"]
    assert len(changes.unchanged) == 6
    assert sum(changes.counts().values()) == len(after) + 1


def test_unchanged_catalog_sends_nothing() -> None:
    items = generate_items_frame(50, seed=2)
    changes = diff_catalog(items, ledger_of(items))
    assert changes.counts()["unchanged"] == 50
    assert chunk_requests(changes, NOW) == []


def test_request_entries_follow_items_batch_shape() -> None:
    items = generate_items_frame(3, seed=3)
    changes = diff_catalog(items.iloc[:2], ledger_of(items.iloc[1:]))
    (requests,) = chunk_requests(changes, NOW)
    create, delete = requests
    assert create["method"] == "CREATE" and create["data"]["id"] == "sku-0"
    assert set(create["data"]) <= set(META_FIELDS)
    assert isinstance(create["data"]["quantity_to_sell_on_facebook"], int)
    assert delete == {"method": "DELETE", "data": {"id": "sku-2"}}
    json.dumps(requests)  # serialisable as is


def test_chunking_respects_count_and_bytes() -> None:
    entries = [{"method": "DELETE", "data": {"id": f"id-{n:04d}"}} for n in range(12)]
    assert [len(c) for c in chunk_entries(entries, max_items=5)] == [5, 5, 2]
    one = len(json.dumps(entries[0], separators=(",", ":")))
    chunks = chunk_entries(entries, max_items=5000, max_bytes=2 + 3 * one + 2)
    assert [len(c) for c in chunks] == [3, 3, 3, 3]
    for chunk in chunks:
        assert len(json.dumps(chunk, separators=(",", ":")).encode()) <= 2 + 3 * one + 2
    with pytest.raises(ValueError, match="alone is"):
        chunk_entries(entries, max_bytes=10)
    with pytest.raises(ValueError, match="max_items"):
        chunk_entries(entries, max_items=5001)


def test_volatile_updates_reflect_sales_that_started_or_ended_between_runs() -> None:
    items = generate_items_frame(3, seed=4)
    items["sale_price"] = "5.00 EUR"
    items["sale_price_effective_date"] = "window"
    items["sale_start"] = [NOW - timedelta(minutes=5), NOW - timedelta(days=9), pd.NaT]
    items["sale_end"] = [NOW + timedelta(days=1), NOW - timedelta(minutes=3), pd.NaT]
    since = NOW - timedelta(minutes=15)

    entries = volatile_updates(items, NOW, since=since, retailer_ids=[])
    by_id = {entry["data"]["id"]: entry["data"] for entry in entries}
    assert set(by_id) == {"sku-0", "sku-1"}  # sku-2's sale did not move
    assert by_id["sku-0"]["sale_price"] == "5.00 EUR"  # started 5 minutes ago
    assert by_id["sku-1"]["sale_price"] == ""  # ended 3 minutes ago: cleared
    assert set(by_id["sku-0"]) == {
        "id", "price", "availability", "sale_price", "sale_price_effective_date",
        "quantity_to_sell_on_facebook",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("previous", "new", "share", "refused"),
    [(1000, 990, 0.1, False), (1000, 850, 0.1, True), (0, 10, 0.1, False), (10, 20, 0.0, False)],
)
def test_shrink_guard(previous, new, share, refused) -> None:
    reason = shrink_guard(previous, new, share)
    assert (reason is not None) == refused
    if refused:
        assert "shrank from 1000 to 850" in reason


def test_deletion_cap() -> None:
    assert deletion_cap(5, 100, 0.1) is None
    assert "20 of 100" in deletion_cap(20, 100, 0.1)
    assert "cap of 10" in deletion_cap(11, 10_000, 0.5, max_delete_count=10)
    assert deletion_cap(90, 100, 0.1, override=True) is None


def test_feed_neutralises_formulas_and_reports_digest() -> None:
    items = generate_items_frame(3, seed=5)
    items.loc[0, "title"] = '=HYPERLINK("http://evil")'
    items.loc[1, "description"] = '@SUM(A1), with "quotes"\nand a newline'
    items.loc[2, "brand"] = "-10% brand"
    feed = render_feed(items)
    assert feed.row_count == 3
    assert feed.sha256 == hashlib.sha256(feed.content).hexdigest()
    rows = list(csv.DictReader(io.StringIO(feed.content.decode("utf-8"))))
    assert list(rows[0]) == list(META_FIELDS)
    assert rows[0]["title"].startswith("'=")
    assert rows[1]["description"] == '\'@SUM(A1), with "quotes"\nand a newline'
    assert rows[2]["brand"] == "'-10% brand"
    assert rows[0]["price"].endswith(" EUR") and rows[0]["id"] == "sku-0"


def test_demo_delta_run_after_mutation(tmp_path, shop) -> None:
    """A generated store mutated once yields exactly the expected creates, updates, deletes."""
    path = write_shopify_csv(tmp_path / "shop.csv", seed=11, products=15)
    first = normalise_catalog(source_for("shopify_csv", str(path)).read(), "shopify_csv", shop,
                              now=NOW).items  # fmt: skip
    summary = mutate_catalog(path, seed=5)
    second = normalise_catalog(source_for("shopify_csv", str(path)).read(), "shopify_csv", shop,
                               now=NOW).items  # fmt: skip
    changes = diff_catalog(second, ledger_of(first))

    assert set(changes.create["item_group_id"]) == set(summary.added)
    assert set(first.loc[first["retailer_id"].isin(changes.delete["retailer_id"]),
                         "item_group_id"]) == set(summary.deleted)  # fmt: skip
    assert set(changes.update["item_group_id"]) == set(summary.title_changed)
    volatile_groups = set(changes.volatile_only_update["item_group_id"])
    assert len(changes.volatile_only_update) == 2
    assert volatile_groups <= {*first["item_group_id"]}


def test_generator_is_deterministic(tmp_path) -> None:
    one = write_shopify_csv(tmp_path / "a.csv", seed=9, products=8).read_bytes()
    two = write_shopify_csv(tmp_path / "b.csv", seed=9, products=8).read_bytes()
    assert one == two
    assert generate_items_frame(100, seed=1).equals(generate_items_frame(100, seed=1))

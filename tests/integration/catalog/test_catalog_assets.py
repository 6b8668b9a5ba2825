"""The catalog assets materialised per shop partition against the live sandbox, plus product sets
and diagnostics."""

from datetime import timedelta

import dagster as dg
import pytest

from pipelines.catalog.assets import (
    MASS_DELETION_CHECK,
    REJECT_RATE_CHECK,
    catalog_delta_sync,
    catalog_full_sync,
)
from pipelines.catalog.issues import SellerIssueStore
from pipelines.catalog.sync import (
    delta_sync,
    product_sets_sync,
    pull_diagnostics,
    sync_context,
)
from pipelines.shops import shop_partitions
from tests.integration.catalog.conftest import NOW, sandbox_items

RUN_CONFIG = {
    "poll_interval_seconds": 0.0,
    "product_url_template": "https://shop.example/products/{handle}?p={product_id}",
    "default_brand": "Acme Outdoor",
}


@pytest.fixture(scope="module")
def instance():
    with dg.instance_for_test() as instance:
        instance.add_dynamic_partitions(shop_partitions.name, ["acme"])
        yield instance


def _materialize(asset, shop, instance, **config):
    return dg.materialize(
        [asset],
        partition_key="acme",
        instance=instance,
        resources={"metasync": shop.metasync},
        run_config={"ops": {asset.key.path[-1]: {"config": RUN_CONFIG | config}}},
        raise_on_error=False,
    )


def _metadata(result, asset) -> dict:
    event = result.asset_materializations_for_node(asset.key.path[-1])[0]
    return {k: v.value for k, v in event.metadata.items()}


def _checks(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


def test_delta_asset_reports_counts_calls_and_checks(catalog_shop, instance):
    shop = catalog_shop()

    first = _materialize(catalog_delta_sync, shop, instance)
    second = _materialize(catalog_delta_sync, shop, instance)

    assert first.success and second.success
    created = _metadata(first, catalog_delta_sync)
    assert created["created"] == created["dagster/row_count"] > 0
    assert created["api_calls"] > 0
    assert len(created["preview"].records) > 0
    assert _metadata(second, catalog_delta_sync)["api_calls"] == 0
    assert _checks(first) == {REJECT_RATE_CHECK: True, MASS_DELETION_CHECK: True}


def test_held_deletions_fail_the_mass_deletion_check(catalog_shop, instance):
    shop = catalog_shop()
    assert _materialize(catalog_delta_sync, shop, instance).success
    rows = shop.rows()
    shop.write(rows[rows["Handle"].isin(rows["Handle"].unique()[:2])])

    held = _materialize(catalog_delta_sync, shop, instance)

    assert _checks(held)[MASS_DELETION_CHECK] is False
    assert _metadata(held, catalog_delta_sync)["held_deletions"] > 0


def test_full_asset_fails_loudly_when_the_snapshot_shrank(catalog_shop, instance):
    shop = catalog_shop()
    assert _materialize(catalog_full_sync, shop, instance).success
    rows = shop.rows()
    shop.write(rows[rows["Handle"].isin(rows["Handle"].unique()[:2])])

    refused = _materialize(catalog_full_sync, shop, instance)

    assert not refused.success
    failure = next(e for e in refused.all_events if e.event_type_value == "STEP_FAILURE")
    message = failure.event_specific_data.error.message
    assert "shrank" in message
    assert failure.event_specific_data.user_failure_data.metadata["last_good_items"].value > 0


def test_paused_shop_run_fails_with_the_reason(catalog_shop, instance):
    shop = catalog_shop()
    from resources.shops import ShopStatus

    shop.metasync.registry().set_status("acme", ShopStatus.PAUSED, "holiday closure")

    result = _materialize(catalog_delta_sync, shop, instance)

    assert not result.success
    failure = next(e for e in result.all_events if e.event_type_value == "STEP_FAILURE")
    assert "holiday closure" in failure.event_specific_data.error.message


def test_product_sets_follow_store_collections(catalog_shop, sandbox_admin):
    """One set per product_type: created once, left alone when unchanged, deleted when the
    store stops using the collection."""
    shop = catalog_shop()
    rows = shop.rows()
    typed = rows["Type"] != ""
    kinds = ["Mugs", "Jumpers", "Totes"]
    rows.loc[typed, "Type"] = [kinds[i % 3] for i in range(int(typed.sum()))]
    shop.write(rows)
    delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)

    first = product_sets_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    again = product_sets_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    shop.write(rows.assign(Type=rows["Type"].where(rows["Type"] == "Mugs", "")))
    shrunk = product_sets_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)

    assert first.created == 3
    assert again.created == again.deleted == 0 and again.unchanged == 3
    assert shrunk.deleted == 2 and shrunk.unchanged == 1
    with sync_context(shop.metasync, "acme", NOW, shop.settings) as ctx:
        names = sorted(s.name for s in ctx.api.list_product_sets())
    assert "Mugs" in names and "Jumpers" not in names


def test_diagnostics_raise_seller_issues_and_resolve_when_gone(catalog_shop, sandbox_admin):
    """A Meta-side finding becomes a seller issue; once the seller fixes the image and the fix
    syncs, the next pull resolves it."""
    shop = catalog_shop()
    delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    retailer_id = next(r for r in sandbox_items(sandbox_admin, "acme") if "/" not in r)
    sandbox_admin.add_item_issue("acme", retailer_id)

    raised = pull_diagnostics(shop.metasync, "acme", now=NOW)
    issues = SellerIssueStore(shop.metasync.db()).open_issues("acme")
    rows = shop.rows()
    for column in ("Image Src", "Variant Image"):
        rows[column] = rows[column].where(rows[column] == "", rows[column] + "?v=2")
    shop.write(rows)
    delta_sync(shop.metasync, "acme", now=NOW, settings=shop.settings)
    resolved = pull_diagnostics(shop.metasync, "acme", now=NOW + timedelta(hours=1))

    assert raised.opened >= 1
    diagnostics = [i for i in issues if i["source"] == "diagnostics"]
    assert diagnostics and all(i["call_to_action"] for i in diagnostics)
    assert resolved.resolved == len(diagnostics)
    still_open = SellerIssueStore(shop.metasync.db()).open_issues("acme")
    assert not [i for i in still_open if i["source"] == "diagnostics"]


def test_rejected_token_pauses_the_shop_for_reauthentication(catalog_shop, sandbox_admin, instance):
    from resources.shops import ShopStatus

    shop = catalog_shop()
    sandbox_admin.expire_token("acme")

    result = _materialize(catalog_delta_sync, shop, instance)

    assert not result.success
    profile = shop.metasync.registry().get("acme")
    assert profile.status == ShopStatus.NEEDS_REAUTH
    assert "re-authenticate" in profile.status_reason

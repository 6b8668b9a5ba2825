"""Store discounts -> Meta offers against the live sandbox: create, update, deactivate, nothing
sent when nothing changed, a crash resumed under the same key, and the seller issue for shops
without the capability."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from pipelines.catalog.issues import SellerIssueStore
from pipelines.offers.sync import sync_shop_offers
from pipelines.resources import MetasyncResource
from resources.db.orders_tables import offer_uploads
from resources.db.outbox import GraphWriteOutbox
from resources.meta.offers import OffersApi

HEADER = (
    "code,type,value,currency,min_subtotal,starts_at,ends_at,retailer_ids,coupon,"
    "buy_quantity,get_quantity,title,enabled\n"
)
START = "2026-01-01T00:00:00+00:00"
ROWS = {
    "SPRING10": f"SPRING10,percent,10,,,{START},,SKU-1|SKU-2,no,,,Spring,yes\n",
    "FIVEOFF": f"FIVEOFF,fixed,5.00,EUR,30.00,{START},,,yes,,,Five off,yes\n",
    "SHIPFREE": f"SHIPFREE,free_shipping,,EUR,50.00,{START},,,no,,,,yes\n",
    "B2G1": f"B2G1,bxgy,50,,,{START},,SKU-3,no,2,1,,yes\n",
}


@pytest.fixture
def metasync(metasync_db) -> MetasyncResource:
    return MetasyncResource(database_url=metasync_db.url)


def write(path: Path, *rows: str) -> Path:
    path.write_text(HEADER + "".join(rows))
    return path


def by_id(sandbox_admin, shop_id="acme") -> dict[str, dict]:
    return {o["offer_id"]: o for o in sandbox_admin.offers(shop_id)}


def graph_calls(sandbox, shop_id="acme") -> int:
    return sum(1 for entry in sandbox.state.call_log if entry[1] == shop_id)


def test_discounts_become_offers_and_an_unchanged_run_sends_nothing(
    onboard, metasync, sandbox, sandbox_admin, tmp_path
):
    onboard("acme", offers=True)
    path = write(tmp_path / "discounts.csv", *ROWS.values())

    first = sync_shop_offers(metasync, "acme", path)

    assert (first.created, first.uploads, first.rejected_by_meta) == (4, 1, 0)
    offers = by_id(sandbox_admin)
    assert set(offers) == set(ROWS) and all(o["active"] for o in offers.values())
    five = offers["FIVEOFF"]["data"]
    assert (five["fixed_amount_off"], five["min_subtotal"]) == ("5.00 EUR", "30.00 EUR")
    assert (five["application_type"], five["coupon_codes"]) == ("BUYER_APPLIED", ["FIVEOFF"])
    assert five["target_granularity"] == "ORDER_LEVEL"
    assert offers["SHIPFREE"]["data"]["target_type"] == "SHIPPING"
    assert offers["SHIPFREE"]["data"]["target_granularity"] == "ITEM_LEVEL"
    assert (offers["B2G1"]["data"]["min_quantity"], offers["B2G1"]["data"]["target_quantity"]) == (
        2, 1,
    )  # fmt: skip
    assert offers["SPRING10"]["data"]["target_product_retailer_ids"] == ["SKU-1", "SKU-2"]

    calls = graph_calls(sandbox)
    again = sync_shop_offers(metasync, "acme", path)
    assert (again.uploads, again.created, again.updated, again.unchanged) == (0, 0, 0, 4)
    assert graph_calls(sandbox) == calls  # not even a read
    assert {o["offer_id"]: o["version"] for o in sandbox_admin.offers("acme")} == dict.fromkeys(
        ROWS, 1
    )


def test_changed_removed_and_disabled_discounts_update_and_end_their_offers(
    onboard, metasync, sandbox_admin, tmp_path
):
    onboard("acme", offers=True)
    path = write(tmp_path / "discounts.csv", *ROWS.values())
    sync_shop_offers(metasync, "acme", path)

    changed = ROWS["SPRING10"].replace("percent,10,", "percent,15,")
    disabled = ROWS["FIVEOFF"].replace(",yes\n", ",no\n")
    write(path, changed, disabled, ROWS["B2G1"])  # SHIPFREE removed from the store
    now = datetime.now(UTC)
    summary = sync_shop_offers(metasync, "acme", path, now=now)

    assert (summary.updated, summary.deactivated, summary.created) == (1, 2, 0), summary.details
    offers = by_id(sandbox_admin)
    assert offers["SPRING10"]["data"]["percent_off"] == 15 and offers["SPRING10"]["active"]
    for gone in ("FIVEOFF", "SHIPFREE"):  # ended, not deleted: past orders still name them
        assert not offers[gone]["active"]
        assert offers[gone]["data"]["end_date_time"] == int(now.timestamp())
    assert offers["B2G1"]["active"] and offers["B2G1"]["version"] == 1

    later = sync_shop_offers(metasync, "acme", path, now=now + timedelta(hours=1))
    assert later.uploads == 0  # ended offers are not ended again

    write(path, changed, ROWS["FIVEOFF"], ROWS["B2G1"])  # re-enabled
    back = sync_shop_offers(metasync, "acme", path)
    assert back.updated == 1 and by_id(sandbox_admin)["FIVEOFF"]["active"]


def test_a_crash_after_the_upload_resends_the_recorded_file_under_the_same_key(
    onboard, metasync, sandbox_admin, tmp_path, monkeypatch
):
    onboard("acme", offers=True)
    path = write(tmp_path / "discounts.csv", ROWS["SPRING10"])

    def crash(self, session_id):
        raise RuntimeError("process killed after Meta took the file")

    monkeypatch.setattr(OffersApi, "upload_session", crash)
    with pytest.raises(RuntimeError):
        sync_shop_offers(metasync, "acme", path)
    monkeypatch.undo()
    with metasync.db().begin() as conn:
        [recorded] = conn.execute(select(offer_uploads)).all()
    assert recorded.status == "recorded"
    assert GraphWriteOutbox(metasync.db()).get(recorded.idempotency_key).status == "pending"

    # Meanwhile the store changed the discount; the recorded file goes first, then the change.
    write(path, ROWS["SPRING10"].replace("percent,10,", "percent,20,"))
    summary = sync_shop_offers(metasync, "acme", path)

    assert (summary.resumed, summary.updated, summary.uploads) == (1, 1, 1)
    outbox = GraphWriteOutbox(metasync.db())
    assert outbox.get(recorded.idempotency_key).status == "succeeded"
    [offer] = sandbox_admin.offers("acme")
    assert offer["data"]["percent_off"] == 20
    assert offer["version"] == 2  # the replay set the same values: no extra version
    assert sync_shop_offers(metasync, "acme", path).uploads == 0


def test_offers_meta_refuses_become_seller_issues_and_are_not_resent(
    onboard, metasync, sandbox_admin, tmp_path
):
    onboard("acme", offers=True)
    sandbox_admin.offers_settings(max_active_automatic=1)
    bad_row = "BAD,percent,500,,,2026-01-01T00:00:00+00:00,,,no,,,,yes\n"
    path = write(tmp_path / "discounts.csv", ROWS["SPRING10"], ROWS["B2G1"], bad_row)

    summary = sync_shop_offers(metasync, "acme", path)

    assert (summary.created, summary.store_rejects, summary.rejected_by_meta) == (2, 1, 1)
    assert set(by_id(sandbox_admin)) == {"B2G1"}  # SPRING10 is the second automatic offer
    issues = {(i["issue_type"], i["retailer_id"]): i
              for i in SellerIssueStore(metasync.db()).open_issues("acme")}  # fmt: skip
    assert set(issues) == {("offer_rejected", "SPRING10"), ("discount_invalid", "BAD")}
    assert "AUTOMATIC_AT_CHECKOUT" in issues[("offer_rejected", "SPRING10")]["detail"]
    assert "1 to 100" in issues[("discount_invalid", "BAD")]["call_to_action"]

    assert sync_shop_offers(metasync, "acme", path).uploads == 0  # unchanged: not resent
    # The seller fixes the discount (a coupon offer is not automatic): sent, issue resolved.
    write(path, ROWS["SPRING10"].replace(",no,,,Spring", ",yes,,,Spring"), ROWS["B2G1"])
    fixed = sync_shop_offers(metasync, "acme", path)
    assert fixed.created == 1 and "SPRING10" in by_id(sandbox_admin)  # never accepted before
    assert SellerIssueStore(metasync.db()).open_issues("acme") == []


def test_a_shop_without_the_offers_capability_gets_a_seller_issue_with_the_link(
    onboard, metasync, sandbox, sandbox_admin, tmp_path, registry
):
    shop = onboard("acme", offers=False)
    path = write(tmp_path / "discounts.csv", ROWS["SPRING10"], ROWS["FIVEOFF"])

    summary = sync_shop_offers(metasync, "acme", path)

    assert summary.mode == "seller_issue"
    assert graph_calls(sandbox) == 0 and sandbox_admin.offers("acme") == []
    [issue] = SellerIssueStore(metasync.db()).open_issues("acme")
    link = f"https://www.facebook.com/commerce_manager/{shop.cms_id}/promotions"
    assert issue["issue_type"] == "offers_not_enabled" and issue["admin_url"] == link
    assert link in issue["call_to_action"]
    assert "FIVEOFF, SPRING10" in issue["detail"]

    write(path)  # the store's discounts are gone: the issue resolves
    sync_shop_offers(metasync, "acme", path)
    assert SellerIssueStore(metasync.db()).open_issues("acme") == []

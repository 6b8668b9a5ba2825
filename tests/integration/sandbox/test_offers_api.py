"""The sandbox's Offers API (orders.md §12) through the OffersApi client: OFFER feeds, the §12.1
row rules, "30.99 USD" money strings, upserts by offer_id, replace uploads."""

import pytest

from resources.meta.offers import OffersApi
from resources.meta.transport import GraphClient

HEADER = (
    "offer_id,application_type,value_type,percent_off,fixed_amount_off,target_type,"
    "target_shipping_option_types,target_granularity,target_selection,"
    "target_product_retailer_ids,start_date_time,end_date_time,coupon_codes,public_coupon_code,"
    "min_subtotal,min_quantity\n"
)
GOOD = (
    "OK1,AUTOMATIC_AT_CHECKOUT,PERCENTAGE,10,,LINE_ITEM,,ITEM_LEVEL,ALL_CATALOG_PRODUCTS,,"
    "1767225600,,,,,\n"
)


@pytest.fixture
def api(sandbox, sandbox_admin):
    shop = sandbox_admin.create_shop("acme", "Acme", currency="USD")
    graph = GraphClient("acme", shop["access_token"], base_url=sandbox.url, version="v25.0")
    yield OffersApi(graph, shop["catalog_id"])
    graph.close()


def upload(api: OffersApi, feed_id: str, *rows: str, update_only: bool = True):
    session_id = api.upload_offers(feed_id, (HEADER + "".join(rows)).encode(),
                                   update_only=update_only)  # fmt: skip
    errors = {s.retailer_id: e.summary for e in api.upload_errors(session_id) for s in e.samples}
    return api.upload_session(session_id), errors


def test_offer_feed_is_listed_as_offer_items_next_to_product_feeds(api):
    product_feed = api.graph.post(f"{api.catalog_id}/product_feeds", {"name": "products"})["id"]
    offer_feed = api.create_offer_feed("offers")
    feeds = {f.id: f for f in api.list_feeds()}
    assert feeds[offer_feed].catalog_item_type == "OFFER_ITEM"
    assert feeds[product_feed].catalog_item_type is None  # still the catalog's own feed
    assert api.find_offer_feed("offers") == offer_feed
    assert api.find_offer_feed("products") is None


@pytest.mark.parametrize(
    ("row", "summary"),
    [
        (
            "X,AUTOMATIC_AT_CHECKOUT,FIXED_AMOUNT,,30.99,LINE_ITEM,,ORDER_LEVEL,ALL_CATALOG_PRODUCTS"
            ",,1767225600,,,,,\n",
            "Invalid fixed_amount_off",
        ),
        (
            "X,AUTOMATIC_AT_CHECKOUT,FIXED_AMOUNT,,30.99 EUR,LINE_ITEM,,ORDER_LEVEL,"
            "ALL_CATALOG_PRODUCTS,,1767225600,,,,,\n",
            "Invalid fixed_amount_off currency",
        ),
        (
            "X,AUTOMATIC_AT_CHECKOUT,PERCENTAGE,101,,LINE_ITEM,,ITEM_LEVEL,ALL_CATALOG_PRODUCTS,,"
            "1767225600,,,,,\n",
            "Invalid percent_off",
        ),
        (
            "X,BUYER_APPLIED,PERCENTAGE,10,,LINE_ITEM,,ITEM_LEVEL,ALL_CATALOG_PRODUCTS,,1767225600"
            ",,,,,\n",
            "Missing coupon code",
        ),
        (
            "X,AUTOMATIC_AT_CHECKOUT,PERCENTAGE,10,,LINE_ITEM,,ITEM_LEVEL,ALL_CATALOG_PRODUCTS,,"
            "1767225600,,A,,,\n",
            "Coupon on a non buyer-applied offer",
        ),
        (
            "X,BUYER_APPLIED,PERCENTAGE,10,,LINE_ITEM,,ITEM_LEVEL,ALL_CATALOG_PRODUCTS,,1767225600"
            ",,A,PUB,,\n",
            "Conflicting coupon codes",
        ),
        (
            "X,AUTOMATIC_AT_CHECKOUT,PERCENTAGE,50,,SHIPPING,STANDARD,ITEM_LEVEL,"
            "ALL_CATALOG_PRODUCTS,,1767225600,,,,,\n",
            "Unsupported shipping offer",
        ),
        (
            "X,AUTOMATIC_AT_CHECKOUT,PERCENTAGE,100,,SHIPPING,STANDARD,ORDER_LEVEL,"
            "ALL_CATALOG_PRODUCTS,,1767225600,,,,,\n",
            "Invalid target granularity",
        ),
        (
            "X,AUTOMATIC_AT_CHECKOUT,PERCENTAGE,10,,LINE_ITEM,,ITEM_LEVEL,SPECIFIC_PRODUCTS,,"
            "1767225600,,,,,\n",
            "Invalid target selection",
        ),
        (
            "X,AUTOMATIC_AT_CHECKOUT,PERCENTAGE,10,,LINE_ITEM,,ITEM_LEVEL,ALL_CATALOG_PRODUCTS,,"
            "1767225600,1767225600,,,,\n",
            "Invalid end_date_time",
        ),
        (
            "X,AUTOMATIC_AT_CHECKOUT,PERCENTAGE,10,,LINE_ITEM,,ITEM_LEVEL,ALL_CATALOG_PRODUCTS,,"
            ",,,,,\n",
            "Missing start_date_time",
        ),
        (
            "X,AUTOMATIC_AT_CHECKOUT,PERCENTAGE,10,,LINE_ITEM,,ITEM_LEVEL,ALL_CATALOG_PRODUCTS,,"
            "1767225600,,,,30.00 USD,2\n",
            "Conflicting prerequisites",
        ),
    ],
)
def test_rows_breaking_a_field_rule_are_refused_with_the_rule(api, row, summary):
    feed_id = api.create_offer_feed("offers")
    session, errors = upload(api, feed_id, GOOD, row)
    assert errors == {"X": summary}
    assert (session.num_detected_items, session.num_invalid_items) == (2, 1)
    assert session.num_persisted_items == 1  # the good row is kept


def test_order_level_free_shipping_is_a_setting(api, sandbox_admin):
    feed_id = api.create_offer_feed("offers")
    row = ("SHIP,AUTOMATIC_AT_CHECKOUT,PERCENTAGE,100,,SHIPPING,\"STANDARD,RUSH\",ORDER_LEVEL,"
           "ALL_CATALOG_PRODUCTS,,1767225600,,,,50.00 USD,\n")  # fmt: skip
    sandbox_admin.offers_settings(allow_order_level_free_shipping=True)
    _, errors = upload(api, feed_id, row)
    assert errors == {}
    [offer] = sandbox_admin.offers("acme")
    assert offer["data"]["target_shipping_option_types"] == ["STANDARD", "RUSH"]
    assert offer["data"]["min_subtotal"] == "50.00 USD"


def test_same_row_twice_changes_nothing_and_replace_removes_missing_offers(api, sandbox_admin):
    feed_id = api.create_offer_feed("offers")
    other = GOOD.replace("OK1", "OK2")
    upload(api, feed_id, GOOD, other)
    session, _ = upload(api, feed_id, GOOD)
    assert session.num_persisted_items == 0  # upsert by offer_id: nothing new
    assert {o["offer_id"]: o["version"] for o in sandbox_admin.offers("acme")} == {
        "OK1": 1, "OK2": 1,
    }  # fmt: skip
    session, _ = upload(api, feed_id, GOOD.replace(",10,", ",20,"), update_only=False)
    assert session.num_deleted_items == 1
    [offer] = sandbox_admin.offers("acme")
    assert (offer["offer_id"], offer["version"], offer["data"]["percent_off"]) == ("OK1", 2, 20)


def test_at_most_ten_active_public_coupon_codes(api):
    feed_id = api.create_offer_feed("offers")
    rows = [
        f"P{i},BUYER_APPLIED,PERCENTAGE,10,,LINE_ITEM,,ITEM_LEVEL,ALL_CATALOG_PRODUCTS,,"
        f"1767225600,,,CODE{i},,\n"
        for i in range(11)
    ]
    _, errors = upload(api, feed_id, *rows)
    assert errors == {"P10": "Too many public coupon codes"}

"""Reading a catalog back, item issues, diagnostics and product sets through the sandbox."""

import pytest

from resources.meta.catalog import CatalogApi
from resources.meta.errors import GraphNotFound, GraphValidationError
from resources.meta.transport import GraphClient


def item(retailer_id: str, **overrides) -> dict:
    data = {
        "id": retailer_id,
        "title": f"Jacket {retailer_id}",
        "description": "Waterproof shell jacket.",
        "availability": "in stock",
        "condition": "new",
        "price": "120.00 EUR",
        "link": f"https://shop.example/p/{retailer_id}",
        "image_link": f"https://shop.example/i/{retailer_id}.jpg",
        "brand": "Acme",
        "product_type": "Apparel > Jackets",
    }
    return data | overrides


@pytest.fixture
def catalog(onboard, sandbox):
    profile = onboard("acme")
    graph = GraphClient("acme", sandbox.state.shops["acme"].token, base_url=sandbox.url)
    api = CatalogApi(graph, profile.catalog_id)
    yield api
    graph.close()


def load(catalog: CatalogApi, *items: dict) -> None:
    handles = catalog.items_batch([{"method": "CREATE", "data": d} for d in items])
    statuses = catalog.wait_for_handles(handles, poll_interval=0)
    assert all(s.errors_total_count == 0 for s in statuses.values())


def test_list_products_pages_through_everything_in_read_vocabulary(catalog):
    load(catalog, *(item(f"J{n:02d}") for n in range(7)))
    calls_before = catalog.graph.calls

    products = list(catalog.list_products(page_size=3))

    assert [p.retailer_id for p in products] == [f"J{n:02d}" for n in range(7)]
    assert products[0].name == "Jacket J00" and products[0].price == "120.00 EUR"
    assert catalog.graph.calls - calls_before == 3  # pages of 3, 3 and 1; no call past the end


def test_list_products_filter_by_retailer_id(catalog):
    load(catalog, item("A"), item("B"), item("C"))
    rule = {"retailer_id": {"is_any": ["A", "C"]}}
    assert [p.retailer_id for p in catalog.list_products(filter_rule=rule)] == ["A", "C"]


def test_product_read_and_delete(catalog):
    load(catalog, item("A"))
    [product] = catalog.list_products()

    assert catalog.product(product.id).review_status == "approved"
    catalog.delete_product(product.id)

    assert list(catalog.list_products()) == []
    with pytest.raises(GraphNotFound):
        catalog.product(product.id)


def test_review_issue_shows_on_item_diagnostics_and_clears_on_fix(catalog, sandbox_admin):
    load(catalog, item("A"), item("B"), item("C"))
    sandbox_admin.add_item_issue("acme", "A")
    sandbox_admin.add_item_issue("acme", "B")
    sandbox_admin.add_item_issue(
        "acme", "C", error_type="MISSING_SIZE", error_priority="MEDIUM", title="Size missing",
        field="size",
    )  # fmt: skip

    products = {p.retailer_id: p for p in catalog.list_products()}
    assert products["A"].review_status == "rejected"
    assert catalog.product(products["A"].id).errors[0].error_type == "IMAGE_RESOLUTION_LOW"
    high = [p.retailer_id for p in catalog.list_products(error_priority="HIGH")]
    assert high == ["A", "B"]

    groups = {(g.type, g.severity): g for g in catalog.diagnostics()}
    image = groups[("IMAGE_QUALITY", "MUST_FIX")]
    assert image.number_of_affected_items == 2
    assert image.diagnostics[0].type == "IMAGE_RESOLUTION_LOW"
    assert groups[("ATTRIBUTES_MISSING", "OPPORTUNITY")].number_of_affected_items == 1
    assert [g.type for g in catalog.diagnostics(severities=["MUST_FIX"])] == ["IMAGE_QUALITY"]

    load(catalog, item("A", image_link="https://shop.example/i/A-1000px.jpg"))

    assert catalog.product(products["A"].id).errors == []
    assert catalog.diagnostics(types=["IMAGE_QUALITY"])[0].number_of_affected_items == 1


def test_product_sets_crud_and_matching(catalog):
    load(catalog, item("A"), item("B", product_type="Footwear > Boots"), item("C"))

    set_id = catalog.create_product_set("Jackets", {"product_type": {"i_contains": "jacket"}})
    assert [p.retailer_id for p in catalog.product_set_products(set_id)] == ["A", "C"]

    catalog.update_product_set(set_id, filter_rule={"retailer_id": {"is_any": ["B"]}})
    assert [p.retailer_id for p in catalog.product_set_products(set_id)] == ["B"]
    [listed] = catalog.list_product_sets()
    assert (listed.id, listed.name, listed.product_count) == (set_id, "Jackets", 1)

    catalog.delete_product_set(set_id)
    assert catalog.list_product_sets() == []


def test_duplicate_product_set_filter_is_10803(catalog):
    rule = {"or": [{"retailer_id": {"eq": "A"}}, {"product_type": {"contains": "x"}}]}
    catalog.create_product_set("One", rule)
    with pytest.raises(GraphValidationError) as duplicate:
        catalog.create_product_set("Two", rule)
    assert duplicate.value.code == 10803


def test_malformed_product_set_filter_is_refused(catalog):
    with pytest.raises(GraphValidationError) as refused:
        catalog.create_product_set("Bad", {"no_such_field": {"eq": 1}})
    assert refused.value.code == 100 and "no_such_field" in refused.value.message


def test_price_filter_counts_minor_units(catalog):
    load(catalog, item("CHEAP", price="19.99 EUR"), item("DEAR", price="120.00 EUR"))
    set_id = catalog.create_product_set("Under 20", {"price_amount": {"lt": 2000}})
    assert [p.retailer_id for p in catalog.product_set_products(set_id)] == ["CHEAP"]

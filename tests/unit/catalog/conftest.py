"""Shared fixtures: the real store exports under shared/datasets, a shop, a fixed clock."""

from datetime import UTC, datetime
from pathlib import Path

import pytest

from pipelines.catalog.normalise import ShopContext

DATASETS = Path(__file__).parents[3] / ".." / "shared" / "datasets"
REAL_EXPORTS = [
    ("shopify_csv", DATASETS / "shopify" / "apparel.csv"),
    ("shopify_csv", DATASETS / "shopify" / "home-and-garden.csv"),
    ("woocommerce_csv", DATASETS / "woocommerce" / "sample_products.csv"),
]
NOW = datetime(2025, 6, 1, 12, 0, tzinfo=UTC)


@pytest.fixture
def shop() -> ShopContext:
    return ShopContext(
        currency="EUR",
        timezone="Europe/Berlin",
        product_url_template="https://shop.example/products/{handle}?p={product_id}",
        admin_url_template="https://admin.example/products/{product_id}",
        brand="Acme",
    )

"""Fixtures for catalog sync runs against the live sandbox: a shop whose store is a generated
Shopify export on disk, a MetasyncResource, and settings with instant polling."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from pipelines.catalog.generator import write_shopify_csv, write_woocommerce_csv
from pipelines.catalog.sync import SyncSettings, read_catalog
from pipelines.resources import MetasyncResource
from resources.shops import ShopProfile

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@dataclass
class CatalogShop:
    profile: ShopProfile
    store_file: Path
    metasync: MetasyncResource
    settings: SyncSettings
    sku_column: str = "Variant SKU"

    def rows(self) -> pd.DataFrame:
        return pd.read_csv(self.store_file, dtype=str, keep_default_na=False)

    def write(self, frame: pd.DataFrame) -> None:
        frame.to_csv(self.store_file, index=False, lineterminator="\n")

    def edit(self, sku: str, column: str, value: str) -> None:
        frame = self.rows()
        hits = frame.index[frame[self.sku_column] == sku]
        assert len(hits) == 1, f"no single row for SKU {sku}"
        frame.loc[hits[0], column] = value
        self.write(frame)

    def retailer_id(self, sku: str) -> str:
        """The Meta retailer_id the sync gives the store row holding `sku`."""
        row = int(self.rows().index[self.rows()[self.sku_column] == sku][0]) + 2
        items = read_catalog(self.profile, NOW, self.settings).items
        return str(items.loc[items["source_row"] == row, "retailer_id"].iloc[0])

    def item_skus(self) -> list[str]:
        """SKUs of store rows that are Meta items (not excluded or rejected)."""
        rows = self.rows()
        items = read_catalog(self.profile, NOW, self.settings).items
        positions = [int(r) - 2 for r in items["source_row"]]
        return [s for s in rows[self.sku_column].iloc[positions] if s]


@pytest.fixture
def settings() -> SyncSettings:
    return SyncSettings(
        poll_interval_seconds=0,
        poll_timeout_seconds=30,
        product_url_template="https://shop.example/products/{handle}?p={product_id}",
        default_brand="Acme Outdoor",
        max_batch_requests=10,
    )


@pytest.fixture
def catalog_shop(
    onboard, tmp_path: Path, metasync_db, settings: SyncSettings
) -> Callable[..., CatalogShop]:
    def make(
        shop_id: str = "acme", products: int = 8, seed: int = 7, kind: str = "shopify_csv"
    ) -> CatalogShop:
        write = write_shopify_csv if kind == "shopify_csv" else write_woocommerce_csv
        store_file = write(tmp_path / f"{shop_id}.csv", seed=seed, products=products)
        onboard(shop_id, source_kind=kind, source_location=str(store_file))
        _admin_template(metasync_db, shop_id)
        metasync = MetasyncResource(database_url=metasync_db.url)
        sku_column = "Variant SKU" if kind == "shopify_csv" else "SKU"
        profile = metasync.registry().get(shop_id)
        return CatalogShop(profile, store_file, metasync, settings, sku_column)

    return make


def _admin_template(db, shop_id: str) -> None:
    from sqlalchemy import update

    from resources.db.schema import shops

    with db.begin() as conn:
        conn.execute(
            update(shops)
            .where(shops.c.shop_id == shop_id)
            .values(admin_url_template="https://admin.shop.example/products/{product_id}")
        )


def sandbox_batches(sandbox, shop_id: str) -> int:
    """How many items_batch calls the sandbox received for this shop."""
    from sandbox.catalog.models import catalog_backend

    state = sandbox.state
    return len(catalog_backend(state).catalog(state.shops[shop_id]).batches)


def sandbox_items(sandbox_admin, shop_id: str) -> dict[str, dict]:
    return {i["retailer_id"]: i for i in sandbox_admin.catalog_items(shop_id)["items"]}

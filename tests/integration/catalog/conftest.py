"""Fixtures for catalog sync runs against the live sandbox: a shop whose store is a generated
Shopify export on disk, a MetasyncResource, and settings with instant polling."""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pytest

from pipelines.catalog.generator import write_shopify_csv
from pipelines.catalog.sync import SyncSettings
from pipelines.resources import MetasyncResource
from resources.shops import ShopProfile

NOW = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)


@dataclass
class CatalogShop:
    profile: ShopProfile
    store_file: Path
    metasync: MetasyncResource
    settings: SyncSettings

    def rows(self) -> pd.DataFrame:
        return pd.read_csv(self.store_file, dtype=str, keep_default_na=False)

    def write(self, frame: pd.DataFrame) -> None:
        frame.to_csv(self.store_file, index=False, lineterminator="\n")

    def edit(self, sku: str, column: str, value: str) -> None:
        frame = self.rows()
        hits = frame.index[frame["Variant SKU"] == sku]
        assert len(hits) == 1, f"no single row for SKU {sku}"
        frame.loc[hits[0], column] = value
        self.write(frame)

    def skus(self) -> list[str]:
        return [s for s in self.rows()["Variant SKU"] if s]


@pytest.fixture
def settings() -> SyncSettings:
    return SyncSettings(
        poll_interval_seconds=0,
        poll_timeout_seconds=30,
        product_url_template="https://shop.example/products/{handle}",
        max_batch_requests=10,
    )


@pytest.fixture
def catalog_shop(
    onboard, tmp_path: Path, metasync_db, settings: SyncSettings
) -> Callable[..., CatalogShop]:
    def make(shop_id: str = "acme", products: int = 8, seed: int = 7) -> CatalogShop:
        store_file = write_shopify_csv(tmp_path / f"{shop_id}.csv", seed=seed, products=products)
        onboard(shop_id, source_kind="shopify_csv", source_location=str(store_file))
        _admin_template(metasync_db, shop_id)
        metasync = MetasyncResource(database_url=metasync_db.url)
        return CatalogShop(metasync.registry().get(shop_id), store_file, metasync, settings)

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

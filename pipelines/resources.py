"""Dagster resources: thin wrappers that hand plain adapters to assets, ops and sensors.

    @dg.asset(partitions_def=shop_partitions)
    def catalog_snapshot(context, metasync: MetasyncResource):
        shop = metasync.registry().get(context.partition_key)
        with metasync.graph_for(shop.shop_id) as graph:
            ...

Tokens are read from the vault inside the run (`graph_for`), never passed through run config or
metadata. Empty fields fall back to `resources.settings` (environment variables).
"""

import dagster as dg
import httpx
from pydantic import PrivateAttr

from resources.db import MetasyncDatabase
from resources.meta.transport import GraphClient, RetryPolicy
from resources.settings import get_settings
from resources.shops import ShopRegistry, TokenVault


class MetasyncResource(dg.ConfigurableResource):
    """The metasync database, the shop registry and per-shop Graph clients."""

    database_url: str = ""
    graph_base_url: str = ""
    graph_version: str = ""

    _db: MetasyncDatabase | None = PrivateAttr(default=None)

    def db(self) -> MetasyncDatabase:
        if self._db is None:
            self._db = MetasyncDatabase(self.database_url or get_settings().resolved_database_url())
            self._db.create_schema()
        return self._db

    def registry(self) -> ShopRegistry:
        return ShopRegistry(self.db(), TokenVault.from_settings())

    def graph_for(self, shop_id: str, transport: httpx.BaseTransport | None = None) -> GraphClient:
        """A Graph client bound to this shop's token; close it (or use `with`) when done.

        `transport` lets a caller polling many shops share one connection pool (and one TLS
        context) between their clients; each client still sends its own shop's token."""
        settings = get_settings()
        secret = settings.app_secret.get_secret_value() if settings.app_secret else None
        return GraphClient(
            shop_id=shop_id,
            token=self.registry().token_for(shop_id),
            base_url=self.graph_base_url or settings.graph_base_url,
            version=self.graph_version or settings.graph_version,
            app_secret=secret,
            timeout_seconds=settings.graph_timeout_seconds,
            retry=RetryPolicy(max_attempts=settings.graph_max_attempts),
            transport=transport,
        )

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._db is not None:
            self._db.dispose()


__all__ = ["MetasyncResource"]

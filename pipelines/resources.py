"""Dagster resources: thin wrappers that hand plain adapters to assets, ops and sensors.

    @dg.asset(partitions_def=shop_partitions)
    def catalog_snapshot(context, metasync: MetasyncResource):
        shop = metasync.registry().get(context.partition_key)
        with metasync.graph_for(shop.shop_id) as graph:
            ...

Tokens are read from the vault inside the run (`graph_for`), never passed through run config or
metadata. Empty fields fall back to `resources.settings` (environment variables).
"""

import hashlib

import dagster as dg
import httpx
from pydantic import PrivateAttr

from resources.db import MetasyncDatabase
from resources.meta.errors import GraphAuthError
from resources.meta.transport import GraphClient, RetryPolicy, app_throttle
from resources.settings import get_settings
from resources.shops import ShopRegistry, ShopStatus, TokenVault


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
        context) between their clients; each client still sends its own shop's token.

        Every client of the app shares one throttle state (a shop's backoff holds only that
        shop), and a rejected token pauses the shop for re-authentication right where Meta said
        so, whichever domain made the call: schedules and sensors then skip it with the reason."""
        settings = get_settings()
        secret = settings.app_secret.get_secret_value() if settings.app_secret else None
        base_url = self.graph_base_url or settings.graph_base_url
        return GraphClient(
            shop_id=shop_id,
            token=self.registry().token_for(shop_id),
            base_url=base_url,
            version=self.graph_version or settings.graph_version,
            app_secret=secret,
            timeout_seconds=settings.graph_timeout_seconds,
            retry=RetryPolicy(max_attempts=settings.graph_max_attempts),
            transport=transport,
            throttle=app_throttle(_app_key(base_url, secret)),
            on_auth_error=lambda error: self.pause_for_reauth(shop_id, error),
        )

    def pause_for_reauth(self, shop_id: str, error: GraphAuthError) -> None:
        """Mark the shop `needs_reauth` with Meta's code; `metasync shops set-token` resumes it."""
        code = f"{error.code}" + (f"/{error.subcode}" if error.subcode else "")
        reason = f"Meta rejected the token (code {code}); re-authenticate the shop"
        self.registry().set_status(shop_id, ShopStatus.NEEDS_REAUTH, reason)

    def teardown_after_execution(self, context: dg.InitResourceContext) -> None:
        if self._db is not None:
            self._db.dispose()


def _app_key(base_url: str, app_secret: str | None) -> str:
    """Names the app without exposing its secret: the Graph host plus a secret fingerprint."""
    fingerprint = hashlib.sha256(app_secret.encode()).hexdigest()[:12] if app_secret else "-"
    return f"{base_url}#{fingerprint}"


__all__ = ["MetasyncResource"]

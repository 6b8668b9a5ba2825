"""Fixtures for the orders integration tests: an OMS database, a MetasyncResource, order helpers."""

from decimal import Decimal
from pathlib import Path

import pytest

from pipelines.resources import MetasyncResource
from resources.oms import OmsAdapter
from sandbox.client import SandboxAdmin


@pytest.fixture
def oms(isolated_state: Path) -> OmsAdapter:
    adapter = OmsAdapter(f"sqlite:///{isolated_state / 'oms.db'}")
    adapter.create_schema()
    return adapter


@pytest.fixture
def metasync(metasync_db, onboard) -> MetasyncResource:
    """A resource on the test's metasync database (the onboard fixture points at the sandbox)."""
    return MetasyncResource(database_url=metasync_db.url)


@pytest.fixture
def place_order(sandbox_admin: SandboxAdmin):
    """Place one order in the sandbox; returns Meta's rendering of it."""

    def place(shop_id: str = "acme", **order) -> dict:
        order.setdefault(
            "items", [{"retailer_id": "SKU-1", "quantity": 1, "price": str(Decimal("12.50"))}]
        )
        order.setdefault("buyer", {"name": "Ada Lovelace", "email": "Ada@Example.com"})
        placed = sandbox_admin.call("POST", f"/shops/{shop_id}/orders", json={"orders": [order]})
        return placed["orders"][0]

    return place


def meta_state(sandbox_admin: SandboxAdmin, shop_id: str, order_id: str) -> dict:
    return sandbox_admin.call("GET", f"/shops/{shop_id}/orders/{order_id}")

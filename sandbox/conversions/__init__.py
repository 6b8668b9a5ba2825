"""The sandbox's Conversions API domain: `POST /{pixel_id}/events` (catalog.md §8).

Importing the package registers the Graph route. Its admin route lists what a shop's pixel
received, and which events were dropped as duplicates, so tests can assert exactly-once sends.
"""

from typing import Any

from fastapi import APIRouter

from sandbox.admin import shop_or_404
from sandbox.conversions import responses  # noqa: F401  (registers the Graph routes)
from sandbox.conversions.models import conversions_backend
from sandbox.core.state import SandboxState


def build_admin_router(state: SandboxState) -> APIRouter:
    router = APIRouter(prefix="/conversions")
    backend = conversions_backend(state)

    @router.get("/{shop_id}/events")
    def list_events(shop_id: str) -> dict[str, Any]:
        with state.lock:
            shop_or_404(state, shop_id)
            return backend.log(shop_id)

    return router

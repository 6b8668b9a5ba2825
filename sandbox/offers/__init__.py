"""The sandbox's offers domain: OFFER feeds of a shop's catalog and the offers they carry
(orders.md §12). Importing the package registers its Graph routes.

Admin routes (under /_sandbox/offers) let tests and the demo read a shop's stored offers with
whether each is active now, and tune the settings Meta's documents leave open.
"""

from typing import Any

from fastapi import APIRouter
from pydantic import BaseModel

from sandbox.admin import shop_or_404
from sandbox.core.state import SandboxState
from sandbox.offers import responses  # noqa: F401  (registers the Graph routes)
from sandbox.offers.models import offer_is_active, offers_backend


class OffersSettingsSpec(BaseModel):
    allow_order_level_free_shipping: bool | None = None
    max_active_automatic: int | None = None
    max_active_public_codes: int | None = None
    require_shop_currency: bool | None = None


def build_admin_router(state: SandboxState) -> APIRouter:
    router = APIRouter(prefix="/offers")
    backend = offers_backend(state)

    @router.get("/{shop_id}")
    def list_offers(shop_id: str) -> dict[str, Any]:
        with state.lock:
            shop = shop_or_404(state, shop_id)
            now = state.now()
            rows = [
                {
                    "id": offer.graph_id,
                    "offer_id": offer.offer_id,
                    "feed_id": offer.feed_id,
                    "version": offer.version,
                    "active": offer_is_active(offer, now),
                    "data": offer.data,
                }
                for offer in backend.offers_of(shop).values()
            ]
            return {"count": len(rows), "offers": rows}

    @router.post("/settings")
    def update_settings(spec: OffersSettingsSpec) -> dict[str, Any]:
        with state.lock:
            for name, value in spec.model_dump(exclude_none=True).items():
                setattr(backend.settings, name, value)
        return {"success": True}

    return router

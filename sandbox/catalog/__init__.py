"""The sandbox's catalog domain: items_batch and handles, feeds and upload sessions, product
reads, item issues, diagnostics and product sets (catalog.md §2-§7).

Importing the package registers its Graph routes. Its admin routes (under /_sandbox/catalog)
let tests and the demo look inside a shop's catalog, inject catalog faults, add Meta-side
review issues to items, tune the catalog settings and host files for `url=` feed uploads.
"""

from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from sandbox.admin import shop_or_404
from sandbox.catalog import responses  # noqa: F401  (registers the Graph routes)
from sandbox.catalog.models import CatalogFaults, catalog_backend
from sandbox.core.state import SandboxState


class CatalogFaultSpec(BaseModel):
    partial_failure_share: float = Field(default=0.0, ge=0.0, le=1.0)
    partial_failure_reason: str = "Internal error while processing the item; retry later"
    handle_error: bool = False
    extra_upload_polls: int = Field(default=0, ge=0)


class ItemIssueSpec(BaseModel):
    error_type: str = "IMAGE_RESOLUTION_LOW"
    error_priority: str = Field(default="HIGH", pattern="^(HIGH|MEDIUM|LOW)$")
    title: str = "Missing or invalid images"
    description: str = (
        "The main image of this item cannot be displayed. Images must be in JPEG or PNG format, "
        "less than 8 MB and at least 500 x 500 pixels."
    )
    call_to_action: str = "Save the image under a new link (URL) and provide the new link."
    # The issue clears when the item's `field` changes (e.g. a new image_link), as Meta's does.
    field: str | None = "image_link"


class CatalogSettingsSpec(BaseModel):
    max_batch_requests: int | None = None
    max_batch_bytes: int | None = None
    field_limits: dict[str, int] | None = None
    require_image: bool | None = None
    step_seconds: float | None = None
    batch_calls_per_minute: int | None = None
    error_sample_limit: int | None = None
    max_feed_bytes: int | None = None
    price_read_format: str | None = Field(default=None, pattern="^(iso|display)$")
    replace_scope: str | None = Field(default=None, pattern="^(feed|catalog)$")
    batch_handle_steps: int | None = Field(default=None, ge=0)
    upload_session_steps: int | None = Field(default=None, ge=0)


class HostedFile(BaseModel):
    url: str
    content: str


def build_admin_router(state: SandboxState) -> APIRouter:
    router = APIRouter(prefix="/catalog")
    backend = catalog_backend(state)

    @router.get("/{shop_id}/items")
    def list_items(shop_id: str) -> dict[str, Any]:
        with state.lock:
            shop = shop_or_404(state, shop_id)
            items = backend.list_items(shop)
            rows = [
                {
                    "id": item.graph_id,
                    "retailer_id": item.retailer_id,
                    "data": item.data,
                    "feed_id": item.feed_id,
                    "review_status": backend.review_status(item),
                    "errors": backend.item_issues(item),
                }
                for item in items
            ]
            return {"count": len(rows), "items": rows}

    @router.post("/{shop_id}/faults")
    def set_faults(shop_id: str, spec: CatalogFaultSpec) -> dict[str, Any]:
        with state.lock:
            shop_or_404(state, shop_id)
            backend.faults[shop_id] = CatalogFaults(**spec.model_dump())
        return {"success": True}

    @router.delete("/{shop_id}/faults")
    def clear_faults(shop_id: str) -> dict[str, Any]:
        with state.lock:
            backend.faults.pop(shop_id, None)
        return {"success": True}

    @router.post("/{shop_id}/items/{retailer_id}/issues")
    def add_issue(shop_id: str, retailer_id: str, spec: ItemIssueSpec) -> dict[str, Any]:
        with state.lock:
            try:
                backend.add_issue(shop_or_404(state, shop_id), retailer_id, spec.model_dump())
            except KeyError as exc:
                raise HTTPException(404, f"no item {retailer_id} in {shop_id}'s catalog") from exc
        return {"success": True}

    @router.post("/{shop_id}/settle")
    def settle(shop_id: str) -> dict[str, Any]:
        """Finish every pending batch and upload session now, whatever their polls."""
        with state.lock:
            backend.finish_pending(shop_or_404(state, shop_id))
        return {"success": True}

    @router.post("/settings")
    def update_settings(spec: CatalogSettingsSpec) -> dict[str, Any]:
        values = spec.model_dump(exclude_none=True)
        with state.lock:
            for name in ("batch_handle_steps", "upload_session_steps"):
                if name in values:
                    setattr(state.config, name, values.pop(name))
            if "field_limits" in values:
                backend.settings.field_limits.update(values.pop("field_limits"))
            for name, value in values.items():
                setattr(backend.settings, name, value)
        return {"success": True}

    @router.post("/files")
    def host_file(spec: HostedFile) -> dict[str, Any]:
        with state.lock:
            backend.settings.hosted_files[spec.url] = spec.content.encode()
        return {"success": True}

    return router

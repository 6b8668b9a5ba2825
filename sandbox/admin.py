"""The sandbox's admin API (prefix /_sandbox): seed shops, move the clock, inject faults.

It exists only when the app is created with `admin=True`, and `metasync sandbox` binds to
loopback; domain packages add their own admin routes (e.g. placing orders) via `admin_router`.
"""

from pathlib import Path
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from sandbox.core.faults import FaultRule
from sandbox.core.state import SandboxShop, SandboxState


class NewShop(BaseModel):
    shop_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]{0,62}$")
    name: str
    currency: str = Field(default="EUR", pattern=r"^[A-Z]{3}$")
    onsite_orders: bool = True
    token: str | None = None


class ClockAdvance(BaseModel):
    seconds: float


class FaultSpec(BaseModel):
    kind: str
    shop_id: str | None = None
    method: str | None = None
    path_pattern: str | None = None
    probability: float = 1.0
    times: int | None = None
    code: int = 4
    subcode: int | None = 463
    regain_minutes: float = 0.02
    delay_seconds: float = 2.0
    malform: str = "truncate"


class SavePath(BaseModel):
    path: str


def build_admin_router(state: SandboxState, domains: list[Any]) -> APIRouter:
    router = APIRouter()

    @router.post("/shops")
    def create_shop(spec: NewShop) -> dict[str, Any]:
        with state.lock:
            if spec.shop_id in state.shops:
                raise HTTPException(409, f"shop {spec.shop_id} exists")
            shop = state.add_shop(
                spec.shop_id,
                spec.name,
                spec.currency,
                onsite_orders=spec.onsite_orders,
                token=spec.token,
            )
            return shop.public() | {"access_token": shop.token}

    @router.get("/shops")
    def list_shops() -> list[dict[str, Any]]:
        with state.lock:
            return [shop.public() for shop in state.shops.values()]

    @router.post("/shops/{shop_id}/expire_token")
    def expire_token(shop_id: str) -> dict[str, Any]:
        with state.lock:
            shop_or_404(state, shop_id).token_valid = False
        return {"success": True}

    @router.post("/shops/{shop_id}/rotate_token")
    def rotate_token(shop_id: str) -> dict[str, Any]:
        with state.lock:
            shop_or_404(state, shop_id)
            return {"access_token": state.rotate_token(shop_id)}

    @router.post("/clock/advance")
    def advance_clock(spec: ClockAdvance) -> dict[str, Any]:
        with state.lock:
            return {"now": state.advance_clock(spec.seconds).isoformat()}

    @router.post("/faults")
    def add_fault(spec: FaultSpec) -> dict[str, Any]:
        try:
            rule = FaultRule(**spec.model_dump())
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from exc
        with state.lock:
            state.faults.add(rule)
        return {"success": True, "rules": len(state.faults.rules)}

    @router.delete("/faults")
    def clear_faults() -> dict[str, Any]:
        with state.lock:
            state.faults.clear()
            return {"success": True, "injected": dict(state.faults.injected)}

    @router.get("/faults")
    def fault_stats() -> dict[str, Any]:
        return {"injected": dict(state.faults.injected), "rules": len(state.faults.rules)}

    @router.post("/state/save")
    def save_state(spec: SavePath) -> dict[str, Any]:
        state.save(Path(spec.path))
        return {"success": True}

    for domain in domains:
        domain_router = getattr(domain, "build_admin_router", None)
        if domain_router is not None:
            router.include_router(domain_router(state))
    return router


def shop_or_404(state: SandboxState, shop_id: str) -> SandboxShop:
    """The shop an admin route names; 404 when the sandbox has no such shop."""
    if shop_id not in state.shops:
        raise HTTPException(404, f"no shop {shop_id}")
    return state.shops[shop_id]

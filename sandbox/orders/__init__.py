"""The sandbox's orders domain: order state machine, promotions, acknowledgement, shipments,
cancellations, refunds, returns (orders.md §2-§12)."""

from fastapi import APIRouter

from sandbox.core.state import SandboxState
from sandbox.orders import responses  # noqa: F401  (registers the Graph routes)
from sandbox.orders.admin import build_orders_admin_router


def build_admin_router(state: SandboxState) -> APIRouter:
    return build_orders_admin_router(state)

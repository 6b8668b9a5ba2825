"""The sandbox's finance domain: transactions and payouts derived from orders (orders.md §13)."""

import dataclasses
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel

from sandbox.admin import shop_or_404
from sandbox.core.state import SandboxState
from sandbox.finance import responses  # noqa: F401  (registers the Graph routes)
from sandbox.finance.models import finance_backend
from sandbox.orders.allocation import to_minor


class OddTransactionIn(BaseModel):
    """An unknown transaction type and/or one without an order, for quarantine tests."""

    transaction_type: str = "MYSTERY_ADJUSTMENT"
    amount: Decimal = Decimal("1.00")
    order_id: str | None = None


def build_admin_router(state: SandboxState) -> APIRouter:
    router = APIRouter()

    @router.post("/shops/{shop_id}/finance/transactions")
    def inject_transaction(shop_id: str, spec: OddTransactionIn) -> dict[str, Any]:
        with state.lock:
            currency = shop_or_404(state, shop_id).currency
            record = finance_backend(state).inject(
                state,
                shop_id,
                spec.transaction_type,
                to_minor(spec.amount, currency),
                spec.order_id,
            )
            return {"id": record.id}

    @router.post("/finance/config")
    def set_config(changes: dict[str, Any]) -> dict[str, Any]:
        with state.lock:
            config = finance_backend(state).config
            unknown = set(changes) - {f.name for f in dataclasses.fields(config)}
            if unknown:
                raise HTTPException(422, f"unknown finance settings {sorted(unknown)}")
            for name, value in changes.items():
                setattr(config, name, Decimal(str(value)) if name.endswith("rate") else value)
            return {k: str(v) for k, v in dataclasses.asdict(config).items()}

    return router

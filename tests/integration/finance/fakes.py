"""A stand-in for the finance edges of the Graph API, and a metasync-like handle around it.

Used where the test is about metasync's loading and reconciliation rules, not the HTTP layer;
the sandbox-backed tests cover the wire.
"""

from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from resources.db import MetasyncDatabase
from resources.oms.adapter import OmsAdapter
from resources.oms.models import DraftLine, EventLine, OrderDraft
from resources.shops import ShopProfile, ShopRegistry


class FakeFinanceGraph:
    """Serves commerce_payouts, commerce_transactions and /{order}/payments from lists."""

    def __init__(self) -> None:
        self.payouts: list[dict[str, Any]] = []
        self.transactions: list[dict[str, Any]] = []
        self.payments: dict[str, list[dict[str, Any]]] = {}
        self.calls = 0

    def __enter__(self) -> "FakeFinanceGraph":
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def paginate(self, path: str, params: dict[str, Any]) -> Iterator[dict[str, Any]]:
        self.calls += 1
        if path.endswith("/commerce_payouts"):
            yield from (p for p in self.payouts if _in_range(p["payout_date"], params))
        elif path.endswith("/commerce_transactions"):
            ref = params.get("payout_reference_id")
            for txn in self.transactions:
                if ref is not None:
                    if txn.get("payout_reference_id") == ref:
                        yield txn
                elif _in_range(txn["transaction_date"], params):
                    yield txn
        elif path.endswith("/payments"):
            yield from self.payments.get(path.split("/")[0], [])
        else:
            raise AssertionError(f"unexpected Graph path {path}")


def _in_range(iso: str, params: dict[str, Any]) -> bool:
    moment = datetime.fromisoformat(iso).timestamp()
    return params["start_time"] <= moment < params["end_time"]


class FakeMetasync:
    """What ingest_finance needs from MetasyncResource, bound to a fake Graph."""

    def __init__(self, db: MetasyncDatabase, registry: ShopRegistry, graph: FakeFinanceGraph):
        self._db, self._registry, self.graph = db, registry, graph

    def db(self) -> MetasyncDatabase:
        return self._db

    def registry(self) -> ShopRegistry:
        return self._registry

    def graph_for(self, shop_id: str) -> FakeFinanceGraph:
        return self.graph


def register_shop(registry: ShopRegistry, shop_id: str = "acme") -> ShopProfile:
    profile = ShopProfile(
        shop_id=shop_id,
        name=shop_id.title(),
        catalog_id="cat-1",
        cms_id="cms-1",
        page_id="page-1",
        currency="USD",
        source_kind="shopify_csv",
        source_location="",
    )
    return registry.add(profile, token="test-token-not-real")


def money(amount: str | Decimal, currency: str = "USD") -> dict[str, str]:
    return {"amount": str(amount), "currency": currency}


def at(day: Any, hour: int = 10) -> str:
    return datetime(day.year, day.month, day.day, hour, tzinfo=UTC).isoformat()


def shipped_oms_order(
    oms: OmsAdapter,
    shop_id: str,
    meta_order_id: str,
    *,
    unit_price: str = "10.00",
    quantity: int = 1,
    tax: str = "0",
    order_discount: str = "0",
    meta_discount: str = "0",
    ship: int | None = None,
) -> int:
    draft = OrderDraft(
        shop_id=shop_id,
        source="meta",
        external_ref=meta_order_id,
        currency="USD",
        lines=(
            DraftLine(
                external_line_id=f"{meta_order_id}-l1",
                sku="SKU-1",
                name="Shirt",
                quantity=quantity,
                unit_price=Decimal(unit_price),
                order_discount=Decimal(order_discount),
                meta_funded_discount=Decimal(meta_discount),
                tax=Decimal(tax),
            ),
        ),
        tax_total=Decimal(tax),
    )
    order_id = oms.import_order(draft).order_id
    line = oms.get_order(order_id).lines[0]
    units = quantity if ship is None else ship
    if units:
        oms.ship(order_id, [EventLine(line.line_id, units)], "ups", f"1Z{meta_order_id}")
    return order_id

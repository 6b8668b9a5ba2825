"""Admin routes of the orders domain (under /_sandbox): place orders, act as Meta or the buyer.

POST /_sandbox/shops/{shop_id}/orders                 generate N orders or create given ones
GET  /_sandbox/shops/{shop_id}/orders/{order_id}      an order's full internal state
POST /_sandbox/shops/{shop_id}/orders/{order_id}/returns       a buyer opens a return
POST /_sandbox/shops/{shop_id}/orders/{order_id}/meta_cancel   Meta cancels (SLA missed)
POST /_sandbox/shops/{shop_id}/orders/{order_id}/meta_refund   Meta refunds (support)
POST /_sandbox/shops/{shop_id}/orders/{order_id}/capture       pending payments captured
POST /_sandbox/orders/config                          change OrdersConfig
"""

import dataclasses
from decimal import Decimal
from typing import Any

from fastapi import APIRouter, HTTPException
from pydantic import BaseModel, Field

from sandbox.admin import shop_or_404
from sandbox.core.errors import GraphApiError
from sandbox.core.state import SandboxState
from sandbox.orders.allocation import to_minor
from sandbox.orders.generator import generate_order_specs
from sandbox.orders.models import (
    LineSpec,
    OrderDiscountSpec,
    OrderSpec,
    orders_backend,
)
from sandbox.orders.render import render_order


class ItemDiscountIn(BaseModel):
    amount_per_unit: Decimal
    sponsor: str = Field(default="merchant", pattern="^(merchant|facebook)$")
    campaign_name: str | None = None
    coupon_code: str | None = None


class BuyXGetYIn(BaseModel):
    buy: int = Field(gt=0)
    get: int = Field(gt=0)
    percent_off: int = Field(default=100, ge=1, le=100)


class LineIn(BaseModel):
    retailer_id: str
    quantity: int = Field(gt=0)
    price: Decimal  # list price per unit, major units
    product_name: str = ""
    tax_rate: Decimal = Decimal("0")
    tax_category: str = "FBMP_OTHER_TAXABLE"
    item_discount: ItemDiscountIn | None = None
    buy_x_get_y: BuyXGetYIn | None = None


class OrderDiscountIn(BaseModel):
    amount: Decimal
    sponsor: str = Field(default="merchant", pattern="^(merchant|facebook)$")
    campaign_name: str = "Order discount"
    coupon_code: str | None = None
    retailer_id: str | None = None
    target_retailer_ids: list[str] | None = None


class OrderIn(BaseModel):
    items: list[LineIn] = Field(min_length=1)
    shipping_name: str = "STANDARD"
    shipping_price: Decimal = Decimal("0")
    free_shipping_sponsor: str | None = Field(default=None, pattern="^(merchant|facebook)$")
    order_discounts: list[OrderDiscountIn] = Field(default_factory=list)
    state: str | None = None
    channel: str = "facebook"
    buyer: dict[str, Any] | None = None
    shipping_address: dict[str, Any] | None = None
    tax_remitted: bool = True
    jurisdiction: str = "CALIFORNIA"


class GenerateIn(BaseModel):
    count: int = Field(default=10, gt=0, le=10_000)
    seed: int = 0
    retailer_ids: list[str] | None = None


class PlaceOrdersIn(BaseModel):
    orders: list[OrderIn] | None = None
    generate: GenerateIn | None = None


class ReturnItemIn(BaseModel):
    item_id: str | None = None
    retailer_id: str | None = None
    quantity: int = Field(default=1, gt=0)
    reason: str = "OTHER"


class ReturnIn(BaseModel):
    items: list[ReturnItemIn] = Field(min_length=1)
    message: str | None = None


class MetaCancelIn(BaseModel):
    items: list[dict[str, Any]] | None = None
    reason_code: str = "CANCEL_REASON_OTHER"
    reason_description: str | None = "Cancelled by Meta: fulfilment SLA missed"


class MetaRefundIn(BaseModel):
    items: list[dict[str, Any]] | None = None
    shipping: dict[str, Any] | None = None
    reason_code: str = "FACEBOOK_INITIATED"
    reason_text: str | None = None


def build_orders_admin_router(state: SandboxState) -> APIRouter:
    router = APIRouter()

    @router.post("/shops/{shop_id}/orders")
    def place_orders(shop_id: str, spec: PlaceOrdersIn) -> dict[str, Any]:
        with state.lock:
            shop = shop_or_404(state, shop_id)
            specs = [_to_spec(o, shop.currency) for o in spec.orders or []]
            if spec.generate is not None:
                specs += generate_order_specs(
                    spec.generate.count,
                    spec.generate.seed,
                    shop.currency,
                    spec.generate.retailer_ids,
                )
            if not specs:
                raise HTTPException(422, "give orders or generate")
            backend = orders_backend(state)
            placed = _graph_errors(lambda: [backend.place_order(state, shop_id, s) for s in specs])
            return {"orders": [render_order(o) for o in placed]}

    @router.get("/shops/{shop_id}/orders/{order_id}")
    def order_state(shop_id: str, order_id: str) -> dict[str, Any]:
        with state.lock:
            order = _graph_errors(lambda: orders_backend(state).get(state, shop_id, order_id))
            return {"order": render_order(order), "internal": _internal(order)}

    @router.post("/shops/{shop_id}/orders/{order_id}/returns")
    def open_return(shop_id: str, order_id: str, spec: ReturnIn) -> dict[str, Any]:
        with state.lock:
            items = [i.model_dump(exclude_none=True) for i in spec.items]
            ret = _graph_errors(
                lambda: orders_backend(state).create_return(
                    state, shop_id, order_id, items, spec.message
                )
            )
            return {"id": ret.id, "return_status": ret.status}

    @router.post("/shops/{shop_id}/orders/{order_id}/meta_cancel")
    def meta_cancel(shop_id: str, order_id: str, spec: MetaCancelIn) -> dict[str, Any]:
        with state.lock:
            cancellation = _graph_errors(
                lambda: orders_backend(state).cancel(
                    state,
                    shop_id,
                    order_id,
                    spec.items,
                    {
                        "reason_code": spec.reason_code,
                        "reason_description": spec.reason_description,
                    },
                    restock=False,
                    initiated_by="meta",
                )
            )
            return {"id": cancellation.id}

    @router.post("/shops/{shop_id}/orders/{order_id}/meta_refund")
    def meta_refund(shop_id: str, order_id: str, spec: MetaRefundIn) -> dict[str, Any]:
        with state.lock:
            refund = _graph_errors(
                lambda: orders_backend(state).refund(
                    state,
                    shop_id,
                    order_id,
                    spec.items,
                    spec.shipping,
                    None,
                    spec.reason_code,
                    spec.reason_text,
                    initiated_by="meta",
                )
            )
            return {"id": refund.id}

    @router.post("/shops/{shop_id}/orders/{order_id}/capture")
    def capture(shop_id: str, order_id: str) -> dict[str, Any]:
        with state.lock:
            count = _graph_errors(
                lambda: orders_backend(state).capture_pending(state, shop_id, order_id)
            )
            return {"captured": count}

    @router.post("/orders/config")
    def set_config(changes: dict[str, Any]) -> dict[str, Any]:
        with state.lock:
            config = orders_backend(state).config
            unknown = set(changes) - {f.name for f in dataclasses.fields(config)}
            if unknown:
                raise HTTPException(422, f"unknown orders settings {sorted(unknown)}")
            for name, value in changes.items():
                setattr(config, name, value)
            return dataclasses.asdict(config)

    return router


def _graph_errors(run):
    try:
        return run()
    except GraphApiError as error:
        raise HTTPException(400, error.envelope()["error"]) from error


def _to_spec(order: OrderIn, currency: str) -> OrderSpec:
    lines: list[LineSpec] = []
    for line in order.items:
        lines.extend(_lines(line, currency))
    return OrderSpec(
        lines=lines,
        shipping_name=order.shipping_name,
        shipping_price=to_minor(order.shipping_price, currency),
        free_shipping_sponsor=order.free_shipping_sponsor,
        order_discounts=[
            OrderDiscountSpec(
                amount=to_minor(d.amount, currency),
                sponsor=d.sponsor,
                campaign_name=d.campaign_name,
                coupon_code=d.coupon_code,
                retailer_id=d.retailer_id,
                target_retailer_ids=d.target_retailer_ids,
            )
            for d in order.order_discounts
        ],
        state=order.state,
        channel=order.channel,
        buyer=order.buyer,
        shipping_address=order.shipping_address,
        tax_remitted=order.tax_remitted,
        jurisdiction=order.jurisdiction,
    )


def _lines(line: LineIn, currency: str) -> list[LineSpec]:
    price = to_minor(line.price, currency)
    base = LineSpec(
        retailer_id=line.retailer_id,
        quantity=line.quantity,
        unit_price=price,
        product_name=line.product_name,
        tax_rate=line.tax_rate,
        tax_category=line.tax_category,
    )
    if line.item_discount is not None:
        base.item_discount_per_unit = to_minor(line.item_discount.amount_per_unit, currency)
        base.item_discount_sponsor = line.item_discount.sponsor
        base.item_discount_name = line.item_discount.campaign_name
        base.item_discount_coupon = line.item_discount.coupon_code
    if line.buy_x_get_y is None:
        return [base]
    # Buy-X-Get-Y: the discounted units are a second line of the same product (orders.md §7.1).
    offer = line.buy_x_get_y
    free_units = (line.quantity // (offer.buy + offer.get)) * offer.get
    if free_units == 0:
        return [base]
    base.quantity = line.quantity - free_units
    discount = price * offer.percent_off // 100
    get_line = dataclasses.replace(
        base,
        quantity=free_units,
        item_discount_per_unit=discount,
        item_discount_name=f"Buy {offer.buy} get {offer.get} {offer.percent_off}% off",
        item_discount_coupon=None,
        product_id=None,
    )
    return [base, get_line]


def _internal(order) -> dict[str, Any]:
    return {
        "state": order.state,
        "items": [
            {
                "id": i.id,
                "retailer_id": i.retailer_id,
                "quantity": i.quantity,
                "shipped": i.shipped,
                "cancelled": i.cancelled,
                "refunded_quantity": i.refunded_quantity,
                "refunded_amount": i.refunded_amount,
                "captured_base": i.captured_base,
                "captured_tax": i.captured_tax,
                "order_allocations": i.order_allocations,
            }
            for i in order.items
        ],
        "shipments": len(order.shipments),
        "cancellations": len(order.cancellations),
        "refunds": len(order.refunds),
        "refund_return_ids": [refund.return_id for refund in order.refunds],
        "payments": len(order.payments),
        "returns": list(order.returns),
        "refunded_shipping": order.refunded_shipping,
        "shipping_captured": order.shipping_captured,
    }

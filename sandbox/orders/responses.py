"""Graph routes of the orders domain: thin handlers over OrdersBackend (orders.md §3-§10)."""

from collections.abc import Callable
from typing import Any

from sandbox.core.paging import page
from sandbox.core.routing import GraphAnswer, GraphCall, graph_route
from sandbox.orders.models import Order, OrdersBackend, orders_backend
from sandbox.orders.render import (
    ORDER_DEFAULTS,
    SHIPMENT_DEFAULTS,
    parse_fields,
    parse_time,
    project,
    render_cancellation,
    render_item,
    render_order,
    render_order_promotions,
    render_payment,
    render_refund,
    render_return,
    render_shipment,
)

SUCCESS = {"success": True}


def _backend(call: GraphCall) -> OrdersBackend:
    return orders_backend(call.state)


def _order(call: GraphCall) -> Order:
    return _backend(call).get(call.state, call.shop.shop_id, call.node_id)


def _transactions(call: GraphCall):
    # Imported here: the finance domain builds on the orders package, so importing it at module
    # level would make `import sandbox.finance.models` circular when it comes first.
    from sandbox.finance.models import finance_backend
    from sandbox.finance.render import transactions_of_payment

    return transactions_of_payment(call.state, finance_backend(call.state))


def _list_param(call: GraphCall, name: str) -> list[str]:
    """A list parameter: comma-separated text, a JSON array, or a native list."""
    value = call.params.get(name)
    if value in (None, ""):
        return []
    if isinstance(value, str) and value.startswith("["):
        value = call.json_param(name)
    if isinstance(value, str):
        value = value.split(",")
    return [str(v).strip() for v in value if str(v).strip()]


def _edge_page(call: GraphCall, rows: list[dict], defaults: tuple[str, ...] | None) -> dict:
    selection = parse_fields(call.param("fields"))
    projected = [project(row, selection, defaults) for row in rows]
    return page(projected, call.params, url=call.url)


def _idempotent(call: GraphCall, endpoint: str, run: Callable[[], Any]) -> GraphAnswer:
    """Run a write once per key; the same key and body replay the first answer."""
    status, body = call.state.replay_or_record(
        call.shop.shop_id,
        endpoint,
        call.param("idempotency_key"),
        call.body_hash(),
        lambda: (200, run()),
    )
    return GraphAnswer(body, status)


# -- reads ------------------------------------------------------------------------------------


@graph_route("GET", "cms", "commerce_orders")
@graph_route("GET", "page", "commerce_orders")
def list_orders(call: GraphCall) -> dict:
    states = [s.upper() for s in _list_param(call, "state")] or ["CREATED"]
    filters = [f.lower() for f in _list_param(call, "filters")]
    orders = _backend(call).list_orders(
        call.state,
        call.shop.shop_id,
        states,
        filters,
        parse_time(call.param("updated_after"), "updated_after"),
        parse_time(call.param("updated_before"), "updated_before"),
    )
    rows = [render_order(order, _transactions(call)) for order in orders]
    return _edge_page(call, rows, ORDER_DEFAULTS)


@graph_route("GET", "order")
def get_order(call: GraphCall) -> dict:
    body = render_order(_order(call), _transactions(call))
    return project(body, parse_fields(call.param("fields")), ORDER_DEFAULTS)


@graph_route("GET", "order", "items")
def order_items(call: GraphCall) -> dict:
    order = _order(call)
    from sandbox.orders.render import ITEM_DEFAULTS

    return _edge_page(call, [render_item(order, i) for i in order.items], ITEM_DEFAULTS)


@graph_route("GET", "order", "promotion_details")
@graph_route("GET", "order", "promotions")
def order_promotions(call: GraphCall) -> dict:
    return _edge_page(call, render_order_promotions(_order(call)), None)


@graph_route("GET", "order", "shipments")
def order_shipments(call: GraphCall) -> dict:
    order = _order(call)
    rows = [render_shipment(order, s) for s in order.shipments]
    return _edge_page(call, rows, SHIPMENT_DEFAULTS)


@graph_route("GET", "order", "cancellations")
def order_cancellations(call: GraphCall) -> dict:
    order = _order(call)
    return _edge_page(call, [render_cancellation(order, c) for c in order.cancellations], None)


@graph_route("GET", "order", "refunds")
def order_refunds(call: GraphCall) -> dict:
    order = _order(call)
    return _edge_page(call, [render_refund(order, r) for r in order.refunds], None)


@graph_route("GET", "order", "payments")
def order_payments(call: GraphCall) -> dict:
    order = _order(call)
    rows = [render_payment(order, p, _transactions(call)) for p in order.payments]
    return _edge_page(call, rows, None)


@graph_route("GET", "order", "returns")
def order_returns(call: GraphCall) -> dict:
    order = _order(call)
    backend = _backend(call)
    statuses = {s.upper() for s in _list_param(call, "statuses")}
    rows = [
        render_return(backend.returns[rid], order)
        for rid in order.returns
        if not statuses or backend.returns[rid].status in statuses
    ]
    return _edge_page(call, rows, None)


@graph_route("GET", "cms", "returns")
def shop_returns(call: GraphCall) -> dict:
    backend = _backend(call)
    start = parse_time(call.param("start_time_created"), "start_time_created")
    end = parse_time(call.param("end_time_created"), "end_time_created")
    statuses = {s.upper() for s in _list_param(call, "statuses")}
    rows = []
    for ret in sorted(backend.returns.values(), key=lambda r: r.created, reverse=True):
        order = backend.orders[ret.order_id]
        if order.shop_id != call.shop.shop_id:
            continue
        if (start and ret.created < start) or (end and ret.created > end):
            continue
        if statuses and ret.status not in statuses:
            continue
        rows.append(render_return(ret, order))
    return _edge_page(call, rows, None)


@graph_route("GET", "return")
def get_return(call: GraphCall) -> dict:
    backend = _backend(call)
    ret = backend.returns[call.node_id]
    body = render_return(ret, backend.orders[ret.order_id])
    return project(body, parse_fields(call.param("fields")), ("id", "return_status"))


# -- app association ------------------------------------------------------------------------


@graph_route("POST", "cms", "order_management_apps")
def associate_app(call: GraphCall) -> dict:
    _backend(call).app_associated[call.shop.shop_id] = True
    return SUCCESS


@graph_route("DELETE", "cms", "order_management_apps")
def dissociate_app(call: GraphCall) -> dict:
    _backend(call).app_associated[call.shop.shop_id] = False
    return SUCCESS


@graph_route("GET", "cms", "order_management_apps")
def list_apps(call: GraphCall) -> dict:
    associated = _backend(call).app_associated.get(call.shop.shop_id, True)
    return {"data": [{"id": "sandbox_app", "name": "metasync"}] if associated else []}


# -- writes ----------------------------------------------------------------------------------


@graph_route("POST", "order", "acknowledge_order")
def acknowledge_order(call: GraphCall) -> GraphAnswer:
    def run() -> dict:
        order = _backend(call).acknowledge(
            call.state, call.shop.shop_id, call.node_id, call.param("merchant_order_reference")
        )
        return {"id": order.id, "state": order.state}

    return _idempotent(call, "acknowledge_order", run)


@graph_route("POST", "page", "acknowledge_orders")
@graph_route("POST", "cms", "acknowledge_orders")
def acknowledge_orders(call: GraphCall) -> GraphAnswer:
    entries = call.json_param("orders", required=True)

    def run() -> dict:
        results = _backend(call).acknowledge_batch(call.state, call.shop.shop_id, entries)
        return {"orders": results}

    return _idempotent(call, "acknowledge_orders", run)


@graph_route("POST", "order", "shipments")
def create_shipment(call: GraphCall) -> GraphAnswer:
    def run() -> dict:
        _backend(call).ship(
            call.state,
            call.shop.shop_id,
            call.node_id,
            call.json_param("items"),
            call.json_param("tracking_info"),
            call.param("external_shipment_id"),
            call.param("merchant_order_reference"),
        )
        return SUCCESS

    return _idempotent(call, "shipments", run)


@graph_route("POST", "order", "update_shipment")
def update_shipment(call: GraphCall) -> GraphAnswer:
    def run() -> dict:
        _backend(call).update_shipment(
            call.state,
            call.shop.shop_id,
            call.node_id,
            call.json_param("tracking_info"),
            call.param("external_shipment_id"),
            call.param("shipment_id"),
        )
        return SUCCESS

    return _idempotent(call, "update_shipment", run)


@graph_route("POST", "order", "cancellations")
def cancel_order(call: GraphCall) -> GraphAnswer:
    def run() -> dict:
        _backend(call).cancel(
            call.state,
            call.shop.shop_id,
            call.node_id,
            call.json_param("items"),
            call.json_param("cancel_reason"),
            _bool(call.param("restock_items", False)),
        )
        return SUCCESS

    return _idempotent(call, "cancellations", run)


@graph_route("POST", "order", "refunds")
def refund_order(call: GraphCall) -> GraphAnswer:
    def run() -> dict:
        _backend(call).refund(
            call.state,
            call.shop.shop_id,
            call.node_id,
            call.json_param("items"),
            call.json_param("shipping"),
            call.json_param("deductions"),
            call.param("reason_code"),
            call.param("reason_text"),
            call.param("return_id"),
        )
        return SUCCESS

    return _idempotent(call, "refunds", run)


@graph_route("POST", "return", "update_return")
def update_return(call: GraphCall) -> GraphAnswer:
    def run() -> dict:
        _backend(call).update_return(
            call.state,
            call.shop.shop_id,
            call.node_id,
            call.param("update_event"),
            call.param("merchant_return_id"),
            call.param("notes"),
        )
        return SUCCESS

    return _idempotent(call, "update_return", run)


def _bool(value: Any) -> bool:
    if isinstance(value, str):
        return value.strip().lower() in ("1", "true", "yes")
    return bool(value)

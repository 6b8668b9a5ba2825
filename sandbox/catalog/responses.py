"""Graph routes of the catalog domain: thin translations onto CatalogBackend (models.py)."""

# TODO(catalog-sandbox): the ProductItem-vocabulary writes (POST /{catalog_id}/products, POST
# /{product_item_id}), `catalog:{id}:{base64 retailer_id}` node ids, localized_items_batch,
# scheduled feed fetches and POST /{upload_session_id}/error_report are not simulated; metasync
# uses items_batch and feed uploads only, so nothing calls them yet.

import re
from typing import Any

from sandbox.catalog.filters import parse_filter
from sandbox.catalog.models import CatalogBackend, StoredItem, catalog_backend
from sandbox.core.errors import InvalidParameter
from sandbox.core.paging import page
from sandbox.core.routing import GraphCall, graph_route

ITEM_DEFAULT_FIELDS = ("id", "name", "retailer_id")


def _backend(call: GraphCall) -> CatalogBackend:
    return catalog_backend(call.state)


def _flag(call: GraphCall, name: str, default: bool) -> bool:
    value = call.param(name)
    if value is None or value == "":
        return default
    if isinstance(value, bool):
        return value
    if str(value).lower() in ("true", "1"):
        return True
    if str(value).lower() in ("false", "0"):
        return False
    raise InvalidParameter(f"(#100) Param {name} must be a boolean")


def _fields(call: GraphCall, default: tuple[str, ...]) -> list[str]:
    raw = call.param("fields")
    if not raw:
        return list(default)
    # `product_feed{id}` or `x.fields(a,b)`: the top-level name is enough for the sandbox.
    flat = re.sub(r"\{[^}]*\}|\.fields\([^)]*\)", "", str(raw))
    return [name.strip() for name in flat.split(",") if name.strip()]


def _select(view: dict[str, Any], fields: list[str]) -> dict[str, Any]:
    return {name: view[name] for name in ["id", *fields] if name in view}


def _list_param(call: GraphCall, name: str) -> list[str] | None:
    value = call.json_param(name) if str(call.param(name, "")).startswith("[") else call.param(name)
    if value in (None, ""):
        return None
    return value if isinstance(value, list) else [v.strip() for v in str(value).split(",")]


def _item_rows(call: GraphCall, items: list[StoredItem]) -> dict[str, Any]:
    backend = _backend(call)
    fields = _fields(call, ITEM_DEFAULT_FIELDS)
    rows = [_select(backend.read_view(item), fields) for item in items]
    body = page(rows, call.params, url=call.url)
    if _flag(call, "summary", False):
        body["summary"] = {"total_count": len(rows)}
    return body


# -- items -------------------------------------------------------------------------------------


@graph_route("POST", "catalog", "items_batch")
def items_batch(call: GraphCall) -> dict[str, Any]:
    return _backend(call).items_batch(
        call.shop,
        str(call.require("item_type")),
        call.json_param("requests", required=True),
        _flag(call, "allow_upsert", True),
    )


@graph_route("GET", "catalog", "check_batch_request_status")
def check_batch_request_status(call: GraphCall) -> dict[str, Any]:
    return _backend(call).batch_status(
        call.shop, str(call.require("handle")), _flag(call, "load_ids_of_invalid_requests", False)
    )


@graph_route("GET", "catalog", "products")
def list_products(call: GraphCall) -> dict[str, Any]:
    items = _backend(call).list_items(
        call.shop,
        parse_filter(call.param("filter")),
        error_priority=call.param("error_priority"),
        error_type=call.param("error_type"),
    )
    return _item_rows(call, items)


@graph_route("GET", "product_item")
def read_product_item(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    backend.settle(call.shop)
    item = backend.item_by_graph_id(call.shop, call.node_id, "get")
    return _select(backend.read_view(item), _fields(call, ITEM_DEFAULT_FIELDS))


@graph_route("DELETE", "product_item")
def delete_product_item(call: GraphCall) -> dict[str, Any]:
    _backend(call).delete_item(call.shop, call.node_id)
    return {"success": True}


@graph_route("GET", "catalog", "diagnostics")
def diagnostics(call: GraphCall) -> dict[str, Any]:
    rows = _backend(call).diagnostics(
        call.shop, _list_param(call, "severities"), _list_param(call, "types")
    )
    return page(rows, call.params, url=call.url)


# -- feeds -------------------------------------------------------------------------------------


@graph_route("POST", "catalog", "product_feeds")
def create_feed(call: GraphCall) -> dict[str, Any]:
    params = {
        "schedule": call.json_param("schedule"),
        "update_schedule": call.json_param("update_schedule"),
    }
    feed = _backend(call).create_feed(call.shop, str(call.require("name")), params)
    return {"id": feed.feed_id}


@graph_route("GET", "catalog", "product_feeds")
def list_feeds(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    feeds = backend.catalog(call.shop).feeds.values()
    rows = [backend.feed_view(call.shop, feed) for feed in feeds]
    return page(rows, call.params, url=call.url)


@graph_route("GET", "product_feed")
def read_feed(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    view = backend.feed_view(call.shop, backend.feed(call.shop, call.node_id))
    return _select(view, _fields(call, ("id", "name", "product_count")))


@graph_route("POST", "product_feed", "uploads")
def upload_feed(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    session = backend.start_upload(
        call.shop,
        backend.feed(call.shop, call.node_id),
        content=call.files.get("file"),
        url=call.param("url"),
        update_only=_flag(call, "update_only", False),
        filename=call.param("file_name") or call.param("filename"),
    )
    return {"id": session.session_id}


@graph_route("GET", "product_feed", "uploads")
def list_uploads(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    backend.settle(call.shop)
    sessions = [
        backend.session_view(s)
        for s in reversed(list(backend.catalog(call.shop).sessions.values()))
        if s.feed_id == call.node_id
    ]
    return page(sessions, call.params, url=call.url)


@graph_route("GET", "feed_upload")
def read_upload_session(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    view = backend.poll_session(call.shop, backend.session(call.shop, call.node_id))
    if call.param("fields"):
        return _select(view, _fields(call, ()))
    return view


@graph_route("GET", "feed_upload", "errors")
def upload_errors(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    backend.settle(call.shop)
    session = backend.session(call.shop, call.node_id)
    rows = backend.session_errors(session, call.param("error_priority"))
    return page(rows, call.params, url=call.url)


# -- product sets ------------------------------------------------------------------------------


@graph_route("POST", "catalog", "product_sets")
def create_product_set(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    backend.settle(call.shop)
    product_set = backend.create_product_set(
        call.shop,
        str(call.require("name")),
        call.param("filter"),
        {"retailer_id": call.param("retailer_id"), "metadata": call.json_param("metadata")},
    )
    return {"id": product_set.set_id}


@graph_route("GET", "catalog", "product_sets")
def list_product_sets(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    sets = backend.catalog(call.shop).product_sets.values()
    rows = [backend.product_set_view(call.shop, s) for s in sets]
    if call.param("retailer_id"):
        rows = [row for row in rows if row["retailer_id"] == call.param("retailer_id")]
    body = page(rows, call.params, url=call.url)
    body["summary"] = {"total_count": len(rows)}
    return body


@graph_route("GET", "product_set")
def read_product_set(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    view = backend.product_set_view(call.shop, backend.product_set(call.shop, call.node_id))
    return _select(view, _fields(call, ("id", "name", "filter", "product_count")))


@graph_route("POST", "product_set")
def update_product_set(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    product_set = backend.product_set(call.shop, call.node_id)
    params: dict[str, Any] = {}
    for name in ("name", "filter"):
        if call.param(name) is not None:
            params[name] = call.param(name)
    if call.param("metadata") is not None:
        params["metadata"] = call.json_param("metadata")
    backend.update_product_set(call.shop, product_set, params)
    return {"success": True}


@graph_route("DELETE", "product_set")
def delete_product_set(call: GraphCall) -> dict[str, Any]:
    _backend(call).delete_product_set(call.shop, call.node_id)
    return {"success": True}


@graph_route("GET", "product_set", "products")
def product_set_products(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    items = backend.product_set_items(call.shop, backend.product_set(call.shop, call.node_id))
    return _item_rows(call, items)

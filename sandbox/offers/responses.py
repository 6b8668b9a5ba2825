"""Graph routes of the offers domain: OFFER feeds on the catalog, their uploads and sessions.

`POST /{catalog_id}/product_feeds` and its listing belong to the catalog domain; a feed created
with `feed_type=OFFER` is an offers feed, so those two routes are taken over here and hand every
other feed to the catalog's handlers.
"""

from typing import Any

from sandbox.catalog import responses as catalog_routes
from sandbox.catalog.models import catalog_backend
from sandbox.core.errors import InvalidParameter
from sandbox.core.paging import page
from sandbox.core.routing import GraphCall, graph_route
from sandbox.offers.models import OffersBackend, offers_backend


def _backend(call: GraphCall) -> OffersBackend:
    return offers_backend(call.state)


@graph_route("POST", "catalog", "product_feeds")
def create_feed(call: GraphCall) -> dict[str, Any]:
    if str(call.param("feed_type") or "").upper() != "OFFER":
        return catalog_routes.create_feed(call)
    feed = _backend(call).create_feed(call.shop, str(call.require("name")))
    return {"id": feed.feed_id}


@graph_route("GET", "catalog", "product_feeds")
def list_feeds(call: GraphCall) -> dict[str, Any]:
    catalog = catalog_backend(call.state)
    rows = [catalog.feed_view(call.shop, f) for f in catalog.catalog(call.shop).feeds.values()]
    offers = _backend(call)
    rows += [offers.feed_view(call.shop, f) for f in offers.of(call.shop).feeds.values()]
    return page(rows, call.params, url=call.url)


@graph_route("GET", "offer_feed")
def read_feed(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    return backend.feed_view(call.shop, backend.feed(call.shop, call.node_id))


@graph_route("POST", "offer_feed", "uploads")
def upload_feed(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    if call.param("url"):
        # TODO(offers-sandbox): `url=` uploads and scheduled fetches of offer feeds are not
        # simulated; metasync uploads the file.
        raise InvalidParameter("(#100) the sandbox takes offer feeds as a file upload only")
    session = backend.upload(
        call.shop,
        backend.feed(call.shop, call.node_id),
        call.files.get("file"),
        update_only=str(call.param("update_only", "false")).lower() in ("true", "1"),
    )
    return {"id": session.session_id}


@graph_route("GET", "offer_feed", "uploads")
def list_uploads(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    rows = [
        backend.session_view(u)
        for u in reversed(list(backend.of(call.shop).uploads.values()))
        if u.feed_id == call.node_id
    ]
    return page(rows, call.params, url=call.url)


@graph_route("GET", "offer_feed_upload")
def read_upload(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    return backend.session_view(backend.upload_session(call.shop, call.node_id))


@graph_route("GET", "offer_feed_upload", "errors")
def upload_errors(call: GraphCall) -> dict[str, Any]:
    backend = _backend(call)
    rows = backend.session_errors(backend.upload_session(call.shop, call.node_id))
    return page(rows, call.params, url=call.url)

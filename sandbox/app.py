"""The Meta Graph API sandbox as a FastAPI app.

    state = SandboxState()
    app = create_app(state, admin=True)     # admin API under /_sandbox, off unless asked for

The HTTP layer only parses requests (query + form/multipart + JSON body merged, token from the
Authorization header or `access_token`) and renders answers or Graph error envelopes. Rules live
in the domain backends (sandbox/catalog, orders, finance, conversions).
"""

import importlib
import json
import logging
import time
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from starlette.datastructures import UploadFile

from sandbox.core.errors import GraphApiError, InvalidToken, ServiceUnavailable, Throttled
from sandbox.core.faults import malformed_body
from sandbox.core.routing import (
    GraphCall,
    check_appsecret_proof,
    dispatch,
    resolve_node,
)
from sandbox.core.state import SandboxShop, SandboxState

logger = logging.getLogger(__name__)

# Each domain package registers its Graph routes on import and may expose `admin_router`.
DOMAIN_PACKAGES = (
    "sandbox.catalog",
    "sandbox.orders",
    "sandbox.finance",
    "sandbox.conversions",
    "sandbox.offers",  # after catalog: takes over OFFER feeds
)


def load_domains() -> list[Any]:
    """Import every domain package (registering its routes), in dependency-safe order."""
    modules = []
    for name in DOMAIN_PACKAGES:
        try:
            modules.append(importlib.import_module(name))
        except ModuleNotFoundError as exc:
            if exc.name != name:
                raise
    return modules


def create_app(state: SandboxState | None = None, *, admin: bool = False) -> FastAPI:
    state = state or SandboxState()
    app = FastAPI(title="metasync Meta Graph API sandbox", docs_url=None, redoc_url=None)
    app.state.sandbox = state
    domains = load_domains()

    if admin:
        from sandbox.admin import build_admin_router

        app.include_router(build_admin_router(state, domains), prefix="/_sandbox")

    @app.api_route("/{version}/{path:path}", methods=["GET", "POST", "DELETE"])
    async def graph(version: str, path: str, request: Request) -> JSONResponse:
        try:
            params, files = await _parse(request)
            return await _handle(state, request, version, path, params, files)
        except GraphApiError as error:
            return _error_response(error)

    return app


async def _parse(request: Request) -> tuple[dict[str, Any], dict[str, bytes]]:
    params: dict[str, Any] = dict(request.query_params)
    files: dict[str, bytes] = {}
    content_type = request.headers.get("content-type", "")
    if request.method == "POST":
        if content_type.startswith("application/json"):
            body = await request.body()
            if body:
                try:
                    decoded = json.loads(body)
                except ValueError as exc:
                    raise GraphApiError("(#100) The request body is not valid JSON") from exc
                if isinstance(decoded, dict):
                    params.update(decoded)
        elif content_type.startswith(("multipart/form-data", "application/x-www-form-urlencoded")):
            form = await request.form()
            for key, value in form.multi_items():
                if isinstance(value, UploadFile):
                    files[key] = await value.read()
                else:
                    params[key] = value
    return params, files


async def _handle(state, request, version, path, params, files) -> JSONResponse:
    if not version.startswith("v"):
        raise GraphApiError("(#100) Unknown path components: /" + version)
    token = _token(request, params)
    node_id, _, edge = path.strip("/").partition("/")

    with state.lock:
        shop = state.shop_for_token(token)
        check_appsecret_proof(state, token, params.get("appsecret_proof"))
        node = resolve_node(state, shop, node_id, request.method)
        route = f"{node.kind}/{edge}"
        fault = state.faults.pick(shop.shop_id, request.method, route)
        usage_headers = _record_usage(state, shop, request.method, route)

    if fault is not None and fault.kind == "timeout":
        # Outside the lock: the client gives up while other shops' calls go on.
        time.sleep(fault.delay_seconds)
        raise ServiceUnavailable("Request timed out")
    if fault is not None and fault.kind not in ("apply_then_500", "malformed"):
        _raise_fault(state, shop, fault)

    call = GraphCall(
        state,
        request.method,
        version,
        node_id,
        node,
        edge,
        shop,
        params,
        files,
        url=str(request.url).split("?")[0],
    )
    with state.lock:
        answer = dispatch(call)
    if fault is not None and fault.kind == "apply_then_500":  # the effect happened, answer lost
        raise ServiceUnavailable()
    headers = usage_headers | answer.headers
    if fault is not None:  # malformed: applied, answered 200 with a broken body
        body = malformed_body(answer.body, fault.malform)
        text = body if isinstance(body, str) else json.dumps(body)
        return Response(text, status_code=200, headers=headers, media_type="application/json")
    return JSONResponse(answer.body, status_code=answer.status_code, headers=headers)


def _token(request: Request, params: dict[str, Any]) -> str | None:
    header = request.headers.get("authorization", "")
    if header.lower().startswith("bearer "):
        return header[7:].strip()
    return params.get("access_token")


def _raise_fault(state: SandboxState, shop: SandboxShop, fault) -> None:
    if fault.kind == "http_500":
        raise ServiceUnavailable()
    if fault.kind == "token_expired":
        shop.token_valid = False  # later calls get 190/463 until the token is rotated
        message = (
            "Error validating access token: Session has expired."
            if fault.subcode
            else "Invalid OAuth access token - Cannot parse access token"
        )
        raise InvalidToken(message, subcode=fault.subcode)
    if fault.kind == "throttle":
        error = Throttled(fault.code)
        error.headers = _throttle_headers(shop, fault.regain_minutes)
        raise error


def _record_usage(state: SandboxState, shop: SandboxShop, method: str, route: str) -> dict:
    """Count the call in the shop's rolling hour and say how much of the budget is used."""
    now = time.time()
    state.call_log.append((now, shop.shop_id, method, route))
    hour_ago = now - 3600
    while state.call_log and state.call_log[0][0] < hour_ago:
        state.call_log.pop(0)
    used = sum(1 for entry in state.call_log if entry[1] == shop.shop_id)
    percent = min(100, used * 100 // max(state.config.hourly_call_limit, 1))
    if used > state.config.hourly_call_limit:
        error = Throttled(80014 if route.endswith("items_batch") else 80009)
        error.headers = _throttle_headers(shop, 60.0)
        raise error
    usage = {"call_count": percent, "total_time": percent, "total_cputime": percent}
    return {
        "x-app-usage": json.dumps(usage),
        "x-business-use-case-usage": json.dumps(
            {
                shop.business_id: [
                    usage | {"type": "catalog_management", "estimated_time_to_regain_access": 0}
                ]
            }
        ),
    }


def _throttle_headers(shop: SandboxShop, regain_minutes: float) -> dict[str, str]:
    # `catalog_management` is our assumption: Meta documents no catalog type for this header.
    usage = {
        "type": "catalog_management",
        "call_count": 100,
        "total_time": 100,
        "total_cputime": 100,
        "estimated_time_to_regain_access": regain_minutes,
    }
    return {
        "x-business-use-case-usage": json.dumps({shop.business_id: [usage]}),
        "x-app-usage": json.dumps({"call_count": 100, "total_time": 100, "total_cputime": 100}),
    }


def _error_response(error: GraphApiError) -> JSONResponse:
    headers = getattr(error, "headers", None) or {}
    return JSONResponse(error.envelope(), status_code=error.http_status, headers=headers)

"""Dispatch of Graph paths to domain handlers, and the request object handlers receive.

A domain registers handlers with `graph_route`:

    @graph_route("POST", "catalog", "items_batch")
    def items_batch(call: GraphCall) -> dict: ...

`node kind` is what the id in the path names (see `SandboxState.register_node`); the edge is the
rest of the path ("" for the node itself). The HTTP layer (sandbox/app.py) only parses requests
and renders answers; every rule lives in the domain backends.
"""

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sandbox.core.errors import GraphApiError, InvalidParameter, UnknownObject
from sandbox.core.state import NodeRef, SandboxShop, SandboxState

Handler = Callable[["GraphCall"], Any]
_ROUTES: dict[tuple[str, str, str], Handler] = {}


def graph_route(method: str, node_kind: str, edge: str = "") -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        _ROUTES[(method.upper(), node_kind, edge)] = handler
        return handler

    return register


def find_route(method: str, node_kind: str, edge: str) -> Handler | None:
    return _ROUTES.get((method.upper(), node_kind, edge))


@dataclass
class GraphAnswer:
    """What a handler may return instead of a plain dict: a status and extra headers."""

    body: Any
    status_code: int = 200
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class GraphCall:
    """One parsed Graph request: merged parameters, files, the caller's shop and the node."""

    state: SandboxState
    method: str
    version: str
    node_id: str
    node: NodeRef
    edge: str
    shop: SandboxShop
    params: dict[str, Any]
    files: dict[str, bytes]
    url: str

    def param(self, name: str, default: Any = None) -> Any:
        return self.params.get(name, default)

    def require(self, name: str) -> Any:
        value = self.params.get(name)
        if value in (None, ""):
            raise InvalidParameter(f"(#100) The parameter {name} is required")
        return value

    def json_param(self, name: str, default: Any = None, *, required: bool = False) -> Any:
        """A JSON-typed parameter: a native value (JSON body) or a string holding JSON (form)."""
        value = self.params.get(name)
        if value in (None, ""):
            if required:
                raise InvalidParameter(f"(#100) The parameter {name} is required")
            return default
        if isinstance(value, str):
            try:
                return json.loads(value)
            except ValueError as exc:
                raise InvalidParameter(f"(#100) Param {name} must be JSON") from exc
        return value

    def body_hash(self, exclude: tuple[str, ...] = ("access_token", "appsecret_proof")) -> str:
        """A hash of the logical request, for idempotency: same parameters, same hash."""
        logical = {k: self._normalised(v) for k, v in self.params.items() if k not in exclude}
        canonical = json.dumps(logical, sort_keys=True, separators=(",", ":"), default=str)
        return hashlib.sha256(f"{self.node_id}/{self.edge}:{canonical}".encode()).hexdigest()

    @staticmethod
    def _normalised(value: Any) -> Any:
        if isinstance(value, str) and value[:1] in "[{":
            try:
                return json.loads(value)
            except ValueError:
                return value
        return value


def check_appsecret_proof(state: SandboxState, token: str, proof: str | None) -> None:
    secret = state.config.app_secret
    if not secret:
        return
    if not proof:
        if state.config.require_appsecret_proof:
            raise InvalidParameter("(#100) appsecret_proof is required for this app")
        return
    expected = hmac.new(secret.encode(), token.encode(), hashlib.sha256).hexdigest()
    if not hmac.compare_digest(expected, proof):
        raise InvalidParameter("(#100) Invalid appsecret_proof provided in the API argument")


def resolve_node(state: SandboxState, shop: SandboxShop, node_id: str, method: str) -> NodeRef:
    """The node, if it exists and belongs to the caller's shop (else Graph's 100/33)."""
    node = state.nodes.get(node_id)
    if node is None or node.shop_id != shop.shop_id:
        raise UnknownObject(node_id, method.lower())
    return node


def dispatch(call: GraphCall) -> GraphAnswer:
    handler = find_route(call.method, call.node.kind, call.edge)
    if handler is None:
        raise GraphApiError(
            f"(#100) Unsupported {call.method.lower()} request to edge '{call.edge}' of a "
            f"{call.node.kind} node",
            subcode=33 if not call.edge else None,
        )
    result = handler(call)
    return result if isinstance(result, GraphAnswer) else GraphAnswer(result)

"""The sandbox's whole world: shops, their nodes, the clock, idempotency records, faults.

Domain backends (catalog, orders, finance, conversions) keep their own state on
`SandboxState.domains[name]` and register the Graph ids they create with `register_node`, so the
dispatcher can tell which domain a path like `/v25.0/1234/items_batch` belongs to.
"""

import itertools
import pickle
import secrets
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sandbox.core.errors import IdempotencyConflict, InvalidParameter, InvalidToken
from sandbox.core.faults import FaultInjector


@dataclass
class SandboxShop:
    """A seller as Meta knows it: a business with a catalog, a CMS, a page and a pixel."""

    shop_id: str
    name: str
    token: str
    currency: str
    business_id: str
    catalog_id: str
    cms_id: str
    page_id: str
    pixel_id: str
    onsite_orders: bool = True
    token_valid: bool = True

    def public(self) -> dict[str, Any]:
        data = {k: v for k, v in self.__dict__.items() if k not in ("token",)}
        return data


@dataclass(frozen=True)
class NodeRef:
    kind: str  # "catalog", "feed", "order", "cms", "page", "pixel", "business", ...
    shop_id: str


@dataclass
class IdempotencyRecord:
    request_hash: str
    status_code: int
    response: Any


@dataclass
class SandboxConfig:
    """Behaviour that Meta's documents leave open; each choice is a setting."""

    app_secret: str | None = None
    require_appsecret_proof: bool = False
    idempotency_conflict_code: int = 100
    # A call budget per shop per rolling hour; past it, calls fail with `throttle_code`.
    hourly_call_limit: int = 1_000_000
    batch_handle_steps: int = 2  # polls before a handle reaches `finished`
    upload_session_steps: int = 1  # polls before an upload session ends


@dataclass
class SandboxState:
    config: SandboxConfig = field(default_factory=SandboxConfig)
    shops: dict[str, SandboxShop] = field(default_factory=dict)
    nodes: dict[str, NodeRef] = field(default_factory=dict)
    domains: dict[str, Any] = field(default_factory=dict)
    idempotency: dict[tuple[str, str, str], IdempotencyRecord] = field(default_factory=dict)
    faults: FaultInjector = field(default_factory=FaultInjector)
    clock_offset: timedelta = timedelta(0)
    call_log: list[tuple[float, str, str, str]] = field(default_factory=list)
    _ids: Any = field(default_factory=lambda: itertools.count(10_000_000_000_001))
    lock: Any = field(default_factory=threading.RLock, repr=False)

    # -- time and ids ---------------------------------------------------------------------------

    def now(self) -> datetime:
        return datetime.now(UTC) + self.clock_offset

    def advance_clock(self, seconds: float) -> datetime:
        self.clock_offset += timedelta(seconds=seconds)
        return self.now()

    def new_id(self) -> str:
        """A numeric string id, as Graph gives (always handle ids as strings)."""
        return str(next(self._ids))

    # -- shops, tokens, nodes -------------------------------------------------------------------

    def add_shop(
        self,
        shop_id: str,
        name: str,
        currency: str,
        *,
        onsite_orders: bool = True,
        token: str | None = None,
    ) -> SandboxShop:
        shop = SandboxShop(
            shop_id=shop_id,
            name=name,
            token=token or f"EAAS{secrets.token_hex(24)}",
            currency=currency,
            business_id=self.new_id(),
            catalog_id=self.new_id(),
            cms_id=self.new_id(),
            page_id=self.new_id(),
            pixel_id=self.new_id(),
            onsite_orders=onsite_orders,
        )
        self.shops[shop_id] = shop
        for kind in ("business", "catalog", "cms", "page", "pixel"):
            self.register_node(getattr(shop, f"{kind}_id"), kind, shop_id)
        return shop

    def register_node(self, node_id: str, kind: str, shop_id: str) -> None:
        self.nodes[str(node_id)] = NodeRef(kind, shop_id)

    def shop_for_token(self, token: str | None) -> SandboxShop:
        if not token:
            raise InvalidToken(
                "An active access token must be used to query information about the current user."
            )
        for shop in self.shops.values():
            if secrets.compare_digest(shop.token, token):
                if not shop.token_valid:
                    raise InvalidToken(
                        "Error validating access token: Session has expired.", subcode=463
                    )
                return shop
        raise InvalidToken("Invalid OAuth access token - Cannot parse access token", subcode=None)

    def rotate_token(self, shop_id: str) -> str:
        shop = self.shops[shop_id]
        shop.token = f"EAAS{secrets.token_hex(24)}"
        shop.token_valid = True
        return shop.token

    # -- idempotency ----------------------------------------------------------------------------

    def replay_or_record(
        self, shop_id: str, endpoint: str, key: str | None, request_hash: str, run
    ) -> tuple[int, Any]:
        """Run `run()` once per (shop, endpoint, key); replay its answer for the same body."""
        if not key:
            raise InvalidParameter("(#100) The parameter idempotency_key is required")
        if len(key) > 100:
            raise InvalidParameter("(#100) idempotency_key must be at most 100 characters")
        slot = (shop_id, endpoint, key)
        record = self.idempotency.get(slot)
        if record is not None:
            if record.request_hash != request_hash:
                raise IdempotencyConflict(key, self.config.idempotency_conflict_code)
            return record.status_code, record.response
        status_code, response = run()
        self.idempotency[slot] = IdempotencyRecord(request_hash, status_code, response)
        return status_code, response

    # -- persistence ----------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the state so a demo survives a restart (pickle: trusted local file only)."""
        with self.lock:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_bytes(pickle.dumps(self))
            tmp.replace(path)

    @classmethod
    def load(cls, path: Path) -> "SandboxState":
        # Domain modules import each other; import them in their usual order before unpickling
        # pulls them in one by one (which could start inside a cycle).
        from sandbox.app import load_domains

        load_domains()
        return pickle.loads(path.read_bytes())

    def __getstate__(self) -> dict[str, Any]:
        # Locks cannot be pickled, and domain backends may point back at this state.
        return {k: v for k, v in self.__dict__.items() if k != "lock"}

    def __setstate__(self, snapshot: dict[str, Any]) -> None:
        self.__dict__.update(snapshot)
        self.lock = threading.RLock()

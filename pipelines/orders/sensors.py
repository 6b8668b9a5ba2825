"""Sensors of the orders pipeline.

new_orders_sensor: per shop, lists CREATED orders changed since the shop's watermark (a stored
`last_updated`, never "now minus the interval"), and requests one ingest run per batch of new
orders. The cursor is JSON: {shop_id: {"watermark": iso, "seen": [ids at the watermark]}}.
Meta's `updated_after` takes whole seconds, so the query starts one second early and the ids
already seen at the watermark second are dropped: no order is missed at a boundary, none is
requested twice. A failed run is not re-requested by the sensor (the watermark moved on); the
sweep schedule re-lists CREATED orders, and the import is idempotent.
"""

import bisect
import hashlib
import json
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import dagster as dg
import httpx
from pydantic_settings import BaseSettings, SettingsConfigDict

from pipelines.orders.intake import list_created_orders, order_shops
from pipelines.orders.jobs import (
    ingest_orders_job,
    ingest_run_config,
    pull_meta_changes_job,
    pull_run_config,
    push_order_changes_job,
    push_run_config,
)
from pipelines.orders.ledger import OrderLedger
from pipelines.orders.resources import OmsResource
from pipelines.orders.sync import WATERMARK_STREAM
from pipelines.resources import MetasyncResource
from resources.db.types import utcnow
from resources.meta.errors import GraphError
from resources.meta.orders import OrdersApi
from resources.meta.orders_models import OrderFilter, OrderState

MAX_ORDERS_PER_RUN = 100  # one acknowledgement batch per run
MAX_ORDERS_PER_SHOP_PER_TICK = 1000
TICK_BUDGET_SECONDS = 40.0  # Dagster gives a sensor tick 60 s by default
DEFERRED = "__deferred__"  # cursor key; shop ids are slugs and can never take this form
POLL_FIELDS = "id,last_updated"  # all the sensor needs: the run reads each order in full


class PollSettings(BaseSettings):
    """How new_orders_sensor polls, from METASYNC_ORDERS_POLL_* variables."""

    model_config = SettingsConfigDict(env_prefix="METASYNC_ORDERS_POLL_", extra="ignore")

    #: Shops polled at once. Each poll mostly waits on Meta, so threads overlap the waits.
    workers: int = 8
    #: Orders per page of commerce_orders. Graph's default is 25; the documented maximum is
    #: unconfirmed (orders.md §3 shows limit=1 only), so this is a setting; a smaller cap on
    #: Meta's side only means more pages (Graph may return fewer items than the limit).
    page_size: int = 500


def ingest_run_key(shop_id: str, orders: list[tuple[str, str]]) -> str:
    """The same orders at the same last_updated give the same key: a re-evaluated tick never
    launches a second run, while an order updated again gets a new one."""
    material = ",".join(f"{order_id}@{updated}" for order_id, updated in sorted(orders))
    return f"ingest:{shop_id}:{hashlib.sha256(material.encode()).hexdigest()[:24]}"


def _load_cursor(raw: str | None) -> dict:
    if not raw:
        return {}
    try:
        cursor = json.loads(raw)
    except ValueError:
        return {}
    return cursor if isinstance(cursor, dict) else {}


def new_orders_for_shop(
    api: OrdersApi,
    state: dict,
    limit: int = MAX_ORDERS_PER_SHOP_PER_TICK,
    page_size: int | None = None,
) -> tuple[list, dict]:
    """The orders to ingest now and the shop's next cursor state. One light request (ids and
    last_updated only) answers a shop with nothing new."""
    watermark = datetime.fromisoformat(state["watermark"]) if state.get("watermark") else None
    seen = set(state.get("seen", []))
    since = watermark - timedelta(seconds=1) if watermark else None
    listed = list_created_orders(api, updated_after=since, fields=POLL_FIELDS, page_size=page_size)
    fresh = [
        o
        for o in listed
        if o.last_updated is not None
        and not (watermark and o.last_updated < watermark)
        and not (o.last_updated == watermark and o.id in seen)
    ][:limit]
    if not fresh:
        return [], state
    newest = max(o.last_updated for o in fresh)
    at_newest = {o.id for o in fresh if o.last_updated == newest}
    if watermark == newest:
        at_newest |= seen
    return fresh, {"watermark": newest.isoformat(), "seen": sorted(at_newest)}


@dataclass
class _ShopPoll:
    shop_id: str
    fresh: list = field(default_factory=list)
    state: dict = field(default_factory=dict)
    error: str | None = None
    deferred: bool = False


def _poll_shop(
    metasync: MetasyncResource,
    shop,
    state: dict,
    transport: httpx.BaseTransport,
    deadline: float,
    page_size: int,
) -> _ShopPoll:
    """One shop's poll; any Graph error stays with the shop (never stops another)."""
    if time.monotonic() > deadline:
        return _ShopPoll(shop.shop_id, state=state, deferred=True)
    try:
        with metasync.graph_for(shop.shop_id, transport=transport) as graph:
            api = OrdersApi(graph, cms_id=shop.cms_id, page_id=shop.page_id)
            fresh, new_state = new_orders_for_shop(api, state, page_size=page_size)
    except GraphError as exc:
        return _ShopPoll(shop.shop_id, state=state, error=str(exc))
    return _ShopPoll(shop.shop_id, fresh, new_state)


class _KeepOpen(httpx.BaseTransport):
    """Hands requests to a shared transport; a client closing it leaves the pool open."""

    def __init__(self, shared: httpx.BaseTransport) -> None:
        self._shared = shared

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        return self._shared.handle_request(request)

    def close(self) -> None:
        return None


@dg.sensor(
    job=ingest_orders_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def new_orders_sensor(context: dg.SensorEvaluationContext, metasync: MetasyncResource):
    """Request an ingest run per shop and batch of new CREATED orders."""
    settings = PollSettings()
    cursor = _load_cursor(context.cursor)
    profiles = {shop.shop_id: shop for shop in metasync.registry().list_shops()}
    eligible, skipped = order_shops(metasync, list(profiles))
    # Shops a time-bounded tick left out last time go first now.
    deferred_before = set(cursor.pop(DEFERRED, []))
    eligible.sort(key=lambda shop_id: (shop_id not in deferred_before, shop_id))
    deadline = time.monotonic() + TICK_BUDGET_SECONDS
    # One connection pool (and TLS context) for the tick instead of one per shop.
    shared = httpx.HTTPTransport(limits=httpx.Limits(max_connections=settings.workers))
    try:
        with ThreadPoolExecutor(max_workers=max(1, settings.workers)) as pool:
            polls = list(
                pool.map(
                    lambda shop_id: _poll_shop(
                        metasync, profiles[shop_id], cursor.get(shop_id, {}),
                        _KeepOpen(shared), deadline, settings.page_size,
                    ),
                    eligible,
                )
            )  # fmt: skip
    finally:
        shared.close()

    requests, errors, deferred = [], {}, []
    for poll in polls:  # in `eligible` order: the cursor and requests do not depend on timing
        if poll.deferred:
            deferred.append(poll.shop_id)
        elif poll.error is not None:
            errors[poll.shop_id] = poll.error  # one shop's failure never stops another
        else:
            cursor[poll.shop_id] = poll.state
            requests.extend(_run_requests(poll.shop_id, poll.fresh))

    if deferred:
        cursor[DEFERRED] = deferred
    if requests:
        return dg.SensorResult(run_requests=requests, cursor=json.dumps(cursor, sort_keys=True))
    reasons = [f"{len(eligible)} eligible shops, no new CREATED orders"]
    reasons += [f"{shop}: {why}" for shop, why in sorted(skipped.items())]
    reasons += [f"{shop}: error {why}" for shop, why in sorted(errors.items())]
    if deferred:
        reasons.append(f"deferred to the next tick: {', '.join(deferred)}")
    context.update_cursor(json.dumps(cursor, sort_keys=True))
    return dg.SkipReason("; ".join(reasons))


def _run_requests(shop_id: str, orders: list) -> list[dg.RunRequest]:
    requests = []
    for start in range(0, len(orders), MAX_ORDERS_PER_RUN):
        batch = orders[start : start + MAX_ORDERS_PER_RUN]
        keyed = [(o.id, o.last_updated.isoformat()) for o in batch]
        requests.append(
            dg.RunRequest(
                run_key=ingest_run_key(shop_id, keyed),
                run_config=ingest_run_config(shop_id, [o.id for o in batch]),
                tags={"shop": shop_id, "trigger": "new_orders_sensor"},
            )
        )
    return requests


# -- OMS changes and Meta-side changes ----------------------------------------------------------

RETRY_BUCKET_MINUTES = 30


def push_run_key(shop_id: str, changes: list, attempts: dict[int, int], bucket: str) -> str:
    """Same changes and attempts in the same half hour -> same key. A set of changes whose run
    died before recording anything is requested again in the next half hour."""
    material = ",".join(f"{c.change_id}#{attempts.get(c.change_id, 0)}" for c in changes)
    digest = hashlib.sha256(f"{material}|{bucket}".encode()).hexdigest()[:24]
    return f"push:{shop_id}:{digest}"


def _bucket(now: datetime) -> str:
    return now.strftime("%Y%m%dT%H") + f"{now.minute // RETRY_BUCKET_MINUTES}"


@dg.sensor(
    job=push_order_changes_job,
    minimum_interval_seconds=120,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def oms_changes_sensor(
    context: dg.SensorEvaluationContext, metasync: MetasyncResource, oms: OmsResource
):
    """Request a push run per shop with OMS changes not yet settled on Meta."""
    shop_ids = [shop.shop_id for shop in metasync.registry().list_shops()]
    eligible, skipped = order_shops(metasync, shop_ids)
    ledger = OrderLedger(metasync.db())
    adapter = oms.adapter()
    bucket = _bucket(utcnow())
    requests = []
    for shop_id in eligible:
        floor = ledger.highest_settled_prefix(shop_id)
        settled = ledger.settled_change_ids(shop_id)
        changes = [
            c
            for c in adapter.changes_for(shop_id, after_change_id=floor, limit=500)
            if c.change_id not in settled
        ]
        if not changes:
            continue
        attempts = {
            c.change_id: (ledger.change_status(shop_id, c.change_id) or {}).get("attempts", 0)
            for c in changes
        }
        requests.append(
            dg.RunRequest(
                run_key=push_run_key(shop_id, changes, attempts, bucket),
                run_config=push_run_config(shop_id, [c.change_id for c in changes]),
                tags={"shop": shop_id, "trigger": "oms_changes_sensor"},
            )
        )
    if requests:
        return requests
    reasons = [f"{len(eligible)} eligible shops, no OMS change waiting for Meta"]
    reasons += [f"{shop}: {why}" for shop, why in sorted(skipped.items())]
    return dg.SkipReason("; ".join(reasons))


# -- bounded, rotating polls of many shops ------------------------------------------------------
# A tick that calls Meta once per shop grows with the shops; Dagster cancels a tick after 60 s.
# These ticks poll on a bounded thread pool until a time budget runs out; the shops left over
# are deferred and go first on the next tick, so every shop is visited within a few ticks and a
# tick never runs past its budget by more than one poll.


class TickSettings(BaseSettings):
    """How meta_changes_sensor and created_orders_sweep_schedule poll, from
    METASYNC_ORDERS_TICK_* variables."""

    model_config = SettingsConfigDict(env_prefix="METASYNC_ORDERS_TICK_", extra="ignore")

    #: Seconds a tick may spend starting polls; one poll in flight can add its own time.
    budget_seconds: float = 40.0
    #: Shops polled at once; each poll mostly waits on Meta.
    workers: int = 8


@dataclass
class ShopPolls:
    """What a bounded tick learnt: results and errors of the shops it polled (in polling
    order), and the shops it had no time for."""

    results: dict[str, Any] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    deferred: list[str] = field(default_factory=list)

    @property
    def visited(self) -> list[str]:
        return [*self.results, *self.errors]


def rotate(shop_ids: list[str], start_at: str | None) -> list[str]:
    """The shops in id order, starting at `start_at` (or the next id when it left), wrapping."""
    ordered = sorted(shop_ids)
    if not start_at:
        return ordered
    cut = bisect.bisect_left(ordered, start_at)
    return ordered[cut:] + ordered[:cut]


def poll_shops(
    shop_ids: list[str],
    poll: Callable[[str], Any],
    budget_seconds: float,
    workers: int,
    clock: Callable[[], float] = time.monotonic,
) -> ShopPolls:
    """`poll(shop_id)` for each shop in order on `workers` threads until the budget is spent.

    Polls start in list order (the pool's queue is first in, first out), so the deferred shops
    are the tail of the list. Any exception stays with its shop: recorded, never raised."""
    deadline = clock() + budget_seconds

    def one(shop_id: str) -> tuple[str, Any]:
        if clock() > deadline:
            return "deferred", None
        try:
            return "ok", poll(shop_id)
        except Exception as exc:  # noqa: BLE001 (one shop's failure never stops another)
            return "error", f"{type(exc).__name__}: {exc}"

    with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
        outcomes = list(pool.map(one, shop_ids))
    polls = ShopPolls()
    for shop_id, (kind, value) in zip(shop_ids, outcomes, strict=True):
        if kind == "ok":
            polls.results[shop_id] = value
        elif kind == "error":
            polls.errors[shop_id] = value
        else:
            polls.deferred.append(shop_id)
    return polls


def shared_transport(workers: int) -> httpx.HTTPTransport:
    """One connection pool for a tick's polls (wrap it in `_KeepOpen` per client)."""
    return httpx.HTTPTransport(limits=httpx.Limits(max_connections=max(1, workers)))


def deferred_note(deferred: list[str], show: int = 20) -> str:
    """The deferred shops for a skip reason or log line, the list cut short past `show`."""
    if not deferred:
        return ""
    listed = ", ".join(deferred[:show])
    more = f" and {len(deferred) - show} more" if len(deferred) > show else ""
    return f"{len(deferred)} shops deferred to the next tick (time budget): {listed}{more}"


@dg.sensor(
    job=pull_meta_changes_job,
    minimum_interval_seconds=600,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def meta_changes_sensor(context: dg.SensorEvaluationContext, metasync: MetasyncResource):
    """Request a pull run per shop whose orders gained cancellations or refunds on Meta since
    the shop's watermark. Buyer returns are read by every pull run.

    Bounded: shops are polled in rotation from the cursor's `next` shop until the tick's time
    budget is spent; the rest wait for the next tick (listed in the cursor and the skip reason)."""
    settings = TickSettings()
    cursor = _load_cursor(context.cursor)
    profiles = {shop.shop_id: shop for shop in metasync.registry().list_shops()}
    eligible, skipped = order_shops(metasync, list(profiles))
    ledger = OrderLedger(metasync.db())
    shared = shared_transport(settings.workers)

    def poll(shop_id: str) -> str:
        shop = profiles[shop_id]
        since = ledger.watermark(shop_id, WATERMARK_STREAM)
        with metasync.graph_for(shop_id, transport=_KeepOpen(shared)) as graph:
            api = OrdersApi(graph, cms_id=shop.cms_id, page_id=shop.page_id)
            return _has_meta_side_changes(api, since)

    try:
        polls = poll_shops(
            rotate(eligible, cursor.get("next")), poll, settings.budget_seconds, settings.workers
        )
    finally:
        shared.close()

    bucket = _bucket(utcnow())
    requests = [
        dg.RunRequest(
            run_key=f"pull:{shop_id}:{changed}:{bucket}",
            run_config=pull_run_config(shop_id),
            tags={"shop": shop_id, "trigger": "meta_changes_sensor"},
        )
        for shop_id, changed in polls.results.items()
        if changed
    ]
    next_cursor = json.dumps(
        {"next": polls.deferred[0] if polls.deferred else None, "deferred": polls.deferred},
        sort_keys=True,
    )
    note = deferred_note(polls.deferred)
    if note:
        context.log.info(f"meta_changes_sensor: polled {len(polls.visited)} shops; {note}")
    context.update_cursor(next_cursor)
    if requests:
        return requests
    reasons = [
        f"{len(polls.visited)} of {len(eligible)} eligible shops polled, "
        "no Meta-side change since their watermark"
    ]
    reasons += [note] if note else []
    reasons += [f"{s}: {why}" for s, why in sorted({**skipped, **polls.errors}.items())]
    return dg.SkipReason("; ".join(reasons))


def _has_meta_side_changes(api: OrdersApi, since: datetime | None) -> str:
    """The newest last_updated among changed orders ('' when none): part of the run key."""
    after = since - timedelta(seconds=1) if since else None
    newest = ""
    for filter_ in (OrderFilter.HAS_CANCELLATIONS, OrderFilter.HAS_REFUNDS):
        for order in api.list_orders(
            states=(OrderState.IN_PROGRESS, OrderState.COMPLETED),
            updated_after=after,
            filters=[filter_],
            fields="id,last_updated",
        ):
            if order.last_updated and (since is None or order.last_updated > since):
                newest = max(newest, order.last_updated.isoformat())
    return newest

"""The sandbox's catalog backend: items, batch handles, feeds and upload sessions, product sets,
item issues and diagnostics, per shop catalog (catalog.md §2-§7).

    backend = catalog_backend(state)                 # kept in state.domains["catalog"]
    handles, status = backend.items_batch(shop, requests, allow_upsert=True)
    backend.batch_status(shop, handle)               # one poll: the handle moves on

Work Meta does asynchronously (a batch, an upload session) is planned when it is posted and
applied when it ends. It ends after `SandboxConfig.batch_handle_steps` /
`upload_session_steps` polls, or once the sandbox clock passes `CatalogSettings.step_seconds`
per step, whichever comes first; reads of the catalog settle whatever has ended by the clock, so
an unpolled handle still takes effect. Errored records are never persisted.
"""

import base64
import json
import secrets
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sandbox.catalog import filters
from sandbox.catalog.feeds import FeedFormatError, parse_feed
from sandbox.catalog.validation import (
    DEFAULT_FIELD_LIMITS,
    Findings,
    Problem,
    parse_price,
    validate_item,
)
from sandbox.core.errors import GraphApiError, InvalidParameter, Throttled, UnknownObject
from sandbox.core.state import SandboxShop, SandboxState

BATCH_STATES = ("scheduled", "dispatched", "started")
CURRENCY_SYMBOLS = {"USD": "$", "EUR": "€", "GBP": "£", "JPY": "¥"}
TOO_MUCH_DATA = "Please reduce the amount of data you're asking for, then retry your request"


@dataclass
class CatalogSettings:
    """Catalog behaviour Meta leaves open or that tests want small; every choice a setting."""

    max_batch_requests: int = 5000
    max_batch_bytes: int = 28 * 1024 * 1024
    field_limits: dict[str, int] = field(default_factory=lambda: dict(DEFAULT_FIELD_LIMITS))
    require_image: bool = True
    # Sandbox-clock seconds per handle / upload-session step (Meta: about 2 minutes in all).
    step_seconds: float = 30.0
    # Catalog Batch BUC: calls per catalog per rolling minute before 80014 (None: no limit).
    batch_calls_per_minute: int | None = None
    error_sample_limit: int = 100
    max_feed_bytes: int = 100 * 1024 * 1024  # unconfirmed: Meta publishes no upload limit
    # Read-side `price` formatting is unconfirmed (§2.5): "iso" -> "9.99 EUR", "display" -> "€9.99".
    price_read_format: str = "iso"
    # Which items a replace upload deletes when missing from the file: "feed" (items this feed
    # last delivered) or "catalog" (every item in the catalog).
    replace_scope: str = "feed"
    # Files the sandbox "fetches" for `url=` uploads: it never goes to the network.
    hosted_files: dict[str, bytes] = field(default_factory=dict)


@dataclass
class CatalogFaults:
    """Catalog-only fault options for one shop (set through the admin API)."""

    partial_failure_share: float = 0.0  # share of otherwise valid records rejected
    partial_failure_reason: str = "Internal error while processing the item; retry later"
    handle_error: bool = False  # batches end in status "error" with nothing applied
    extra_upload_polls: int = 0  # upload sessions need this many more polls to end
    accumulator: float = 0.0  # spreads rejections evenly: share 0.25 -> every 4th record


@dataclass
class StoredItem:
    graph_id: str
    retailer_id: str
    data: dict[str, Any]  # feed / items_batch vocabulary
    feed_id: str | None = None
    # Meta-side review findings: {error_type, error_priority, title, description,
    # call_to_action, field?}; one carrying `field` clears when that field changes.
    issues: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class BatchRecord:
    line: int
    method: str
    data: dict[str, Any]
    findings: Findings
    injected_failure: str | None = None


@dataclass
class Batch:
    handle: str
    created_at: datetime
    records: list[BatchRecord]
    allow_upsert: bool
    fails: bool = False
    polls: int = 0
    status: str = "scheduled"
    errors: list[dict[str, Any]] = field(default_factory=list)
    warnings: list[dict[str, Any]] = field(default_factory=list)
    invalid_ids: list[str] = field(default_factory=list)


@dataclass
class Feed:
    feed_id: str
    name: str
    created_time: datetime
    schedule: Any = None
    update_schedule: Any = None
    latest_upload: str | None = None


@dataclass
class UploadSession:
    session_id: str
    feed_id: str
    start_time: datetime
    content: bytes | None
    update_only: bool
    input_method: str
    filename: str | None = None
    url: str | None = None
    steps: int = 1
    polls: int = 0
    end_time: datetime | None = None
    counts: dict[str, int] = field(default_factory=dict)
    # grouped errors: (severity, summary) -> {"description", "rows": [(row, retailer_id)]}
    error_groups: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)


@dataclass
class ProductSet:
    set_id: str
    name: str
    rule: dict[str, Any]
    retailer_id: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)


@dataclass
class CatalogData:
    catalog_id: str
    shop_id: str
    items: dict[str, StoredItem] = field(default_factory=dict)  # by retailer_id
    by_graph_id: dict[str, str] = field(default_factory=dict)  # graph id -> retailer_id
    batches: dict[str, Batch] = field(default_factory=dict)
    feeds: dict[str, Feed] = field(default_factory=dict)
    sessions: dict[str, UploadSession] = field(default_factory=dict)
    product_sets: dict[str, ProductSet] = field(default_factory=dict)
    batch_calls: list[datetime] = field(default_factory=list)
    # item_group_id -> how many items name it: the "id is a group id" rule in O(1) per record.
    group_ids: dict[str, int] = field(default_factory=dict)

    def count_group(self, group_id: Any, delta: int) -> None:
        if not group_id:
            return
        count = self.group_ids.get(group_id, 0) + delta
        if count > 0:
            self.group_ids[group_id] = count
        else:
            self.group_ids.pop(group_id, None)


class CatalogBackend:
    """Every catalog rule; the HTTP handlers in responses.py only translate."""

    def __init__(self, state: SandboxState, settings: CatalogSettings | None = None) -> None:
        self.state = state
        self.settings = settings or CatalogSettings()
        self.catalogs: dict[str, CatalogData] = {}
        self.faults: dict[str, CatalogFaults] = {}

    # -- catalogs -------------------------------------------------------------------------------

    def catalog(self, shop: SandboxShop) -> CatalogData:
        data = self.catalogs.get(shop.catalog_id)
        if data is None:
            data = self.catalogs[shop.catalog_id] = CatalogData(shop.catalog_id, shop.shop_id)
        return data

    def faults_for(self, shop_id: str) -> CatalogFaults:
        return self.faults.setdefault(shop_id, CatalogFaults())

    def settle(self, shop: SandboxShop) -> None:
        """Finish every batch and upload session whose time has come by the sandbox clock."""
        catalog = self.catalog(shop)
        for batch in catalog.batches.values():
            if batch.status in BATCH_STATES and self._batch_progress(batch) > self._batch_steps():
                self._finish_batch(catalog, batch)
        for session in catalog.sessions.values():
            if session.end_time is None and self._session_progress(session) > session.steps:
                self._finish_session(catalog, session)

    def finish_pending(self, shop: SandboxShop) -> None:
        """Finish every pending batch and upload session now, whatever their polls."""
        catalog = self.catalog(shop)
        for batch in catalog.batches.values():
            if batch.status in BATCH_STATES:
                self._finish_batch(catalog, batch)
        for session in catalog.sessions.values():
            if session.end_time is None:
                self._finish_session(catalog, session)

    # -- items_batch ----------------------------------------------------------------------------

    def items_batch(
        self, shop: SandboxShop, item_type: str, requests: Any, allow_upsert: bool
    ) -> dict[str, Any]:
        if item_type != "PRODUCT_ITEM":
            raise InvalidParameter(
                f"(#100) item_type {item_type!r} does not match this catalog's vertical "
                "(commerce catalogs take PRODUCT_ITEM)"
            )
        self._check_batch_rate(shop)
        if not isinstance(requests, list) or not requests:
            raise InvalidParameter("(#100) Param requests must be a non-empty JSON array")
        if len(requests) > self.settings.max_batch_requests:
            raise InvalidParameter(
                f"(#100) requests holds {len(requests)} records; at most "
                f"{self.settings.max_batch_requests} are allowed per call"
            )
        if len(json.dumps(requests).encode()) > self.settings.max_batch_bytes:
            raise GraphApiError(TOO_MUCH_DATA, code=1, error_type="OAuthException")

        faults = self.faults_for(shop.shop_id)
        records = [self._plan_record(line, raw, faults) for line, raw in enumerate(requests)]
        handle = _opaque_handle()
        batch = Batch(handle, self.state.now(), records, allow_upsert, fails=faults.handle_error)
        self.catalog(shop).batches[handle] = batch
        return {"handles": [handle], "validation_status": _validation_status(records)}

    def _plan_record(self, line: int, raw: Any, faults: CatalogFaults) -> BatchRecord:
        findings = Findings()
        method = raw.get("method") if isinstance(raw, dict) else None
        data = raw.get("data") if isinstance(raw, dict) else None
        if method not in ("CREATE", "UPDATE", "DELETE") or not isinstance(data, dict):
            findings.error(
                "Invalid request",
                "Invalid request: each request needs method CREATE, UPDATE or DELETE and a "
                "data object",
            )
            return BatchRecord(line, str(method), data if isinstance(data, dict) else {}, findings)
        findings = validate_item(
            data,
            method=method,
            field_limits=self.settings.field_limits,
            require_image=self.settings.require_image,
        )
        record = BatchRecord(line, method, data, findings)
        if findings.ok and faults.partial_failure_share > 0:
            faults.accumulator += faults.partial_failure_share
            if faults.accumulator >= 1:
                faults.accumulator -= 1
                record.injected_failure = faults.partial_failure_reason
        return record

    def _check_batch_rate(self, shop: SandboxShop) -> None:
        limit = self.settings.batch_calls_per_minute
        if limit is None:
            return
        catalog = self.catalog(shop)
        now = self.state.now()
        catalog.batch_calls = [t for t in catalog.batch_calls if now - t < timedelta(minutes=1)]
        if len(catalog.batch_calls) >= limit:
            error = Throttled(
                80014,
                "(#80014) There have been too many calls for the batch uploads to this catalog "
                "account. Wait a bit and try again.",
            )
            usage = {
                "type": "catalog_batch",  # assumption: Meta documents no catalog type name
                "call_count": 100,
                "total_cputime": 0,
                "total_time": 0,
                "estimated_time_to_regain_access": 1,
            }
            error.headers = {"x-business-use-case-usage": json.dumps({shop.catalog_id: [usage]})}
            raise error
        catalog.batch_calls.append(now)

    def batch_status(self, shop: SandboxShop, handle: str, load_ids: bool) -> dict[str, Any]:
        catalog = self.catalog(shop)
        batch = catalog.batches.get(handle)
        if batch is None:
            raise InvalidParameter(f"(#100) No batch request with handle {handle!r} in catalog")
        if batch.status in BATCH_STATES:
            batch.polls += 1
            progress = self._batch_progress(batch)
            if progress > self._batch_steps():
                self._finish_batch(catalog, batch)
            else:
                batch.status = BATCH_STATES[min(progress - 1, len(BATCH_STATES) - 1)]
        return {"data": [self._status_body(batch, load_ids)]}

    def _batch_steps(self) -> int:
        return self.state.config.batch_handle_steps

    def _batch_progress(self, batch: Batch) -> int:
        return batch.polls + self._clock_steps(batch.created_at)

    def _clock_steps(self, since: datetime) -> int:
        step = self.settings.step_seconds
        if step <= 0:
            return 1_000_000
        return int((self.state.now() - since).total_seconds() // step)

    def _status_body(self, batch: Batch, load_ids: bool) -> dict[str, Any]:
        limit = self.settings.error_sample_limit
        return {
            "handle": batch.handle,
            "status": batch.status,
            "errors": batch.errors[:limit],
            "errors_total_count": len(batch.errors),
            "warnings": batch.warnings[:limit],
            "warnings_total_count": len(batch.warnings),
            "ids_of_invalid_requests": list(batch.invalid_ids) if load_ids else [],
        }

    def _finish_batch(self, catalog: CatalogData, batch: Batch) -> None:
        if batch.fails:
            # Meta: "unexpected failure; some records may not be applied". Here: none are.
            batch.status = "error"
            batch.invalid_ids = [str(r.data.get("id", "")) for r in batch.records]
            return
        for record in batch.records:
            retailer_id = str(record.data.get("id", ""))
            for problem in record.findings.warnings:
                batch.warnings.append(_line(record.line, retailer_id, problem.message))
            failures = [p.message for p in record.findings.errors]
            if not failures and record.injected_failure:
                failures = [record.injected_failure]
            if not failures:
                failures = self._apply_record(catalog, record, batch.allow_upsert)
            for message in failures:
                batch.errors.append(_line(record.line, retailer_id, message))
            if failures:
                batch.invalid_ids.append(retailer_id)
        batch.status = "finished"

    def _apply_record(
        self, catalog: CatalogData, record: BatchRecord, allow_upsert: bool
    ) -> list[str]:
        """Apply one valid record; the messages of the rules only the stored state can judge."""
        retailer_id = record.data["id"]
        existing = catalog.items.get(retailer_id)
        if record.method == "DELETE":
            if existing is not None:
                self._delete_item(catalog, existing)
            return []
        if record.method == "UPDATE" and existing is None and not allow_upsert:
            return [f"Item {retailer_id} does not exist and allow_upsert is false; not created"]
        if record.method == "UPDATE" and existing is not None:
            merged = existing.data | record.data
        else:
            merged = dict(record.data)
        if record.method == "UPDATE" and existing is None:
            # An UPDATE that creates (allow_upsert) must carry a whole item.
            findings = validate_item(
                merged,
                method="CREATE",
                field_limits=self.settings.field_limits,
                require_image=self.settings.require_image,
            )
            if not findings.ok:
                return [p.message for p in findings.errors]
        return self._store(catalog, merged, feed_id=existing.feed_id if existing else None)

    def _store(self, catalog: CatalogData, data: dict[str, Any], feed_id: str | None) -> list[str]:
        """Persist a validated whole item, unless it breaks a rule across items."""
        retailer_id = data["id"]
        existing = catalog.items.get(retailer_id)
        if self._is_group_id(catalog, retailer_id):
            return [
                f"Invalid value: the id '{retailer_id}' is already used as an item_group_id in "
                "this catalog; an item id must not equal any item group id"
            ]
        group = data.get("item_group_id")
        if group and group != retailer_id and group in catalog.items:
            return [f"Invalid value: item_group_id '{group}' is the id of an item"]

        if existing is None:
            existing = StoredItem(self.state.new_id(), retailer_id, {}, feed_id)
            catalog.items[retailer_id] = existing
            catalog.by_graph_id[existing.graph_id] = retailer_id
            self.state.register_node(existing.graph_id, "product_item", catalog.shop_id)
        changed = {k for k in set(data) | set(existing.data) if data.get(k) != existing.data.get(k)}
        existing.issues = [i for i in existing.issues if i.get("field") not in changed]
        catalog.count_group(existing.data.get("item_group_id"), -1)
        catalog.count_group(data.get("item_group_id"), +1)
        existing.data = data
        existing.feed_id = feed_id
        return []

    def _is_group_id(self, catalog: CatalogData, retailer_id: str) -> bool:
        return catalog.group_ids.get(retailer_id, 0) > 0

    def _delete_item(self, catalog: CatalogData, item: StoredItem) -> None:
        catalog.items.pop(item.retailer_id, None)
        catalog.count_group(item.data.get("item_group_id"), -1)
        catalog.by_graph_id.pop(item.graph_id, None)
        self.state.nodes.pop(item.graph_id, None)

    # -- items read / delete --------------------------------------------------------------------

    def item_by_graph_id(self, shop: SandboxShop, graph_id: str, method: str) -> StoredItem:
        catalog = self.catalog(shop)
        retailer_id = catalog.by_graph_id.get(graph_id)
        if retailer_id is None:
            raise UnknownObject(graph_id, method)
        return catalog.items[retailer_id]

    def delete_item(self, shop: SandboxShop, graph_id: str) -> None:
        self.settle(shop)
        self._delete_item(self.catalog(shop), self.item_by_graph_id(shop, graph_id, "delete"))

    def list_items(
        self,
        shop: SandboxShop,
        rule: dict[str, Any] | None = None,
        error_priority: str | None = None,
        error_type: str | None = None,
    ) -> list[StoredItem]:
        self.settle(shop)
        items = sorted(self.catalog(shop).items.values(), key=lambda i: int(i.graph_id))
        selected = []
        for item in items:
            issues = self.item_issues(item) if error_priority or error_type else []
            if error_priority and not any(i["error_priority"] == error_priority for i in issues):
                continue
            if error_type and not any(i["error_type"] == error_type for i in issues):
                continue
            if rule and not filters.matches(rule, self.filter_view(item)):
                continue
            selected.append(item)
        return selected

    def item_issues(self, item: StoredItem) -> list[dict[str, Any]]:
        """Meta-side findings on an accepted item: injected review issues plus derived ones."""
        derived = []
        data = item.data
        quantity = data.get("quantity_to_sell_on_facebook")
        if data.get("availability") == "in stock" and str(quantity) == "0":
            derived.append(
                _issue(
                    "INVENTORY_ZERO_AVAILABILITY_IN_STOCK",
                    "MEDIUM",
                    "Item is in stock with zero inventory",
                    "The item is listed as in stock but has no quantity to sell.",
                    "Update the availability or the quantity.",
                )
            )
        title, description = data.get("title"), data.get("description")
        if title and description and title.strip().lower() == description.strip().lower():
            derived.append(
                _issue(
                    "DUPLICATE_TITLE_AND_DESCRIPTION",
                    "LOW",
                    "Title and description are the same",
                    "Descriptions must differ from titles.",
                    "Write a description that tells more than the title.",
                )
            )
        return [{k: v for k, v in i.items() if k != "field"} for i in item.issues] + derived

    def review_status(self, item: StoredItem) -> str:
        return _review_status(self.item_issues(item))

    def read_view(self, item: StoredItem) -> dict[str, Any]:
        """The item in ProductItem read vocabulary (§2.1)."""
        data = item.data
        view: dict[str, Any] = {"id": item.graph_id, "retailer_id": item.retailer_id}
        for read_name, feed_name in READ_FIELDS.items():
            if data.get(feed_name) not in (None, ""):
                view[read_name] = data[feed_name]
        image = data.get("image")
        if "image_url" not in view and isinstance(image, list) and image:
            view["image_url"] = image[0].get("url")
        for name in ("price", "sale_price"):
            if data.get(name):
                price = parse_price(data[name])
                view[name] = self._format_price(price.amount, price.currency)
                view["currency"] = price.currency
        view["visibility"] = (
            "staging" if data.get("status") in ("archived", "staging") else ("published")
        )
        issues = self.item_issues(item)
        view["review_status"] = _review_status(issues)
        view["errors"] = issues
        if item.feed_id:
            view["product_feed"] = {"id": item.feed_id}
        return view

    def filter_view(self, item: StoredItem) -> dict[str, Any]:
        view = self.read_view(item)
        view["product_item_id"] = item.graph_id
        view["product_feed_id"] = view["feed_id"] = item.feed_id
        view["internal_label"] = [str(v).lower() for v in item.data.get("internal_label") or []]
        for name in ("price", "sale_price"):
            if item.data.get(name):
                view[f"{name}_amount"] = parse_price(item.data[name]).minor_units
        return view

    def _format_price(self, amount: Any, currency: str) -> str:
        if self.settings.price_read_format == "display" and currency in CURRENCY_SYMBOLS:
            return f"{CURRENCY_SYMBOLS[currency]}{amount}"
        return f"{amount} {currency}"

    # -- issues and diagnostics -----------------------------------------------------------------

    def add_issue(self, shop: SandboxShop, retailer_id: str, issue: dict[str, Any]) -> None:
        self.settle(shop)
        item = self.catalog(shop).items.get(retailer_id)
        if item is None:
            raise KeyError(retailer_id)
        item.issues.append(issue)

    def diagnostics(
        self, shop: SandboxShop, severities: list[str] | None, types: list[str] | None
    ) -> list[dict[str, Any]]:
        """Item issues aggregated into diagnostic groups (§6.1): one group per type/severity."""
        groups: dict[tuple[str, str], dict[str, dict[str, Any]]] = {}
        for item in self.list_items(shop):
            for issue in self.item_issues(item):
                group_type = diagnostic_type(issue["error_type"])
                severity = "MUST_FIX" if issue["error_priority"] == "HIGH" else "OPPORTUNITY"
                by_error = groups.setdefault((group_type, severity), {})
                entry = by_error.setdefault(issue["error_type"], {"issue": issue, "items": []})
                entry["items"].append(item)
        rows = []
        for (group_type, severity), by_error in sorted(groups.items()):
            if severities and severity not in severities or types and group_type not in types:
                continue
            rows.append(self._diagnostic_group(group_type, severity, by_error))
        return rows

    def _diagnostic_group(
        self, group_type: str, severity: str, by_error: dict[str, dict[str, Any]]
    ) -> dict[str, Any]:
        diagnostics = []
        affected: set[str] = set()
        for error_type, entry in sorted(by_error.items()):
            items = entry["items"]
            affected.update(item.retailer_id for item in items)
            diagnostics.append(
                {
                    "type": error_type,
                    "title": entry["issue"].get("title"),
                    "description": f"{len(items)} items need to be fixed",
                    "call_to_action": entry["issue"].get("call_to_action"),
                    "number_of_affected_items": len(items),
                    "sample_affected_items": [
                        {"content_id": item.retailer_id, "id": item.graph_id} for item in items[:10]
                    ],
                }
            )
        return {
            "type": group_type,
            "severity": severity,
            "title": DIAGNOSTIC_TITLES.get(group_type, "Items have issues"),
            "subtitle": "Fix these issues so the items can be shown and sold.",
            "affected_entity": "product_item",
            "number_of_affected_items": len(affected),
            "diagnostics": diagnostics,
        }

    # -- feeds and upload sessions --------------------------------------------------------------

    def create_feed(self, shop: SandboxShop, name: str, params: dict[str, Any]) -> Feed:
        feed = Feed(
            self.state.new_id(),
            name,
            self.state.now(),
            params.get("schedule"),
            params.get("update_schedule"),
        )
        self.catalog(shop).feeds[feed.feed_id] = feed
        self.state.register_node(feed.feed_id, "product_feed", shop.shop_id)
        return feed

    def feed(self, shop: SandboxShop, feed_id: str) -> Feed:
        feed = self.catalog(shop).feeds.get(feed_id)
        if feed is None:
            raise UnknownObject(feed_id)
        return feed

    def feed_view(self, shop: SandboxShop, feed: Feed) -> dict[str, Any]:
        self.settle(shop)
        count = sum(1 for i in self.catalog(shop).items.values() if i.feed_id == feed.feed_id)
        view: dict[str, Any] = {
            "id": feed.feed_id,
            "name": feed.name,
            "created_time": _iso(feed.created_time),
            "product_count": count,
        }
        if feed.schedule:
            view["schedule"] = feed.schedule
        if feed.update_schedule:
            view["update_schedule"] = feed.update_schedule
        if feed.latest_upload:
            view["latest_upload"] = {"id": feed.latest_upload}
        return view

    def start_upload(
        self,
        shop: SandboxShop,
        feed: Feed,
        *,
        content: bytes | None,
        url: str | None,
        update_only: bool,
        filename: str | None,
    ) -> UploadSession:
        if content is None and not url:
            raise InvalidParameter("(#100) An upload needs a file or a url")
        if url and not url.startswith(("http://", "https://", "ftp://", "sftp://")):
            raise InvalidParameter("(#100) Param url must be an http(s) or ftp URL")
        if content is not None and len(content) > self.settings.max_feed_bytes:
            raise InvalidParameter(
                f"(#100) The file is {len(content)} bytes; uploads are limited to "
                f"{self.settings.max_feed_bytes} bytes"
            )
        if content is None:
            content = self.settings.hosted_files.get(url or "")
        session = UploadSession(
            self.state.new_id(),
            feed.feed_id,
            self.state.now(),
            content,
            update_only,
            "User initiated server fetch" if url else "Manual Upload",
            filename=filename,
            url=url,
            steps=self.state.config.upload_session_steps
            + self.faults_for(shop.shop_id).extra_upload_polls,
        )
        self.catalog(shop).sessions[session.session_id] = session
        self.state.register_node(session.session_id, "feed_upload", shop.shop_id)
        feed.latest_upload = session.session_id
        return session

    def session(self, shop: SandboxShop, session_id: str) -> UploadSession:
        session = self.catalog(shop).sessions.get(session_id)
        if session is None:
            raise UnknownObject(session_id)
        return session

    def poll_session(self, shop: SandboxShop, session: UploadSession) -> dict[str, Any]:
        if session.end_time is None:
            session.polls += 1
            if self._session_progress(session) > session.steps:
                self._finish_session(self.catalog(shop), session)
        return self.session_view(session)

    def _session_progress(self, session: UploadSession) -> int:
        return session.polls + self._clock_steps(session.start_time)

    def session_view(self, session: UploadSession) -> dict[str, Any]:
        view: dict[str, Any] = {
            "id": session.session_id,
            "start_time": _iso(session.start_time),
            "input_method": session.input_method,
            "error_report": {"report_status": "NOT_REQUESTED"},
        }
        if session.filename:
            view["filename"] = session.filename
        if session.url:
            view["url"] = session.url
        if session.end_time is not None:
            view["end_time"] = _iso(session.end_time)
            view.update(session.counts)
        return view

    def session_errors(
        self, session: UploadSession, error_priority: str | None
    ) -> list[dict[str, Any]]:
        wanted = {"HIGH": "fatal", "MEDIUM": "warning", "LOW": "warning"}.get(
            (error_priority or "").upper()
        )
        rows = []
        for index, ((severity, summary), group) in enumerate(session.error_groups.items()):
            if wanted and severity != wanted:
                continue
            rows.append(
                {
                    "id": int(session.session_id) * 100 + index,
                    "summary": summary,
                    "description": group["description"],
                    "severity": severity,
                    "total_count": len(group["rows"]),
                    "samples": {
                        "data": [
                            {"row_number": row, "retailer_id": rid, "id": gid}
                            for row, rid, gid in group["rows"][: self.settings.error_sample_limit]
                        ]
                    },
                }
            )
        return rows

    def _finish_session(self, catalog: CatalogData, session: UploadSession) -> None:
        session.end_time = self.state.now()
        counts = dict.fromkeys(
            (
                "num_detected_items",
                "num_invalid_items",
                "num_persisted_items",
                "num_deleted_items",
                "error_count",
                "warning_count",
            ),
            0,
        )
        session.counts = counts
        if session.content is None:
            self._group(
                session,
                "fatal",
                "Feed could not be fetched",
                (
                    f"The file at {session.url} could not be downloaded. Check that the URL is "
                    "reachable and returns the feed file."
                ),
                0,
                "",
            )
            counts["error_count"] = 1
            return
        try:
            rows = parse_feed(session.content)
        except FeedFormatError as exc:
            self._group(session, "fatal", "The feed file could not be read", str(exc), 1, "")
            counts["error_count"] = 1
            return

        counts["num_detected_items"] = len(rows)
        duplicates = _duplicate_ids(rows)
        seen: set[str] = set()
        for row in rows:
            retailer_id = str(row.data.get("id", ""))
            if retailer_id in duplicates:
                problems = [
                    Problem(
                        "Duplicate id",
                        (
                            f"The id {retailer_id} appears more than once in the file; "
                            "every instance was ignored"
                        ),
                    )
                ]
            else:
                problems = self._feed_row(catalog, session, row)
            existing = catalog.items.get(retailer_id)
            gid = existing.graph_id if existing else ""
            for problem in problems:
                self._group(
                    session,
                    "fatal",
                    problem.summary,
                    problem.message,
                    row.row_number,
                    retailer_id,
                    gid,
                )
            if problems:
                counts["num_invalid_items"] += 1
            else:
                counts["num_persisted_items"] += 1
                seen.add(retailer_id)
        if not session.update_only:
            counts["num_deleted_items"] = self._delete_missing(catalog, session.feed_id, seen)
        counts["error_count"] = sum(
            len(g["rows"]) for (sev, _), g in session.error_groups.items() if sev == "fatal"
        )
        counts["warning_count"] = sum(
            len(g["rows"]) for (sev, _), g in session.error_groups.items() if sev == "warning"
        )

    def _feed_row(self, catalog: CatalogData, session: UploadSession, row) -> list[Problem]:
        retailer_id = row.data.get("id")
        existing = catalog.items.get(retailer_id) if isinstance(retailer_id, str) else None
        # A replace upload states whole items; an update-only row may carry id + changed columns.
        method = "UPDATE" if session.update_only and existing is not None else "CREATE"
        findings = validate_item(
            row.data,
            method=method,
            field_limits=self.settings.field_limits,
            require_image=self.settings.require_image,
        )
        for problem in findings.warnings:
            gid = existing.graph_id if existing else ""
            self._group(
                session,
                "warning",
                problem.summary,
                problem.message,
                row.row_number,
                str(retailer_id),
                gid,
            )
        if not findings.ok:
            return findings.errors
        merged = existing.data | row.data if method == "UPDATE" and existing else dict(row.data)
        messages = self._store(catalog, merged, feed_id=session.feed_id)
        return [Problem("Invalid item", message) for message in messages]

    def _delete_missing(self, catalog: CatalogData, feed_id: str, seen: set[str]) -> int:
        doomed = [
            item
            for item in catalog.items.values()
            if item.retailer_id not in seen
            and (self.settings.replace_scope == "catalog" or item.feed_id == feed_id)
        ]
        for item in doomed:
            self._delete_item(catalog, item)
        return len(doomed)

    @staticmethod
    def _group(session, severity, summary, description, row, retailer_id, gid="") -> None:
        group = session.error_groups.setdefault(
            (severity, summary), {"description": description, "rows": []}
        )
        group["rows"].append((row, retailer_id, gid))

    # -- product sets ---------------------------------------------------------------------------

    def create_product_set(
        self, shop: SandboxShop, name: str, raw_filter: Any, params: dict[str, Any]
    ) -> ProductSet:
        rule = filters.parse_filter(raw_filter)
        self._refuse_duplicate_filter(shop, rule, exclude=None)
        product_set = ProductSet(
            self.state.new_id(), name, rule, params.get("retailer_id"), params.get("metadata") or {}
        )
        self.catalog(shop).product_sets[product_set.set_id] = product_set
        self.state.register_node(product_set.set_id, "product_set", shop.shop_id)
        return product_set

    def update_product_set(
        self, shop: SandboxShop, product_set: ProductSet, params: dict[str, Any]
    ) -> None:
        if "filter" in params:
            rule = filters.parse_filter(params["filter"])
            self._refuse_duplicate_filter(shop, rule, exclude=product_set.set_id)
            product_set.rule = rule
        if params.get("name"):
            product_set.name = params["name"]
        if "metadata" in params:
            product_set.metadata = params["metadata"] or {}

    def _refuse_duplicate_filter(
        self, shop: SandboxShop, rule: dict[str, Any], exclude: str | None
    ) -> None:
        wanted = filters.canonical(rule)
        for other in self.catalog(shop).product_sets.values():
            if other.set_id != exclude and filters.canonical(other.rule) == wanted:
                raise GraphApiError(
                    f"(#10803) A product set with the same filters already exists: {other.set_id}",
                    code=10803,
                    error_type="OAuthException",
                    error_data={"product_set_id": other.set_id},
                )

    def product_set(self, shop: SandboxShop, set_id: str) -> ProductSet:
        product_set = self.catalog(shop).product_sets.get(set_id)
        if product_set is None:
            raise UnknownObject(set_id)
        return product_set

    def delete_product_set(self, shop: SandboxShop, set_id: str) -> None:
        self.product_set(shop, set_id)
        self.catalog(shop).product_sets.pop(set_id)
        self.state.nodes.pop(set_id, None)

    def product_set_items(self, shop: SandboxShop, product_set: ProductSet) -> list[StoredItem]:
        return self.list_items(shop, product_set.rule)

    def product_set_view(self, shop: SandboxShop, product_set: ProductSet) -> dict[str, Any]:
        return {
            "id": product_set.set_id,
            "name": product_set.name,
            "filter": filters.canonical(product_set.rule),
            "product_count": len(self.product_set_items(shop, product_set)),
            "retailer_id": product_set.retailer_id,
            "latest_metadata": product_set.metadata,
        }


# Read vocabulary name -> feed vocabulary name (§2.1), for fields copied as they are.
READ_FIELDS = {
    "name": "title",
    "description": "description",
    "url": "link",
    "mobile_link": "mobile_link",
    "image_url": "image_link",
    "additional_image_urls": "additional_image_link",
    "availability": "availability",
    "condition": "condition",
    "brand": "brand",
    "category": "google_product_category",
    "fb_product_category": "fb_product_category",
    "product_type": "product_type",
    "color": "color",
    "size": "size",
    "gender": "gender",
    "age_group": "age_group",
    "material": "material",
    "pattern": "pattern",
    "gtin": "gtin",
    "manufacturer_part_number": "mpn",
    "quantity_to_sell_on_facebook": "quantity_to_sell_on_facebook",
    "inventory": "inventory",
    "retailer_product_group_id": "item_group_id",
    "expiration_date": "expiration_date",
    "status": "status",
    **{f"custom_label_{n}": f"custom_label_{n}" for n in range(5)},
    **{f"custom_number_{n}": f"custom_number_{n}" for n in range(5)},
}

# error_type prefix -> diagnostics group type (§6.1); first match wins.
DIAGNOSTIC_TYPE_RULES = (
    (
        ("IMAGE_", "BAD_QUALITY_IMAGE", "INVALID_IMAGES", "NOT_ENOUGH_IMAGES", "DUPLICATE_IMAGES"),
        "IMAGE_QUALITY",
    ),
    (
        ("EMPTY_", "MISSING_SIZE", "MISSING_COLOR", "PROPERTY_VALUE_MISSING", "ITEM_GROUP_NOT"),
        "ATTRIBUTES_MISSING",
    ),
    (("MISSING_CHECKOUT", "MISSING_TAX", "MISSING_SHIPPING", "INVALID_COMMERCE_TAX"), "CHECKOUT"),
    (("DUPLICATE_TITLE", "QUALITY_"), "LOW_QUALITY_TITLE_AND_DESCRIPTION"),
    (("SHOPS_POLICY", "DA_POLICY", "ILLEGAL_PRODUCT", "PRODUCT_NOT_APPROVED"), "POLICY_VIOLATION"),
    (("UNSUPPORTED_PRODUCT_CATEGORY",), "CATEGORY"),
)
DIAGNOSTIC_TITLES = {
    "IMAGE_QUALITY": "Items have image issues",
    "ATTRIBUTES_MISSING": "Items are missing required information",
    "ATTRIBUTES_INVALID": "Items have invalid information",
    "CHECKOUT": "Items can't be sold with checkout",
    "LOW_QUALITY_TITLE_AND_DESCRIPTION": "Titles or descriptions need work",
    "POLICY_VIOLATION": "Items don't comply with commerce policies",
    "CATEGORY": "Items have category issues",
}


def diagnostic_type(error_type: str) -> str:
    for prefixes, group_type in DIAGNOSTIC_TYPE_RULES:
        if error_type.startswith(prefixes):
            return group_type
    return "ATTRIBUTES_INVALID"


def catalog_backend(state: SandboxState) -> CatalogBackend:
    backend = state.domains.get("catalog")
    if backend is None:
        backend = state.domains["catalog"] = CatalogBackend(state)
    return backend


def _issue(error_type, priority, title, description, call_to_action) -> dict[str, Any]:
    return {
        "error_type": error_type,
        "error_priority": priority,
        "title": title,
        "description": description,
        "call_to_action": call_to_action,
    }


def _review_status(issues: list[dict[str, Any]]) -> str:
    return "rejected" if any(i["error_priority"] == "HIGH" for i in issues) else "approved"


def _line(line: int, retailer_id: str, message: str) -> dict[str, Any]:
    return {"line": line, "id": retailer_id, "message": message}


def _validation_status(records: list[BatchRecord]) -> list[dict[str, Any]]:
    status = []
    for record in records:
        findings = record.findings
        if findings.errors or findings.warnings:
            status.append(
                {
                    "retailer_id": str(record.data.get("id", "")),
                    "errors": [{"message": p.message} for p in findings.errors],
                    "warnings": [{"message": p.message} for p in findings.warnings],
                }
            )
    return status


def _duplicate_ids(rows) -> set[str]:
    counts: dict[str, int] = {}
    for row in rows:
        retailer_id = str(row.data.get("id", ""))
        counts[retailer_id] = counts.get(retailer_id, 0) + 1
    return {rid for rid, n in counts.items() if n > 1}


def _opaque_handle() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(60)).decode().rstrip("=")


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S+0000")

"""The catalog part of the Graph API for one shop's catalog (catalog.md §2-§6).

    catalog = CatalogApi(graph, shop.catalog_id)
    for chunk in chunk_requests(requests):
        handles += catalog.items_batch(chunk)
    statuses = catalog.wait_for_handles(handles, poll_interval=5, timeout=900)

    feed_id = catalog.ensure_feed("metasync primary feed")
    session_id = catalog.upload_feed(feed_id, csv_bytes, "catalog.csv", update_only=False)
    session = catalog.wait_for_upload(session_id)
    fatal = [e for e in catalog.upload_errors(session_id) if e.is_fatal]

Writes here carry no idempotency key of their own (Meta's catalog edges take none); an items_batch
record states the item's whole intended content, so sending it again is harmless, and the
callers record their intent in the outbox before sending.
"""

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from pydantic import ValidationError

from resources.meta.catalog_models import (
    BatchStatus,
    DiagnosticGroup,
    ItemsBatchResult,
    ProductFeed,
    ProductItem,
    ProductSet,
    UploadError,
    UploadSession,
)
from resources.meta.errors import GraphError, GraphTransientError
from resources.meta.transport import GraphClient

logger = logging.getLogger(__name__)

MAX_BATCH_REQUESTS = 5000
# Meta's limit is 28 MB; staying well below keeps a margin for the envelope and encodings.
MAX_BATCH_BYTES = 20 * 1024 * 1024
DEFAULT_PRODUCT_FIELDS = ("id", "retailer_id", "name", "price", "availability", "review_status")


class CatalogWaitTimeout(GraphError):
    """Handles or an upload session did not end in time; `pending` says which, `statuses` what
    was seen last. The work may still finish on Meta's side: poll again later, do not resend."""

    def __init__(self, message: str, pending: list[str], statuses: dict[str, Any]) -> None:
        super().__init__(message)
        self.pending = pending
        self.statuses = statuses


def chunk_requests(
    requests: Sequence[Mapping[str, Any]],
    *,
    max_requests: int = MAX_BATCH_REQUESTS,
    max_bytes: int = MAX_BATCH_BYTES,
) -> Iterator[list[Mapping[str, Any]]]:
    """Split items_batch records into calls within Meta's count and payload limits."""
    chunk: list[Mapping[str, Any]] = []
    size = 2  # the enclosing brackets
    for record in requests:
        record_size = len(json.dumps(record, separators=(",", ":")).encode()) + 1
        if record_size + 2 > max_bytes:
            raise ValueError(
                f"one items_batch record is {record_size} bytes, over the {max_bytes}-byte "
                f"payload limit (retailer id {record.get('data', {}).get('id')!r})"
            )
        if chunk and (len(chunk) >= max_requests or size + record_size > max_bytes):
            yield chunk
            chunk, size = [], 2
        chunk.append(record)
        size += record_size
    if chunk:
        yield chunk


class CatalogApi:
    """items_batch and handles, feeds and upload sessions, reads, diagnostics, product sets."""

    def __init__(self, graph: GraphClient, catalog_id: str) -> None:
        self.graph = graph
        self.catalog_id = catalog_id

    # -- items_batch ----------------------------------------------------------------------------

    def send_items_batch(
        self,
        requests: Sequence[Mapping[str, Any]],
        *,
        allow_upsert: bool = True,
        item_type: str = "PRODUCT_ITEM",
    ) -> ItemsBatchResult:
        """One items_batch call; the answer's handles plus its synchronous validation_status."""
        if len(requests) > MAX_BATCH_REQUESTS:
            raise ValueError(
                f"{len(requests)} records in one items_batch call; Meta takes at most "
                f"{MAX_BATCH_REQUESTS}: split them with chunk_requests()"
            )
        body = {"item_type": item_type, "requests": list(requests), "allow_upsert": allow_upsert}
        answer = self.graph.post(f"{self.catalog_id}/items_batch", body)
        return ItemsBatchResult.model_validate(answer)

    def items_batch(
        self, requests: Sequence[Mapping[str, Any]], allow_upsert: bool = True
    ) -> list[str]:
        """Send records; the handles to follow with `wait_for_handles`."""
        return self.send_items_batch(requests, allow_upsert=allow_upsert).handles

    def batch_status(self, handle: str, *, load_ids: bool = True) -> BatchStatus:
        answer = self.graph.get(
            f"{self.catalog_id}/check_batch_request_status",
            {"handle": handle, "load_ids_of_invalid_requests": load_ids},
        )
        rows = answer.get("data") or []
        if not rows:
            raise GraphError(f"check_batch_request_status for handle {handle[:12]}... was empty")
        try:
            return BatchStatus.model_validate(rows[0])
        except ValidationError as exc:
            # transient: the handle stays recorded, so this or the next run follows it again
            fields = ", ".join(str(e["loc"][0]) for e in exc.errors() if e["loc"])
            raise GraphTransientError(
                f"check_batch_request_status for handle {handle[:12]}...: malformed answer "
                f"({fields or 'no status'})",
                is_transient=True,
            ) from None

    def wait_for_handles(
        self,
        handles: Iterable[str],
        poll_interval: float = 5.0,
        timeout: float = 900.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> dict[str, BatchStatus]:
        """Poll every handle until it ends (finished, error or canceled); final statuses by
        handle. Raises CatalogWaitTimeout naming the handles still open after `timeout`."""
        pending = list(dict.fromkeys(handles))
        final: dict[str, BatchStatus] = {}
        last: dict[str, BatchStatus] = {}
        deadline = clock() + timeout
        while pending:
            for handle in list(pending):
                status = self.batch_status(handle)
                last[handle] = status
                if status.is_final:
                    final[handle] = status
                    pending.remove(handle)
            if not pending:
                break
            if clock() >= deadline:
                raise CatalogWaitTimeout(
                    f"catalog {self.catalog_id}: {len(pending)} batch handles still open after "
                    f"{timeout}s",
                    pending,
                    last,
                )
            sleep(poll_interval)
        return final

    # -- feeds ----------------------------------------------------------------------------------

    def create_feed(self, name: str, *, schedule: Mapping[str, Any] | None = None) -> str:
        body: dict[str, Any] = {"name": name}
        if schedule:
            body["schedule"] = dict(schedule)
        return str(self.graph.post(f"{self.catalog_id}/product_feeds", body)["id"])

    def list_feeds(self) -> list[ProductFeed]:
        rows = self.graph.paginate(
            f"{self.catalog_id}/product_feeds", {"fields": "id,name,product_count"}
        )
        return [ProductFeed.model_validate(row) for row in rows]

    def ensure_feed(self, name: str) -> str:
        """The id of the catalog's feed called `name`, created when there is none."""
        for feed in self.list_feeds():
            if feed.name == name:
                return feed.id
        return self.create_feed(name)

    def upload_feed(
        self, feed_id: str, file_bytes: bytes, filename: str, update_only: bool = False
    ) -> str:
        """Upload a CSV/TSV file; the upload session id. A replace upload (update_only=False)
        deletes the feed's items missing from the file."""
        content_type = "text/tab-separated-values" if filename.endswith(".tsv") else "text/csv"
        answer = self.graph.post(
            f"{feed_id}/uploads",
            files={"file": (filename, file_bytes, content_type)},
            form={"update_only": update_only, "file_name": filename},
        )
        return str(answer["id"])

    def upload_feed_url(self, feed_id: str, url: str, update_only: bool = False) -> str:
        answer = self.graph.post(f"{feed_id}/uploads", {"url": url, "update_only": update_only})
        return str(answer["id"])

    def upload_session(self, session_id: str) -> UploadSession:
        return UploadSession.model_validate(self.graph.get(session_id))

    def list_uploads(self, feed_id: str) -> list[UploadSession]:
        return [UploadSession.model_validate(r) for r in self.graph.paginate(f"{feed_id}/uploads")]

    def wait_for_upload(
        self,
        session_id: str,
        poll_interval: float = 10.0,
        timeout: float = 3600.0,
        *,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> UploadSession:
        """Poll the upload session until it has an end_time; CatalogWaitTimeout otherwise."""
        deadline = clock() + timeout
        while True:
            session = self.upload_session(session_id)
            if session.is_done:
                return session
            if clock() >= deadline:
                raise CatalogWaitTimeout(
                    f"upload session {session_id} still running after {timeout}s",
                    [session_id],
                    {session_id: session},
                )
            sleep(poll_interval)

    def upload_errors(
        self, session_id: str, *, error_priority: str | None = None
    ) -> list[UploadError]:
        params = {"error_priority": error_priority} if error_priority else {}
        rows = self.graph.paginate(f"{session_id}/errors", params)
        return [UploadError.model_validate(row) for row in rows]

    # -- reading items back ---------------------------------------------------------------------

    def list_products(
        self,
        fields: Sequence[str] = DEFAULT_PRODUCT_FIELDS,
        *,
        filter_rule: Mapping[str, Any] | None = None,
        error_priority: str | None = None,
        page_size: int = 500,
    ) -> Iterator[ProductItem]:
        params: dict[str, Any] = {"fields": ",".join(fields), "limit": page_size}
        if filter_rule:
            params["filter"] = dict(filter_rule)
        if error_priority:
            params["error_priority"] = error_priority
        for row in self.graph.paginate(f"{self.catalog_id}/products", params):
            try:
                yield ProductItem.model_validate(row)
            except ValidationError as exc:
                # skipped, not fatal: the read-back then finds the item missing and sends it
                # again, which a malformed answer cannot make wrong
                item_id = row.get("id") if isinstance(row, dict) else None
                logger.warning("malformed product %r in the catalog read skipped: %s", item_id, exc)

    def product(self, item_id: str, fields: Sequence[str] = DEFAULT_PRODUCT_FIELDS) -> ProductItem:
        answer = self.graph.get(item_id, {"fields": ",".join((*fields, "errors"))})
        return ProductItem.model_validate(answer)

    def delete_product(self, item_id: str) -> None:
        self._expect_success(self.graph.delete(item_id), f"delete product item {item_id}")

    def diagnostics(
        self, *, severities: Sequence[str] = (), types: Sequence[str] = ()
    ) -> list[DiagnosticGroup]:
        params: dict[str, Any] = {}
        if severities:
            params["severities"] = list(severities)
        if types:
            params["types"] = list(types)
        rows = self.graph.paginate(f"{self.catalog_id}/diagnostics", params)
        return [DiagnosticGroup.model_validate(row) for row in rows]

    # -- product sets ---------------------------------------------------------------------------

    def create_product_set(
        self, name: str, filter_rule: Mapping[str, Any], *, retailer_id: str | None = None
    ) -> str:
        """Create a set; GraphValidationError code 10803 when one with this filter exists."""
        body: dict[str, Any] = {"name": name, "filter": json.dumps(filter_rule, sort_keys=True)}
        if retailer_id:
            body["retailer_id"] = retailer_id
        return str(self.graph.post(f"{self.catalog_id}/product_sets", body)["id"])

    def list_product_sets(self) -> list[ProductSet]:
        rows = self.graph.paginate(
            f"{self.catalog_id}/product_sets",
            {"fields": "id,name,filter,product_count,retailer_id"},
        )
        return [ProductSet.model_validate(row) for row in rows]

    def update_product_set(
        self,
        set_id: str,
        *,
        name: str | None = None,
        filter_rule: Mapping[str, Any] | None = None,
    ) -> None:
        body: dict[str, Any] = {}
        if name is not None:
            body["name"] = name
        if filter_rule is not None:
            body["filter"] = json.dumps(filter_rule, sort_keys=True)
        self._expect_success(self.graph.post(set_id, body), f"update product set {set_id}")

    def delete_product_set(self, set_id: str) -> None:
        self._expect_success(self.graph.delete(set_id), f"delete product set {set_id}")

    def product_set_products(
        self, set_id: str, fields: Sequence[str] = ("id", "retailer_id")
    ) -> Iterator[ProductItem]:
        rows = self.graph.paginate(f"{set_id}/products", {"fields": ",".join(fields)})
        for row in rows:
            yield ProductItem.model_validate(row)

    @staticmethod
    def _expect_success(answer: Mapping[str, Any], what: str) -> None:
        # The SDK treats {"success": false} as a failure too (catalog.md §1.5).
        if answer.get("success") is False:
            raise GraphError(f"{what}: Meta answered success=false")

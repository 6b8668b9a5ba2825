"""The one way metasync talks to the Graph API: auth, appsecret_proof, retries, paging, errors.

    graph = GraphClient(shop_id="acme", token=token, base_url=settings.graph_base_url,
                        version="v25.0", app_secret=settings.app_secret)
    graph.get(f"{catalog_id}/products", params={"fields": "id,retailer_id"})
    for order in graph.paginate(f"{cms_id}/commerce_orders", params={"state": "CREATED"}):
        ...

A client is bound to one shop's token at construction: code holding the client for shop A has no
way to send shop B's token. The token travels in the Authorization header, never in a URL, and
is scrubbed from every message this module produces.

Clients of one app share an `AppThrottle` (pass `throttle=app_throttle(key)`): an app-level
throttle (code 4) holds every shop's calls until access returns, a shop's own throttle (business
use case, page or user limits) holds only that shop's calls, so one busy shop never stalls the
others. A rejected token (190 and friends) is reported to `on_auth_error` before it is raised.
"""

import hashlib
import hmac
import json
import logging
import random
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlparse

import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt

from resources.meta.errors import (
    GraphAuthError,
    GraphError,
    GraphThrottled,
    GraphTimeout,
    GraphTransientError,
    error_from_response,
)

logger = logging.getLogger(__name__)

REDACTED = "[redacted]"


def appsecret_proof(token: str, app_secret: str) -> str:
    """HMAC-SHA256 of the token keyed by the app secret, as lowercase hex (Meta's definition)."""
    return hmac.new(app_secret.encode(), token.encode(), hashlib.sha256).hexdigest()


@dataclass
class RateLimitUsage:
    """What the last answer's usage headers said, in percent of the rolling allowance."""

    app_usage_pct: int = 0
    business_usage_pct: int = 0
    regain_access_seconds: float = 0.0

    @property
    def peak_pct(self) -> int:
        return max(self.app_usage_pct, self.business_usage_pct)


def parse_usage_headers(headers: Mapping[str, str]) -> RateLimitUsage:
    """Read X-App-Usage and X-Business-Use-Case-Usage (names are case-insensitive)."""
    usage = RateLimitUsage()
    app = _json_header(headers, "x-app-usage")
    if isinstance(app, dict):
        usage.app_usage_pct = _peak(app)
    business = _json_header(headers, "x-business-use-case-usage")
    if isinstance(business, dict):
        for entries in business.values():
            for entry in entries if isinstance(entries, list) else [entries]:
                if not isinstance(entry, dict):
                    continue
                usage.business_usage_pct = max(usage.business_usage_pct, _peak(entry))
                minutes = float(entry.get("estimated_time_to_regain_access") or 0)
                usage.regain_access_seconds = max(usage.regain_access_seconds, minutes * 60)
    return usage


def _json_header(headers: Mapping[str, str], name: str) -> Any:
    raw = headers.get(name)
    if not raw:
        return None
    try:
        return json.loads(raw)
    except ValueError:
        logger.warning("ignoring an unreadable %s header", name)
        return None


def _peak(usage: Mapping[str, Any]) -> int:
    keys = ("call_count", "total_time", "total_cputime")
    return max(int(usage.get(key) or 0) for key in keys)


@dataclass
class RetryPolicy:
    """How hard the client tries before giving an error to its caller."""

    max_attempts: int = 5
    base_delay_seconds: float = 0.5
    max_delay_seconds: float = 300.0
    # When Meta says nothing about when access comes back after a throttle, wait this long.
    default_throttle_delay_seconds: float = 60.0


# Throttle codes that limit the whole app (every shop's calls); the others limit one business,
# page or token, i.e. one shop.
APP_THROTTLE_CODES = frozenset({4})


class AppThrottle:
    """When each shop of one app may call again, learned from throttled answers (per process).

    Fair by construction: a shop's backoff is keyed by that shop, so only an app-wide limit
    (code 4) delays other shops.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._app_until = 0.0
        self._shop_until: dict[str, float] = {}

    def until(self, shop_id: str) -> float:
        """The clock time before which `shop_id` should not call (0.0: free to call)."""
        with self._lock:
            return max(self._app_until, self._shop_until.get(shop_id, 0.0))

    def remaining(self, shop_id: str) -> float:
        return max(0.0, self.until(shop_id) - self._clock())

    def record(self, shop_id: str, error: GraphThrottled, default_seconds: float) -> float:
        """Remember a throttle; returns the clock time access returns for this shop."""
        seconds = error.retry_after_seconds or default_seconds
        until = self._clock() + seconds
        with self._lock:
            if error.code in APP_THROTTLE_CODES:
                self._app_until = max(self._app_until, until)
            else:
                self._shop_until[shop_id] = max(self._shop_until.get(shop_id, 0.0), until)
        return until

    def now(self) -> float:
        return self._clock()


_APP_THROTTLES: dict[str, AppThrottle] = {}
_APP_THROTTLES_LOCK = threading.Lock()


def app_throttle(app_key: str) -> AppThrottle:
    """The process's one AppThrottle for an app (key: e.g. the base URL plus the app secret's
    fingerprint). TODO(throttle): process-local; worker processes each learn from their own
    answers, which Meta's usage headers make good enough until a shared store is needed."""
    with _APP_THROTTLES_LOCK:
        return _APP_THROTTLES.setdefault(app_key, AppThrottle())


@dataclass
class GraphClient:
    """A Graph API client bound to one shop and its token."""

    shop_id: str
    token: str = field(repr=False)
    base_url: str = "https://graph.facebook.com"
    version: str = "v25.0"
    app_secret: str | None = field(default=None, repr=False)
    timeout_seconds: float = 20.0
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    transport: httpx.BaseTransport | None = field(default=None, repr=False)
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False)
    calls: int = 0
    usage: RateLimitUsage = field(default_factory=RateLimitUsage)
    throttle: AppThrottle | None = field(default=None, repr=False)
    on_auth_error: Callable[[GraphAuthError], None] | None = field(default=None, repr=False)

    def __post_init__(self) -> None:
        # The throttle deadline this client has already slept through (no second wait for it).
        self._waited_until = 0.0
        self._http = httpx.Client(
            base_url=f"{self.base_url.rstrip('/')}/{self.version}/",
            timeout=self.timeout_seconds,
            transport=self.transport,
            headers={"Authorization": f"Bearer {self.token}"},
        )

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "GraphClient":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- public verbs ---------------------------------------------------------------------------

    def get(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("GET", path, params=params)

    def post(
        self,
        path: str,
        json_body: Mapping[str, Any] | None = None,
        *,
        params: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        form: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        return self.request(
            "POST", path, params=params, json_body=json_body, files=files, form=form
        )

    def delete(self, path: str, params: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return self.request("DELETE", path, params=params)

    def paginate(
        self, path: str, params: Mapping[str, Any] | None = None, *, max_pages: int = 10_000
    ) -> Iterator[dict[str, Any]]:
        """Every element of a cursor-paged edge, following `paging.next` until it is absent."""
        page_params = dict(params or {})
        for _ in range(max_pages):
            page = self.get(path, page_params)
            data = page.get("data")
            if not isinstance(data, list):  # a string would be iterated character by character
                raise GraphTransientError(
                    f"{path}: malformed answer: data is {type(data).__name__}, not a list",
                    is_transient=True,
                )
            yield from data
            paging = page.get("paging") or {}
            if not paging.get("next"):
                return
            page_params["after"] = _after_cursor(paging)
        raise GraphError(f"{path}: more than {max_pages} pages; refusing to page forever")

    def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        json_body: Mapping[str, Any] | None = None,
        files: Mapping[str, Any] | None = None,
        form: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """One logical call, retried on throttling and transient errors."""
        retrying = Retrying(
            stop=stop_after_attempt(self.retry.max_attempts),
            retry=retry_if_exception_type(GraphTransientError),
            wait=self._wait_before_retry,
            sleep=self.sleep,
            reraise=True,
            before_sleep=self._log_retry,
        )
        for attempt in retrying:
            with attempt:
                return self._send_once(method, path, params, json_body, files, form)
        raise AssertionError("unreachable: tenacity reraises the last error")

    # -- internals ------------------------------------------------------------------------------

    def _send_once(self, method, path, params, json_body, files, form) -> dict[str, Any]:
        self._wait_for_access()
        query = self._auth_params(params)
        self.calls += 1
        try:
            response = self._http.request(
                method,
                path.lstrip("/"),
                params=query,
                json=json_body if files is None and form is None else None,
                data=_form_fields(form, json_body) if files is not None or form else None,
                files=files,
            )
        except httpx.TimeoutException as exc:
            raise GraphTimeout(self.redact(f"{method} {path}: no answer in time ({exc})")) from None
        except httpx.TransportError as exc:
            raise GraphTransientError(self.redact(f"{method} {path}: {exc}")) from None

        self.usage = parse_usage_headers(response.headers)
        body = _decode(response)
        logger.debug(
            "%s %s -> %s (usage %s%%)", method, path, response.status_code, self.usage.peak_pct
        )
        if response.is_success and not (isinstance(body, dict) and "error" in body):
            return body if isinstance(body, dict) else {"data": body}
        error = self._redacted(
            error_from_response(response.status_code, body, self._retry_after(response))
        )
        self._report(error)
        raise error

    def _wait_for_access(self) -> None:
        """Hold this call while the app or this shop is throttled (learned by any client)."""
        if self.throttle is None:
            return
        until = self.throttle.until(self.shop_id)
        wait = until - self.throttle.now()
        if until > self._waited_until and wait > 0:
            logger.info("shop %s: throttled, waiting %.1fs before calling", self.shop_id, wait)
            self.sleep(min(wait, self.retry.max_delay_seconds))
            self._waited_until = until

    def _report(self, error: GraphError) -> None:
        if isinstance(error, GraphThrottled) and self.throttle is not None:
            self.throttle.record(self.shop_id, error, self.retry.default_throttle_delay_seconds)
        if isinstance(error, GraphAuthError) and self.on_auth_error is not None:
            try:
                self.on_auth_error(error)
            except Exception:  # the caller must still see the auth error, not this one
                logger.exception("shop %s: recording the rejected token failed", self.shop_id)

    def _auth_params(self, params: Mapping[str, Any] | None) -> dict[str, Any]:
        query = {k: _encode_param(v) for k, v in (params or {}).items()}
        if self.app_secret:
            query["appsecret_proof"] = appsecret_proof(self.token, self.app_secret)
        return query

    def _retry_after(self, response: httpx.Response) -> float | None:
        header = response.headers.get("retry-after")
        if header and header.replace(".", "", 1).isdigit():
            return float(header)
        if self.usage.regain_access_seconds > 0:
            return self.usage.regain_access_seconds
        return None

    def _wait_before_retry(self, retry_state) -> float:
        error = retry_state.outcome.exception()
        attempt = retry_state.attempt_number
        if getattr(error, "retry_after_seconds", None):
            delay = error.retry_after_seconds
        elif isinstance(error, GraphThrottled):
            delay = self.retry.default_throttle_delay_seconds
        else:
            delay = self.retry.base_delay_seconds * 2 ** (attempt - 1)
        if isinstance(error, GraphThrottled) and self.throttle is not None:
            self._waited_until = self.throttle.until(self.shop_id)  # this sleep covers it
        jitter = random.uniform(0, delay * 0.1)
        return min(delay + jitter, self.retry.max_delay_seconds)

    def _log_retry(self, retry_state) -> None:
        error = retry_state.outcome.exception()
        logger.warning(
            "shop %s: %s; retry %d of %d in %.1fs",
            self.shop_id,
            error,
            retry_state.attempt_number,
            self.retry.max_attempts - 1,
            retry_state.next_action.sleep if retry_state.next_action else 0.0,
        )

    def _redacted(self, error: GraphError) -> GraphError:
        """The error with every text field scrubbed: servers may echo the token back."""
        error.message = self.redact(error.message)
        error.user_title = self.redact(error.user_title) if error.user_title else None
        error.user_message = self.redact(error.user_message) if error.user_message else None
        error.raw = json.loads(self.redact(json.dumps(error.raw)))
        return error

    def redact(self, text: str) -> str:
        """Remove the token and the app secret from any text leaving this client."""
        for secret in (self.token, self.app_secret):
            if secret:
                text = text.replace(secret, REDACTED)
        return text


def _encode_param(value: Any) -> Any:
    """Lists, dicts and bools travel as JSON strings, as Meta's SDK sends them."""
    if isinstance(value, (list, dict, bool)):
        return json.dumps(value, sort_keys=True, separators=(",", ":"))
    return value


def _form_fields(form: Mapping[str, Any] | None, json_body: Mapping[str, Any] | None) -> dict:
    fields = dict(json_body or {}) | dict(form or {})
    return {k: _encode_param(v) for k, v in fields.items()}


def _decode(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:
        # A success whose body is not JSON (cut by a proxy, a half-written answer) used to read
        # as `{}`: an empty order list or status page, silently. It is a transient error now:
        # retried, then the run fails saying so; a write is replayed with its idempotency key.
        problem = f"malformed answer: not JSON ({len(response.content)} bytes)"
        return {"error": {"message": problem, "code": None, "is_transient": response.is_success}}


def _after_cursor(paging: Mapping[str, Any]) -> str:
    cursor = (paging.get("cursors") or {}).get("after")
    if cursor:
        return cursor
    # Some edges give only the `next` URL; take its `after` parameter (and nothing else from it:
    # Meta's next URLs may embed an access_token).
    after = parse_qs(urlparse(paging["next"]).query).get("after")
    if not after:
        raise GraphError("paging.next without an after cursor")
    return after[0]

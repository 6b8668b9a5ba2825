"""The Graph API's errors, as a small hierarchy a caller can catch at any level.

    try:
        graph.post(f"{order_id}/refunds", json=payload)
    except GraphThrottled:        # back off, try later (the transport already retried)
        ...
    except GraphAuthError:        # the shop's token is bad: pause the shop, ask for a new one
        ...
    except GraphError as exc:     # anything else Meta refused; exc.code says what
        ...

Meta's HTTP status is not a reliable discriminator (code 4 arrives with 400 or 403), so the class
is chosen from ``error.code`` / ``error_subcode`` through one table, not a chain of ifs.
"""

from dataclasses import dataclass, field
from typing import Any


@dataclass
class GraphError(Exception):
    """Meta refused a call. Carries the Graph error envelope's fields, never the token."""

    message: str
    code: int | None = None
    subcode: int | None = None
    error_type: str | None = None
    http_status: int | None = None
    fbtrace_id: str | None = None
    user_title: str | None = None
    user_message: str | None = None
    is_transient: bool = False
    retry_after_seconds: float | None = None
    raw: dict[str, Any] = field(default_factory=dict, repr=False)

    def __str__(self) -> str:
        code = f"code {self.code}" + (f"/{self.subcode}" if self.subcode else "")
        return f"Graph API {code} (HTTP {self.http_status}): {self.message}"


class GraphTransientError(GraphError):
    """A server-side hiccup (5xx, codes 1 and 2, timeouts): the same call may succeed later."""


class GraphThrottled(GraphTransientError):
    """A rate limit was hit (codes 4, 17, 32, 613, 80000-80014): wait, then retry."""


class GraphAuthError(GraphError):
    """The token is invalid, expired or revoked (190, 102, 458-467): the shop needs a new one."""


class GraphPermissionError(GraphError):
    """The token lacks a permission (3, 10, 200-299): a setup problem, not worth retrying."""


class GraphValidationError(GraphError):
    """The request was wrong (100 and most other codes): fix the request, do not retry."""


class GraphPayloadTooLarge(GraphValidationError):
    """Code 1 "Please reduce the amount of data...": the same call will fail again; send fewer
    records per call instead of retrying."""


class GraphNotFound(GraphValidationError):
    """The object does not exist or cannot be seen (100/33, 803)."""


class GraphTimeout(GraphTransientError):
    """No answer in time; whether Meta applied a write is unknown, so writes carry idempotency
    keys and are replayed with the same key."""


THROTTLE_CODES = frozenset(
    {4, 17, 32, 341, 613, 80000, 80001, 80002, 80003, 80004, 80005, 80006, 80008, 80009, 80014}
)
AUTH_CODES = frozenset({102, 190})
AUTH_SUBCODES = frozenset({458, 459, 460, 463, 464, 467, 492})
PERMISSION_CODES = frozenset({3, 10, *range(200, 300)})
TRANSIENT_CODES = frozenset({1, 2, 368})

# First match wins: most specific first.
_CODE_TABLE: tuple[tuple[frozenset[int], type[GraphError]], ...] = (
    (THROTTLE_CODES, GraphThrottled),
    (AUTH_CODES, GraphAuthError),
    (PERMISSION_CODES, GraphPermissionError),
    (TRANSIENT_CODES, GraphTransientError),
    (frozenset({803}), GraphNotFound),
)


def error_class_for(code: int | None, subcode: int | None, http_status: int) -> type[GraphError]:
    """The most specific error class for a Graph error code, subcode and HTTP status."""
    if code == 100 and subcode == 33:
        return GraphNotFound
    if subcode in AUTH_SUBCODES:
        return GraphAuthError
    for codes, error_class in _CODE_TABLE:
        if code in codes:
            return error_class
    if http_status >= 500:
        return GraphTransientError
    return GraphValidationError


def error_from_response(http_status: int, body: Any, retry_after: float | None) -> GraphError:
    """Build the right GraphError from an HTTP status and the decoded body."""
    envelope = body.get("error") if isinstance(body, dict) else None
    if not isinstance(envelope, dict):
        error_class = GraphTransientError if http_status >= 500 else GraphValidationError
        return error_class(
            f"unexpected answer without an error object: HTTP {http_status}",
            http_status=http_status,
            retry_after_seconds=retry_after,
        )
    code = _as_int(envelope.get("code"))
    subcode = _as_int(envelope.get("error_subcode"))
    error_class = error_class_for(code, subcode, http_status)
    if envelope.get("is_transient") and not issubclass(error_class, GraphTransientError):
        error_class = GraphTransientError
    if code == 1 and "reduce the amount of data" in str(envelope.get("message", "")):
        error_class = GraphPayloadTooLarge
    return error_class(
        message=str(envelope.get("message", "")),
        code=code,
        subcode=subcode,
        error_type=envelope.get("type"),
        http_status=http_status,
        fbtrace_id=envelope.get("fbtrace_id"),
        user_title=envelope.get("error_user_title"),
        user_message=envelope.get("error_user_msg"),
        is_transient=bool(envelope.get("is_transient")),
        retry_after_seconds=retry_after,
        raw=envelope,
    )


def _as_int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None

"""Cursor paging as Graph does it: opaque cursors, `next` only when there is another page."""

import base64
from collections.abc import Sequence
from typing import Any
from urllib.parse import urlencode

from sandbox.core.errors import InvalidParameter


def encode_cursor(offset: int) -> str:
    return base64.urlsafe_b64encode(f"o:{offset}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> int:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        text = base64.urlsafe_b64decode(padded.encode()).decode()
        return int(text.removeprefix("o:"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidParameter(f"Invalid cursor: {cursor!r}") from exc


def page(
    rows: Sequence[Any],
    params: dict[str, Any],
    *,
    url: str,
    default_limit: int = 25,
    max_limit: int = 1000,
) -> dict[str, Any]:
    """One page of `rows` with Graph's `data` / `paging` envelope."""
    try:
        limit = min(int(params.get("limit") or default_limit), max_limit)
    except ValueError as exc:
        raise InvalidParameter("(#100) limit must be an integer") from exc
    start = decode_cursor(params["after"]) if params.get("after") else 0
    chunk = list(rows[start : start + limit])
    body: dict[str, Any] = {"data": chunk}
    if not rows:
        return body
    end = start + len(chunk)
    paging: dict[str, Any] = {
        "cursors": {"before": encode_cursor(start), "after": encode_cursor(max(end, start))}
    }
    if end < len(rows):
        query = {k: v for k, v in params.items() if k not in ("after", "access_token")}
        query |= {"limit": limit, "after": encode_cursor(end)}
        paging["next"] = f"{url}?{urlencode(query)}"
    body["paging"] = paging
    return body

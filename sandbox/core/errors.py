"""Graph errors as the sandbox raises them: each class knows its wire code, type and status."""

import secrets
from typing import Any


class GraphApiError(Exception):
    """Raised anywhere in a handler; rendered as Meta's error envelope by the HTTP layer."""

    code: int = 100
    error_type: str = "GraphMethodException"
    http_status: int = 400

    def __init__(
        self,
        message: str,
        *,
        code: int | None = None,
        subcode: int | None = None,
        http_status: int | None = None,
        error_type: str | None = None,
        user_title: str | None = None,
        user_message: str | None = None,
        is_transient: bool | None = None,
        error_data: Any = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.code = code if code is not None else self.code
        self.subcode = subcode
        self.http_status = http_status or self.http_status
        self.error_type = error_type or self.error_type
        self.user_title = user_title
        self.user_message = user_message
        self.is_transient = is_transient
        self.error_data = error_data

    def envelope(self) -> dict[str, Any]:
        error: dict[str, Any] = {
            "message": self.message,
            "type": self.error_type,
            "code": self.code,
            "fbtrace_id": secrets.token_urlsafe(12),
        }
        optional = {
            "error_subcode": self.subcode,
            "error_user_title": self.user_title,
            "error_user_msg": self.user_message,
            "is_transient": self.is_transient,
            "error_data": self.error_data,
        }
        error.update({k: v for k, v in optional.items() if v is not None})
        return {"error": error}


class InvalidParameter(GraphApiError):
    code = 100
    error_type = "OAuthException"


class UnknownObject(GraphApiError):
    code = 100
    error_type = "GraphMethodException"

    def __init__(self, node_id: str, method: str = "get") -> None:
        super().__init__(
            f"Unsupported {method} request. Object with ID '{node_id}' does not exist, cannot be "
            "loaded due to missing permissions, or does not support this operation.",
            subcode=33,
        )


class InvalidToken(GraphApiError):
    code = 190
    error_type = "OAuthException"
    http_status = 401


class PermissionDenied(GraphApiError):
    code = 200
    error_type = "OAuthException"
    http_status = 403


class Throttled(GraphApiError):
    error_type = "OAuthException"
    http_status = 400

    def __init__(self, code: int, message: str | None = None) -> None:
        super().__init__(
            message or f"(#{code}) There have been too many calls. Wait a bit and try again.",
            code=code,
            is_transient=True,
        )


class ServiceUnavailable(GraphApiError):
    code = 2
    error_type = "OAuthException"
    http_status = 503

    def __init__(
        self, message: str = "An unexpected error has occurred. Please retry your request later."
    ) -> None:
        super().__init__(message, is_transient=True)


class IdempotencyConflict(GraphApiError):
    """Same key, different body. Meta does not document the code; configurable in the sandbox."""

    code = 100
    error_type = "OAuthException"

    def __init__(self, key: str, code: int = 100) -> None:
        super().__init__(
            f"(#{code}) The idempotency key {key} was already used for a different request.",
            code=code,
        )


class CommerceError(GraphApiError):
    """A commerce-specific refusal (orders.md §15); the code goes in `error.code`."""

    error_type = "OAuthException"

"""Domain errors: each maps to one HTTP status and a stable machine-readable code."""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """Base of every expected failure; the API turns it into `{code, message, details}`."""

    status_code = 400
    code = "bad_request"

    def __init__(
        self, message: str, *, code: str | None = None, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details
        # HTTP headers the API adds to the error response (Retry-After on 429, ...).
        self.headers = headers or {}


class NotFound(DomainError):
    status_code = 404
    code = "not_found"


#: 401s about the bearer token the request presented (RFC 6750's `invalid_token`: the client should refresh it or
#: log in again); any other 401 only names the scheme.
_BEARER_TOKEN_CODES = frozenset(
    {"invalid_token", "token_expired", "token_revoked", "account_disabled", "account_not_found"}
)


class Unauthorized(DomainError):
    """401, with the `WWW-Authenticate` challenge HTTP asks of every 401 (`Bearer`, plus `error="invalid_token"`
    when the presented access token is the problem)."""

    status_code = 401
    code = "unauthorized"

    def __init__(
        self, message: str, *, code: str | None = None, details: Any = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message, code=code, details=details, headers=headers)
        challenge = 'Bearer error="invalid_token"' if self.code in _BEARER_TOKEN_CODES else "Bearer"
        self.headers.setdefault("WWW-Authenticate", challenge)


class Forbidden(DomainError):
    status_code = 403
    code = "forbidden"


class Conflict(DomainError):
    status_code = 409
    code = "conflict"


class Invalid(DomainError):
    status_code = 422
    code = "invalid"


def field_problem(field: str, message: str, kind: str = "value_error") -> list[dict[str, str]]:
    """The `details` of a 422 refusing one field's value (`invalid_field`), in the list shape of `validation_error`
    (`[{field, message, type}]`) that a form maps to its fields (explore78 F3: an object here, a list there)."""
    return [{"field": field, "message": message, "type": kind}]


class TooLarge(DomainError):
    status_code = 413
    code = "file_too_large"


class UnsupportedMedia(DomainError):
    status_code = 415
    code = "unsupported_media_type"


class Unavailable(DomainError):
    status_code = 503
    code = "unavailable"


class RateLimited(DomainError):
    status_code = 429
    code = "rate_limited"

"""Typed errors: each carries an HTTP status, a stable code, the field at fault and a
translatable message. One handler (in the web layer) renders them as JSON
``{"error": {"code", "message", "field"}}`` or as an HTML fragment for htmx pages.
"""

from __future__ import annotations

from typing import Any, ClassVar


def N_(message: str) -> str:  # noqa: N802 - the gettext convention for "mark, translate later"
    return message


class XietongError(Exception):
    status: ClassVar[int] = 400
    default_code: ClassVar[str] = "bad_request"
    default_message: ClassVar[str] = N_("The request is not valid.")

    def __init__(
        self,
        message: str | None = None,
        *,
        code: str | None = None,
        field: str | None = None,
        params: dict[str, Any] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.code = code or self.default_code
        self.field = field
        self.params = params or {}
        self.headers = headers or {}
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, field={self.field!r})"


class BadRequest(XietongError):
    status = 400


class Unauthorized(XietongError):
    status = 401
    default_code = "not_authenticated"
    default_message = N_("Please sign in.")


class Forbidden(XietongError):
    status = 403
    default_code = "forbidden"
    default_message = N_("You are not allowed to do this.")


class NotFound(XietongError):
    status = 404
    default_code = "not_found"
    default_message = N_("Not found.")


class Conflict(XietongError):
    status = 409
    default_code = "conflict"
    default_message = N_("This conflicts with the current state.")


class PayloadTooLarge(XietongError):
    status = 413
    default_code = "payload_too_large"
    default_message = N_("The request body is too large.")


class UnsupportedMediaType(XietongError):
    status = 415
    default_code = "unsupported_media_type"
    default_message = N_("This content type is not supported.")


class Invalid(XietongError):
    status = 422
    default_code = "invalid"
    default_message = N_("A value is not valid.")


class Locked(XietongError):
    status = 423
    default_code = "account_locked"
    default_message = N_("The account is locked after repeated failures; try again later.")


class TooManyRequests(XietongError):
    status = 429
    default_code = "too_many_requests"
    default_message = N_("Too many attempts; try again later.")


class Unavailable(XietongError):
    """A service we depend on (the media server) is down or did not answer in time."""

    status = 503
    default_code = "unavailable"
    default_message = N_("A service this needs is not available; try again later.")

"""Render every error the same way: JSON for the API, a fragment or page for htmx/pages.

Bad input never becomes a 500: validation errors name the field, malformed JSON is a 400,
and anything unexpected is logged and answered with a generic 500 without internals.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from xietong.core.errors import N_, XietongError
from xietong.core.i18n import negotiate, translate

log = logging.getLogger("xietong.errors")

_STATUS_CODES = {
    400: ("bad_request", N_("The request is not valid.")),
    401: ("not_authenticated", N_("Please sign in.")),
    403: ("forbidden", N_("You are not allowed to do this.")),
    404: ("not_found", N_("Not found.")),
    405: ("method_not_allowed", N_("This method is not allowed here.")),
    406: ("not_acceptable", N_("This representation cannot be served.")),
    413: ("payload_too_large", N_("The request body is too large.")),
    415: ("unsupported_media_type", N_("This content type is not supported.")),
    500: ("internal_error", N_("Something went wrong on our side; it has been logged.")),
}

_VALIDATION_MESSAGES = {
    "missing": N_("This field is required."),
    "extra_forbidden": N_("This field is not allowed."),
    "json_invalid": N_("The body is not valid JSON."),
    "string_too_long": N_("This value is too long."),
    "string_too_short": N_("This value is too short."),
    "string_pattern_mismatch": N_("This value has the wrong format."),
    "int_parsing": N_("A whole number is expected."),
    "int_type": N_("A whole number is expected."),
    "bool_parsing": N_("true or false is expected."),
    "bool_type": N_("true or false is expected."),
    "string_type": N_("Text is expected."),
    "list_type": N_("A list is expected."),
    "dict_type": N_("An object is expected."),
    "model_type": N_("An object is expected."),
    "model_attributes_type": N_("An object is expected."),
    "enum": N_("This value is not one of the allowed choices."),
    "literal_error": N_("This value is not one of the allowed choices."),
    "greater_than_equal": N_("This value is too small."),
    "less_than_equal": N_("This value is too large."),
    "greater_than": N_("This value is too small."),
    "less_than": N_("This value is too large."),
    "too_long": N_("Too many items."),
    "too_short": N_("Too few items."),
    "date_parsing": N_("A date (YYYY-MM-DD) is expected."),
    "date_from_datetime_parsing": N_("A date (YYYY-MM-DD) is expected."),
    "time_parsing": N_("A time (HH:MM) is expected."),
    "datetime_parsing": N_("A date and time is expected."),
    "value_error": N_("A value is not valid."),
    "control_characters": N_("Control characters are not allowed."),
    "url_parsing": N_("A value is not valid."),
    "datetime_from_date_parsing": N_("A date and time is expected."),
}


class PageRedirect(Exception):
    """Raised by page dependencies to send the browser elsewhere (sign-in, enrolment)."""

    def __init__(self, location: str) -> None:
        super().__init__(location)
        self.location = location


def validation_message(kind: str) -> str:
    """The English msgid that explains a pydantic error type (translate before showing)."""
    return _VALIDATION_MESSAGES.get(kind, N_("A value is not valid."))


def _locale(request: Request) -> str:
    chosen: str | None = getattr(request.state, "locale", None)
    if chosen:
        return chosen
    default = request.app.state.services.settings.i18n.default_locale
    return negotiate(request.headers.get("accept-language"), default)


def wants_html(request: Request) -> bool:
    if request.headers.get("hx-request") == "true":
        return True
    path = request.url.path
    if path.startswith(("/api/", "/dicomweb/", "/healthz", "/docs", "/openapi")):
        return False
    return "text/html" in request.headers.get("accept", "")


def render_error(
    request: Request,
    status: int,
    code: str,
    message: str,
    field: str | None,
    *,
    params: dict[str, Any] | None = None,
    details: list[dict[str, Any]] | None = None,
    headers: dict[str, str] | None = None,
) -> Response:
    locale = _locale(request)
    text = translate(locale, message, **(params or {}))
    if wants_html(request):
        from xietong.web.templating import render_error_html

        return render_error_html(request, status, code, text, field, headers=headers)
    body: dict[str, Any] = {"code": code, "message": text, "field": field}
    if details:
        body["details"] = details
    return JSONResponse({"error": body}, status_code=status, headers=headers)


def _field_from_loc(loc: tuple[Any, ...]) -> str:
    parts = [str(p) for p in loc]
    if parts and parts[0] in ("body", "query", "path", "header", "cookie", "form"):
        rest = parts[1:]
        return ".".join(rest) if rest else parts[0]
    return ".".join(parts) or "body"


def install_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(XietongError)
    async def _domain_error(request: Request, exc: XietongError) -> Response:
        return render_error(
            request,
            exc.status,
            exc.code,
            exc.message,
            exc.field,
            params=exc.params,
            headers=exc.headers or None,
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, exc: RequestValidationError) -> Response:
        errors = list(exc.errors())
        first = errors[0] if errors else {"type": "value_error", "loc": ("body",)}
        kind = str(first.get("type", "value_error"))
        locale = _locale(request)
        details = [
            {
                "field": _field_from_loc(tuple(e.get("loc", ()))),
                "code": str(e.get("type", "value_error")),
                "message": translate(
                    locale,
                    _VALIDATION_MESSAGES.get(str(e.get("type")), N_("A value is not valid.")),
                ),
            }
            for e in errors[:20]
        ]
        if kind == "json_invalid":
            return render_error(
                request,
                400,
                "malformed_json",
                _VALIDATION_MESSAGES["json_invalid"],
                "body",
                details=details,
            )
        return render_error(
            request,
            422,
            kind,
            _VALIDATION_MESSAGES.get(kind, N_("A value is not valid.")),
            _field_from_loc(tuple(first.get("loc", ()))),
            details=details,
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        code, message = _STATUS_CODES.get(
            exc.status_code, ("error", N_("The request is not valid."))
        )
        headers = dict(exc.headers) if exc.headers else None
        # FastAPI's only 400 is a body it could not parse (bytes that are not UTF-8 JSON).
        field = "body" if exc.status_code in (400, 413) else None
        return render_error(request, exc.status_code, code, message, field, headers=headers)

    @app.exception_handler(PageRedirect)
    async def _page_redirect(request: Request, exc: PageRedirect) -> Response:
        if request.headers.get("hx-request") == "true":
            # htmx would swap the target page into a fragment; make it navigate instead.
            return Response(status_code=200, headers={"HX-Redirect": exc.location})
        return RedirectResponse(exc.location, status_code=303)

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        code, message = _STATUS_CODES[500]
        return render_error(request, 500, code, message, None)


def html_error_response(status: int, html: str, headers: dict[str, str] | None) -> HTMLResponse:
    return HTMLResponse(html, status_code=status, headers=headers)

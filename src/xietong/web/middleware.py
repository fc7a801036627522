"""ASGI middleware: body-size limit, security headers, gzip of DICOMweb JSON."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.middleware.gzip import DEFAULT_EXCLUDED_CONTENT_TYPES, GZipMiddleware
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from xietong.core.i18n import negotiate, normalise_locale, translate


class BodyTooLarge(HTTPException):
    """Raised while a body streams past the limit.

    An HTTPException, because FastAPI turns any other exception raised while it reads a
    body into a 400 ("error parsing the body"); this one reaches the error handlers, which
    answer 413 naming ``body``.
    """

    def __init__(self) -> None:
        super().__init__(status_code=413)


class BodyLimitMiddleware:
    """Refuse bodies over the limit with a 413 before any route parses them.

    Declared lengths are checked up front; chunked bodies are counted as they stream.
    Upload routes (paths matching one of ``upload_paths``, regular expressions) get the
    larger upload limit.
    """

    def __init__(
        self,
        app: ASGIApp,
        *,
        max_body: int,
        max_upload: int,
        upload_paths: tuple[str, ...] = (),
        default_locale: str = "zh_CN",
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.max_upload = max_upload
        self.upload_paths = tuple(re.compile(pattern) for pattern in upload_paths)
        self.default_locale = default_locale

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope.get("path", "")
        is_upload = any(pattern.match(path) for pattern in self.upload_paths)
        limit = self.max_upload if is_upload else self.max_body
        headers = dict(scope.get("headers") or [])
        declared = headers.get(b"content-length")
        if declared is not None:
            try:
                too_big = int(declared) > limit
            except ValueError:
                too_big = True
            if too_big:
                await self._refuse(scope, send, limit)
                return
        received = 0
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:
            if not response_started:
                await self._refuse(scope, send, limit)

    async def _refuse(self, scope: Scope, send: Send, limit: int) -> None:
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
        locale = normalise_locale(_cookie(headers.get("cookie", ""), "xt_lang")) or negotiate(
            headers.get("accept-language"), self.default_locale
        )
        body = json.dumps(
            {
                "error": {
                    "code": "payload_too_large",
                    "message": translate(locale, "The request body is too large."),
                    "field": "body",
                    "limit": limit,
                }
            },
            ensure_ascii=False,
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json; charset=utf-8"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _cookie(header: str, name: str) -> str | None:
    for part in header.split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


def security_headers() -> list[tuple[str, str]]:
    return [
        ("X-Content-Type-Options", "nosniff"),
        ("X-Frame-Options", "DENY"),
        ("Referrer-Policy", "same-origin"),
        (
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data: blob:; style-src 'self' 'unsafe-inline'; "
            "script-src 'self'; connect-src 'self' ws: wss:; frame-ancestors 'none'",
        ),
    ]


class SecurityHeadersMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                raw: list[Any] = list(message.get("headers", []))
                present = {k.lower() for k, _ in raw}
                for key, value in security_headers():
                    if key.lower().encode() not in present:
                        raw.append((key.lower().encode(), value.encode()))
                message["headers"] = raw
            await send(message)

        await self.app(scope, receive, send_with_headers)


# Compression: DICOMweb JSON only. Images and DICOM are compressed already or would cost
# more CPU than they save on the wire (a 150 MB series streamed as multipart/related), and
# HTML pages carry CSRF tokens next to reflected input (BREACH), so they stay plain.
GZIP_PREFIXES = ("/dicomweb/",)
GZIP_MINIMUM_BYTES = 1024  # below this the gzip header and the CPU cost more than they save
GZIP_LEVEL = 5  # DICOM JSON is repetitive: level 5 is within a few % of 9, twice as fast
GZIP_EXCLUDED = (
    *DEFAULT_EXCLUDED_CONTENT_TYPES,
    "image/*",
    "multipart/*",
    "application/dicom",
    "application/octet-stream",
)


class DicomwebGZipMiddleware:
    """gzip for answers under GZIP_PREFIXES when the client sends Accept-Encoding: gzip."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self.gzip = GZipMiddleware(
            app,
            minimum_size=GZIP_MINIMUM_BYTES,
            compresslevel=GZIP_LEVEL,
            exclude_content_types=GZIP_EXCLUDED,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and str(scope.get("path", "")).startswith(GZIP_PREFIXES):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)

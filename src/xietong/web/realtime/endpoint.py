"""The WebSocket at /ws: authentication, frame limits, and dispatch by frame type.

Authentication, before the socket is accepted:
* a browser: the session cookie, and only from our own origin (a page elsewhere cannot
  open a socket with the user's cookie: cross-site WebSocket hijacking);
* an API client: ``Authorization: Bearer <token>``.
Anyone else gets the handshake refused (HTTP 403). The session is checked again every
``REVALIDATE_SECONDS``; once it has ended or been revoked the socket closes with 4401.

Frames are JSON objects with a ``type``; an ``id``, when given, is echoed in the answer or
the error. A frame that is not JSON, not an object, of an unknown type or invalid gets an
``error`` frame naming the problem and the field; the socket stays open. Frames larger
than XIETONG_LIVE_MAX_FRAME_BYTES close it (1009), as does a client that sends faster than
XIETONG_LIVE_MAX_FRAMES_PER_SECOND (1008).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.concurrency import run_in_threadpool

from xietong.access.authentication import principal_for
from xietong.access.principal import Principal
from xietong.core.db import session_scope
from xietong.core.errors import N_, BadRequest, XietongError
from xietong.core.i18n import negotiate, normalise_locale
from xietong.identity import service as identity
from xietong.web.context import AppServices
from xietong.web.deps import LANG_COOKIE, SESSION_COOKIE
from xietong.web.realtime.connection import Connection
from xietong.web.realtime.delivery import user_channel

log = logging.getLogger(__name__)

Handler = Callable[[Connection, dict[str, Any]], Awaitable[None]]
HANDLERS: dict[str, Handler] = {}
# Frames that only a person sends (a post, typing, a video-call control): like a click,
# they keep a page session from its idle timeout. Automatic ones (subscribe, read, signal
# renegotiation, ping) do not, so an unattended page still times out.
ACTIVITY: set[str] = set()
REVALIDATE_SECONDS = 60.0
CLOSE_UNAUTHORISED = 4401
TYPE_MAX = 40

router = APIRouter()


def register(frame_type: str, handler: Handler, *, activity: bool = False) -> None:
    """Frames of ``frame_type`` go to ``handler`` (chat registers ``subscribe``, ``post``
    …; live registers ``live.join``, ``live.signal`` …); ``activity``: a person sent it."""
    HANDLERS[frame_type] = handler
    if activity:
        ACTIVITY.add(frame_type)


def _credentials(websocket: WebSocket) -> tuple[str | None, str]:
    header = websocket.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip(), "bearer"
    return websocket.cookies.get(SESSION_COOKIE), "cookie"


def _same_origin(websocket: WebSocket) -> bool:
    origin = websocket.headers.get("origin")
    if origin is None:
        return False  # every browser sends Origin on a WebSocket handshake
    host = websocket.headers.get("host", "")
    return urlsplit(origin).netloc.lower() == host.lower()


def _client_address(websocket: WebSocket, services: AppServices) -> str:
    peer = websocket.client.host if websocket.client else ""
    forwarded = websocket.headers.get("x-forwarded-for")
    if forwarded and peer in services.settings.http.trusted_proxies:
        return forwarded.split(",")[0].strip()[:64]
    return peer[:64]


def _authenticate(
    services: AppServices, token: str, kind: str, address: str, touch: bool
) -> Principal | None:
    with session_scope(services.session_factory) as session:
        found = identity.resolve_session(
            session, token, kind=kind, policy=services.settings.security, touch=touch
        )
        if found is None or found[0].mfa_pending:
            return None
        return principal_for(session, found[1], client_address=address, session_kind=kind)


def _locale(websocket: WebSocket, principal: Principal, services: AppServices) -> str:
    return (
        normalise_locale(websocket.query_params.get("lang"))
        or normalise_locale(websocket.cookies.get(LANG_COOKIE))
        or principal.locale
        or negotiate(
            websocket.headers.get("accept-language"), services.settings.i18n.default_locale
        )
    )


def _parse(text: str) -> dict[str, Any]:
    try:
        frame = json.loads(text)
    except ValueError:
        raise BadRequest(
            N_("A frame is one JSON object."), code="frame_not_json", field=None
        ) from None
    if not isinstance(frame, dict):
        raise BadRequest(N_("A frame is one JSON object."), code="frame_not_object", field=None)
    kind = frame.get("type")
    if not isinstance(kind, str) or not kind or len(kind) > TYPE_MAX:
        raise BadRequest(N_("A frame names its type."), code="type_missing", field="type")
    if kind not in HANDLERS:
        raise BadRequest(
            N_("Unknown frame type {type}."),
            code="type_unknown",
            field="type",
            params={"type": kind},
        )
    request_id = frame.get("id")
    if request_id is not None and not (
        isinstance(request_id, (int, str)) and len(str(request_id)) <= 64
    ):
        raise BadRequest(N_("A frame id is at most 64 characters."), code="id_invalid", field="id")
    return frame


class _RateLimit:
    """A token bucket: ``rate`` frames per second with a burst of ten seconds' worth."""

    def __init__(self, rate: int) -> None:
        self.rate = float(rate)
        self.capacity = float(rate * 10)
        self.tokens = self.capacity
        self.last = time.monotonic()

    def take(self) -> bool:
        now = time.monotonic()
        self.tokens = min(self.capacity, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@router.websocket("/ws")
async def websocket_endpoint(websocket: WebSocket) -> None:
    services: AppServices = websocket.app.state.services
    token, kind = _credentials(websocket)
    if token is None or (kind == "cookie" and not _same_origin(websocket)):
        await websocket.close(code=1008)  # before accept: the handshake gets HTTP 403
        return
    address = _client_address(websocket, services)
    principal = await run_in_threadpool(_authenticate, services, token, kind, address, True)
    if principal is None:
        await websocket.close(code=1008)
        return
    await websocket.accept()
    conn = Connection(
        websocket,
        services,
        websocket.app.state.broadcaster,
        principal,
        _locale(websocket, principal, services),
    )
    _follow_notifications(conn)
    await conn.send({"type": "hello", "connection": conn.id, "user_id": principal.user_id})
    watcher = asyncio.create_task(_watch_session(conn, token, kind, address))
    try:
        await _receive_loop(conn)
    finally:
        watcher.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await watcher
        await conn.shutdown()


def _follow_notifications(conn: Connection) -> None:
    """Every socket hears of its user's new notifications (``{"type": "notification"}``),
    without asking: the page's bell refreshes at once instead of at its next poll."""

    async def nudge(payload: dict[str, Any]) -> None:
        await conn.send({"type": "notification", "id": payload["id"], "kind": payload["kind"]})

    conn.subscribe(user_channel(conn.user_id), nudge)


async def _receive_loop(conn: Connection) -> None:
    live = conn.services.settings.live
    limit = _RateLimit(live.max_frames_per_second)
    websocket = conn.websocket
    while not conn.closed:
        try:
            message = await websocket.receive()
        except (WebSocketDisconnect, RuntimeError):
            return
        if message["type"] == "websocket.disconnect":
            return
        text = message.get("text")
        if text is None:
            data = message.get("bytes") or b""
            await _close(conn, 1003 if len(data) <= live.max_frame_bytes else 1009)
            return
        if len(text.encode("utf-8")) > live.max_frame_bytes:
            await _close(conn, 1009)
            return
        if not limit.take():
            await _close(conn, 1008)
            return
        await _dispatch(conn, text)


async def _dispatch(conn: Connection, text: str) -> None:
    frame: dict[str, Any] = {}
    try:
        frame = _parse(text)
        await HANDLERS[frame["type"]](conn, frame)
        if frame["type"] in ACTIVITY:
            conn.active = True
    except XietongError as error:
        await conn.send_error(error, frame.get("id"))
    except Exception:
        log.exception("WebSocket frame %s failed", frame.get("type"))
        await conn.send(
            {
                "type": "error",
                "status": 500,
                "code": "internal_error",
                "field": None,
                "message": "internal error",
                **({"id": frame["id"]} if "id" in frame else {}),
            }
        )


async def _close(conn: Connection, code: int) -> None:
    conn.closed = True
    with contextlib.suppress(Exception):
        await conn.websocket.close(code=code)


async def _watch_session(conn: Connection, token: str, kind: str, address: str) -> None:
    """Close the socket once its session has ended (signed out, revoked, idle, expired)."""
    while True:
        # Jittered, so that sockets opened together (a reconnect storm after a restart) do
        # not all check at the same moment.
        await asyncio.sleep(REVALIDATE_SECONDS * (0.75 + random.random() / 2))  # noqa: S311
        # A bearer token's life is fixed. A cookie session's idle clock moves only if the
        # person did something on this socket since the last check, or is in a video call:
        # a socket left open (like a background poll) does not keep an idle page alive.
        touch = conn.take_activity()
        still = await run_in_threadpool(_authenticate, conn.services, token, kind, address, touch)
        if still is None:
            await _close(conn, CLOSE_UNAUTHORISED)
            return


async def _ping(conn: Connection, frame: dict[str, Any]) -> None:
    await conn.send({"type": "pong", **({"id": frame["id"]} if "id" in frame else {})})


register("ping", _ping)

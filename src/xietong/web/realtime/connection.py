"""One authenticated WebSocket: what frame handlers (chat, live) get to work with.

Handlers are ``async def handle(conn: Connection, frame: dict) -> None``. They call the
domains' synchronous services through :meth:`Connection.run`, which runs them in the thread
pool inside one transaction (committed, or rolled back with its denials kept, exactly as a
request's unit of work), and they reach other connections through the broadcaster.

Sending is serialised per connection (one lock) so that frames from the fan-out and from
the handler never interleave; a slow client is dropped rather than allowed to hold the
broadcaster (``SEND_TIMEOUT``).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool
from starlette.websockets import WebSocket, WebSocketState

from xietong.access.principal import Principal
from xietong.core.db import session_scope
from xietong.core.errors import XietongError
from xietong.core.fanout import Broadcaster, Callback, Subscription
from xietong.core.i18n import translate
from xietong.web.context import AppServices

log = logging.getLogger(__name__)

T = TypeVar("T")
SEND_TIMEOUT = 10.0
_numbers = itertools.count(1)


class Connection:
    def __init__(
        self,
        websocket: WebSocket,
        services: AppServices,
        broadcaster: Broadcaster,
        principal: Principal,
        locale: str,
    ) -> None:
        self.websocket = websocket
        self.services = services
        self.broadcaster = broadcaster
        self.principal = principal
        self.locale = locale
        # Unguessable, and unique across processes: peers address each other by it.
        self.id = f"{next(_numbers)}-{secrets.token_urlsafe(9)}"
        self.opened_at = time.monotonic()
        self._send_lock = asyncio.Lock()
        self._subscriptions: dict[str, Subscription] = {}
        self._on_close: list[Callable[[], Awaitable[None]]] = []
        self.closed = False
        # Per-feature state (chat subscriptions, the live session joined), by feature name.
        self.state: dict[str, Any] = {}
        # The person did something here since the last session check (a post, typing).
        self.active = False
        # Features the person is taking part in right now (a video call): while any is,
        # the session counts as in use.
        self.present: set[str] = set()

    @property
    def user_id(self) -> int:
        return self.principal.uid

    def take_activity(self) -> bool:
        """Whether the session was in use since the last call (and start counting again)."""
        used = self.active or bool(self.present)
        self.active = False
        return used

    # Database -------------------------------------------------------------------------

    async def run(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn(session, principal, *args, **kwargs)`` in the thread pool, in one unit of
        work; a XietongError it raises comes back here after the rollback (denials kept)."""

        def unit() -> T:
            with session_scope(self.services.session_factory) as session:
                return fn(session, self.principal, *args, **kwargs)

        return await run_in_threadpool(unit)

    async def read(self, fn: Callable[[Session], T]) -> T:
        """``fn(session)`` in the thread pool for reads that need no principal."""

        def unit() -> T:
            with session_scope(self.services.session_factory) as session:
                return fn(session)

        return await run_in_threadpool(unit)

    # Sending --------------------------------------------------------------------------

    async def send(self, frame: dict[str, Any]) -> None:
        if self.closed:
            return
        text = json.dumps(frame, ensure_ascii=False, default=str)
        async with self._send_lock:
            if self.closed or self.websocket.application_state != WebSocketState.CONNECTED:
                return
            try:
                await asyncio.wait_for(self.websocket.send_text(text), SEND_TIMEOUT)
            except Exception:
                # Gone, or too slow to keep up: close; the client resumes by sequence.
                self.closed = True
                with contextlib.suppress(Exception):
                    await self.websocket.close(code=1011)

    async def send_error(self, error: XietongError, request_id: Any = None) -> None:
        frame: dict[str, Any] = {
            "type": "error",
            "status": error.status,
            "code": error.code,
            "field": error.field,
            "message": translate(self.locale, error.message, **error.params),
        }
        if error.params:
            frame["params"] = error.params
        if request_id is not None:
            frame["id"] = request_id
        await self.send(frame)

    # Fan-out --------------------------------------------------------------------------

    def subscribe(self, channel: str, callback: Callback) -> None:
        """Receive what is published on ``channel`` until :meth:`unsubscribe` or close."""
        if channel in self._subscriptions:
            return
        self._subscriptions[channel] = self.broadcaster.subscribe(channel, callback)

    def unsubscribe(self, channel: str) -> None:
        subscription = self._subscriptions.pop(channel, None)
        if subscription is not None:
            subscription.close()

    def is_subscribed(self, channel: str) -> bool:
        return channel in self._subscriptions

    async def publish(self, channel: str, payload: dict[str, Any]) -> None:
        await self.broadcaster.publish(channel, payload)

    # Lifecycle ------------------------------------------------------------------------

    def on_close(self, callback: Callable[[], Awaitable[None]]) -> None:
        """Run ``callback`` when the socket closes, however it closes (leave a session,
        record attendance, audit what was delivered)."""
        self._on_close.append(callback)

    async def shutdown(self) -> None:
        self.closed = True
        for channel in list(self._subscriptions):
            self.unsubscribe(channel)
        for callback in reversed(self._on_close):
            try:
                await callback()
            except Exception:
                log.exception("close callback failed")
        self._on_close.clear()

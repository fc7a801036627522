"""The Janus media path of one WebSocket connection (docs/live.md, "Mesh and Janus").

A :class:`JanusPeer` is one joined socket of a ``janus`` session: one Janus session over
the HTTP transport, read by one long-poll task (``GET /janus/<session>?maxev=…``: Janus
delivers the plugin's asynchronous answers and events there), one VideoRoom *publisher*
handle (the browser's camera, ``display`` = our peer id), and one *subscriber* handle per
other publisher of the room. The browser's JSEP travels through our signaling; this class
turns it into VideoRoom requests and hands Janus's JSEP back through a :class:`MediaSink`.

Every request carries a fresh ``transaction``; a request whose answer is asynchronous (an
``ack`` first) waits for the event with the same transaction, for ``TIMEOUT`` seconds at
most. Errors are :class:`MediaError`: Janus unreachable, timed out, or refusing.

The HTTP client is a few lines over asyncio streams (one request per connection,
``Connection: close``): Janus answers small JSON bodies, and a thread per long-poll would
eat the thread pool the database calls need.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

TIMEOUT = 10.0
# Janus answers a long-poll after 30 s without events (a keepalive); a little more here.
POLL_TIMEOUT = 45.0
MAX_EVENTS = 10
BODY_MAX = 4 * 1024 * 1024
VIDEOROOM = "janus.plugin.videoroom"


class MediaError(Exception):
    """The media server refused or could not be reached."""

    def __init__(self, message: str, code: str = "live_media_error") -> None:
        super().__init__(message)
        self.code = code


class MediaSink(Protocol):
    """Where a media peer sends what Janus says to the browser."""

    async def signal(self, feed: str | None, data: dict[str, Any]) -> None:
        """``data`` is ``{sdp: …}`` or ``{candidate: …}``; ``feed``: the publisher's peer id
        (a subscription), or None (the browser's own publication)."""
        ...

    async def failed(self, error: MediaError) -> None: ...


# HTTP ----------------------------------------------------------------------------------


def _dechunk(body: bytes) -> bytes:
    out, rest = b"", body
    while rest:
        size_line, _, rest = rest.partition(b"\r\n")
        size = int(size_line.split(b";")[0], 16)
        if size == 0:
            break
        out, rest = out + rest[:size], rest[size + 2 :]
    return out


async def _exchange(url: str, method: str, payload: bytes) -> bytes:
    parts = urlsplit(url)
    secure = parts.scheme == "https"
    host = parts.hostname or "127.0.0.1"
    port = parts.port or (443 if secure else 80)
    target = parts.path + (f"?{parts.query}" if parts.query else "")
    reader, writer = await asyncio.open_connection(
        host, port, ssl=ssl.create_default_context() if secure else None
    )
    try:
        head = (
            f"{method} {target} HTTP/1.1\r\nHost: {parts.netloc}\r\nConnection: close\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(payload)}\r\n\r\n"
        )
        writer.write(head.encode("latin-1") + payload)
        await writer.drain()
        raw = b""
        while chunk := await reader.read(65536):
            raw += chunk
            if len(raw) > BODY_MAX:
                raise MediaError("janus: answer too large")
    finally:
        writer.close()
        with contextlib.suppress(Exception):
            await writer.wait_closed()
    header, _, body = raw.partition(b"\r\n\r\n")
    lines = header.decode("latin-1").split("\r\n")
    status = lines[0].split(" ")
    if len(status) < 2 or status[1] != "200":
        raise MediaError(f"janus: HTTP {' '.join(status[1:]) or 'no answer'}", "live_media_down")
    if any(line.lower().replace(" ", "") == "transfer-encoding:chunked" for line in lines[1:]):
        body = _dechunk(body)
    return body


async def http_json(url: str, body: dict[str, Any] | None, timeout: float | None = None) -> Any:
    """POST ``body`` (GET when None) and the JSON answer; MediaError otherwise."""
    method, payload = ("GET", b"") if body is None else ("POST", json.dumps(body).encode())
    try:
        raw = await asyncio.wait_for(_exchange(url, method, payload), timeout or TIMEOUT)
        return json.loads(raw)
    except TimeoutError:
        raise MediaError("janus: no answer in time", "live_media_timeout") from None
    except (OSError, ValueError, IndexError) as error:
        raise MediaError(f"janus unreachable: {error}", "live_media_down") from error


# A Janus session and its long-poll -------------------------------------------------------


class JanusSession:
    """One Janus session: requests, and one long-poll task dispatching its events — to the
    request waiting for their transaction, else to ``on_event``."""

    def __init__(
        self,
        url: str,
        on_event: Callable[[dict[str, Any]], None],
        on_lost: Callable[[MediaError], Awaitable[None]],
    ) -> None:
        self.url = url.rstrip("/")
        self.on_event = on_event
        self.on_lost = on_lost
        self.id = 0
        self._waiting: dict[str, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self.closed = False

    async def _post(self, path: str, body: dict[str, Any], transaction: str) -> dict[str, Any]:
        reply = await http_json(self.url + path, {**body, "transaction": transaction})
        if not isinstance(reply, dict):
            raise MediaError("janus: unexpected answer")
        if reply.get("janus") == "error":
            raise MediaError(f"janus: {reply.get('error')}")
        return reply

    async def open(self) -> None:
        reply = await self._post("", {"janus": "create"}, secrets.token_hex(8))
        self.id = int(reply["data"]["id"])
        self._reader = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        url = f"{self.url}/{self.id}?maxev={MAX_EVENTS}"
        while not self.closed:
            try:
                events = await http_json(url, None, POLL_TIMEOUT)
                if isinstance(events, dict) and events.get("janus") == "error":
                    raise MediaError(f"janus: {events.get('error')}", "live_media_lost")
            except MediaError as error:
                if not self.closed:
                    log.warning("janus session %s lost: %s", self.id, error)
                    self._fail(error)
                    await self.on_lost(MediaError(str(error), "live_media_lost"))
                return
            for event in events if isinstance(events, list) else [events]:
                if isinstance(event, dict):
                    self._dispatch(event)

    def _dispatch(self, event: dict[str, Any]) -> None:
        if event.get("janus") in ("keepalive", "ack"):
            return
        waiting = self._waiting.pop(str(event.get("transaction")), None)
        if waiting is not None and not waiting.done():
            waiting.set_result(event)
            return
        try:
            self.on_event(event)
        except Exception:
            log.exception("janus event %s", event.get("janus"))

    def _fail(self, error: MediaError) -> None:
        for waiting in self._waiting.values():
            if not waiting.done():
                waiting.set_exception(MediaError(str(error), "live_media_lost"))
        self._waiting.clear()

    async def request(self, handle: int | None, body: dict[str, Any]) -> dict[str, Any]:
        """A request; when Janus only acknowledges it, the event that answers it."""
        if self.closed:
            raise MediaError("janus: session closed", "live_media_lost")
        transaction = secrets.token_hex(8)
        waiting: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        # Registered before the POST: the answer may come on the long-poll first.
        self._waiting[transaction] = waiting
        path = f"/{self.id}" + (f"/{handle}" if handle is not None else "")
        try:
            reply = await self._post(path, body, transaction)
            if reply.get("janus") != "ack" or body.get("janus") == "trickle":
                return reply
            return await asyncio.wait_for(waiting, TIMEOUT)
        except TimeoutError:
            raise MediaError("janus: no answer in time", "live_media_timeout") from None
        finally:
            self._waiting.pop(transaction, None)

    async def attach(self) -> int:
        reply = await self.request(None, {"janus": "attach", "plugin": VIDEOROOM})
        return int(reply["data"]["id"])

    async def message(
        self, handle: int, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> tuple[dict[str, Any], dict[str, Any] | None]:
        """A VideoRoom request: the plugin's data and the JSEP of its answer."""
        request: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        event = await self.request(handle, request)
        data = event.get("plugindata", {}).get("data", {})
        if not isinstance(data, dict) or "error" in data:
            raise MediaError(f"videoroom: {data.get('error') if isinstance(data, dict) else data}")
        return data, event.get("jsep")

    async def trickle(self, handle: int, candidate: dict[str, Any] | None) -> None:
        value = {"completed": True} if candidate is None else candidate
        await self.request(handle, {"janus": "trickle", "candidate": value})

    async def detach(self, handle: int) -> None:
        with contextlib.suppress(MediaError):
            await self.request(handle, {"janus": "detach"})

    async def close(self) -> None:
        """Destroy the session (Janus detaches its handles: the publisher leaves the room)."""
        if self.closed:
            return
        self.closed = True
        self._fail(MediaError("janus: session closed"))
        if self._reader is not None:
            self._reader.cancel()
        if self.id:
            with contextlib.suppress(MediaError):
                await self._post(f"/{self.id}", {"janus": "destroy"}, secrets.token_hex(8))


# One socket's publication and subscriptions ----------------------------------------------


@dataclass
class _Subscription:
    feed: int
    handle: int = 0


class JanusPeer:
    """One joined socket in a VideoRoom room: it publishes once and subscribes to every
    other publisher (their ``display`` is their peer id). A socket without camera or
    microphone *watches* instead: it joins the room as a publisher that never publishes,
    which is how VideoRoom tells it of the publishers, and subscribes to them the same way
    (the others get no feed of it)."""

    def __init__(self, url: str, room: int, peer: str, sink: MediaSink) -> None:
        self.room = room
        self.peer = peer
        self.sink = sink
        self.session = JanusSession(url, self._on_event, self._on_lost)
        self.publisher = 0
        self.joined = False  # in the room (watching, or publishing)
        self.published = False
        self.subscriptions: dict[str, _Subscription] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    async def open(self) -> None:
        try:
            await self.session.open()
            self.publisher = await self.session.attach()
        except MediaError:
            await self.session.close()
            raise

    # From the browser ------------------------------------------------------------------

    async def signal(self, feed: str | None, data: dict[str, Any]) -> None:
        """The browser's ``live.signal`` to ``sfu``: its publication's offer and candidates
        (no ``feed``), or a subscription's answer and candidates (``feed``)."""
        sdp, candidate = data.get("sdp"), data.get("candidate")
        if feed is None:
            if data.get("watch"):
                await self._watch()
            elif sdp is not None:
                if sdp["type"] != "offer":
                    raise MediaError("the publication starts with an offer", "frame_invalid")
                await self._publish(sdp)
            elif self.published:
                await self.session.trickle(self.publisher, candidate)
            return
        sub = self.subscriptions.get(feed)
        if sub is None or not sub.handle:
            raise MediaError("no such feed", "live_feed_unknown")
        if sdp is not None:
            if sdp["type"] != "answer":
                raise MediaError("a subscription is answered", "frame_invalid")
            await self.session.message(sub.handle, {"request": "start"}, sdp)
        else:
            await self.session.trickle(sub.handle, candidate)

    async def _watch(self) -> None:
        if self.joined:
            return
        body = {"request": "join", "room": self.room, "ptype": "publisher", "display": self.peer}
        data, _jsep = await self.session.message(self.publisher, body)
        self.joined = True
        self._publishers(data.get("publishers", []))

    async def _publish(self, offer: dict[str, Any]) -> None:
        if self.joined:
            # A renegotiation (a track added), or a watcher starting to publish: configure
            # with the new offer.
            _data, answer = await self.session.message(
                self.publisher, {"request": "configure"}, offer
            )
            self.published = True
        else:
            body = {
                "request": "joinandconfigure",
                "room": self.room,
                "ptype": "publisher",
                "display": self.peer,
            }
            data, answer = await self.session.message(self.publisher, body, offer)
            self.joined = self.published = True
            self._publishers(data.get("publishers", []))
        if answer is None:
            raise MediaError("janus: no answer to the offer")
        await self.sink.signal(None, {"sdp": {"type": answer["type"], "sdp": answer["sdp"]}})

    # From Janus ------------------------------------------------------------------------

    def _on_event(self, event: dict[str, Any]) -> None:
        data = event.get("plugindata", {}).get("data", {})
        if event.get("janus") != "event" or not isinstance(data, dict):
            if event.get("janus") == "hangup":
                log.info("janus hangup on %s: %s", event.get("sender"), event.get("reason"))
            return
        if event.get("sender") != self.publisher:
            return
        self._publishers(data.get("publishers", []))
        for key in ("unpublished", "leaving"):
            gone = data.get(key)
            for display, sub in list(self.subscriptions.items()):
                if sub.feed == gone:
                    self.subscriptions.pop(display)
                    self._spawn(self.session.detach(sub.handle))

    def _publishers(self, publishers: list[dict[str, Any]]) -> None:
        for publisher in publishers:
            display = str(publisher.get("display", ""))
            if not display or display == self.peer or display in self.subscriptions:
                continue
            sub = _Subscription(int(publisher["id"]))
            self.subscriptions[display] = sub
            self._spawn(self._subscribe(display, sub))

    async def _subscribe(self, display: str, sub: _Subscription) -> None:
        sub.handle = await self.session.attach()
        body = {
            "request": "join",
            "room": self.room,
            "ptype": "subscriber",
            "streams": [{"feed": sub.feed}],
        }
        _data, offer = await self.session.message(sub.handle, body)
        if offer is None:
            raise MediaError("janus: a subscription without an offer")
        await self.sink.signal(display, {"sdp": {"type": offer["type"], "sdp": offer["sdp"]}})

    def _spawn(self, work: Awaitable[None]) -> None:
        async def guarded() -> None:
            try:
                await work
            except MediaError as error:
                if not self.session.closed:
                    await self.sink.failed(error)

        task = asyncio.create_task(guarded())
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _on_lost(self, error: MediaError) -> None:
        await self.sink.failed(error)

    async def close(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await self.session.close()

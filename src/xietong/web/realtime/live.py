"""Video session signaling over /ws (docs/live.md): ``live.join``, ``live.signal``,
``live.state``, ``live.leave`` and, for hosts, ``live.admit``, ``live.refuse``,
``live.end``. The rules are in :mod:`xietong.live`; this module is the transport.

One channel per session, ``live:<id>``: every socket joined to the session (or waiting in
its lobby) subscribes to it. Addressed payloads carry ``to`` and each receiver keeps only
its own, so a signal reaches only a peer joined to the same session; a socket waiting in
the lobby receives nothing but its own admission or refusal and the end of the session.

In a ``janus`` session the browser's media goes through the SFU instead: its signals to the
pseudo-peer ``sfu`` go to this socket's :class:`~xietong.live.media.MediaPeer` (created on
its first offer, in this process), and what Janus says comes back as ``live.signal`` from
``sfu`` (with ``feed``, the publisher's peer id, for a subscription). docs/live.md has the
frames.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Invalid, NotFound, Unavailable, XietongError
from xietong.core.events import DomainEvent, bus
from xietong.live import jobs, lobby, presence, rooms, signals
from xietong.live import service as svc
from xietong.live.ice import ice_servers
from xietong.live.media import MediaError, MediaPeer, media_router
from xietong.web.realtime.connection import Connection
from xietong.web.realtime.delivery import publish_everywhere
from xietong.web.realtime.endpoint import register

log = logging.getLogger(__name__)

STATE = "live"
LINK_MAX = 128
MEDIA_MESSAGES = {
    "live_media_timeout": N_("The media server did not answer in time."),
    "live_media_down": N_("The media server cannot be reached."),
    "live_media_lost": N_("The connection to the media server was lost."),
}


def channel(session_id: int) -> str:
    return f"live:{session_id}"


@dataclass
class LiveSocket:
    session_id: int
    joined: bool = False
    is_host: bool = False
    heartbeat: asyncio.Task[None] | None = None
    mode: str = "mesh"
    # The socket's media through the SFU (janus sessions, after its first offer).
    media: MediaPeer | None = None


def _current(conn: Connection) -> LiveSocket | None:
    found = conn.state.get(STATE)
    return found if isinstance(found, LiveSocket) else None


def _echo(frame: dict[str, Any]) -> dict[str, Any]:
    return {"id": frame["id"]} if "id" in frame else {}


def _joined(conn: Connection, session_id: int) -> LiveSocket:
    st = _current(conn)
    if st is None or st.session_id != session_id or not st.joined:
        raise Conflict(N_("Join the session first."), code="live_not_joined", field="session")
    return st


# What the channel brings ------------------------------------------------------------------


def _receiver(conn: Connection, session_id: int) -> Any:
    async def receive(payload: dict[str, Any]) -> None:
        st = _current(conn)
        if st is None or st.session_id != session_id:
            return
        kind = payload.get("kind")
        if kind == "over":
            await conn.send(
                {"type": "live.ended", "session": session_id, "state": payload["state"]}
            )
            await _forget(conn, st)
            if st.mode == "janus":
                await _release_room(conn, session_id)
            return
        if not st.joined:
            if kind == "decision" and payload.get("user_id") == conn.user_id:
                admitted = bool(payload.get("admitted"))
                frame_type = "live.admitted" if admitted else "live.refused"
                await conn.send({"type": frame_type, "session": session_id})
                if not admitted:
                    await _forget(conn, st)
            return
        if kind == "signal":
            if payload.get("to") == conn.id:
                await conn.send(
                    {
                        "type": "live.signal",
                        "session": session_id,
                        "from": payload["from"],
                        "data": payload["data"],
                    }
                )
        elif kind in ("peer_joined", "peer_left", "state"):
            if payload.get("peer") != conn.id:
                body = {k: v for k, v in payload.items() if k != "kind"}
                await conn.send({"type": f"live.{kind}", "session": session_id, **body})
        elif kind == "lobby" and st.is_host:
            await conn.send(
                {"type": "live.lobby", "session": session_id, "waiting": payload["waiting"]}
            )

    return receive


async def _forget(conn: Connection, st: LiveSocket) -> None:
    conn.state.pop(STATE, None)
    conn.present.discard(STATE)
    conn.unsubscribe(channel(st.session_id))
    if st.heartbeat is not None:
        st.heartbeat.cancel()
    if st.media is not None:
        media, st.media = st.media, None
        await media.close()


async def _beat(conn: Connection) -> None:
    """Keep this socket's attendance row fresh (the cleanup closes silent ones)."""
    peers = [conn.id]
    while True:
        await asyncio.sleep(jobs.HEARTBEAT_SECONDS)
        await conn.read(lambda s: svc.mark_seen(s, peers))


async def _leave(conn: Connection) -> int | None:
    """Out of the current session (joined or waiting); the others are told."""
    st = _current(conn)
    if st is None:
        return None
    await _forget(conn, st)
    if st.joined:
        seconds = await conn.run(presence.leave, st.session_id, conn.id)
        await conn.publish(channel(st.session_id), {"kind": "peer_left", "peer": conn.id})
        if st.mode == "janus":
            await _release_room(conn, st.session_id)
        return seconds
    withdrawn = await conn.run(
        lambda s, _p: (
            lobby.withdraw(s, st.session_id, conn.user_id),
            lobby.waiting(s, st.session_id),
        )
    )
    if withdrawn[0]:
        await conn.publish(channel(st.session_id), {"kind": "lobby", "waiting": withdrawn[1]})
    return None


async def _close(conn: Connection) -> None:
    await _leave(conn)


# Frames -----------------------------------------------------------------------------------


async def join(conn: Connection, frame: dict[str, Any]) -> None:
    session_id = signals.session_id(frame)
    link = frame.get("link")
    if link is not None and (not isinstance(link, str) or len(link) > LINK_MAX):
        raise Invalid(code="frame_invalid", field="link")
    if _current(conn) is not None:
        await _leave(conn)
    if STATE + ".close" not in conn.state:
        conn.state[STATE + ".close"] = True
        conn.on_close(lambda: _close(conn))
    st = LiveSocket(session_id)
    conn.state[STATE] = st
    conn.subscribe(channel(session_id), _receiver(conn, session_id))
    await conn.broadcaster.ready()
    settings = conn.services.settings.live
    try:
        result = await conn.run(presence.join, session_id, conn.id, settings, link)
    except Exception:
        await _forget(conn, st)
        raise
    if isinstance(result, presence.Waiting):
        await conn.send({"type": "live.waiting", "session": session_id, **_echo(frame)})
        if result.created:
            await conn.publish(channel(session_id), {"kind": "lobby", "waiting": result.waiting})
        return
    st.joined = True
    conn.present.add(STATE)  # in a call: the page session is in use, however long
    st.is_host = result.is_host
    st.mode = result.live.mode
    st.heartbeat = asyncio.create_task(_beat(conn))
    await conn.send(
        {
            "type": "live.joined",
            "session": session_id,
            "peer": conn.id,
            "peers": result.peers,
            "ice_servers": ice_servers(settings, conn.user_id, now()),
            "upload_kbps": settings.upload_kbps,
            "mode": result.live.mode,
            "host": result.is_host,
            "guest": result.guest,
            **_echo(frame),
        }
    )
    if result.is_host:
        await conn.send({"type": "live.lobby", "session": session_id, "waiting": result.waiting})
    await conn.publish(
        channel(session_id),
        {
            "kind": "peer_joined",
            "peer": conn.id,
            "user_id": conn.user_id,
            "name": result.name,
            "muted": False,
            "camera_off": False,
        },
    )


async def signal(conn: Connection, frame: dict[str, Any]) -> None:
    session_id = signals.session_id(frame)
    to = signals.peer_id(frame.get("to"))
    data = signals.signal_data(frame.get("data"))
    st = _joined(conn, session_id)
    if "watch" in data and to != signals.SFU_PEER:
        raise Invalid(
            N_("A watch request goes to the media server only."), code="frame_invalid", field="data"
        )
    if to == signals.SFU_PEER:
        feed = frame.get("feed")
        await _to_sfu(conn, st, None if feed is None else signals.peer_id(feed, "feed"), data)
        return
    if to == conn.id:
        raise Invalid(code="frame_invalid", field="to")
    await conn.publish(
        channel(session_id), {"kind": "signal", "to": to, "from": conn.id, "data": data}
    )


# The SFU (janus sessions) ------------------------------------------------------------------


class _SfuSink:
    """Janus's JSEP for this socket, as ``live.signal`` from ``sfu``."""

    def __init__(self, conn: Connection, session_id: int) -> None:
        self.conn = conn
        self.session_id = session_id

    async def signal(self, feed: str | None, data: dict[str, Any]) -> None:
        frame: dict[str, Any] = {
            "type": "live.signal",
            "session": self.session_id,
            "from": signals.SFU_PEER,
            "data": data,
        }
        if feed is not None:
            frame["feed"] = feed
        await self.conn.send(frame)

    async def failed(self, error: MediaError) -> None:
        await self.conn.send_error(_media_error(error))


def _media_error(error: MediaError) -> XietongError:
    log.warning("media server: %s (%s)", error, error.code)
    if error.code == "frame_invalid":
        return Invalid(code="frame_invalid", field="data.sdp.type")
    if error.code == "live_feed_unknown":
        return NotFound(N_("No such feed in this session."), code="live_feed_unknown", field="feed")
    if error.code == "live_no_sfu":
        return Conflict(N_("This session has no media server."), code="live_no_sfu", field="to")
    message = MEDIA_MESSAGES.get(error.code, N_("The media server refused the request."))
    code = error.code if error.code in MEDIA_MESSAGES else "live_media_error"
    return Unavailable(message, code=code, field="to")


async def _to_sfu(conn: Connection, st: LiveSocket, feed: str | None, data: dict[str, Any]) -> None:
    if st.mode != "janus":
        raise Conflict(N_("This session has no media server."), code="live_no_sfu", field="to")
    try:
        if st.media is None:
            if feed is not None:
                raise Conflict(
                    N_("Publish your own stream first."), code="live_not_publishing", field="feed"
                )
            if "sdp" not in data and "watch" not in data:
                return  # a candidate of a publication that failed: nothing to add it to
            if "sdp" in data and data["sdp"]["type"] != "offer":
                raise Invalid(
                    N_("A publication starts with an offer."),
                    code="frame_invalid",
                    field="data.sdp.type",
                )
            router = media_router(conn.services.settings.live)
            room = await conn.run(lambda s, _p: rooms.media_room(s, st.session_id, router))
            st.media = await router.connect(room, conn.id, _SfuSink(conn, st.session_id))
        await st.media.signal(feed, data)
    except MediaError as error:
        raise _media_error(error) from error


async def _release_room(conn: Connection, session_id: int) -> None:
    """The last one out destroys the room (on the close path: never raises)."""
    router = media_router(conn.services.settings.live)
    try:
        await conn.run(lambda s, _p: rooms.release_room(s, session_id, router))
    except Exception:
        log.exception("releasing the media room of session %s", session_id)


async def state(conn: Connection, frame: dict[str, Any]) -> None:
    session_id = signals.session_id(frame)
    muted = signals.flag(frame, "muted")
    camera_off = signals.flag(frame, "camera_off")
    screen = signals.flag(frame, "screen")
    _joined(conn, session_id)
    await conn.run(lambda s, _p: presence.set_state(s, session_id, conn.id, muted, camera_off))
    await conn.publish(
        channel(session_id),
        {
            "kind": "state",
            "peer": conn.id,
            "muted": muted,
            "camera_off": camera_off,
            "screen": screen,
        },
    )


async def leave(conn: Connection, frame: dict[str, Any]) -> None:
    session_id = signals.session_id(frame)
    st = _current(conn)
    if st is None or st.session_id != session_id:
        raise Conflict(N_("Join the session first."), code="live_not_joined", field="session")
    seconds = await _leave(conn)
    await conn.send(
        {"type": "live.left", "session": session_id, "seconds": seconds, **_echo(frame)}
    )


async def _decide(conn: Connection, frame: dict[str, Any], admit: bool) -> None:
    session_id = signals.session_id(frame)
    user = frame.get("user")
    if isinstance(user, bool) or not isinstance(user, int) or not 1 <= user <= 2_147_483_647:
        raise Invalid(code="frame_invalid", field="user")

    def decide(s: Any, p: Any) -> list[dict[str, Any]]:
        lobby.decide(s, p, session_id, user, admit=admit)
        return lobby.waiting(s, session_id)

    waiting = await conn.run(decide)
    room = channel(session_id)
    await conn.publish(room, {"kind": "decision", "user_id": user, "admitted": admit})
    await conn.publish(room, {"kind": "lobby", "waiting": waiting})
    await conn.send(
        {
            "type": "live.admit" if admit else "live.refuse",
            "session": session_id,
            "user": user,
            "ok": True,
            **_echo(frame),
        }
    )


async def admit(conn: Connection, frame: dict[str, Any]) -> None:
    await _decide(conn, frame, True)


async def refuse(conn: Connection, frame: dict[str, Any]) -> None:
    await _decide(conn, frame, False)


async def end(conn: Connection, frame: dict[str, Any]) -> None:
    """The host ends the session; everyone gets ``live.ended`` (after the commit)."""
    session_id = signals.session_id(frame)
    await conn.run(svc.end, session_id)
    await conn.send({"type": "live.end", "session": session_id, "ok": True, **_echo(frame)})


def _over(evt: DomainEvent) -> None:
    payload = evt.payload
    publish_everywhere(
        channel(int(payload["session_id"])), {"kind": "over", "state": payload["state"]}
    )


bus.subscribe(svc.EVENT_OVER, _over)
register("live.join", join, activity=True)
register("live.signal", signal)
register("live.state", state, activity=True)
register("live.leave", leave, activity=True)
register("live.admit", admit, activity=True)
register("live.refuse", refuse, activity=True)
register("live.end", end, activity=True)

__all__ = ["channel"]

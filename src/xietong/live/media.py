"""Where a session's media flows: a :class:`MediaRouter` per deployment.

* :class:`MeshRouter` (the default, ``XIETONG_LIVE_SFU=mesh``): no media server; every
  browser sends to every other (small rooms, up to XIETONG_LIVE_MESH_MAX_PARTICIPANTS).
* :class:`JanusRouter` (``XIETONG_LIVE_SFU=janus``): Janus's VideoRoom plugin over its HTTP
  API (``XIETONG_LIVE_JANUS_URL``): one room per session; each browser publishes once and
  subscribes to the others through Janus, its JSEP offers and answers relayed by our
  signaling (docs/live.md, "Mesh and Janus").

The protocol is deliberately small (rooms as plain values, one :class:`MediaPeer` per
joined socket) so that another SFU (mediasoup, LiveKit) could stand behind it; the mesh has
no media peer at all (its signaling is relayed between browsers).
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

from xietong.config import LiveSettings
from xietong.live.janus import VIDEOROOM, JanusPeer, MediaError, MediaSink

TIMEOUT = 10.0
# Publishers a VideoRoom room admits (Janus's default is 3); the session's size is not kept.
ROOM_PUBLISHERS = 100

__all__ = ["JanusRouter", "MediaError", "MediaPeer", "MediaRouter", "MediaSink", "MeshRouter"]


class MediaPeer(Protocol):
    """One joined socket's media through the server (the SFU's side of its connections)."""

    async def signal(self, feed: str | None, data: dict[str, Any]) -> None:
        """What the browser sent to the pseudo-peer ``sfu``."""
        ...

    async def close(self) -> None: ...


class MediaRouter(Protocol):
    mode: str

    def create_room(self, session_id: int, publishers: int) -> int | None:
        """The room of a session (None: the mesh has none)."""
        ...

    def room_exists(self, room: int) -> bool: ...

    def destroy_room(self, room: int) -> None: ...

    async def connect(self, room: int, peer: str, sink: MediaSink) -> MediaPeer:
        """The media peer of a joined socket, ready for its publication."""
        ...


class MeshRouter:
    mode = "mesh"

    def create_room(self, session_id: int, publishers: int) -> int | None:
        return None

    def room_exists(self, room: int) -> bool:
        return False

    def destroy_room(self, room: int) -> None:
        return None

    async def connect(self, room: int, peer: str, sink: MediaSink) -> MediaPeer:
        raise MediaError("no media server in a mesh", "live_no_sfu")


def _unreachable(error: Exception) -> MediaError:
    timed_out = isinstance(error, TimeoutError) or isinstance(
        getattr(error, "reason", None), TimeoutError
    )
    code = "live_media_timeout" if timed_out else "live_media_down"
    return MediaError(f"janus unreachable: {error}", code)


@dataclass
class JanusHandle:
    session: int
    handle: int


class JanusClient:
    """Janus's HTTP (REST) transport: POST JSON to /janus, /janus/<session>,
    /janus/<session>/<handle>; every request carries a fresh ``transaction``."""

    def __init__(self, url: str) -> None:
        self.url = url.rstrip("/")

    def _post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        body = {**body, "transaction": secrets.token_hex(8)}
        request = urllib.request.Request(  # noqa: S310 - a configured http(s) URL
            self.url + path,
            data=json.dumps(body).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
                reply: dict[str, Any] = json.loads(answer.read())
        except (OSError, ValueError) as error:
            raise _unreachable(error) from error
        if reply.get("janus") == "error":
            raise MediaError(f"janus: {reply.get('error')}")
        return reply

    def info(self) -> dict[str, Any]:
        request = urllib.request.Request(self.url + "/info")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
                info: dict[str, Any] = json.loads(answer.read())
        except (OSError, ValueError) as error:
            raise _unreachable(error) from error
        return info

    def attach(self, plugin: str = VIDEOROOM) -> JanusHandle:
        session = int(self._post("", {"janus": "create"})["data"]["id"])
        handle = int(self._post(f"/{session}", {"janus": "attach", "plugin": plugin})["data"]["id"])
        return JanusHandle(session, handle)

    def message(
        self, handle: JanusHandle, body: dict[str, Any], jsep: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """A synchronous plugin request (create, destroy, exists, listparticipants …)."""
        request: dict[str, Any] = {"janus": "message", "body": body}
        if jsep is not None:
            request["jsep"] = jsep
        return self._post(f"/{handle.session}/{handle.handle}", request)

    def detach(self, handle: JanusHandle) -> None:
        self._post(f"/{handle.session}/{handle.handle}", {"janus": "detach"})
        self._post(f"/{handle.session}", {"janus": "destroy"})


class JanusRouter:
    mode = "janus"

    def __init__(self, url: str) -> None:
        self.url = url
        self.client = JanusClient(url)

    def _plugin(self, body: dict[str, Any]) -> dict[str, Any]:
        handle = self.client.attach()
        try:
            reply = self.client.message(handle, body)
        finally:
            self.client.detach(handle)
        data: dict[str, Any] = reply.get("plugindata", {}).get("data", {})
        if "error" in data:
            raise MediaError(f"videoroom: {data['error']}")
        return data

    def create_room(self, session_id: int, publishers: int) -> int:
        data = self._plugin(
            {
                "request": "create",
                "description": f"xietong live {session_id}",
                "publishers": max(publishers, 2),
                "is_private": True,
                "permanent": False,
            }
        )
        return int(data["room"])

    def room_exists(self, room: int) -> bool:
        return bool(self._plugin({"request": "exists", "room": room}).get("exists"))

    def destroy_room(self, room: int) -> None:
        self._plugin({"request": "destroy", "room": room, "permanent": False})

    async def connect(self, room: int, peer: str, sink: MediaSink) -> MediaPeer:
        media = JanusPeer(self.url, room, peer, sink)
        await media.open()
        return media


def media_router(settings: LiveSettings) -> MediaRouter:
    if settings.sfu == "janus":
        return JanusRouter(settings.janus_url)
    return MeshRouter()

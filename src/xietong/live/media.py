"""Where a session's media flows: a :class:`MediaRouter` per deployment.

* :class:`MeshRouter` (the default, ``XIETONG_LIVE_SFU=mesh``): no media server; every
  browser sends to every other (small rooms, up to XIETONG_LIVE_MESH_MAX_PARTICIPANTS).
* :class:`JanusRouter` (``XIETONG_LIVE_SFU=janus``): Janus's VideoRoom plugin over its HTTP
  API (``XIETONG_LIVE_JANUS_URL``): one room per session; each browser publishes once and
  subscribes to the others through Janus, its JSEP offers and answers relayed by our
  signaling (docs/live.md, "Mesh and Janus").

The protocol is deliberately small (rooms and handles as plain values) so that another SFU
(mediasoup, LiveKit) could stand behind it.
"""

from __future__ import annotations

import json
import secrets
import urllib.request
from dataclasses import dataclass
from typing import Any, Protocol

from xietong.config import LiveSettings

TIMEOUT = 10.0
VIDEOROOM = "janus.plugin.videoroom"


class MediaError(Exception):
    """The media server refused or could not be reached."""


class MediaRouter(Protocol):
    mode: str

    def create_room(self, session_id: int, publishers: int) -> int | None:
        """The room of a session (None: the mesh has none)."""
        ...

    def destroy_room(self, room: int) -> None: ...


class MeshRouter:
    mode = "mesh"

    def create_room(self, session_id: int, publishers: int) -> int | None:
        return None

    def destroy_room(self, room: int) -> None:
        return None


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
            raise MediaError(f"janus unreachable: {error}") from error
        if reply.get("janus") == "error":
            raise MediaError(f"janus: {reply.get('error')}")
        return reply

    def info(self) -> dict[str, Any]:
        request = urllib.request.Request(self.url + "/info")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=TIMEOUT) as answer:  # noqa: S310
                info: dict[str, Any] = json.loads(answer.read())
        except (OSError, ValueError) as error:
            raise MediaError(f"janus unreachable: {error}") from error
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


def media_router(settings: LiveSettings) -> MediaRouter:
    if settings.sfu == "janus":
        return JanusRouter(settings.janus_url)
    return MeshRouter()

"""The Janus router against the real Janus (Debian package ``janus``; skipped without it):
its HTTP API answers, and the VideoRoom rooms of sessions are created and destroyed."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.helpers import run_async
from tests.live.janus_server import running_janus
from xietong.config import LiveSettings
from xietong.live.media import JanusRouter, MediaError, MeshRouter, media_router


@pytest.fixture(scope="module")
def janus_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    yield from running_janus(tmp_path_factory.mktemp("janus"))


def test_mesh_is_the_default() -> None:
    router = media_router(LiveSettings())
    assert isinstance(router, MeshRouter)
    assert router.create_room(1, 2) is None


def test_janus_rooms_are_created_and_destroyed(janus_url: str) -> None:
    router = media_router(LiveSettings(sfu="janus", janus_url=janus_url))
    assert isinstance(router, JanusRouter)
    info = router.client.info()
    assert "janus.plugin.videoroom" in info["plugins"]
    room = router.create_room(42, 12)
    assert router.room_exists(room)
    router.destroy_room(room)
    assert not router.room_exists(room)
    with pytest.raises(MediaError):
        router.destroy_room(room)


def test_unreachable_janus_is_a_media_error() -> None:
    router = JanusRouter("http://127.0.0.1:9/janus")
    with pytest.raises(MediaError):
        router.create_room(1, 2)


class _Sink:
    def __init__(self) -> None:
        self.failures: list[str] = []

    async def signal(self, feed: str | None, data: dict[str, Any]) -> None:
        return None

    async def failed(self, error: MediaError) -> None:
        self.failures.append(error.code)


def test_janus_going_down_is_reported(tmp_path: Path) -> None:
    """A Janus of its own stops mid-call: the long-poll reader reports the session lost
    (a session Janus merely forgets is noticed at its next keepalive, within 30 s)."""
    server = running_janus(tmp_path)
    url = next(server)

    async def main() -> list[str]:
        router = JanusRouter(url)
        sink = _Sink()
        peer = await router.connect(router.create_room(7, 3), "1-peer", sink)
        server.close()  # terminates that Janus
        for _ in range(100):
            if sink.failures:
                break
            await asyncio.sleep(0.1)
        await peer.close()
        return sink.failures

    try:
        assert run_async(main) == ["live_media_lost"]
    finally:
        server.close()


def test_mesh_router_has_no_media_peer() -> None:
    async def main() -> str:
        try:
            await MeshRouter().connect(1, "1-peer", _Sink())
        except MediaError as error:
            return error.code
        return "connected"

    assert run_async(main) == "live_no_sfu"

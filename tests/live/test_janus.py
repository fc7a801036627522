"""The Janus router against the real Janus (Debian package ``janus``; skipped without it):
its HTTP API answers, and the VideoRoom rooms of sessions are created and destroyed."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

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

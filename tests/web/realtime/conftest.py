"""A live server (uvicorn over TCP) seeded with the consultation network, and a small
WebSocket client on the ``websockets`` library, for the delivery tests."""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect

from tests.e2e.conftest import _run, _server_env, _start_server, _stop


@dataclass
class Seeded:
    data_dir: Path
    env: dict[str, str]
    consultation: int
    second: int
    tokens: dict[str, dict[str, str]]
    user_ids: dict[str, int]


def seed_server_data(data_dir: Path, **extra_env: str) -> Seeded:
    env = _server_env(data_dir)
    env.update(XIETONG_LIVE_MAX_FRAMES_PER_SECOND="2000", **extra_env)
    _run([sys.executable, "-m", "xietong.cli", "migrate"], env, "xietong migrate")
    out = data_dir / "seed.json"
    _run([sys.executable, "-m", "tests.web.realtime.seed", str(out)], env, "seeding")
    data = json.loads(out.read_text())
    return Seeded(
        data_dir, env, data["consultation"], data["second"], data["tokens"], data["user_ids"]
    )


@dataclass
class Server:
    url: str
    seeded: Seeded

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"


@pytest.fixture(scope="module")
def chat_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    seeded = seed_server_data(tmp_path_factory.mktemp("chat-live"))
    proc, url = _start_server(seeded.env, seeded.data_dir / "server.log")
    try:
        yield Server(url, seeded)
    finally:
        _stop(proc)


@dataclass
class Client:
    """One user's socket: frames arrive in ``inbox``; helpers wait for a kind of frame."""

    ws: ClientConnection
    inbox: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    reader: asyncio.Task[None] | None = None

    @classmethod
    async def open(cls, url: str, headers: dict[str, str]) -> Client:
        ws = await connect(url, additional_headers=headers, open_timeout=20)
        client = cls(ws)
        client.reader = asyncio.create_task(client._read())
        hello = await client.expect("hello")
        assert hello["connection"]
        return client

    async def _read(self) -> None:
        # Closed under us (a drop): the test decides what that means.
        with contextlib.suppress(Exception):
            async for text in self.ws:
                await self.inbox.put(json.loads(text))
        await self.inbox.put({"type": "_closed"})

    async def send(self, **frame: Any) -> None:
        await self.ws.send(json.dumps(frame, ensure_ascii=False))

    async def expect(self, kind: str, timeout: float = 20.0) -> dict[str, Any]:
        """The next frame of ``kind`` (others before it are dropped)."""
        while True:
            frame = await asyncio.wait_for(self.inbox.get(), timeout)
            if frame["type"] == kind:
                return frame
            if frame["type"] == "_closed":
                raise AssertionError(f"socket closed while waiting for {kind}")

    async def close(self) -> None:
        await self.ws.close()
        if self.reader is not None:
            await self.reader

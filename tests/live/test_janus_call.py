"""Three aiortc peers in a ``janus`` session, and a fourth without camera that only
watches: their video goes through the packaged Janus (tests/live/janus_server.py; skipped
without it), signaled through our server only.

The server runs with XIETONG_LIVE_SFU=janus and XIETONG_LIVE_JANUS_URL at the test Janus.
Each peer joins, publishes a synthetic track to the pseudo-peer ``sfu`` (the offer, then its
candidates trickled one by one), takes Janus's answer, and answers every subscription offer
Janus makes for the others' feeds (``live.signal`` from ``sfu`` with ``feed``). Every peer
must decode frames of the right size from both others, and the watcher from all three
(nobody gets a feed of the watcher). Then the peers leave: the others hear it, and the
attendance report shows every row closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from pathlib import Path
from typing import Any

import pytest
import requests
import websockets
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from tests.helpers import run_async
from tests.live.janus_server import running_janus
from tests.live.live_server import VideoServer, video_server
from tests.live.seed_live import DOCTOR, EXPERT
from tests.live.test_aiortc_call import FRAMES, HEIGHT, WAIT, WIDTH, Synthetic, _frames, _split

SFU = "sfu"


@pytest.fixture(scope="module")
def janus(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    folder = tmp_path_factory.mktemp("janus")
    for url in running_janus(folder):
        yield url, folder / "janus.log"


@pytest.fixture(scope="module")
def server(
    tmp_path_factory: pytest.TempPathFactory, janus: tuple[str, Path]
) -> Iterator[VideoServer]:
    env = {"XIETONG_LIVE_SFU": "janus", "XIETONG_LIVE_JANUS_URL": janus[0]}
    yield from video_server(tmp_path_factory, env)


class SfuPeer:
    """One participant: a publishing connection to ``sfu`` and one receiving connection per
    other publisher, as the page does in a janus session."""

    def __init__(self, server: VideoServer, username: str, shade: int | None) -> None:
        """``shade`` None: a participant without camera, who only watches."""
        self.server = server
        self.token = server.token(username)
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.publisher = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.watching = shade is None
        if shade is not None:
            self.publisher.addTrack(Synthetic(shade))
        self.feeds: dict[str, RTCPeerConnection] = {}
        self.tracks: dict[str, asyncio.Future[MediaStreamTrack]] = {}
        self.errors: list[dict[str, Any]] = []
        self.session = 0
        self._work: set[asyncio.Task[None]] = set()

    async def open(self, stack: AsyncExitStack) -> None:
        self.ws = await stack.enter_async_context(
            websockets.connect(
                self.server.ws_url,
                additional_headers={"Authorization": f"Bearer {self.token}"},
                max_size=2**20,
            )
        )
        stack.push_async_callback(self.close)
        self.reader = asyncio.create_task(self._read())
        self.peer = (await self.next("hello"))["connection"]

    async def close(self) -> None:
        for pc in [self.publisher, *self.feeds.values()]:
            await pc.close()

    async def _read(self) -> None:
        async for text in self.ws:
            frame = json.loads(text)
            if frame["type"] == "live.signal" and frame["from"] == SFU:
                task = asyncio.create_task(self._from_sfu(frame))
                self._work.add(task)
                task.add_done_callback(self._work.discard)
            else:
                if frame["type"] == "error":
                    self.errors.append(frame)
                await self.frames.put(frame)

    async def next(self, kind: str) -> dict[str, Any]:
        while True:
            frame = await asyncio.wait_for(self.frames.get(), WAIT)
            assert frame["type"] != "error", frame
            if frame["type"] == kind:
                return frame

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def signal(self, data: dict[str, Any], feed: str | None = None) -> None:
        frame = {"type": "live.signal", "session": self.session, "to": SFU, "data": data}
        await self.send({**frame, **({"feed": feed} if feed else {})})

    async def describe(self, pc: RTCPeerConnection, feed: str | None = None) -> None:
        """Our description without its candidates, then each candidate, then the end."""
        sdp, candidates = _split(pc.localDescription.sdp)
        await self.signal({"sdp": {"type": pc.localDescription.type, "sdp": sdp}}, feed)
        for candidate in candidates:
            await self.signal({"candidate": candidate}, feed)
        await self.signal({"candidate": None}, feed)

    async def join(self, session: int) -> dict[str, Any]:
        self.session = session
        await self.send({"type": "live.join", "session": session})
        joined = await self.next("live.joined")
        assert joined["mode"] == "janus"
        return joined

    async def publish(self) -> None:
        if self.watching:
            await self.signal({"watch": True})
            return
        await self.publisher.setLocalDescription(await self.publisher.createOffer())
        await self.describe(self.publisher)

    async def _from_sfu(self, frame: dict[str, Any]) -> None:
        data, feed = frame["data"], frame.get("feed")
        pc = self.publisher if feed is None else self._feed(feed)
        if "sdp" in data:
            await pc.setRemoteDescription(RTCSessionDescription(**data["sdp"]))
            if data["sdp"]["type"] == "offer":
                await pc.setLocalDescription(await pc.createAnswer())
                await self.describe(pc, feed)
        elif data.get("candidate"):
            got = data["candidate"]
            candidate = candidate_from_sdp(got["candidate"].split(":", 1)[1])
            candidate.sdpMid = got["sdpMid"]
            candidate.sdpMLineIndex = got["sdpMLineIndex"]
            await pc.addIceCandidate(candidate)

    def _feed(self, feed: str) -> RTCPeerConnection:
        if feed not in self.feeds:
            pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
            arrived = self.track(feed)

            @pc.on("track")
            def on_track(track: MediaStreamTrack) -> None:
                if track.kind == "video" and not arrived.done():
                    arrived.set_result(track)

            self.feeds[feed] = pc
        return self.feeds[feed]

    def track(self, feed: str) -> asyncio.Future[MediaStreamTrack]:
        if feed not in self.tracks:
            self.tracks[feed] = asyncio.get_running_loop().create_future()
        return self.tracks[feed]


async def _conference(server: VideoServer, session_id: int) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        # The doctor on two devices (two sockets, two peers), the expert, and the expert
        # again on a device without camera, who only watches.
        peers = [
            SfuPeer(server, DOCTOR[0], 40),
            SfuPeer(server, EXPERT[0], 200),
            SfuPeer(server, DOCTOR[0], 120),
            SfuPeer(server, EXPERT[0], None),
        ]
        for peer in peers:
            await peer.open(stack)
        publishers = [p.peer for p in peers if not p.watching]
        for index, peer in enumerate(peers):
            joined = await peer.join(session_id)
            assert [p["peer"] for p in joined["peers"]] == [p.peer for p in peers[:index]]
            await peer.publish()
        received: dict[str, list[tuple[int, int]]] = {}
        for peer in peers:
            # Everyone receives every publisher but themselves; nobody gets the watcher.
            others = [p for p in publishers if p != peer.peer]
            tracks = await asyncio.wait_for(asyncio.gather(*(peer.track(o) for o in others)), WAIT)
            sizes = await asyncio.gather(*(_frames(t) for t in tracks))
            for other, got in zip(others, sizes, strict=True):
                received[f"{other}->{peer.peer}"] = got
            assert sorted(peer.feeds) == sorted(others)
        # The third socket closes; then the others leave.
        await peers[2].ws.close()
        staying = [peers[0], peers[1], peers[3]]
        for peer in staying:
            assert (await peer.next("live.peer_left"))["peer"] == peers[2].peer
        for peer in staying:
            await peer.send({"type": "live.leave", "session": session_id})
            await peer.next("live.left")
        return {"received": received, "errors": [e for p in peers for e in p.errors]}


def test_three_aiortc_peers_see_each_other_through_janus(
    server: VideoServer, janus: tuple[str, Path]
) -> None:
    headers = {"Authorization": f"Bearer {server.token(DOCTOR[0])}"}
    created = requests.post(
        f"{server.url}/api/v1/live/sessions",
        json={
            "subject_kind": "consultation",
            "subject_id": str(server.consultation_id),
            "size": 12,
        },
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    assert created.json()["mode"] == "janus"
    session_id = created.json()["id"]
    try:
        result = run_async(lambda: _conference(server, session_id))
    except BaseException:
        print(janus[1].read_text(errors="replace")[-6000:])  # the why, on failure
        print(server.log.read_text(errors="replace")[-6000:])
        raise
    assert result["errors"] == []
    assert len(result["received"]) == 9  # 3 publishers × 2 others, and the watcher × 3
    for pair, sizes in result["received"].items():
        assert len(sizes) == FRAMES, pair
        assert all(w >= WIDTH // 2 and h >= HEIGHT // 2 for w, h in sizes), (pair, sizes)
    report = requests.get(
        f"{server.url}/api/v1/live/sessions/{session_id}/attendance", headers=headers, timeout=30
    ).json()
    assert len(report["rows"]) == 4
    assert all(row["left_at"] is not None for row in report["rows"])

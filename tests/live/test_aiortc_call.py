"""Two aiortc peers (Python WebRTC) set up a call through our signaling on the real server
(uvicorn in a subprocess, over TCP) and each receives the other's video frames.

Each peer signs in for a bearer token, opens /ws with the ``websockets`` library, joins the
consultation's video session and sends a synthetic video track. The newcomer offers; the
offer and the answer go through ``live.signal`` without their ICE candidates, which follow
one by one as ``live.signal`` candidates (trickle ICE over our relay). Nothing of our
server is mocked. Afterwards one socket closes: the other hears ``live.peer_left`` and the
attendance report shows both joins closed.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from contextlib import AsyncExitStack
from typing import Any

import av
import numpy as np
import pytest
import requests
import websockets
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCSessionDescription,
    VideoStreamTrack,
)
from aiortc.mediastreams import MediaStreamTrack
from aiortc.sdp import candidate_from_sdp

from tests.helpers import run_async
from tests.live.live_server import VideoServer, video_server
from tests.live.seed_live import DOCTOR, EXPERT

# Generous bounds against a hang, not timing assertions.
WAIT = 90.0
FRAMES = 5
WIDTH, HEIGHT = 320, 240


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VideoServer]:
    yield from video_server(tmp_path_factory)


class Synthetic(VideoStreamTrack):
    """A moving gradient: something an encoder has to work on."""

    def __init__(self, shade: int) -> None:
        super().__init__()
        self.shade = shade
        self.count = 0

    async def recv(self) -> av.VideoFrame:
        pts, time_base = await self.next_timestamp()
        self.count += 1
        row = (np.arange(WIDTH, dtype=np.uint16) + self.count * 4) % 256
        image = np.empty((HEIGHT, WIDTH, 3), dtype=np.uint8)
        image[:, :, 0] = row.astype(np.uint8)
        image[:, :, 1] = self.shade
        image[:, :, 2] = np.arange(HEIGHT, dtype=np.uint8)[:, None]
        frame = av.VideoFrame.from_ndarray(image, format="bgr24")
        frame.pts = pts
        frame.time_base = time_base
        return frame


def _split(sdp: str) -> tuple[str, list[dict[str, Any]]]:
    """The SDP without its candidates, and the candidates as RTCIceCandidateInit."""
    lines, candidates, mid, index = [], [], None, -1
    for line in sdp.splitlines():
        if line.startswith("m="):
            index += 1
            mid = None
        if line.startswith("a=mid:"):
            mid = line[len("a=mid:") :]
        if line.startswith("a=candidate:"):
            candidates.append({"candidate": line[2:], "sdpMLineIndex": index, "mid": mid})
            continue
        if line.startswith("a=end-of-candidates"):
            continue
        lines.append(line)
    out = [
        {"candidate": c["candidate"], "sdpMid": c["mid"], "sdpMLineIndex": c["sdpMLineIndex"]}
        for c in candidates
    ]
    return "\r\n".join(lines) + "\r\n", out


class Peer:
    def __init__(self, server: VideoServer, username: str, shade: int) -> None:
        self.server = server
        self.token = server.token(username)
        self.shade = shade
        self.frames: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.remote: asyncio.Future[MediaStreamTrack] = asyncio.get_running_loop().create_future()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.addTrack(Synthetic(shade))

        @self.pc.on("track")
        def on_track(track: MediaStreamTrack) -> None:
            if track.kind == "video" and not self.remote.done():
                self.remote.set_result(track)

    async def open(self, stack: AsyncExitStack) -> None:
        self.ws = await stack.enter_async_context(
            websockets.connect(
                self.server.ws_url,
                additional_headers={"Authorization": f"Bearer {self.token}"},
                max_size=2**20,
            )
        )
        stack.push_async_callback(self.pc.close)
        self.reader = asyncio.create_task(self._read())
        self.peer = (await self.next("hello"))["connection"]

    async def _read(self) -> None:
        async for text in self.ws:
            await self.frames.put(json.loads(text))

    async def next(self, kind: str) -> dict[str, Any]:
        """The next frame of ``kind`` (others, such as the host's lobby, are passed over)."""
        while True:
            frame = await asyncio.wait_for(self.frames.get(), WAIT)
            assert frame["type"] != "error", frame
            if frame["type"] == kind:
                return frame

    async def send(self, frame: dict[str, Any]) -> None:
        await self.ws.send(json.dumps(frame))

    async def signal(self, session: int, to: str, data: dict[str, Any]) -> None:
        await self.send({"type": "live.signal", "session": session, "to": to, "data": data})

    async def describe(self, session: int, to: str) -> None:
        """Send our local description, then its candidates one by one."""
        local = self.pc.localDescription
        sdp, candidates = _split(local.sdp)
        await self.signal(session, to, {"sdp": {"type": local.type, "sdp": sdp}})
        for candidate in candidates:
            await self.signal(session, to, {"candidate": candidate})
        await self.signal(session, to, {"candidate": None})

    async def take_description(self, expected: str) -> tuple[str, int]:
        """Apply the remote description and every candidate up to the end marker."""
        frame = await self.next("live.signal")
        sdp = frame["data"]["sdp"]
        assert sdp["type"] == expected
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp["sdp"], sdp["type"]))
        added = 0
        while True:
            got = (await self.next("live.signal"))["data"]["candidate"]
            if got is None:
                return frame["from"], added
            candidate = candidate_from_sdp(got["candidate"].split(":", 1)[1])
            candidate.sdpMid = got["sdpMid"]
            candidate.sdpMLineIndex = got["sdpMLineIndex"]
            await self.pc.addIceCandidate(candidate)
            added += 1


async def _frames(track: MediaStreamTrack) -> list[tuple[int, int]]:
    sizes = []
    for _ in range(FRAMES):
        frame = await asyncio.wait_for(track.recv(), WAIT)
        sizes.append((frame.width, frame.height))
    return sizes


async def _call(server: VideoServer, session_id: int) -> dict[str, Any]:
    async with AsyncExitStack() as stack:
        doctor = Peer(server, DOCTOR[0], 40)
        expert = Peer(server, EXPERT[0], 200)
        await doctor.open(stack)
        await expert.open(stack)
        await doctor.send({"type": "live.join", "session": session_id})
        joined = await doctor.next("live.joined")
        assert joined["peers"] == []
        await expert.send({"type": "live.join", "session": session_id})
        joined = await expert.next("live.joined")
        assert [p["peer"] for p in joined["peers"]] == [doctor.peer]
        assert (await doctor.next("live.peer_joined"))["peer"] == expert.peer
        # The newcomer offers.
        await expert.pc.setLocalDescription(await expert.pc.createOffer())
        await expert.describe(session_id, doctor.peer)
        sender, offered = await doctor.take_description("offer")
        assert sender == expert.peer
        await doctor.pc.setLocalDescription(await doctor.pc.createAnswer())
        await doctor.describe(session_id, expert.peer)
        _sender, answered = await expert.take_description("answer")
        assert offered >= 1
        assert answered >= 1
        tracks = await asyncio.wait_for(asyncio.gather(doctor.remote, expert.remote), WAIT)
        at_doctor, at_expert = await asyncio.gather(*(_frames(t) for t in tracks))
        # The doctor's socket closes: the expert hears it.
        await doctor.ws.close()
        left = await expert.next("live.peer_left")
        await expert.send({"type": "live.leave", "session": session_id})
        await expert.next("live.left")
        return {"at_doctor": at_doctor, "at_expert": at_expert, "left": left["peer"] == doctor.peer}


def test_two_aiortc_peers_receive_each_others_video(server: VideoServer) -> None:
    doctor_token = server.token(DOCTOR[0])
    headers = {"Authorization": f"Bearer {doctor_token}"}
    created = requests.post(
        f"{server.url}/api/v1/live/instant",
        json={"subject_kind": "consultation", "subject_id": str(server.consultation_id)},
        headers=headers,
        timeout=30,
    )
    assert created.status_code == 201, created.text
    session_id = created.json()["id"]
    result = run_async(lambda: _call(server, session_id))
    for side in ("at_doctor", "at_expert"):
        assert len(result[side]) == FRAMES
        assert all(w >= WIDTH // 2 and h >= HEIGHT // 2 for w, h in result[side]), result
    assert result["left"]
    report = requests.get(
        f"{server.url}/api/v1/live/sessions/{session_id}/attendance", headers=headers, timeout=30
    ).json()
    assert len(report["rows"]) == 2
    assert all(row["left_at"] is not None for row in report["rows"])

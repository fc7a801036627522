"""The reference of ``bench/live.py``: a bare Starlette WebSocket broadcast with in-memory
rooms, no database, no access checks, speaking the subset of Xietong's /ws protocol the
benchmark uses (hello, subscribe → subscribed, post → posted + message to every subscriber
of the room, the sender too).

What it leaves out is what Xietong's figures pay for: the bearer session looked up in the
database, access asked again at subscribe and post, the message persisted (with its
sequence number and the client's id for idempotent resends) before it is delivered, the
per-subscription order and gap checks, presence, and one JSON encoding per receiver.

With ``REF_REDIS_URL`` set, several processes serve one room as Xietong's do: the sequence
number comes from Redis INCR and the message goes through Redis pub/sub (one pub/sub
connection per process). Order across processes is then not guaranteed (two posts may be
published in the other order than their numbers); the benchmark counts that, not as loss.

    uvicorn live_reference:app --app-dir bench --port 8765
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
from collections import defaultdict
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import PlainTextResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

REDIS_URL = os.environ.get("REF_REDIS_URL", "")
PREFIX = f"benchref:{os.environ.get('REF_NAMESPACE', 'default')}:"


class Peer:
    def __init__(self, websocket: WebSocket, user_id: str) -> None:
        self.websocket = websocket
        self.user_id = user_id
        self.lock = asyncio.Lock()

    async def send(self, text: str) -> None:
        async with self.lock:
            with contextlib.suppress(Exception):
                await self.websocket.send_text(text)


class Rooms:
    """Local rooms; with Redis, what any process publishes reaches every local peer."""

    def __init__(self) -> None:
        self.peers: dict[str, set[Peer]] = defaultdict(set)
        self.seqs: dict[str, int] = defaultdict(int)
        self.redis: Any = None
        self.pubsub: Any = None
        self.reader: asyncio.Task[None] | None = None

    async def start(self) -> None:
        if not REDIS_URL:
            return
        from redis import asyncio as aioredis

        self.redis = aioredis.from_url(REDIS_URL, decode_responses=True)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        await self.pubsub.subscribe(PREFIX + "_")
        self.reader = asyncio.create_task(self._read())

    async def stop(self) -> None:
        if self.reader is not None:
            self.reader.cancel()
        if self.redis is not None:
            await self.redis.aclose()

    async def join(self, room: str, peer: Peer) -> int:
        first = not self.peers[room]
        self.peers[room].add(peer)
        if self.redis is None:
            return self.seqs[room]
        if first:
            await self.pubsub.subscribe(PREFIX + room)
        return int(await self.redis.get(PREFIX + "seq:" + room) or 0)

    def leave(self, peer: Peer) -> None:
        for peers in self.peers.values():
            peers.discard(peer)

    async def next_seq(self, room: str) -> int:
        if self.redis is None:
            self.seqs[room] += 1
            return self.seqs[room]
        return int(await self.redis.incr(PREFIX + "seq:" + room))

    async def publish(self, room: str, frame: dict[str, Any]) -> None:
        text = json.dumps(frame, ensure_ascii=False)
        if self.redis is None:
            await self.deliver(room, text)
        else:
            await self.redis.publish(PREFIX + room, text)

    async def deliver(self, room: str, text: str) -> None:
        for peer in list(self.peers.get(room, ())):
            await peer.send(text)

    async def _read(self) -> None:
        async for message in self.pubsub.listen():
            if message.get("type") == "message":
                await self.deliver(str(message["channel"]).removeprefix(PREFIX), message["data"])


ROOMS = Rooms()


async def endpoint(websocket: WebSocket) -> None:
    header = websocket.headers.get("authorization", "")
    if not header.startswith("Bearer "):
        await websocket.close(code=1008)
        return
    await websocket.accept()
    peer = Peer(websocket, header[-8:])
    await peer.send(json.dumps({"type": "hello", "connection": id(peer)}))
    try:
        while True:
            frame = json.loads(await websocket.receive_text())
            if frame.get("type") == "subscribe":
                last = await ROOMS.join(frame["conversation"], peer)
                answer = {"type": "subscribed", "conversation": frame["conversation"]}
                await peer.send(json.dumps({**answer, "last_seq": last, "can_post": True}))
            elif frame.get("type") == "post":
                await _post(peer, frame)
    except (WebSocketDisconnect, RuntimeError, ValueError):
        pass
    finally:
        ROOMS.leave(peer)


async def _post(peer: Peer, frame: dict[str, Any]) -> None:
    room = frame["conversation"]
    seq = await ROOMS.next_seq(room)
    message = {
        "seq": seq,
        "kind": "text",
        "text": frame["text"],
        "client_id": frame.get("client_id"),
        "created_at": datetime.now(UTC).isoformat(),
        "sender_user_id": peer.user_id,
    }
    ack = {"type": "posted", "conversation": room, "seq": seq, "created": True}
    await peer.send(json.dumps({**ack, "client_id": frame.get("client_id")}))
    await ROOMS.publish(room, {"type": "message", "conversation": room, "message": message})


async def healthz(_request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


@contextlib.asynccontextmanager
async def lifespan(_app: Starlette) -> AsyncIterator[None]:
    await ROOMS.start()
    yield
    await ROOMS.stop()


app = Starlette(
    routes=[Route("/healthz", healthz), WebSocketRoute("/ws", endpoint)], lifespan=lifespan
)

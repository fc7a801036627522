"""The load of ``bench/live.py``: one client process holding many WebSockets (the
``websockets`` library on uvloop), driven by the parent through a pipe.

The parent sends the sockets to open (URL, bearer header, room, whether it posts); the
worker opens and subscribes them all and answers ``ready``. Then, for each phase, every
posting socket posts at a fixed rate (open loop: on schedule, not waiting for answers), the
send time on the shared monotonic clock written into the text; every socket, the sender too,
records receive time − send time for each message of its room. After the posting period the
worker waits until every socket has every message posted in its room (or the drain timeout)
and reports latencies, counts and what is missing, doubled or out of order.

Sockets of one room always live in one worker, so send and receive times come from one
process (CLOCK_MONOTONIC is system-wide on Linux anyway).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import secrets
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from typing import Any

import uvloop
from websockets.asyncio.client import ClientConnection, connect

OPEN_CONCURRENCY = 64
# Who holds the ten sockets of a room (several sockets per user, as several tabs and
# phones): the first two post, everyone reads.
SLOTS = (
    "applicant",
    "expert_a",
    "coordinator",
    "expert_b",
    "viewer",
    "coordinator2",
    "applicant",
    "expert_a",
    "coordinator",
    "expert_b",
)


@dataclass(frozen=True)
class Slot:
    url: str
    headers: dict[str, str]
    room: str  # "consultation:12"
    poster: bool


@dataclass
class Socket:
    slot: Slot
    ws: ClientConnection
    subscribed: asyncio.Future[int]
    last_seq: int = 0
    got: Counter[str] = field(default_factory=Counter)
    order_errors: int = 0
    closed: bool = False


@dataclass
class Phase:
    """What one phase has seen so far, across the worker's sockets."""

    prefix: str
    latencies: list[float] = field(default_factory=list)
    sent: dict[str, list[str]] = field(default_factory=lambda: defaultdict(list))
    acked: int = 0
    delivered: int = 0
    errors: list[str] = field(default_factory=list)
    # How late posts left against their schedule: a busy client shows here, not as latency.
    send_lags: list[float] = field(default_factory=list)
    first_send: float = 0.0
    last_send: float = 0.0
    last_ack: float = 0.0
    last_receive: float = 0.0


class Worker:
    def __init__(self, slots: list[Slot], deflate: bool) -> None:
        self.slots = slots
        self.deflate = deflate
        self.sockets: list[Socket] = []
        self.phase = Phase("-")
        self.open_failures: list[str] = []
        self.readers: list[asyncio.Task[None]] = []
        self.tag = secrets.token_hex(4)

    # Opening ----------------------------------------------------------------------------

    async def open_all(self) -> dict[str, Any]:
        started = time.monotonic()
        gate = asyncio.Semaphore(OPEN_CONCURRENCY)
        await asyncio.gather(*(self._open(slot, gate) for slot in self.slots))
        opened = time.monotonic()
        results = await asyncio.gather(
            *(asyncio.wait_for(s.subscribed, 120) for s in self.sockets), return_exceptions=True
        )
        failures = [r for r in results if isinstance(r, BaseException)]
        return {
            "opened": len(self.sockets),
            "subscribed": len(results) - len(failures),
            "open_failures": self.open_failures[:5],
            "open_failure_count": len(self.open_failures),
            "subscribe_failures": [repr(f) for f in failures[:5]],
            "open_seconds": opened - started,
            "subscribe_seconds": time.monotonic() - opened,
        }

    async def _open(self, slot: Slot, gate: asyncio.Semaphore) -> None:
        async with gate:
            try:
                ws = await connect(
                    slot.url,
                    additional_headers=slot.headers,
                    open_timeout=120,
                    ping_interval=None,
                    max_queue=None,
                    compression="deflate" if self.deflate else None,
                )
            except Exception as error:
                self.open_failures.append(repr(error)[:200])
                return
            sock = Socket(slot, ws, asyncio.get_running_loop().create_future())
            self.sockets.append(sock)
            self.readers.append(asyncio.create_task(self._read(sock)))
            await ws.send(json.dumps({"type": "subscribe", "conversation": slot.room}))
            # Wait for this one before opening more: the server's work stays bounded.
            with contextlib.suppress(Exception):
                await asyncio.wait_for(asyncio.shield(sock.subscribed), 120)

    # Receiving --------------------------------------------------------------------------

    async def _read(self, sock: Socket) -> None:
        try:
            async for text in sock.ws:
                self._take(sock, json.loads(text), time.monotonic())
        except Exception as error:
            self.phase.errors.append(f"socket: {error!r}"[:200])
        sock.closed = True
        if not sock.subscribed.done():
            sock.subscribed.set_exception(RuntimeError("closed before subscribed"))

    def _take(self, sock: Socket, frame: dict[str, Any], now: float) -> None:
        kind = frame.get("type")
        phase = self.phase
        if kind == "message":
            message = frame["message"]
            seq = int(message["seq"])
            if seq != sock.last_seq + 1:
                sock.order_errors += 1
            sock.last_seq = max(sock.last_seq, seq)
            client_id = message.get("client_id") or ""
            if client_id.startswith(phase.prefix):
                sock.got[client_id] += 1
                phase.delivered += 1
                phase.last_receive = now
                phase.latencies.append(now - float(message["text"].split()[1]))
        elif kind == "posted":
            phase.acked += 1
            phase.last_ack = now
        elif kind == "subscribed":
            sock.last_seq = int(frame["last_seq"])
            if not sock.subscribed.done():
                sock.subscribed.set_result(sock.last_seq)
        elif kind == "error":
            phase.errors.append(json.dumps(frame, ensure_ascii=False)[:200])

    # Posting ----------------------------------------------------------------------------

    async def run_phase(self, spec: dict[str, Any]) -> dict[str, Any]:
        # Client ids are unique per conversation for good: another run on the same database
        # must not reuse them (the server answers a reused one with 409).
        phase = self.phase = Phase(f"{spec['name']}.{self.tag}-")
        for sock in self.sockets:
            sock.got.clear()
            sock.order_errors = 0
        start, seconds, rate = spec["start_at"], spec["seconds"], spec["rate_per_poster"]
        cpu_before = time.process_time()
        posters = [s for s in self.sockets if s.slot.poster and not s.closed]
        await asyncio.gather(
            *(self._post(s, i, start, seconds, rate) for i, s in enumerate(posters))
        )
        posted_until = time.monotonic()
        drained = await self._drain(spec["drain_seconds"])
        cpu = time.process_time() - cpu_before
        return self._report(phase, start, posted_until, drained, cpu)

    async def _post(
        self, sock: Socket, number: int, start: float, seconds: float, rate: float
    ) -> None:
        interval = 1.0 / rate
        due = start + random.random() * interval
        end = start + seconds
        count = 0
        phase = self.phase
        while due < end and not sock.closed:
            delay = due - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            client_id = f"{phase.prefix}{number}-{count}"
            now = time.monotonic()
            phase.send_lags.append(now - due)
            text = f"bench {now!r}"
            phase.sent[sock.slot.room].append(client_id)
            phase.first_send = phase.first_send or now
            phase.last_send = now
            frame = {"type": "post", "conversation": sock.slot.room, "text": text}
            try:
                await sock.ws.send(json.dumps({**frame, "client_id": client_id}))
            except Exception as error:
                phase.errors.append(f"send: {error!r}"[:200])
                return
            count += 1
            due += interval

    def _missing(self) -> int:
        """Deliveries and acknowledgements still to come."""
        sent = self.phase.sent
        unacked = sum(len(ids) for ids in sent.values()) - self.phase.acked
        return unacked + sum(
            len(sent.get(s.slot.room, ())) - len(s.got) for s in self.sockets if not s.closed
        )

    async def _drain(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while self._missing() > 0 and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return self._missing() <= 0

    def _report(
        self, phase: Phase, start: float, posted_until: float, drained: bool, cpu: float
    ) -> dict[str, Any]:
        sent_ids = {room: set(ids) for room, ids in phase.sent.items()}
        live = [s for s in self.sockets if not s.closed]
        return {
            "sockets": len(live),
            "closed_sockets": len(self.sockets) - len(live),
            "posted": sum(len(ids) for ids in phase.sent.values()),
            "acked": phase.acked,
            "delivered": phase.delivered,
            "expected": sum(len(sent_ids.get(s.slot.room, ())) for s in live),
            "missing": sum(len(sent_ids.get(s.slot.room, set()) - set(s.got)) for s in live),
            "doubled": sum(n - 1 for s in live for n in s.got.values() if n > 1),
            "stray": sum(len(set(s.got) - sent_ids.get(s.slot.room, set())) for s in live),
            "out_of_order": sum(s.order_errors for s in live),
            "errors": phase.errors[:5],
            "error_count": len(phase.errors),
            "drained": drained,
            "start": start,
            "first_send": phase.first_send,
            "last_send": phase.last_send,
            "posted_until": posted_until,
            "last_ack": phase.last_ack,
            "last_receive": phase.last_receive,
            "latencies": phase.latencies,
            "send_lags": phase.send_lags,
            "client_cpu_seconds": cpu,
        }

    async def close(self) -> None:
        await asyncio.gather(*(s.ws.close() for s in self.sockets), return_exceptions=True)
        for reader in self.readers:
            reader.cancel()


async def _serve(pipe: Connection, slots: list[Slot], deflate: bool) -> None:
    worker = Worker(slots, deflate)
    loop = asyncio.get_running_loop()
    pipe.send(await worker.open_all())
    while True:
        command, spec = await loop.run_in_executor(None, pipe.recv)
        if command == "phase":
            pipe.send(await worker.run_phase(spec))
        else:
            await worker.close()
            pipe.send({"closed": True})
            return


def worker_main(pipe: Connection, slots: list[Slot], deflate: bool) -> None:
    """The entry point of a client process (multiprocessing)."""
    uvloop.run(_serve(pipe, slots, deflate))

"""Delivery over a real server: two clients write 1,000 messages into one consultation's
conversation while their sockets drop at random; each reconnects, resumes from the last
sequence number it saw and resends what was not acknowledged. Nothing is lost, nothing is
doubled, order is kept — as seen by both clients and in the database."""

from __future__ import annotations

import asyncio
import random
import sqlite3
from dataclasses import dataclass, field
from typing import Any

from tests.helpers import run_async
from tests.web.realtime.conftest import Client, Server

TOTAL = 1000
DROP_CHANCE = 0.02
# Posts a client has in flight before it waits for acknowledgements (as a chat client does).
WINDOW = 8


@dataclass
class Writer:
    who: str
    texts: list[str]
    client_ids: list[str]
    seqs: list[int] = field(default_factory=list)  # every message seen, in arrival order
    senders: dict[int, str] = field(default_factory=dict)
    acked: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    reconnects: int = 0
    # Resends answered with the first message (its acknowledgement was lost in a drop).
    repeated: int = 0
    progress: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def last_seq(self) -> int:
        return self.seqs[-1] if self.seqs else 0

    def take(self, frame: dict[str, Any]) -> None:
        self.progress.set()
        if frame["type"] == "message":
            message = frame["message"]
            seq = int(message["seq"])
            if seq != self.last_seq + 1:
                self.problems.append(f"{self.who}: got {seq} after {self.last_seq}")
                if seq <= self.last_seq:
                    return
            self.seqs.append(seq)
            if message["kind"] == "text":
                self.senders[seq] = message["client_id"]
        elif frame["type"] == "posted":
            self.acked[frame["client_id"]] = frame["seq"]
            self.repeated += not frame["created"]
        elif frame["type"] == "error":
            self.problems.append(f"{self.who}: error {frame}")


async def _session(server: Server, w: Writer, conversation: str, rng: random.Random) -> bool:
    """One connection: resume, resend what is unacknowledged, send on; True when this
    writer has nothing left to send and has seen everything."""
    client = await Client.open(server.ws_url, server.seeded.tokens[w.who])
    await client.send(type="subscribe", conversation=conversation, after=w.last_seq)

    async def consume() -> None:
        while True:
            frame = await client.inbox.get()
            if frame["type"] == "_closed":
                return
            w.take(frame)

    consumer = asyncio.create_task(consume())
    dropped = False
    in_flight: list[str] = []
    for text, client_id in zip(w.texts, w.client_ids, strict=True):
        if client_id in w.acked:
            continue
        while len([c for c in in_flight if c not in w.acked]) >= WINDOW:
            w.progress.clear()
            await asyncio.wait_for(w.progress.wait(), 20)
        in_flight.append(client_id)
        await client.send(type="post", conversation=conversation, text=text, client_id=client_id)
        if rng.random() < DROP_CHANCE:
            # An abrupt drop: no close handshake, frames in flight lost.
            client.ws.transport.abort()
            dropped = True
            break
    if not dropped:
        # Everything sent: wait for the acknowledgements and the others' messages.
        for _ in range(600):
            if len(w.acked) == len(w.texts) and _texts_seen(w) >= TOTAL:
                break
            if rng.random() < DROP_CHANCE / 3:
                client.ws.transport.abort()
                dropped = True
                break
            await asyncio.sleep(0.05)
    if not dropped:
        await client.ws.close()
    await consumer
    if client.reader is not None:
        await client.reader
    return not dropped and len(w.acked) == len(w.texts) and _texts_seen(w) >= TOTAL


def _texts_seen(w: Writer) -> int:
    return len(w.senders)


async def _writer(server: Server, w: Writer, conversation: str, seed: int) -> None:
    rng = random.Random(seed)
    while not await _session(server, w, conversation, rng):
        w.reconnects += 1


def test_thousand_messages_with_random_drops(chat_server: Server) -> None:
    seeded = chat_server.seeded
    conversation = f"consultation:{seeded.consultation}"
    half = TOTAL // 2
    a = Writer(
        "applicant",
        [f"申请方消息 {i}" for i in range(half)],
        [f"a-{i}" for i in range(half)],
    )
    b = Writer(
        "expert_a",
        [f"专家回复 {i}" for i in range(half)],
        [f"b-{i}" for i in range(half)],
    )

    async def both() -> None:
        await asyncio.wait_for(
            asyncio.gather(
                _writer(chat_server, a, conversation, 1), _writer(chat_server, b, conversation, 2)
            ),
            timeout=300,
        )

    run_async(both)
    assert a.problems == []
    assert b.problems == []
    # Both sockets dropped and resumed several times, and resent what was unacknowledged.
    assert a.reconnects >= 3, a.reconnects
    assert b.reconnects >= 3, b.reconnects
    # Each client saw one dense sequence, the same one.
    assert a.seqs == list(range(1, a.last_seq + 1))
    assert b.seqs == a.seqs
    # Every message exactly once, each writer's in the order written.
    for w in (a, b):
        ids = list(w.senders.values())
        assert sorted(ids) == sorted(a.client_ids + b.client_ids)
        assert len(set(ids)) == TOTAL
        for writer in (a, b):
            order = [w_seq for w_seq, cid in sorted(w.senders.items()) if cid in writer.acked]
            mine = [writer.acked[cid] for cid in writer.client_ids]
            assert mine == sorted(mine)
            assert len(order) == len(writer.client_ids)
    # And in the database: 1,000 text messages, one per client id, dense numbers.
    db = sqlite3.connect(seeded.data_dir / "xietong.sqlite3")
    rows = db.execute(
        "SELECT m.seq, m.kind, m.client_id FROM message m JOIN conversation c "
        "ON c.id = m.conversation_id WHERE c.subject_kind = 'consultation' AND c.subject_id = ? "
        "ORDER BY m.seq",
        (str(seeded.consultation),),
    ).fetchall()
    db.close()
    assert [r[0] for r in rows] == list(range(1, len(rows) + 1))
    texts = [r[2] for r in rows if r[1] == "text"]
    assert len(texts) == TOTAL
    assert len(set(texts)) == TOTAL
    assert rows[-1][0] == a.last_seq

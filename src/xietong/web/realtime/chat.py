"""Conversation frames on /ws: subscribe (with resume), post, read receipts, typing and
presence (docs/live.md has the protocol).

Delivery guarantees, per subscription:
* **Nothing lost.** The socket subscribes to the conversation's channel first, waits until
  the broadcaster delivers to it, and only then reads the database after the client's
  ``after``; a publication that races the read is either in the read or arrives later.
  A message that arrives with a gap before it (a publication missed while Redis was away,
  or overtaken) makes the socket read the gap from the database first.
* **Nothing doubled, order kept.** Each subscription remembers the last sequence number it
  sent; anything at or below it is dropped, and sending happens under one lock per
  subscription.
* **Access each time.** Every subscribe and every post asks the subject's rule again
  (404 and 403 audited there); a subscription is re-checked every minute and ends with an
  ``unsubscribed`` frame once access is gone.
* **Audit.** A catch-up read is audited like a REST read (the range it revealed); what the
  live push delivered is audited once, as a range, when the subscription ends.
"""

from __future__ import annotations

import asyncio
import re
import time
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.access.subjects import Participation, participation
from xietong.core.errors import N_, Conflict, Invalid, NotFound, XietongError
from xietong.messaging import service as messaging
from xietong.messaging import subjects as conversations
from xietong.web.realtime.connection import Connection
from xietong.web.realtime.delivery import conversation_channel
from xietong.web.realtime.endpoint import REVALIDATE_SECONDS, register

KEY = re.compile(r"([a-z][a-z_]{0,31}):([0-9A-Za-z_-]{1,64})")
CATCH_UP_PAGE = 200
TYPING_INTERVAL = 2.0
STATE = "chat"


@dataclass
class Subscribed:
    key: str
    kind: str
    subject_id: str
    conversation_id: int
    last_seq: int
    lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    # What the live push delivered since the last audit row: first and last sequence.
    pushed_from: int | None = None
    pushed_to: int | None = None
    pushed_count: int = 0
    last_typing: float = 0.0
    checked_at: float = field(default_factory=time.monotonic)


def _subscriptions(conn: Connection) -> dict[str, Subscribed]:
    found: dict[str, Subscribed] | None = conn.state.get(STATE)
    if found is None:
        found = conn.state[STATE] = {}
        conn.on_close(lambda: _close_all(conn))
    return found


def _key(frame: dict[str, Any]) -> tuple[str, str, str]:
    value = frame.get("conversation")
    if not isinstance(value, str):
        raise Invalid(
            N_("Name the conversation as kind:id (consultation:12)."),
            code="conversation_missing",
            field="conversation",
        )
    match = KEY.fullmatch(value)
    if match is None:
        raise Invalid(
            N_("Name the conversation as kind:id (consultation:12)."),
            code="conversation_invalid",
            field="conversation",
        )
    return value, match.group(1), match.group(2)


def _seq(frame: dict[str, Any], name: str, *, required: bool) -> int | None:
    value = frame.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= 2**31 - 1:
        raise Invalid(
            N_("{field} is a whole number from 0."),
            code="seq_invalid",
            field=name,
            params={"field": name},
        )
    return value


def _reply(frame: dict[str, Any], body: dict[str, Any]) -> dict[str, Any]:
    return {**body, "id": frame["id"]} if "id" in frame else body


# Services run in the thread pool (one transaction each) -------------------------------


@dataclass(frozen=True)
class Opened:
    part: Participation
    conversation_id: int
    last_seq: int


def _open(session: Session, principal: Principal, kind: str, subject_id: str) -> Opened:
    subject = conversations.conversation_subject(kind)
    part = participation(session, principal, kind, subject_id, action=subject.read_action)
    conversation = messaging.conversation_for(session, kind, part.subject_id)
    return Opened(part, conversation.id, conversation.last_seq)


def _catch_up_rows(
    session: Session,
    principal: Principal,
    kind: str,
    subject_id: str,
    conversation_id: int,
    after: int,
) -> list[dict[str, Any]]:
    """The messages after ``after`` (a page), rendered; the read is audited and moves the
    reader's position, as a REST read does."""
    conversation = messaging.conversation_by_id(session, conversation_id)
    found = messaging.messages_after(session, conversation, after, CATCH_UP_PAGE)
    if not found:
        return []
    subject = conversations.conversation_subject(kind)
    audit.record(
        session,
        principal,
        subject.read_action,
        object_kind=kind,
        object_id=subject_id,
        detail={
            "from_seq": found[0].seq,
            "to_seq": found[-1].seq,
            "count": len(found),
            "via": "websocket",
        },
    )
    return [messaging.wire_of(session, conversation, m) for m in found]


def _audit_pushed(session: Session, principal: Principal, sub: Subscribed) -> None:
    subject = conversations.conversation_subject(sub.kind)
    audit.record(
        session,
        principal,
        subject.read_action,
        object_kind=sub.kind,
        object_id=sub.subject_id,
        detail={
            "from_seq": sub.pushed_from,
            "to_seq": sub.pushed_to,
            "count": sub.pushed_count,
            "via": "websocket push",
        },
    )


def _mark_read(
    session: Session, principal: Principal, kind: str, subject_id: str, seq: int
) -> tuple[int, int]:
    subject = conversations.conversation_subject(kind)
    part = participation(session, principal, kind, subject_id, action=subject.read_action)
    conversation = messaging.conversation_for(session, kind, part.subject_id)
    row = messaging.mark_read(session, conversation, principal.uid, seq)
    return conversation.id, row.last_read_seq


def _still_allowed(session: Session, principal: Principal, kind: str, subject_id: str) -> bool:
    subject = conversations.conversation_subject(kind)
    try:
        participation(session, principal, kind, subject_id, action=subject.read_action)
    except XietongError:
        return False
    return True


# Delivery -------------------------------------------------------------------------------


async def _send_message(conn: Connection, sub: Subscribed, message: dict[str, Any]) -> None:
    await conn.send({"type": "message", "conversation": sub.key, "message": message})
    sub.last_seq = int(message["seq"])


async def _catch_up(conn: Connection, sub: Subscribed, until: int | None = None) -> None:
    """Send everything after ``sub.last_seq`` from the database (caller holds the lock)."""
    while until is None or sub.last_seq < until:
        rows = await conn.run(
            _catch_up_rows, sub.kind, sub.subject_id, sub.conversation_id, sub.last_seq
        )
        for message in rows:
            if int(message["seq"]) > sub.last_seq:
                await _send_message(conn, sub, message)
        if len(rows) < CATCH_UP_PAGE:
            return


def _on_event(conn: Connection, sub: Subscribed) -> Any:
    async def deliver(payload: dict[str, Any]) -> None:
        kind = payload.get("type")
        if kind == "message.created":
            await _deliver_message(conn, sub, payload)
        elif kind in ("typing", "presence", "read"):
            if payload.get("connection") == conn.id:
                return
            if kind == "presence" and payload.get("ask"):
                await _announce(conn, sub, "online", ask=False)
            # The connection id tells two tabs of one user apart (presence is per socket).
            body = {k: v for k, v in payload.items() if k != "ask"}
            await conn.send({**body, "conversation": sub.key})

    return deliver


async def _deliver_message(conn: Connection, sub: Subscribed, payload: dict[str, Any]) -> None:
    seq = int(payload["seq"])
    async with sub.lock:
        if seq <= sub.last_seq or conn.closed:
            return
        if seq == sub.last_seq + 1 and isinstance(payload.get("message"), dict):
            await _send_message(conn, sub, payload["message"])
            sub.pushed_from = sub.pushed_from or seq
            sub.pushed_to = seq
            sub.pushed_count += 1
        else:
            await _catch_up(conn, sub, until=seq)
    if time.monotonic() - sub.checked_at > REVALIDATE_SECONDS:
        await _recheck(conn, sub)


async def _recheck(conn: Connection, sub: Subscribed) -> None:
    sub.checked_at = time.monotonic()
    if not await conn.run(_still_allowed, sub.kind, sub.subject_id):
        await _end(conn, sub)
        await conn.send({"type": "unsubscribed", "conversation": sub.key, "reason": "access"})


async def _announce(conn: Connection, sub: Subscribed, state: str, *, ask: bool) -> None:
    await conn.publish(
        conversation_channel(sub.conversation_id),
        {
            "type": "presence",
            "state": state,
            "user_id": conn.principal.user_id,
            "name": conn.principal.display_name or conn.principal.username,
            "connection": conn.id,
            "ask": ask,
        },
    )


async def _end(conn: Connection, sub: Subscribed) -> None:
    """Stop following ``sub``: audit what the push delivered, say goodbye to the others."""
    _subscriptions(conn).pop(sub.key, None)
    conn.unsubscribe(conversation_channel(sub.conversation_id))
    if sub.pushed_count:
        await conn.run(_audit_pushed, sub)
        sub.pushed_count = 0
    await _announce(conn, sub, "offline", ask=False)


# Frame handlers -------------------------------------------------------------------------


async def subscribe(conn: Connection, frame: dict[str, Any]) -> None:
    """``{"type": "subscribe", "conversation": "consultation:12", "after": 40}``: the
    messages after 40, then every new one. Without ``after``, only new ones."""
    key, kind, subject_id = _key(frame)
    after = _seq(frame, "after", required=False)
    subs = _subscriptions(conn)
    if key not in subs and len(subs) >= conn.services.settings.live.max_subscriptions:
        raise Conflict(
            N_("This connection follows too many conversations."),
            code="too_many_subscriptions",
            field="conversation",
        )
    opened = await conn.run(_open, kind, subject_id)
    previous = subs.get(key)
    if previous is not None:
        await _end(conn, previous)
    start = opened.last_seq if after is None else min(after, opened.last_seq)
    sub = Subscribed(key, kind, subject_id, opened.conversation_id, start)
    subs[key] = sub
    async with sub.lock:
        conn.subscribe(conversation_channel(sub.conversation_id), _on_event(conn, sub))
        await conn.broadcaster.ready()
        await _catch_up(conn, sub)
        await conn.send(
            _reply(
                frame,
                {
                    "type": "subscribed",
                    "conversation": key,
                    "last_seq": sub.last_seq,
                    "can_post": opened.part.can_post,
                },
            )
        )
    await _announce(conn, sub, "online", ask=True)


async def unsubscribe(conn: Connection, frame: dict[str, Any]) -> None:
    key, _kind, _subject = _key(frame)
    sub = _subscriptions(conn).get(key)
    if sub is not None:
        await _end(conn, sub)
    await conn.send(_reply(frame, {"type": "unsubscribed", "conversation": key}))


async def post(conn: Connection, frame: dict[str, Any]) -> None:
    """``{"type": "post", "conversation": …, "text": …, "client_id": …}``: answered with
    ``posted`` (``created`` false for a resend); the message itself arrives by the push."""
    key, kind, subject_id = _key(frame)
    text = frame.get("text")
    if not isinstance(text, str):
        raise Invalid(N_("Write a message."), code="text_missing", field="text")
    client_id = frame.get("client_id")
    if client_id is not None and not isinstance(client_id, str):
        raise Invalid(
            N_("A client id is 1 to 64 letters, digits, dots, colons, hyphens or underscores."),
            code="client_id_invalid",
            field="client_id",
        )
    posted = await conn.run(conversations.post, kind, subject_id, text=text, client_id=client_id)
    message = posted.message
    await conn.send(
        _reply(
            frame,
            {
                "type": "posted",
                "conversation": key,
                "seq": message.seq,
                "client_id": message.client_id,
                "created": posted.created,
            },
        )
    )


async def read(conn: Connection, frame: dict[str, Any]) -> None:
    """``{"type": "read", "conversation": …, "seq": 41}``: the read receipt, shown to
    the others."""
    key, kind, subject_id = _key(frame)
    seq = _seq(frame, "seq", required=True) or 0
    conversation_id, position = await conn.run(_mark_read, kind, subject_id, seq)
    await conn.publish(
        conversation_channel(conversation_id),
        {
            "type": "read",
            "user_id": conn.principal.user_id,
            "last_read_seq": position,
            "connection": conn.id,
        },
    )
    await conn.send(_reply(frame, {"type": "read_ok", "conversation": key, "seq": position}))


async def typing(conn: Connection, frame: dict[str, Any]) -> None:
    """``{"type": "typing", "conversation": …}``: passed on to the others, at most once
    per two seconds per conversation; only in a followed conversation."""
    key, _kind, _subject = _key(frame)
    sub = _subscriptions(conn).get(key)
    if sub is None:
        raise NotFound(
            N_("Subscribe to the conversation first."), code="not_subscribed", field="conversation"
        )
    now = time.monotonic()
    if now - sub.last_typing < TYPING_INTERVAL:
        return
    sub.last_typing = now
    await conn.publish(
        conversation_channel(sub.conversation_id),
        {
            "type": "typing",
            "user_id": conn.principal.user_id,
            "name": conn.principal.display_name or conn.principal.username,
            "connection": conn.id,
        },
    )


async def _close_all(conn: Connection) -> None:
    for sub in list(_subscriptions(conn).values()):
        await _end(conn, sub)


register("subscribe", subscribe)
register("unsubscribe", unsubscribe)
register("post", post, activity=True)
register("read", read)
register("typing", typing, activity=True)

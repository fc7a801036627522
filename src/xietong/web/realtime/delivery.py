"""From committed domain events to the broadcaster: a message persisted in a conversation
is published on ``conversation:<id>``, and a new notification on its recipient's
``user:<id>``, once the transaction has committed.

The event bus is process-wide; every running app's broadcaster is attached here while it
serves (tests run several apps in one process).
"""

from __future__ import annotations

from typing import Any

from xietong.core.events import DomainEvent, bus
from xietong.core.fanout import Broadcaster
from xietong.messaging.service import EVENT_CREATED
from xietong.notifications.service import EVENT_CREATED as NOTIFICATION_CREATED

_ATTACHED: list[Broadcaster] = []


def conversation_channel(conversation_id: int) -> str:
    return f"conversation:{conversation_id}"


def user_channel(user_id: int) -> str:
    """Every socket of one user listens here (the notification bell)."""
    return f"user:{user_id}"


def attach(broadcaster: Broadcaster) -> None:
    _ATTACHED.append(broadcaster)


def detach(broadcaster: Broadcaster) -> None:
    if broadcaster in _ATTACHED:
        _ATTACHED.remove(broadcaster)


def publish_everywhere(channel: str, payload: dict[str, Any]) -> None:
    """From synchronous code, after commit: every attached broadcaster."""
    for broadcaster in list(_ATTACHED):
        broadcaster.publish_threadsafe(channel, payload)


def _message_created(evt: DomainEvent) -> None:
    payload = evt.payload
    publish_everywhere(
        conversation_channel(int(payload["conversation_id"])),
        {"type": "message.created", **payload},
    )


def _notification_created(evt: DomainEvent) -> None:
    # A nudge only: the bell fetches its count and the list over HTTP, so no title or
    # subject travels through Redis.
    payload = evt.payload
    publish_everywhere(
        user_channel(int(payload["recipient_user_id"])),
        {"type": "notification", "id": payload["notification_id"], "kind": payload["kind"]},
    )


bus.subscribe(EVENT_CREATED, _message_created)
bus.subscribe(NOTIFICATION_CREATED, _notification_created)

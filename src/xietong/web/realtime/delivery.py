"""From committed domain events to the broadcaster: a message persisted in a conversation
is published on ``conversation:<id>`` once its transaction has committed.

The event bus is process-wide; every running app's broadcaster is attached here while it
serves (tests run several apps in one process).
"""

from __future__ import annotations

from typing import Any

from xietong.core.events import DomainEvent, bus
from xietong.core.fanout import Broadcaster
from xietong.messaging.service import EVENT_CREATED

_ATTACHED: list[Broadcaster] = []


def conversation_channel(conversation_id: int) -> str:
    return f"conversation:{conversation_id}"


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


bus.subscribe(EVENT_CREATED, _message_created)

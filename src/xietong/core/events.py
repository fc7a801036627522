"""Domain events dispatched after commit, and work that must survive a rollback.

A service calls :func:`publish` inside its transaction; subscribers run only once that
transaction has committed (never for a rolled-back one), so a WebSocket push or a
notification never announces something that is not in the database.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import Session

log = logging.getLogger(__name__)

_PENDING = "xietong.pending_events"
_DURABLE = "xietong.durable_writes"


@dataclass(frozen=True)
class DomainEvent:
    name: str
    payload: dict[str, Any] = field(default_factory=dict)


Handler = Callable[[DomainEvent], None]
DurableWrite = Callable[[Session], None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: dict[str, list[Handler]] = defaultdict(list)

    def subscribe(self, name: str, handler: Handler) -> None:
        self._handlers[name].append(handler)

    def dispatch(self, evt: DomainEvent) -> None:
        for handler in [*self._handlers.get(evt.name, []), *self._handlers.get("*", [])]:
            try:
                handler(evt)
            except Exception:  # a failing subscriber must not undo what was committed
                log.exception("event handler failed for %s", evt.name)


bus = EventBus()


def publish(session: Session, name: str, **payload: Any) -> None:
    session.info.setdefault(_PENDING, []).append(DomainEvent(name, payload))


def on_rollback_durable(session: Session, write: DurableWrite) -> None:
    """Register a write that must happen even if the current transaction rolls back."""
    session.info.setdefault(_DURABLE, []).append(write)


def take_durable(session: Session) -> list[DurableWrite]:
    writes: list[DurableWrite] = session.info.pop(_DURABLE, [])
    return writes


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    pending: list[DomainEvent] = session.info.pop(_PENDING, [])
    # Committed: durable writes were part of the transaction already.
    session.info.pop(_DURABLE, None)
    for evt in pending:
        bus.dispatch(evt)


@event.listens_for(Session, "after_soft_rollback")
def _after_rollback(session: Session, _previous: Any) -> None:
    session.info.pop(_PENDING, None)

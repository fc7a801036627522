from sqlalchemy.orm import Session, sessionmaker

from xietong.core.db import session_scope
from xietong.core.events import DomainEvent, bus, on_rollback_durable, publish


def test_events_fire_after_commit_only(session_factory: sessionmaker[Session]) -> None:
    seen: list[DomainEvent] = []
    bus.subscribe("test.kernel_event", seen.append)
    with session_scope(session_factory) as session:
        publish(session, "test.kernel_event", n=1)
        assert seen == []
    assert [e.payload for e in seen] == [{"n": 1}]

    try:
        with session_scope(session_factory) as session:
            publish(session, "test.kernel_event", n=2)
            raise RuntimeError("refused")
    except RuntimeError:
        pass
    assert [e.payload for e in seen] == [{"n": 1}]


def test_durable_writes_run_after_a_rollback(session_factory: sessionmaker[Session]) -> None:
    ran: list[str] = []
    try:
        with session_scope(session_factory) as session:
            on_rollback_durable(session, lambda _s: ran.append("rewritten"))
            raise RuntimeError("refused")
    except RuntimeError:
        pass
    assert ran == ["rewritten"]

    ran.clear()
    with session_scope(session_factory) as session:
        on_rollback_durable(session, lambda _s: ran.append("rewritten"))
    assert ran == []

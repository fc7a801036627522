"""Posting at once on PostgreSQL (each thread its own connection, committing for real, in
its own schema): ten writers to one conversation get ten dense, distinct sequence numbers;
two resends with the same client id make one message. SQLite serialises writers."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import fast_user
from tests.pg_race import needs_postgres, schema_engine, together
from xietong.directory.regions import load_regions
from xietong.identity.roles import Role
from xietong.messaging import service as svc
from xietong.messaging.models import Message

pytestmark = needs_postgres
WRITERS = 10


@pytest.fixture(scope="module")
def race_engine(worker_id: str) -> Iterator[Engine]:
    with schema_engine("xt_message_race", worker_id, pool_size=WRITERS + 2) as engine:
        with Session(engine) as session:
            load_regions(session)
            session.commit()
        yield engine


def _senders(engine: Engine) -> list[int]:
    with Session(engine) as db:
        place = factories.institution(db, level="county")
        ids = [fast_user(db, f"race_m_{i}", Role.EXPERT, place).id for i in range(WRITERS)]
        db.commit()
        return ids


def _post(
    engine: Engine, subject: str, sender: int, body: str, client_id: str | None
) -> Callable[[], int]:
    def job() -> int:
        with Session(engine) as session:
            conversation = svc.conversation_for(session, "consultation", subject)
            posted = svc.post_message(
                session, conversation, sender_user_id=sender, text=body, client_id=client_id
            )
            session.commit()
            return posted.message.seq

    return job


def _seqs(engine: Engine, subject: str) -> list[int]:
    with Session(engine) as session:
        conversation = svc.find_conversation(session, "consultation", subject)
        assert conversation is not None
        return list(
            session.execute(
                select(Message.seq)
                .where(Message.conversation_id == conversation.id)
                .order_by(Message.seq)
            ).scalars()
        )


def test_writers_at_once_get_dense_distinct_sequence_numbers(race_engine: Engine) -> None:
    senders = _senders(race_engine)
    # The first posts also race to create the conversation.
    results = together(
        *(_post(race_engine, "race-1", s, f"消息 {i}", None) for i, s in enumerate(senders))
    )
    assert sorted(results) == list(range(1, WRITERS + 1)), results
    assert _seqs(race_engine, "race-1") == list(range(1, WRITERS + 1))


def test_resends_at_once_make_one_message(race_engine: Engine) -> None:
    with Session(race_engine) as db:
        sender = fast_user(
            db, "race_m_resend", Role.EXPERT, factories.institution(db, level="county")
        ).id
        db.commit()
    for round_no in range(5):
        subject = f"race-resend-{round_no}"
        results = together(
            *(_post(race_engine, subject, sender, "同一条", "client-1") for _ in range(3))
        )
        assert results == [1, 1, 1], results
        assert _seqs(race_engine, subject) == [1]

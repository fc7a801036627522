"""The "new message" notices of a conversation: one per reader until they read (the key
names their position), never the sender, and written in a fixed number of statements
however many readers there are (a busy room posts often)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import event, select
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import fast_user
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.messaging import service as svc
from xietong.messaging import threads
from xietong.messaging.models import Conversation
from xietong.notifications.models import Notification
from xietong.notifications.service import Subject

NOTICE = threads.Notice(
    kind="consultation.message",
    subject=Subject("consultation", 9),
    title="New message in consultation #{id}",
    params={"id": 9},
    link="/consultations/9",
    dedupe_prefix="consultation:9",
)


def _people(db: Session, count: int) -> list[User]:
    place = factories.institution(db, level="county")
    return [fast_user(db, f"t_reader_{i}", Role.EXPERT, place) for i in range(count)]


@contextmanager
def _statements(db: Session) -> Iterator[list[str]]:
    seen: list[str] = []
    engine = db.get_bind()

    def count(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        seen.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", count)


def _post(db: Session, conversation: Conversation, sender: User, text: str) -> None:
    svc.post_message(db, conversation, sender_user_id=sender.id, text=text)


def _keys(db: Session, user: User) -> list[str]:
    rows = db.scalars(
        select(Notification.dedupe_key)
        .where(Notification.recipient_user_id == user.id)
        .order_by(Notification.id)
    )
    return list(rows)


def test_one_notice_per_unread_run_never_the_sender(db: Session) -> None:
    sender, reader, other = _people(db, 3)
    conversation = svc.conversation_for(db, "consultation", "9")
    for text in ("一", "二"):
        _post(db, conversation, sender, text)
        threads.notify_unread(db, conversation, [sender.id, reader.id, other.id], sender.id, NOTICE)
    assert _keys(db, reader) == ["consultation:9:message:0"]
    assert _keys(db, sender) == []
    svc.mark_read(db, conversation, reader.id, 2)
    _post(db, conversation, sender, "三")
    threads.notify_unread(db, conversation, [reader.id, other.id], sender.id, NOTICE)
    assert _keys(db, reader) == ["consultation:9:message:0", "consultation:9:message:2"]
    assert _keys(db, other) == ["consultation:9:message:0"]


def test_the_statements_do_not_grow_with_the_readers(db: Session) -> None:
    sender, *readers = _people(db, 9)
    counts = []
    for subject, room in (("9", readers[:2]), ("10", readers)):
        conversation = svc.conversation_for(db, "consultation", subject)
        _post(db, conversation, sender, "你好")
        with _statements(db) as seen:
            threads.notify_unread(db, conversation, [u.id for u in room], sender.id, NOTICE)
        counts.append(len(seen))
        assert len(_keys(db, room[-1])) == 1
    assert counts[0] == counts[1], counts

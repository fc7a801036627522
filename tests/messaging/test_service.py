"""Messaging on its own: dense sequence numbers, idempotent resends, vetted attachments
that leave nothing behind when refused, status events, and read positions that only move
forward."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import fast_user
from tests.records.test_documents import pdf_bytes, phone_photo
from xietong.config import UploadSettings
from xietong.core.errors import Conflict, Invalid, PayloadTooLarge, UnsupportedMediaType
from xietong.core.storage import LocalBlobStore
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.messaging import service as svc
from xietong.messaging.models import Conversation, Message


@pytest.fixture
def people(db: Session) -> tuple[User, User]:
    place = factories.institution(db, level="county")
    return (
        fast_user(db, "m_alice", Role.APPLICANT_DOCTOR, place),
        fast_user(db, "m_bob", Role.EXPERT, place),
    )


@pytest.fixture
def blobs(tmp_path: Path) -> LocalBlobStore:
    return LocalBlobStore(tmp_path / "blobs")


def _count(db: Session) -> int:
    return int(db.execute(select(func.count()).select_from(Message)).scalar_one())


def test_one_conversation_per_subject(db: Session) -> None:
    first = svc.conversation_for(db, "consultation", "7")
    again = svc.conversation_for(db, "consultation", "7")
    other = svc.conversation_for(db, "referral", "7")
    assert first.id == again.id != other.id
    assert svc.find_conversation(db, "consultation", "8") is None


def test_sequence_numbers_are_dense_and_ordered(db: Session, people: tuple[User, User]) -> None:
    alice, bob = people
    conv = svc.conversation_for(db, "consultation", "1")
    for i in range(5):
        sender = alice if i % 2 == 0 else bob
        svc.post_message(db, conv, sender_user_id=sender.id, text=f"第{i}条")
    svc.post_system(db, conv, "consultation.accept", {"from": "submitted", "to": "accepted"})
    found = svc.messages_after(db, conv)
    assert [m.seq for m in found] == [1, 2, 3, 4, 5, 6]
    assert [m.body for m in found[:2]] == ["第0条", "第1条"]
    assert found[-1].kind == "system"
    assert found[-1].sender_user_id is None
    assert [m.seq for m in svc.messages_after(db, conv, after=4)] == [5, 6]
    assert [m.seq for m in svc.messages_after(db, conv, after=1, limit=2)] == [2, 3]
    db.refresh(conv)
    assert conv.last_seq == 6


def test_a_resend_with_the_same_client_id_is_the_first_message(
    db: Session, people: tuple[User, User]
) -> None:
    alice, bob = people
    conv = svc.conversation_for(db, "consultation", "2")
    first = svc.post_message(db, conv, sender_user_id=alice.id, text="你好", client_id="abc-1")
    again = svc.post_message(db, conv, sender_user_id=alice.id, text="你好", client_id="abc-1")
    assert first.created
    assert not again.created
    assert again.message.id == first.message.id
    # Another sender may use the same client id: ids are the sender's own.
    theirs = svc.post_message(db, conv, sender_user_id=bob.id, text="你好", client_id="abc-1")
    assert theirs.created
    with pytest.raises(Conflict) as caught:
        svc.post_message(db, conv, sender_user_id=alice.id, text="别的", client_id="abc-1")
    assert (caught.value.code, caught.value.field) == ("client_id_reused", "client_id")
    assert _count(db) == 2


@pytest.mark.parametrize(
    ("text", "client_id", "code", "field"),
    [
        ("", None, "message_empty", "text"),
        ("   ", None, "message_empty", "text"),
        ("a" * 4001, None, "too_long", "text"),
        ("a\x00b", None, "control_characters", "text"),
        ("ok", "has space", "client_id_invalid", "client_id"),
        ("ok", "x" * 65, "client_id_invalid", "client_id"),
    ],
)
def test_bad_text_or_client_id_is_refused_naming_the_field(
    db: Session, people: tuple[User, User], text: str, client_id: str | None, code: str, field: str
) -> None:
    conv = svc.conversation_for(db, "consultation", "3")
    with pytest.raises(Invalid) as caught:
        svc.post_message(db, conv, sender_user_id=people[0].id, text=text, client_id=client_id)
    assert (caught.value.code, caught.value.field) == (code, field)
    assert _count(db) == 0


def test_a_photo_is_vetted_and_stored_with_a_thumbnail(
    db: Session, people: tuple[User, User], blobs: LocalBlobStore
) -> None:
    conv = svc.conversation_for(db, "consultation", "4")
    photo = svc.Attachment("IMG_0001.jpg", "image/jpeg", phone_photo())
    posted = svc.post_message(
        db, conv, sender_user_id=people[0].id, text="心电图", attachment=photo, blobs=blobs
    )
    m = posted.message
    assert (m.kind, m.media_type, m.body, m.filename) == (
        "image",
        "image/jpeg",
        "心电图",
        "IMG_0001.jpg",
    )
    assert (m.width, m.height) == (300, 400)  # turned upright, EXIF gone
    assert m.blob_key
    assert blobs.exists(m.blob_key)
    assert m.thumb_blob_key
    pdf = svc.Attachment("../../etc/报告.pdf", "application/pdf", pdf_bytes(3))
    filed = svc.post_message(
        db, conv, sender_user_id=people[0].id, text="", attachment=pdf, blobs=blobs
    )
    assert (filed.message.kind, filed.message.pdf_pages) == ("file", 3)
    assert filed.message.filename == "报告.pdf"  # no path


def test_a_refused_file_leaves_nothing(
    db: Session, people: tuple[User, User], blobs: LocalBlobStore
) -> None:
    conv = svc.conversation_for(db, "consultation", "5")
    small = UploadSettings(max_document_bytes=2048)
    cases = [
        (svc.Attachment("a.exe", "image/png", b"MZ\x90\x00" * 100), UnsupportedMediaType),
        (svc.Attachment("a.png", "image/png", b""), Invalid),
        (svc.Attachment("big.pdf", "application/pdf", pdf_bytes(40)), PayloadTooLarge),
    ]
    for attachment, error in cases:
        with pytest.raises(error) as caught:
            svc.post_message(
                db,
                conv,
                sender_user_id=people[0].id,
                text="看看",
                attachment=attachment,
                blobs=blobs,
                limits=small,
            )
        assert caught.value.field == "file"
    assert _count(db) == 0
    db.refresh(conv)
    assert conv.last_seq == 0


def test_read_positions_only_move_forward(db: Session, people: tuple[User, User]) -> None:
    alice, bob = people
    conv = svc.conversation_for(db, "consultation", "6")
    for text in ("一", "二", "三"):
        svc.post_message(db, conv, sender_user_id=alice.id, text=text)
    assert svc.unread_count(db, conv, bob.id) == 3
    assert svc.unread_count(db, conv, alice.id) == 0  # one's own messages are read
    assert svc.mark_read(db, conv, bob.id, 2).last_read_seq == 2
    assert svc.mark_read(db, conv, bob.id, 1).last_read_seq == 2  # never back
    assert svc.mark_read(db, conv, bob.id, 99).last_read_seq == 3  # never past the end
    assert svc.unread_count(db, conv, bob.id) == 0
    assert [(p.user_id, p.last_read_seq) for p in svc.read_positions(db, conv)] == [(bob.id, 3)]


def test_system_events_take_codes_only(db: Session) -> None:
    conv = svc.conversation_for(db, "consultation", "9")
    with pytest.raises(ValueError):
        svc.post_system(db, conv, "<script>")
    assert db.get(Conversation, conv.id) is not None

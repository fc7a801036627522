"""The messages of a group conversation (:mod:`xietong.messaging.groups`): read, post,
attachments, as the subjects' conversations do (:mod:`xietong.messaging.threads`), and the
registration of kind ``group`` with live delivery (participation: current members only,
404 audited for anyone else; posting: any current member)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from xietong.access.policies import deny_not_found
from xietong.access.principal import Principal
from xietong.access.subjects import Participation, register_subject
from xietong.config import UploadSettings
from xietong.core.errors import N_
from xietong.core.storage import BlobStore
from xietong.messaging import service as messaging
from xietong.messaging import threads
from xietong.messaging.groups import KIND, open_group
from xietong.messaging.models import Conversation, ConversationRead, Message
from xietong.messaging.subjects import ConversationSubject, register_conversation, wire
from xietong.notifications.service import Subject

READ_ACTION = "group.messages"
POST_ACTION = "group.message"
NOTIFICATION_KIND = "group.message"


@dataclass(frozen=True)
class Thread:
    conversation: Conversation
    member_ids: list[int]
    messages: list[Message]
    last_seq: int
    positions: list[ConversationRead]
    names: dict[int, str]
    # A member may always post; the page keeps polling while they are one.
    can_post: bool = True
    is_open: bool = True


def _audited(conversation_id: int) -> threads.Audited:
    return threads.Audited(READ_ACTION, POST_ACTION, KIND, conversation_id)


def message_path(subject_id: str, seq: int) -> str:
    return f"/api/v1/conversations/{subject_id}/messages/{seq}"


def message_out(conversation_id: int, m: Message, names: dict[int, str]) -> dict[str, Any]:
    """The JSON shape of one message (MessageOut)."""
    return wire(m, names, message_path(str(conversation_id), m.seq))


def read_messages(
    session: Session,
    principal: Principal,
    conversation_id: int,
    *,
    after: int = 0,
    limit: int = 100,
    tail: int | None = None,
) -> Thread:
    """Messages after ``after``, oldest first; the reader's position moves on."""
    opened = open_group(session, principal, conversation_id, action=READ_ACTION)
    c = opened.conversation
    page = threads.read_page(
        session,
        principal,
        c,
        _audited(c.id),
        after=after,
        limit=limit,
        tail=tail,
        notifications=(Subject(KIND, c.id), NOTIFICATION_KIND),
    )
    return Thread(c, opened.member_ids, page.messages, page.last_seq, page.positions, page.names)


def post_message(
    session: Session,
    principal: Principal,
    conversation_id: int,
    *,
    text: str,
    client_id: str | None = None,
    attachment: messaging.Attachment | None = None,
    blobs: BlobStore | None = None,
    limits: UploadSettings | None = None,
) -> messaging.Posted:
    """Post as a member; a resend with the same client id returns the first message."""
    opened = open_group(session, principal, conversation_id, action=POST_ACTION)
    c = opened.conversation
    notice = threads.Notice(
        kind=NOTIFICATION_KIND,
        subject=Subject(KIND, c.id),
        title=N_("New message in “{title}”"),
        params={"title": c.title or ""},
        link=f"/messages/{c.id}",
        dedupe_prefix=f"group:{c.id}",
    )
    return threads.post(
        session,
        principal,
        c,
        _audited(c.id),
        notice=notice,
        recipients=lambda: opened.member_ids,
        text=text,
        client_id=client_id,
        attachment=attachment,
        blobs=blobs,
        limits=limits,
    )


def message_attachment(
    session: Session,
    principal: Principal,
    conversation_id: int,
    seq: int,
    *,
    thumbnail: bool = False,
) -> threads.AttachmentContent:
    opened = open_group(session, principal, conversation_id, action=f"{POST_ACTION}.attachment")
    c = opened.conversation
    return threads.read_attachment(session, principal, c, seq, _audited(c.id), thumbnail=thumbnail)


# Live delivery ------------------------------------------------------------------------------


def _conversation_id(session: Session, principal: Principal, subject_id: str, action: str) -> int:
    if not subject_id.isdigit() or len(subject_id) > 10:
        raise deny_not_found(
            session, principal, action, KIND, subject_id[:64], field="conversation"
        )
    return int(subject_id)


def participation(
    session: Session, principal: Principal, subject_id: str, *, action: str
) -> Participation:
    """404 (audited) for who is not a current member; members may read and post."""
    opened = open_group(
        session, principal, _conversation_id(session, principal, subject_id, action), action=action
    )
    c = opened.conversation
    return Participation(
        kind=KIND,
        subject_id=str(c.id),
        title=c.title or f"#{c.id}",
        url=f"/messages/{c.id}",
        can_post=True,
        is_host=True,
        user_ids=frozenset(opened.member_ids),
    )


def post(
    session: Session, principal: Principal, subject_id: str, *, text: str, client_id: str | None
) -> messaging.Posted:
    conversation_id = _conversation_id(session, principal, subject_id, POST_ACTION)
    return post_message(session, principal, conversation_id, text=text, client_id=client_id)


def register() -> None:
    register_subject(KIND, participation)
    register_conversation(ConversationSubject(KIND, post, message_path, READ_ACTION))

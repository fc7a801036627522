"""What every subject's wrapper around its conversation shares (the consultation's, the
referral's, a group conversation's), once the subject's domain has opened the subject and
decided that the principal may read or post:

* a read returns a page of messages with the read receipts and the names to show; a read
  that reveals messages is audited with the sequence numbers it revealed (a poll that finds
  nothing new reveals nothing and is not), moves the reader's position and marks their
  "new message" notifications read;
* a post is audited (``.retry`` for a resend) and counts as read by its sender;
* each other participant gets one unread "new message" notification until they read (the
  dedupe key changes only when their read position moves);
* an attachment (or its thumbnail) is found by sequence number, its read audited.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.config import UploadSettings
from xietong.core.errors import N_, Conflict, Forbidden, NotFound
from xietong.core.storage import BlobStore
from xietong.identity.service import display_names
from xietong.messaging import service as messaging
from xietong.messaging.models import Conversation, ConversationRead, Message
from xietong.notifications.service import Subject, notify_each
from xietong.notifications.service import mark_subject_read as mark_notifications_read


@dataclass(frozen=True)
class Audited:
    """What the audit rows of a conversation's reads and posts name: ``action`` is the read
    action (``consultation.messages``); posts use ``post_action``, attachments
    ``post_action + ".attachment"``."""

    read_action: str
    post_action: str
    object_kind: str
    object_id: int | str


@dataclass(frozen=True)
class Page:
    messages: list[Message] = field(default_factory=list)
    last_seq: int = 0
    positions: list[ConversationRead] = field(default_factory=list)
    names: dict[int, str] = field(default_factory=dict)


@dataclass(frozen=True)
class AttachmentContent:
    blob_key: str
    media_type: str
    filename: str
    sha256: str | None


def people(messages: Iterable[Message], positions: Iterable[ConversationRead]) -> set[int]:
    """Whose names a page shows: senders, readers and the actors of status events."""
    found = [*messages]
    ids = {m.sender_user_id for m in found if m.sender_user_id is not None}
    ids |= {p.user_id for p in positions}
    ids |= {
        int(str(m.data["actor_user_id"])) for m in found if m.data.get("actor_user_id") is not None
    }
    return ids


def read_page(
    session: Session,
    principal: Principal,
    conversation: Conversation | None,
    audited: Audited,
    *,
    after: int = 0,
    limit: int = 100,
    tail: int | None = None,
    notifications: tuple[Subject, str] | None = None,
) -> Page:
    """Messages after ``after``, oldest first (with ``tail``, at most the last ``tail``)."""
    if conversation is None:
        return Page()
    if tail is not None:
        after = max(after, conversation.last_seq - tail)
    found = messaging.messages_after(session, conversation, after, limit)
    if found:
        audit.record(
            session,
            principal,
            audited.read_action,
            object_kind=audited.object_kind,
            object_id=audited.object_id,
            detail={"from_seq": found[0].seq, "to_seq": found[-1].seq, "count": len(found)},
        )
        if principal.user_id is not None:
            messaging.mark_read(session, conversation, principal.user_id, found[-1].seq)
            if notifications is not None:
                mark_notifications_read(session, principal, *notifications)
    positions = messaging.read_positions(session, conversation)
    return Page(
        found,
        conversation.last_seq,
        positions,
        display_names(session, people(found, positions)),
    )


def record_post(
    session: Session,
    principal: Principal,
    conversation: Conversation,
    posted: messaging.Posted,
    audited: Audited,
) -> None:
    """The post's audit row; the sender has read what they answer."""
    m = posted.message
    audit.record(
        session,
        principal,
        audited.post_action if posted.created else f"{audited.post_action}.retry",
        object_kind=audited.object_kind,
        object_id=audited.object_id,
        detail={"seq": m.seq, "kind": m.kind},
    )
    if posted.created:
        messaging.mark_read(session, conversation, principal.uid, m.seq)


@dataclass(frozen=True)
class Notice:
    """The "new message" notification of one subject."""

    kind: str
    subject: Subject
    title: str
    params: dict[str, str | int]
    link: str
    dedupe_prefix: str


def notify_unread(
    session: Session,
    conversation: Conversation,
    recipients: Iterable[int],
    sender: int,
    notice: Notice,
) -> None:
    """One unread notification per recipient (never the sender) until they read: the key
    names the reader's position, so a new one comes only after they have read."""
    wanted = set(recipients) - {sender}
    if not wanted:
        return
    positions = {
        row.user_id: row.last_read_seq for row in messaging.read_positions(session, conversation)
    }
    notify_each(
        session,
        {u: f"{notice.dedupe_prefix}:message:{positions.get(u, 0)}" for u in wanted},
        kind=notice.kind,
        subject=notice.subject,
        title=notice.title,
        params=notice.params,
        link=notice.link,
        actor_user_id=sender,
    )


def read_attachment(
    session: Session,
    principal: Principal,
    conversation: Conversation | None,
    seq: int,
    audited: Audited,
    *,
    thumbnail: bool = False,
) -> AttachmentContent:
    """The attachment of message ``seq`` (or its thumbnail); 404 naming ``seq`` when the
    message has none; the read audited."""
    m = messaging.message_at(session, conversation, seq) if conversation is not None else None
    key = None if m is None else (m.thumb_blob_key if thumbnail else m.blob_key)
    if m is None or key is None:
        raise NotFound(
            N_("This message has no such attachment."), code="attachment_not_found", field="seq"
        )
    audit.record(
        session,
        principal,
        f"{audited.post_action}.attachment",
        object_kind=audited.object_kind,
        object_id=audited.object_id,
        detail={"seq": seq, "thumbnail": thumbnail},
    )
    media_type = "image/jpeg" if thumbnail else (m.media_type or "application/octet-stream")
    return AttachmentContent(key, media_type, "" if thumbnail else (m.filename or ""), m.sha256)


def check_may_post(
    session: Session,
    principal: Principal,
    audited: Audited,
    *,
    takes_part: bool,
    state: str,
    is_open: bool,
    closed_message: str,
) -> None:
    """403 (audited) for who sees the subject without taking part; 409 once it is closed."""
    if not takes_part:
        audit.record_denial(
            session,
            principal,
            audited.post_action,
            audited.object_kind,
            audited.object_id,
            reason="role",
        )
        raise Forbidden(code="role_not_allowed", field=None)
    if not is_open:
        raise Conflict(
            closed_message, code="conversation_closed", field="state", params={"state": state}
        )


def post(
    session: Session,
    principal: Principal,
    conversation: Conversation,
    audited: Audited,
    *,
    notice: Notice,
    recipients: Callable[[], Iterable[int]],
    text: str,
    client_id: str | None = None,
    attachment: messaging.Attachment | None = None,
    blobs: BlobStore | None = None,
    limits: UploadSettings | None = None,
) -> messaging.Posted:
    """Post as the principal (who may: the subject has checked), audit it, and tell the
    ``recipients`` of a new message (asked only when it is new, not for a resend)."""
    posted = messaging.post_message(
        session,
        conversation,
        sender_user_id=principal.uid,
        text=text,
        client_id=client_id,
        attachment=attachment,
        blobs=blobs,
        limits=limits,
    )
    record_post(session, principal, conversation, posted, audited)
    if posted.created:
        notify_unread(session, conversation, recipients(), principal.uid, notice)
    return posted

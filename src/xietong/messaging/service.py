"""Posting and reading messages. The subject's domain has already decided that the caller
may do so (messaging knows nothing of consultations); these functions keep the order, the
content and the read positions, in the caller's transaction.

* A message is written, with its sequence number, before anyone is told of it; the
  ``message.created`` event is dispatched after the commit (for the live push to come).
* A resend with the same ``client_id`` from the same sender returns the first message; the
  same ``client_id`` with other content is a 409, not a silent second message.
* Attachments are vetted like clinical documents (core/uploads.py): the content decides the
  type, bombs and corrupt files are refused, metadata stripped, and nothing is written when
  a file is refused.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xietong.config import UploadSettings
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Invalid
from xietong.core.events import publish
from xietong.core.storage import BlobStore
from xietong.core.uploads import VettedFile, vet
from xietong.core.validation import has_control_characters, strip_control_characters
from xietong.identity.service import display_names
from xietong.messaging.models import Conversation, ConversationRead, Message
from xietong.messaging.subjects import message_path, wire

EVENT_CREATED = "message.created"
MAX_TEXT = 4000
MAX_PAGE = 200
CLIENT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]{0,63}")
SYSTEM_CODE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")


@dataclass(frozen=True)
class Attachment:
    filename: str
    declared_type: str | None
    data: bytes


@dataclass(frozen=True)
class Posted:
    message: Message
    created: bool


# Conversations ----------------------------------------------------------------------------


def find_conversation(session: Session, subject_kind: str, subject_id: str) -> Conversation | None:
    return session.execute(
        select(Conversation).where(
            Conversation.subject_kind == subject_kind, Conversation.subject_id == subject_id
        )
    ).scalar_one_or_none()


def conversation_by_id(session: Session, conversation_id: int) -> Conversation:
    found = session.get(Conversation, conversation_id)
    if found is None:
        raise RuntimeError(f"conversation {conversation_id} not found")
    return found


def conversation_for(session: Session, subject_kind: str, subject_id: str) -> Conversation:
    """The subject's conversation, created on first use; two first posts at once make one."""
    found = find_conversation(session, subject_kind, subject_id)
    if found is not None:
        return found
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(
        insert(Conversation)
        .values(subject_kind=subject_kind, subject_id=subject_id, last_seq=0, created_at=now())
        .on_conflict_do_nothing(index_elements=["subject_kind", "subject_id"])
    )
    created = find_conversation(session, subject_kind, subject_id)
    if created is None:  # inserted above, or by the transaction that won: never None
        raise RuntimeError(f"conversation of {subject_kind} {subject_id} not found")
    return created


# Posting ----------------------------------------------------------------------------------


def check_text(text: str, *, required: bool) -> str:
    """The message text, stripped; 422 naming ``text`` when empty (and required), too long
    or holding control characters."""
    value = text.strip()
    if has_control_characters(value):
        raise Invalid(
            N_("The text holds control characters."), code="control_characters", field="text"
        )
    if len(value) > MAX_TEXT:
        raise Invalid(
            N_("A message has at most {limit} characters."),
            code="too_long",
            field="text",
            params={"limit": MAX_TEXT},
        )
    if required and not value:
        raise Invalid(N_("Write a message or attach a file."), code="message_empty", field="text")
    return value


def check_client_id(client_id: str | None) -> str | None:
    if client_id is None or client_id == "":
        return None
    if not CLIENT_ID.fullmatch(client_id):
        raise Invalid(
            N_("A client id is 1 to 64 letters, digits, dots, colons, hyphens or underscores."),
            code="client_id_invalid",
            field="client_id",
        )
    return client_id


def _vet(attachment: Attachment, limits: UploadSettings) -> VettedFile:
    return vet(
        attachment.data,
        declared_type=attachment.declared_type,
        field="file",
        max_bytes=limits.max_document_bytes,
        max_image_pixels=limits.max_image_pixels,
        max_pdf_pages=limits.max_pdf_pages,
        thumbnail_size=limits.thumbnail_size,
    )


def _safe_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return strip_control_characters(base, "").strip()[:200]


def _by_client_id(
    session: Session, conversation_id: int, sender_user_id: int, client_id: str
) -> Message | None:
    return session.execute(
        select(Message).where(
            Message.conversation_id == conversation_id,
            Message.sender_user_id == sender_user_id,
            Message.client_id == client_id,
        )
    ).scalar_one_or_none()


def _same(message: Message, text: str, original_sha256: str | None) -> Posted:
    if message.body != text or message.original_sha256 != original_sha256:
        raise Conflict(
            N_("This client id was used for another message."),
            code="client_id_reused",
            field="client_id",
        )
    return Posted(message, False)


def _next_seq(session: Session, conversation_id: int) -> int:
    """Bump the conversation's counter; on PostgreSQL the row stays locked until commit,
    so posts to one conversation are numbered in commit order."""
    seq = session.execute(
        update(Conversation)
        .where(Conversation.id == conversation_id)
        .values(last_seq=Conversation.last_seq + 1, last_message_at=now())
        .returning(Conversation.last_seq)
        .execution_options(synchronize_session=False)
    ).scalar_one()
    return int(seq)


def _insert(session: Session, conversation: Conversation, **values: Any) -> Message:
    message = Message(
        conversation_id=conversation.id, seq=_next_seq(session, conversation.id), **values
    )
    session.add(message)
    session.flush()
    session.expire(conversation, ["last_seq", "last_message_at"])
    publish(
        session,
        EVENT_CREATED,
        conversation_id=conversation.id,
        subject_kind=conversation.subject_kind,
        subject_id=conversation.subject_id,
        seq=message.seq,
        message_id=message.id,
        # Rendered now, once, for every live reader (the fan-out carries it).
        message=wire_of(session, conversation, message),
    )
    return message


def wire_of(session: Session, conversation: Conversation, message: Message) -> dict[str, Any]:
    """The message as live readers get it (the subject's REST API gives the same)."""
    actor = message.data.get("actor_user_id") if message.kind == "system" else None
    people = [p for p in (message.sender_user_id, actor) if p is not None]
    names = display_names(session, [int(str(p)) for p in people]) if people else {}
    base = message_path(conversation.subject_kind, conversation.subject_id, message.seq)
    rendered = wire(message, names, base)
    rendered["created_at"] = message.created_at.isoformat()
    return rendered


def post_message(
    session: Session,
    conversation: Conversation,
    *,
    sender_user_id: int,
    text: str,
    client_id: str | None = None,
    attachment: Attachment | None = None,
    blobs: BlobStore | None = None,
    limits: UploadSettings | None = None,
) -> Posted:
    """A text, image or file message from ``sender_user_id``; see the module docstring."""
    body = check_text(text, required=attachment is None)
    key = check_client_id(client_id)
    vetted: VettedFile | None = None
    if attachment is not None:
        if blobs is None:
            raise ValueError("an attachment needs a blob store")
        vetted = _vet(attachment, limits or UploadSettings())
    original = vetted.original_sha256 if vetted is not None else None
    if key is not None:
        first = _by_client_id(session, conversation.id, sender_user_id, key)
        if first is not None:
            return _same(first, body, original)
    values: dict[str, Any] = {
        "kind": "text",
        "sender_user_id": sender_user_id,
        "body": body,
        "data": {},
        "client_id": key,
        "created_at": now(),
    }
    if vetted is not None and attachment is not None and blobs is not None:
        stored = blobs.put_bytes(vetted.data)
        thumb = blobs.put_bytes(vetted.thumbnail) if vetted.thumbnail else None
        values |= {
            "kind": "image" if vetted.media_type.startswith("image/") else "file",
            "blob_key": stored.key,
            "sha256": stored.sha256,
            "original_sha256": vetted.original_sha256,
            "media_type": vetted.media_type,
            "size": stored.size,
            "filename": _safe_filename(attachment.filename) or None,
            "width": vetted.width,
            "height": vetted.height,
            "pdf_pages": vetted.page_count,
            "thumb_blob_key": thumb.key if thumb else None,
        }
    try:
        with session.begin_nested():
            message = _insert(session, conversation, **values)
    except IntegrityError:
        # A concurrent resend with the same client id was committed first.
        first = _by_client_id(session, conversation.id, sender_user_id, key) if key else None
        if first is None:
            raise
        return _same(first, body, original)
    return Posted(message, True)


def post_system(
    session: Session,
    conversation: Conversation,
    code: str,
    data: dict[str, str | int | None] | None = None,
    *,
    actor_user_id: int | None = None,
) -> Message:
    """A status event in the conversation (``consultation.accept``), shown in each
    reader's language; ``actor_user_id`` is who caused it, kept in ``data``."""
    if not SYSTEM_CODE.fullmatch(code) or len(code) > 64:
        raise ValueError(f"not an event code: {code!r}")
    payload: dict[str, Any] = dict(data or {})
    if actor_user_id is not None:
        payload["actor_user_id"] = actor_user_id
    return _insert(
        session,
        conversation,
        kind="system",
        sender_user_id=None,
        body=code,
        data=payload,
        client_id=None,
        created_at=now(),
    )


# Reading ----------------------------------------------------------------------------------


def messages_after(
    session: Session, conversation: Conversation, after: int = 0, limit: int = 100
) -> list[Message]:
    """Messages with a sequence number above ``after``, oldest first, at most ``limit``."""
    return list(
        session.execute(
            select(Message)
            .where(Message.conversation_id == conversation.id, Message.seq > after)
            .order_by(Message.seq)
            .limit(max(1, min(limit, MAX_PAGE)))
        ).scalars()
    )


def message_at(session: Session, conversation: Conversation, seq: int) -> Message | None:
    return session.execute(
        select(Message).where(Message.conversation_id == conversation.id, Message.seq == seq)
    ).scalar_one_or_none()


def mark_read(
    session: Session, conversation: Conversation, user_id: int, seq: int
) -> ConversationRead:
    """Move the reader's position forward to ``seq``: never back (a conditional upsert, so
    two tabs reading at once cannot move it back), never past the last message."""
    session.refresh(conversation, ["last_seq"])
    target = max(0, min(seq, conversation.last_seq))
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    upsert = insert(ConversationRead).values(
        conversation_id=conversation.id, user_id=user_id, last_read_seq=target, read_at=now()
    )
    session.execute(
        upsert.on_conflict_do_update(
            index_elements=["conversation_id", "user_id"],
            set_={
                "last_read_seq": upsert.excluded.last_read_seq,
                "read_at": upsert.excluded.read_at,
            },
            where=ConversationRead.last_read_seq < upsert.excluded.last_read_seq,
        )
    )
    return session.execute(
        select(ConversationRead)
        .where(
            ConversationRead.conversation_id == conversation.id, ConversationRead.user_id == user_id
        )
        .execution_options(populate_existing=True)
    ).scalar_one()


def read_positions(session: Session, conversation: Conversation) -> list[ConversationRead]:
    return list(
        session.execute(
            select(ConversationRead)
            .where(ConversationRead.conversation_id == conversation.id)
            .order_by(ConversationRead.user_id)
        ).scalars()
    )


def read_position(session: Session, conversation_id: int, user_id: int) -> int:
    row = session.get(ConversationRead, (conversation_id, user_id))
    return row.last_read_seq if row is not None else 0


def unread_count(session: Session, conversation: Conversation, user_id: int) -> int:
    """Messages of others after the reader's position."""
    position = read_position(session, conversation.id, user_id)
    return int(
        session.execute(
            select(func.count())
            .select_from(Message)
            .where(
                Message.conversation_id == conversation.id,
                Message.seq > position,
                (Message.sender_user_id.is_(None)) | (Message.sender_user_id != user_id),
            )
        ).scalar_one()
    )

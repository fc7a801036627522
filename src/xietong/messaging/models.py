"""Tables of messaging: one conversation per subject, its messages in sequence, and each
reader's position in it.

A conversation belongs to a subject of another domain (``("consultation", "12")``); that
domain decides who may read or post, messaging only keeps order and content. Sequence
numbers are dense per conversation (``conversation.last_seq`` is bumped in the posting
transaction), so a client that has seen up to ``n`` asks for ``after=n`` and misses
nothing. ``client_id`` makes a resend from the same sender idempotent.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from xietong.core.clock import now
from xietong.core.db import Base, UTCDateTime

MESSAGE_KINDS = ("text", "image", "file", "system")


class Conversation(Base):
    __tablename__ = "conversation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    subject_kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    last_seq: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    last_message_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    # A group conversation's title (its subject is itself: ``("group", str(id))``).
    title: Mapped[str | None] = mapped_column(String(100))

    __table_args__ = (
        UniqueConstraint("subject_kind", "subject_id", name="uq_conversation_subject"),
    )


class Message(Base):
    """One message; never edited. ``kind`` is text, image or file (with an attachment and
    an optional caption in ``body``), or system (``body`` is an event code, ``data`` its
    parameters, rendered in the reader's language)."""

    __tablename__ = "message"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    conversation_id: Mapped[int] = mapped_column(ForeignKey("conversation.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(8))
    sender_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    body: Mapped[str] = mapped_column(Text, default="")
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    client_id: Mapped[str | None] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    # The attachment, vetted (core/uploads.py) and stored content-addressed.
    blob_key: Mapped[str | None] = mapped_column(String(80))
    sha256: Mapped[str | None] = mapped_column(String(64))
    # The upload as sent, before vetting re-encoded it: how a resend is recognised.
    original_sha256: Mapped[str | None] = mapped_column(String(64))
    media_type: Mapped[str | None] = mapped_column(String(64))
    size: Mapped[int | None] = mapped_column(Integer)
    filename: Mapped[str | None] = mapped_column(String(200))
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    pdf_pages: Mapped[int | None] = mapped_column(Integer)
    thumb_blob_key: Mapped[str | None] = mapped_column(String(80))

    __table_args__ = (
        UniqueConstraint("conversation_id", "seq", name="uq_message_seq"),
        UniqueConstraint(
            "conversation_id", "sender_user_id", "client_id", name="uq_message_client_id"
        ),
        CheckConstraint(
            "kind IN ('text','image','file','system')",
            name="kind",
        ),
        CheckConstraint("kind IN ('text','system') OR blob_key IS NOT NULL", name="attachment"),
    )


class ConversationRead(Base):
    """How far a participant has read: the read receipts."""

    __tablename__ = "conversation_read"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversation.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    last_read_seq: Mapped[int] = mapped_column(Integer, default=0)
    read_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    __table_args__ = (Index("ix_conversation_read_user", "user_id"),)


class ConversationMember(Base):
    """A member of a group conversation (kind ``group``); a subject's conversation has none,
    its domain decides who takes part. Leaving sets ``left_at``; being added again clears
    it."""

    __tablename__ = "conversation_member"

    conversation_id: Mapped[int] = mapped_column(
        ForeignKey("conversation.id", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[int] = mapped_column(
        ForeignKey("app_user.id", ondelete="CASCADE"), primary_key=True
    )
    added_by: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    added_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (Index("ix_conversation_member_user", "user_id"),)

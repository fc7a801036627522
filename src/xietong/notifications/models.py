"""The notification table: one row per recipient and event.

The title is an English msgid with its parameters, translated when the notification is shown,
so each recipient reads it in their own language. ``dedupe_key`` is unique per recipient: the
same event (a retried request, a job run twice) never notifies anyone twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from xietong.core.clock import now
from xietong.core.db import Base, UTCDateTime


class Notification(Base):
    __tablename__ = "notification"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    recipient_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id", ondelete="CASCADE"))
    # A short code of the event: consultation.submitted, referral.accepted …
    kind: Mapped[str] = mapped_column(String(64))
    subject_kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[int] = mapped_column(Integer)
    title: Mapped[str] = mapped_column(String(200))  # an English msgid
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    link: Mapped[str] = mapped_column(String(500))  # a local path, "/consultations/12"
    actor_user_id: Mapped[int | None] = mapped_column(
        ForeignKey("app_user.id", ondelete="SET NULL")
    )
    dedupe_key: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("recipient_user_id", "dedupe_key", name="uq_notification_dedupe"),
        # The list (unread first, newest first) and the unread count of one recipient.
        Index(
            "ix_notification_recipient_read_created", "recipient_user_id", "read_at", "created_at"
        ),
        Index("ix_notification_subject", "subject_kind", "subject_id"),
    )

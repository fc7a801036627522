"""Tables of video sessions: the session, one attendance row per join, the lobby's
admissions and the guest join links (only the SHA-256 of a link's token is kept)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from xietong.core.clock import now
from xietong.core.db import Base, UTCDateTime

STATES = ("scheduled", "open", "ended", "cancelled")
MODES = ("mesh", "janus")
ADMISSION_STATES = ("waiting", "admitted", "refused")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({','.join(repr(v) for v in values)})"


class LiveSession(Base):
    __tablename__ = "live_session"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    # The subject it belongs to (access.subjects): "consultation" and its id as text.
    subject_kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    title: Mapped[str] = mapped_column(String(200), default="")
    host_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    # The subject's patient when it has one: what the audit rows name.
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"))
    mode: Mapped[str] = mapped_column(String(8), default="mesh")
    state: Mapped[str] = mapped_column(String(16), default="scheduled", index=True)
    # None: instant (opened at creation).
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    planned_minutes: Mapped[int] = mapped_column(Integer, default=30)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    opened_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    ended_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    # The Janus VideoRoom of the session (sfu = janus), created on the first join.
    janus_room: Mapped[int | None] = mapped_column(Integer)

    __table_args__ = (
        CheckConstraint(_in("state", STATES), name="state"),
        CheckConstraint(_in("mode", MODES), name="mode"),
        CheckConstraint("planned_minutes BETWEEN 1 AND 1440", name="planned_minutes"),
        Index("ix_live_session_subject", "subject_kind", "subject_id"),
    )


class LiveAttendance(Base):
    """One join: a rejoin is a new row. ``left_at`` is set on leave or when the socket
    closes; the cleanup job closes rows whose socket stopped beating (a killed process)."""

    __tablename__ = "live_attendance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("live_session.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    # The WebSocket connection's id: peers address each other by it (a rejoin on the same
    # socket reuses it, in a new row).
    peer_id: Mapped[str] = mapped_column(String(64))
    # Joined through a guest link and the lobby (not a participant of the subject).
    guest: Mapped[bool] = mapped_column(default=False)
    joined_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    # Moved forward while the socket lives; what the cleanup trusts after a crash.
    seen_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    left_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    seconds: Mapped[int | None] = mapped_column(Integer)
    muted: Mapped[bool] = mapped_column(default=False)
    camera_off: Mapped[bool] = mapped_column(default=False)

    __table_args__ = (
        Index("ix_live_attendance_open", "session_id", "left_at"),
        Index("ix_live_attendance_peer", "peer_id"),
    )


class LiveAdmission(Base):
    """A guest in the lobby: waiting until the host admits or refuses them."""

    __tablename__ = "live_admission"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("live_session.id", ondelete="CASCADE"), index=True
    )
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    link_id: Mapped[int | None] = mapped_column(ForeignKey("live_link.id"))
    state: Mapped[str] = mapped_column(String(16), default="waiting")
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    decided_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))

    __table_args__ = (
        CheckConstraint(_in("state", ADMISSION_STATES), name="state"),
        UniqueConstraint("session_id", "user_id", name="uq_live_admission_user"),
    )


class LiveLink(Base):
    """A guest join link: the token is shown once; only its SHA-256 is stored."""

    __tablename__ = "live_link"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    session_id: Mapped[int] = mapped_column(
        ForeignKey("live_session.id", ondelete="CASCADE"), index=True
    )
    token_sha256: Mapped[str] = mapped_column(String(64), unique=True)
    label: Mapped[str] = mapped_column(String(100), default="")
    created_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

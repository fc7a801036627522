"""Tables of referral: the referral (up, exam or down), the grants made for it, its
history, and the follow-ups of a down-referral. Slots and bookings are in slot_models.py.

One table holds the three kinds, because they chain: an exam referral may continue as an
up-referral (``parent_id``), an up-referral ends with a down-referral back, and a
consultation's signed report may start it all (``consultation_id``). The chain is what the
closed-loop page shows and what supervision counts. A referral's place is the booking that
names it (``slot_booking.referral_id``) and is still booked or arrived.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    CheckConstraint,
    Date,
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

KINDS = ("up", "exam", "down")
PRIORITIES = ("normal", "green")
STATES = (
    "requested",
    "returned",
    "accepted",
    "arrived",
    "in_treatment",
    "reported",
    "completed",
    "rejected",
    "cancelled",
    "expired",
    "no_show",
)
DECISIONS = ("stay", "refer_up", "admit")
FOLLOW_UP_STATUSES = ("planned", "done", "missed")
# States in which the referral still waits for someone (deadline job, desk inbox).
OPEN_STATES = ("requested", "returned", "accepted", "arrived", "in_treatment", "reported")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({','.join(repr(v) for v in values)})"


class Referral(Base):
    __tablename__ = "referral"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(8))
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    sender_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    sender_institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    target_institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    target_department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    target_practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    priority: Mapped[str] = mapped_column(String(8), default="normal")
    reason: Mapped[str] = mapped_column(Text)
    diagnosis_code: Mapped[str] = mapped_column(String(16), default="")
    diagnosis_text: Mapped[str] = mapped_column(String(500), default="")
    summary: Mapped[str] = mapped_column(Text, default="")
    exam_type: Mapped[str] = mapped_column(String(16), default="")
    # Where it comes from: a signed consultation report, or the referral it continues.
    consultation_id: Mapped[int | None] = mapped_column(ForeignKey("consultation.id"))
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id"), index=True)
    shared_items: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="requested", index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    accept_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    last_note: Mapped[str] = mapped_column(String(1000), default="")
    # Exam referral: the examination report (a clinical document) and the decision.
    report_document_id: Mapped[int | None] = mapped_column(ForeignKey("clinical_document.id"))
    decision: Mapped[str | None] = mapped_column(String(16))
    decision_note: Mapped[str] = mapped_column(Text, default="")
    # Down-referral: the structured discharge summary and the rehabilitation plan.
    discharge: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    rehab_plan: Mapped[str] = mapped_column(Text, default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(_in("kind", KINDS), name="kind"),
        CheckConstraint(_in("priority", PRIORITIES), name="priority"),
        CheckConstraint(_in("state", STATES), name="state"),
        CheckConstraint(f"decision IS NULL OR {_in('decision', DECISIONS)}", name="decision"),
        CheckConstraint("kind = 'up' OR priority = 'normal'", name="green_is_up"),
        UniqueConstraint(
            "sender_institution_id", "idempotency_key", name="uq_referral_idempotency"
        ),
    )


class ReferralGrant(Base):
    """A chart grant made for the referral (patients.grants.grant_for_workflow)."""

    __tablename__ = "referral_grant"

    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referral.id", ondelete="CASCADE"), primary_key=True
    )
    grant_id: Mapped[int] = mapped_column(ForeignKey("chart_grant.id"), primary_key=True)


class ReferralHistory(Base):
    """One row per transition: who, when, from, to, and the note."""

    __tablename__ = "referral_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    referral_id: Mapped[int] = mapped_column(ForeignKey("referral.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    note: Mapped[str] = mapped_column(String(1000), default="")

    __table_args__ = (Index("ix_referral_history_referral", "referral_id", "id"),)


class FollowUp(Base):
    """A follow-up of a down-referral's rehabilitation plan: due on a date, recorded by the
    lower institution; overdue when still planned after its date."""

    __tablename__ = "referral_follow_up"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    referral_id: Mapped[int] = mapped_column(
        ForeignKey("referral.id", ondelete="CASCADE"), index=True
    )
    due_date: Mapped[date] = mapped_column(Date, index=True)
    purpose: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16), default="planned")
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    done_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    __table_args__ = (CheckConstraint(_in("status", FOLLOW_UP_STATUSES), name="status"),)

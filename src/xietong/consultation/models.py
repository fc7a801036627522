"""Tables of the consultation: the request, its assigned experts, the grants made for it,
the experts' opinions, the signed report versions and the history of its transitions."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from xietong.core.clock import now
from xietong.core.db import Base, UTCDateTime

STATES = (
    "draft",
    "submitted",
    "returned",
    "resubmitted",
    "accepted",
    "scheduled",
    "in_progress",
    "preliminary",
    "report_signed",
    "completed",
    "rejected",
    "cancelled",
    "expired",
)
URGENCIES = ("routine", "urgent", "emergency")
# A clinical consultation, or an imaging read (ADR 0017): the same request, triage,
# deadlines, grants, messages and history; a structured read report instead of opinions.
KINDS = ("clinical", "imaging_read")
READ_REPORT_STATUSES = ("preliminary", "final", "amended")
MODES = ("async", "live")
# States in which the centre's experts still owe work (their "open load").
OPEN_STATES = ("accepted", "scheduled", "in_progress")
WAITING_STATES = ("submitted", "resubmitted")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({','.join(repr(v) for v in values)})"


class Consultation(Base):
    __tablename__ = "consultation"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), default="clinical", server_default="clinical")
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    applicant_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    applicant_institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(500))
    clinical_summary: Mapped[str] = mapped_column(Text, default="")
    questions: Mapped[str] = mapped_column(Text, default="")
    specialty: Mapped[str] = mapped_column(String(32))
    urgency: Mapped[str] = mapped_column(String(16))
    mode: Mapped[str] = mapped_column(String(8))
    # The receiving centre; a named expert's institution when the request names one.
    target_institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    target_practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    # The items the applicant chose to share, [{"kind": ..., "id": ...}], granted at submit.
    shared_items: Mapped[list[dict[str, object]]] = mapped_column(JSON, default=list)
    state: Mapped[str] = mapped_column(String(16), default="draft", index=True)
    scheduled_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    started_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report_signed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    accept_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime)
    report_deadline: Mapped[datetime | None] = mapped_column(UTCDateTime, index=True)
    last_note: Mapped[str] = mapped_column(String(1000), default="")
    rating: Mapped[int | None] = mapped_column(SmallInteger)
    rating_comment: Mapped[str] = mapped_column(String(1000), default="")
    idempotency_key: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(_in("state", STATES), name="state"),
        CheckConstraint(_in("kind", KINDS), name="kind"),
        CheckConstraint(_in("urgency", URGENCIES), name="urgency"),
        CheckConstraint(_in("mode", MODES), name="mode"),
        CheckConstraint("rating IS NULL OR (rating >= 1 AND rating <= 5)", name="rating"),
        UniqueConstraint(
            "applicant_institution_id", "idempotency_key", name="uq_consultation_idempotency"
        ),
    )


class ConsultationAssignment(Base):
    """An expert of the centre assigned by triage; exactly one of them leads."""

    __tablename__ = "consultation_assignment"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("consultation.id", ondelete="CASCADE"), index=True
    )
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"), index=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    is_lead: Mapped[bool] = mapped_column(Boolean, default=False)
    assigned_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    assigned_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))

    __table_args__ = (
        UniqueConstraint("consultation_id", "practitioner_id", name="uq_assignment_expert"),
    )


class ConsultationGrant(Base):
    """A grant made for the consultation (patients.grants.grant_for_workflow)."""

    __tablename__ = "consultation_grant"

    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("consultation.id", ondelete="CASCADE"), primary_key=True
    )
    grant_id: Mapped[int] = mapped_column(ForeignKey("chart_grant.id"), primary_key=True)


class ConsultationOpinion(Base):
    """One opinion per assigned expert, editable until the report is signed."""

    __tablename__ = "consultation_opinion"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("consultation.id", ondelete="CASCADE"), index=True
    )
    practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"))
    author_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    text: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    version: Mapped[int] = mapped_column(Integer, default=1)

    __table_args__ = (
        UniqueConstraint("consultation_id", "practitioner_id", name="uq_opinion_expert"),
    )


class ConsultationReport(Base):
    """A signed report version: frozen once written; an amendment is the next version."""

    __tablename__ = "consultation_report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("consultation.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    impression: Mapped[str] = mapped_column(Text)
    recommendations: Mapped[str] = mapped_column(Text)
    referral_recommended: Mapped[bool] = mapped_column(Boolean, default=False)
    referral_institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    amendment_reason: Mapped[str] = mapped_column(String(1000), default="")
    amended_from_id: Mapped[int | None] = mapped_column(ForeignKey("consultation_report.id"))
    signed_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    signed_by_practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    content_sha256: Mapped[str] = mapped_column(String(64))

    __table_args__ = (UniqueConstraint("consultation_id", "version", name="uq_report_version"),)


class ConsultationReadReport(Base):
    """A structured imaging read report version (ADR 0017). Its signed text (the
    ``content_sha256`` covers it) is frozen once written; the preliminary version becomes
    final in place when the lead finalises it or a senior radiologist countersigns (who and
    when are recorded, the text is not touched). An amendment after final is the next
    version, status ``amended``. ``sr_*`` name the DICOM SR stored with the study."""

    __tablename__ = "consultation_read_report"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(
        ForeignKey("consultation.id", ondelete="CASCADE"), index=True
    )
    version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(16))
    modality: Mapped[str] = mapped_column(String(16))
    body_part: Mapped[str] = mapped_column(String(32))
    template_key: Mapped[str] = mapped_column(String(32))
    technique: Mapped[str] = mapped_column(Text)
    findings: Mapped[str] = mapped_column(Text)
    impression: Mapped[str] = mapped_column(Text)
    recommendation: Mapped[str] = mapped_column(Text, default="")
    critical_finding: Mapped[bool] = mapped_column(Boolean, default=False)
    amendment_reason: Mapped[str] = mapped_column(String(1000), default="")
    amended_from_id: Mapped[int | None] = mapped_column(ForeignKey("consultation_read_report.id"))
    signed_by_user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    signed_by_practitioner_id: Mapped[int] = mapped_column(ForeignKey("practitioner.id"))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    countersigned_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    countersigned_by_practitioner_id: Mapped[int | None] = mapped_column(
        ForeignKey("practitioner.id")
    )
    countersigned_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    finalised_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    content_sha256: Mapped[str] = mapped_column(String(64))
    sr_study_id: Mapped[int | None] = mapped_column(ForeignKey("imaging_study.id"))
    sr_sop_instance_uid: Mapped[str] = mapped_column(String(64), default="")

    __table_args__ = (
        UniqueConstraint("consultation_id", "version", name="uq_read_report_version"),
        CheckConstraint(_in("status", READ_REPORT_STATUSES), name="status"),
    )


class ConsultationHistory(Base):
    """One row per transition: who, when, from, to, and the note."""

    __tablename__ = "consultation_history"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[int] = mapped_column(ForeignKey("consultation.id", ondelete="CASCADE"))
    action: Mapped[str] = mapped_column(String(32))
    from_state: Mapped[str] = mapped_column(String(16))
    to_state: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    note: Mapped[str] = mapped_column(String(1000), default="")

    __table_args__ = (Index("ix_consultation_history_consultation", "consultation_id", "id"),)

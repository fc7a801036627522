"""Input and output shapes of the consultation API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from xietong.core.validation import Id, StrictModel
from xietong.directory.specialties import SPECIALTIES

SPECIALTY_CODES = frozenset(s.code for s in SPECIALTIES)
Urgency = Literal["routine", "urgent", "emergency"]
Mode = Literal["async", "live"]
MAX_ITEMS = 200


class SharedItemIn(StrictModel):
    kind: str = Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")
    id: Id


class ConsultationIn(StrictModel):
    patient_id: Id
    purpose: str = Field(min_length=1, max_length=500)
    clinical_summary: str = Field(min_length=1, max_length=20_000)
    questions: str = Field(min_length=1, max_length=10_000)
    specialty: str = Field(min_length=1, max_length=32)
    urgency: Urgency = "routine"
    mode: Mode = "async"
    target_institution_id: Id | None = None
    target_practitioner_id: Id | None = None
    shared_items: list[SharedItemIn] = Field(default_factory=list, max_length=MAX_ITEMS)
    # Create and submit in one call (a retry with the same Idempotency-Key returns the first).
    submit: bool = False

    @field_validator("specialty")
    @classmethod
    def _known_specialty(cls, value: str) -> str:
        if value not in SPECIALTY_CODES:
            raise ValueError("Unknown specialty code.")
        return value


class NoteIn(StrictModel):
    note: str = Field(min_length=1, max_length=1000)


class OptionalNoteIn(StrictModel):
    note: str = Field(default="", max_length=1000)


class ResubmitIn(StrictModel):
    note: str = Field(default="", max_length=1000)
    clinical_summary: str | None = Field(default=None, min_length=1, max_length=20_000)
    questions: str | None = Field(default=None, min_length=1, max_length=10_000)


class AcceptIn(StrictModel):
    experts: list[Id] = Field(min_length=1, max_length=20)
    lead: Id
    note: str = Field(default="", max_length=1000)


class ScheduleIn(StrictModel):
    scheduled_at: datetime
    note: str = Field(default="", max_length=1000)


class OpinionIn(StrictModel):
    text: str = Field(min_length=1, max_length=20_000)


class ReportIn(StrictModel):
    impression: str = Field(min_length=1, max_length=20_000)
    recommendations: str = Field(min_length=1, max_length=20_000)
    referral_recommended: bool = False
    referral_institution_id: Id | None = None


class AmendIn(ReportIn):
    reason: str = Field(min_length=1, max_length=1000)


class RateIn(StrictModel):
    rating: int = Field(ge=1, le=5)
    comment: str = Field(default="", max_length=1000)


class AssignmentOut(BaseModel):
    practitioner_id: int
    name: str
    user_id: int
    is_lead: bool


class HistoryOut(BaseModel):
    action: str
    from_state: str
    to_state: str
    actor_user_id: int | None
    at: datetime
    note: str


class ConsultationOut(BaseModel):
    id: int
    patient_id: int
    patient_name: str
    applicant_user_id: int
    applicant_institution_id: int
    purpose: str
    clinical_summary: str
    questions: str
    specialty: str
    urgency: str
    mode: str
    target_institution_id: int
    target_practitioner_id: int | None
    shared_items: list[dict[str, object]]
    grant_ids: list[int]
    state: str
    scheduled_at: datetime | None
    created_at: datetime
    submitted_at: datetime | None
    accepted_at: datetime | None
    report_signed_at: datetime | None
    closed_at: datetime | None
    accept_deadline: datetime | None
    report_deadline: datetime | None
    last_note: str
    rating: int | None
    rating_comment: str
    assignments: list[AssignmentOut]
    history: list[HistoryOut]
    my_roles: list[str]


class ConsultationSummaryOut(BaseModel):
    id: int
    patient_id: int
    patient_name: str
    applicant_institution_id: int
    target_institution_id: int
    specialty: str
    urgency: str
    mode: str
    state: str
    accept_deadline: datetime | None
    report_deadline: datetime | None
    created_at: datetime


class ConsultationPage(BaseModel):
    items: list[ConsultationSummaryOut]
    total: int
    limit: int
    offset: int


class OpinionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    practitioner_id: int
    author_user_id: int
    text: str
    created_at: datetime
    updated_at: datetime
    version: int


class ReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    version: int
    impression: str
    recommendations: str
    referral_recommended: bool
    referral_institution_id: int | None
    amendment_reason: str
    amended_from_id: int | None
    signed_by_user_id: int
    signed_by_practitioner_id: int
    signed_at: datetime
    content_sha256: str


class RecommendationOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    practitioner_id: int
    name: str
    score: int
    specialty_match: bool
    available_windows: int
    open_load: int
    reasons: list[str]


class SlotExpertOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    practitioner_id: int
    name: str
    is_lead: bool
    # For a missing expert: outside_hours (none of their weekly windows holds the slot) or
    # other_session (another live session of theirs overlaps it); empty for a free one.
    reason: str


class SessionSlotOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    start: datetime
    end: datetime
    partial: bool
    free: list[SlotExpertOut]
    missing: list[SlotExpertOut]


class SessionTimesOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    consultation_id: int
    duration_minutes: int
    earliest: datetime
    until: datetime
    slots: list[SessionSlotOut]

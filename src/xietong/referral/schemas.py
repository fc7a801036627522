"""Input and output shapes of the referral API."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field, ValidationInfo, field_validator

from xietong.core.validation import Id, StrictModel
from xietong.referral.slot_models import EXAM_TYPES

Priority = Literal["normal", "green"]
Decision = Literal["stay", "refer_up", "admit"]
MAX_ITEMS = 200
MAX_FOLLOW_UPS = 24


class SharedItemIn(StrictModel):
    kind: str = Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")
    id: Id


class ReferralIn(StrictModel):
    """An up-referral (``kind`` "up") or an exam referral ("exam")."""

    kind: Literal["up", "exam"] = "up"
    patient_id: Id
    target_institution_id: Id
    target_department_id: Id | None = None
    target_practitioner_id: Id | None = None
    slot_id: Id | None = None
    priority: Priority = "normal"
    reason: str = Field(min_length=1, max_length=2000)
    diagnosis_code: str = Field(default="", max_length=16)
    diagnosis_text: str = Field(default="", max_length=500)
    summary: str = Field(default="", max_length=20_000)
    # Checked when left out too: an exam referral without its examination is refused.
    exam_type: str = Field(default="", max_length=16, validate_default=True)
    consultation_id: Id | None = None
    shared_items: list[SharedItemIn] = Field(default_factory=list, max_length=MAX_ITEMS)

    @field_validator("priority")
    @classmethod
    def _green_is_up(cls, value: str, info: ValidationInfo) -> str:
        if value == "green" and info.data.get("kind") == "exam":
            raise ValueError("The green channel is for up-referrals.")
        return value

    @field_validator("exam_type")
    @classmethod
    def _exam_type(cls, value: str, info: ValidationInfo) -> str:
        if value not in EXAM_TYPES:
            raise ValueError("Unknown examination type.")
        if info.data.get("kind") == "exam" and not value:
            raise ValueError("An exam referral names the examination.")
        if info.data.get("kind") == "up" and value:
            raise ValueError("Only an exam referral names an examination.")
        return value


class NoteIn(StrictModel):
    note: str = Field(min_length=1, max_length=1000)


class OptionalNoteIn(StrictModel):
    note: str = Field(default="", max_length=1000)


class AcceptIn(StrictModel):
    """The desk accepts; it books a slot when the sender did not."""

    slot_id: Id | None = None
    note: str = Field(default="", max_length=1000)


class ResubmitIn(StrictModel):
    note: str = Field(default="", max_length=1000)
    summary: str | None = Field(default=None, min_length=1, max_length=20_000)
    slot_id: Id | None = None


class ExamReportIn(StrictModel):
    document_id: Id
    note: str = Field(default="", max_length=1000)


class DecisionIn(StrictModel):
    decision: Decision
    note: str = Field(min_length=1, max_length=5000)
    # refer_up: where the patient is treated (this institution by default).
    target_department_id: Id | None = None


class DiagnosisLine(StrictModel):
    code: str = Field(default="", max_length=16)
    text: str = Field(min_length=1, max_length=500)


class MedicationLine(StrictModel):
    name: str = Field(min_length=1, max_length=200)
    dose: str = Field(default="", max_length=100)
    frequency: str = Field(default="", max_length=100)
    days: int | None = Field(default=None, ge=1, le=3650)


class DischargeIn(StrictModel):
    diagnoses: list[DiagnosisLine] = Field(min_length=1, max_length=30)
    procedures: list[str] = Field(default_factory=list, max_length=30)
    medications: list[MedicationLine] = Field(default_factory=list, max_length=50)
    follow_up_plan: str = Field(min_length=1, max_length=5000)


class FollowUpPlanIn(StrictModel):
    due_date: date
    purpose: str = Field(min_length=1, max_length=200)


class DownReferralIn(StrictModel):
    """A down-referral from the upper institution back to a lower one."""

    patient_id: Id
    parent_id: Id | None = None  # the up-referral it ends
    target_institution_id: Id | None = None  # the referring institution by default
    reason: str = Field(min_length=1, max_length=2000)
    discharge: DischargeIn
    rehab_plan: str = Field(min_length=1, max_length=20_000)
    follow_ups: list[FollowUpPlanIn] = Field(min_length=1, max_length=MAX_FOLLOW_UPS)
    shared_items: list[SharedItemIn] = Field(default_factory=list, max_length=MAX_ITEMS)


class FollowUpIn(StrictModel):
    status: Literal["done", "missed"]
    note: str = Field(min_length=1, max_length=5000)


class BookingOut(BaseModel):
    id: int
    slot_id: int
    channel: str
    status: str
    starts_at: datetime
    ends_at: datetime
    department_id: int
    practitioner_id: int | None


class HistoryOut(BaseModel):
    action: str
    from_state: str
    to_state: str
    actor_user_id: int | None
    at: datetime
    note: str


class FollowUpOut(BaseModel):
    id: int
    due_date: date
    purpose: str
    status: str
    overdue: bool
    done_at: datetime | None
    note: str


class ReferralOut(BaseModel):
    id: int
    kind: str
    patient_id: int
    patient_name: str
    sender_user_id: int
    sender_institution_id: int
    target_institution_id: int
    target_department_id: int | None
    target_practitioner_id: int | None
    priority: str
    reason: str
    diagnosis_code: str
    diagnosis_text: str
    summary: str
    exam_type: str
    consultation_id: int | None
    parent_id: int | None
    shared_items: list[dict[str, Any]]
    state: str
    created_at: datetime
    accept_deadline: datetime | None
    accepted_at: datetime | None
    arrived_at: datetime | None
    closed_at: datetime | None
    last_note: str
    report_document_id: int | None
    decision: str | None
    decision_note: str
    discharge: dict[str, Any]
    rehab_plan: str
    booking: BookingOut | None
    grant_ids: list[int]
    follow_ups: list[FollowUpOut]
    history: list[HistoryOut]
    my_roles: list[str]


class ReferralSummaryOut(BaseModel):
    id: int
    kind: str
    patient_id: int
    patient_name: str
    sender_institution_id: int
    target_institution_id: int
    priority: str
    state: str
    created_at: datetime
    accept_deadline: datetime | None


class ReferralPage(BaseModel):
    items: list[ReferralSummaryOut]
    total: int
    limit: int
    offset: int


class ChainLinkOut(BaseModel):
    kind: str  # consultation, up, exam, down
    id: int
    state: str
    at: datetime
    institution_from: int
    institution_to: int
    follow_ups: list[FollowUpOut] = Field(default_factory=list)


class ChainOut(BaseModel):
    patient_id: int
    links: list[ChainLinkOut]

"""Input and output shapes of the imaging read API (a consultation of kind
``imaging_read``, ADR 0017)."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from xietong.consultation.models import READ_REPORT_STATUSES
from xietong.consultation.schemas import MAX_ITEMS, ConsultationIn, SharedItemIn, Urgency
from xietong.core.validation import Id, StrictModel

MAX_FINDINGS = 20_000
MAX_TEXT = 10_000


class ReadIn(StrictModel):
    """A request to read: the patient, the studies (and other items) shared, the question."""

    patient_id: Id
    purpose: str = Field(min_length=1, max_length=500)
    clinical_summary: str = Field(min_length=1, max_length=20_000)
    questions: str = Field(min_length=1, max_length=MAX_TEXT)
    urgency: Urgency = "routine"
    target_institution_id: Id
    shared_items: list[SharedItemIn] = Field(min_length=1, max_length=MAX_ITEMS)
    submit: bool = False

    def as_consultation(self) -> ConsultationIn:
        """The consultation request it is: radiology, asynchronous."""
        return ConsultationIn(
            patient_id=self.patient_id,
            purpose=self.purpose,
            clinical_summary=self.clinical_summary,
            questions=self.questions,
            specialty="radiology",
            urgency=self.urgency,
            mode="async",
            target_institution_id=self.target_institution_id,
            shared_items=self.shared_items,
            submit=self.submit,
        )


class ReadReportIn(StrictModel):
    """The structured report the lead radiologist signs (preliminary, or an amendment)."""

    template_key: str = Field(min_length=1, max_length=32)
    technique: str = Field(default="", max_length=MAX_TEXT)
    findings: str = Field(min_length=1, max_length=MAX_FINDINGS)
    impression: str = Field(min_length=1, max_length=MAX_TEXT)
    recommendation: str = Field(default="", max_length=MAX_TEXT)
    critical_finding: bool = False


class ReadAmendIn(ReadReportIn):
    reason: str = Field(min_length=1, max_length=1000)


class SignOffIn(StrictModel):
    note: str = Field(default="", max_length=1000)


class ReadReportOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    consultation_id: int
    version: int
    status: str
    modality: str
    body_part: str
    template_key: str
    technique: str
    findings: str
    impression: str
    recommendation: str
    critical_finding: bool
    amendment_reason: str
    amended_from_id: int | None
    signed_by_user_id: int
    signed_by_practitioner_id: int
    signed_at: datetime
    countersigned_by_user_id: int | None
    countersigned_by_practitioner_id: int | None
    countersigned_at: datetime | None
    finalised_at: datetime | None
    content_sha256: str
    sr_sop_instance_uid: str


class ReadTemplateOut(BaseModel):
    template_key: str
    modality: str
    body_part: str
    label: str
    technique: str
    findings: str
    impression: str
    recommendation: str


class WorklistRowOut(BaseModel):
    id: int
    patient_id: int
    patient_name: str
    applicant_institution_id: int
    urgency: str
    state: str
    modalities: list[str]
    report_deadline: datetime | None
    submitted_at: datetime | None
    lead_name: str
    assigned_to_me: bool


class WorklistOut(BaseModel):
    items: list[WorklistRowOut]
    total: int
    limit: int
    offset: int


STATUS = READ_REPORT_STATUSES

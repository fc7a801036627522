"""API shapes of the clinical record: strict input per kind, output with names resolved.

Each kind has a ``*Fields`` model (its clinical values, also used to re-validate an entry
after a correction) and an ``*In`` model that adds the bookkeeping a client sends once, on
creation: the source, the client request id, the practitioner who recorded it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from xietong.core.errors import N_, Invalid
from xietong.core.validation import Id, StrictModel, has_control_characters

SourceCode = Literal["entered", "document", "interface"]
EncounterKind = Literal["outpatient", "inpatient", "emergency", "exam"]
DiagnosisKind = Literal["primary", "secondary"]
DiagnosisStatus = Literal["provisional", "confirmed", "refuted", "resolved"]
AbnormalFlag = Literal["H", "L", "HH", "LL", "A", "N"]
OrderKind = Literal["medication", "exam", "procedure", "nursing"]
OrderStatus = Literal["active", "completed", "stopped", "cancelled"]
Route = Literal[
    "",
    "oral",
    "iv",
    "im",
    "sc",
    "id",
    "inhalation",
    "topical",
    "sublingual",
    "rectal",
    "nasal",
    "ophthalmic",
    "otic",
    "other",
]
VitalKind = Literal[
    "temperature",
    "heart_rate",
    "respiratory_rate",
    "bp_systolic",
    "bp_diastolic",
    "spo2",
    "weight",
    "height",
    "blood_glucose",
]
VITAL_KINDS: tuple[str, ...] = VitalKind.__args__  # type: ignore[attr-defined]
Severity = Literal["mild", "moderate", "severe", "unknown"]
AllergyStatus = Literal["active", "inactive", "refuted"]

# Measurements: finite, and small enough that no float column or formatting overflows.
Measure = Annotated[float, Field(allow_inf_nan=False, ge=-1e9, le=1e9)]
CLIENT_REQUEST_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
# Room for ":" and the longest vital kind (VitalSignsIn appends them).
VITALS_REQUEST_PATTERN = r"^[A-Za-z0-9._:-]{1,47}$"
LOINC_PATTERN = r"^[0-9]{1,7}-[0-9]$"


class EntryIn(StrictModel):
    """What a client sends once, when it creates an entry."""

    source: SourceCode = "entered"
    source_ref: str = Field(default="", max_length=128)
    recorded_by_practitioner_id: Id | None = None
    client_request_id: str | None = Field(default=None, pattern=CLIENT_REQUEST_PATTERN)


class EncounterFields(StrictModel):
    kind: EncounterKind
    department_id: Id | None = None
    start_date: date
    end_date: date | None = None
    attending_practitioner_id: Id | None = None
    chief_complaint: str = Field(default="", max_length=500)
    summary: str = Field(default="", max_length=4000)


class DiagnosisFields(StrictModel):
    encounter_id: Id | None = None
    code: str = Field(min_length=1, max_length=16)
    # Empty: the code list's title (Chinese where shipped) is recorded.
    name: str = Field(default="", max_length=200)
    kind: DiagnosisKind = "primary"
    status: DiagnosisStatus = "confirmed"
    diagnosed_on: date


class LabResultFields(StrictModel):
    encounter_id: Id | None = None
    item_name: str = Field(min_length=1, max_length=128)
    loinc_code: str | None = Field(default=None, pattern=LOINC_PATTERN)
    local_code: str | None = Field(default=None, min_length=1, max_length=32)
    value_text: str = Field(min_length=1, max_length=64)
    unit: str = Field(default="", max_length=32)
    ref_low: Measure | None = None
    ref_high: Measure | None = None
    ref_text: str = Field(default="", max_length=64)
    # Empty: computed from the numeric value and the range (H, L or N).
    abnormal_flag: AbnormalFlag | None = None
    collected_at: datetime
    reported_at: datetime | None = None


class MedicationFields(StrictModel):
    encounter_id: Id | None = None
    order_kind: OrderKind = "medication"
    name: str = Field(min_length=1, max_length=200)
    dose: Annotated[float, Field(allow_inf_nan=False, gt=0, le=1e6)] | None = None
    unit: str = Field(default="", max_length=16)
    route: Route = ""
    frequency: str = Field(default="", max_length=32)
    start_date: date
    end_date: date | None = None
    status: OrderStatus = "active"


class VitalSignFields(StrictModel):
    encounter_id: Id | None = None
    measured_at: datetime
    kind: VitalKind
    value: Measure
    # Empty: the kind's unit. Another spelling of it is accepted (℃, bpm, 次/分 …).
    unit: str = Field(default="", max_length=16)


class AllergyFields(StrictModel):
    substance: str = Field(min_length=1, max_length=128)
    reaction: str = Field(default="", max_length=200)
    severity: Severity = "unknown"
    status: AllergyStatus = "active"
    noted_on: date


class EncounterIn(EntryIn, EncounterFields):
    pass


class DiagnosisIn(EntryIn, DiagnosisFields):
    pass


class LabResultIn(EntryIn, LabResultFields):
    pass


class MedicationIn(EntryIn, MedicationFields):
    pass


class VitalSignIn(EntryIn, VitalSignFields):
    pass


class AllergyIn(EntryIn, AllergyFields):
    pass


class VitalMeasurementIn(StrictModel):
    kind: VitalKind
    value: Measure
    unit: str = Field(default="", max_length=16)


class VitalSignsIn(EntryIn):
    """Vital signs taken together (the chart's form): each measurement becomes one entry,
    all sharing the time and the encounter. Each entry's request id is this one with the
    kind appended (``…:heart_rate``), hence the shorter limit."""

    client_request_id: str | None = Field(default=None, pattern=VITALS_REQUEST_PATTERN)
    encounter_id: Id | None = None
    measured_at: datetime
    measurements: list[VitalMeasurementIn] = Field(min_length=1, max_length=len(VITAL_KINDS))

    @field_validator("measurements")
    @classmethod
    def _each_kind_once(cls, value: list[VitalMeasurementIn]) -> list[VitalMeasurementIn]:
        kinds = [m.kind for m in value]
        if len(set(kinds)) != len(kinds):
            raise ValueError("A kind is measured twice.")
        return value


FIELDS_BY_KIND: dict[str, type[StrictModel]] = {
    "encounter": EncounterFields,
    "diagnosis": DiagnosisFields,
    "lab_result": LabResultFields,
    "medication": MedicationFields,
    "vital_sign": VitalSignFields,
    "allergy": AllergyFields,
}


def _reason_ok(value: str) -> str:
    text = value.strip()
    if has_control_characters(text):
        raise ValueError("control characters")
    return text


class CorrectionIn(BaseModel):
    """A correction: ``reason`` and the fields to change, side by side. A field sent as
    ``null`` is cleared (when the kind allows it)."""

    model_config = ConfigDict(extra="allow", str_strip_whitespace=True)

    reason: str = Field(min_length=2, max_length=500)

    _check_reason = field_validator("reason")(_reason_ok)

    @property
    def changes(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class EnteredInErrorIn(StrictModel):
    reason: str = Field(min_length=2, max_length=500)


_VALIDATION_MESSAGES = {
    "missing": N_("This field is required."),
    "extra_forbidden": N_("This field is not allowed."),
    "string_too_long": N_("This value is too long."),
    "string_too_short": N_("This value is too short."),
    "string_pattern_mismatch": N_("This value has the wrong format."),
    "literal_error": N_("This value is not one of the allowed choices."),
    "control_characters": N_("Control characters are not allowed."),
}


def validate_fields(model: type[StrictModel], values: dict[str, Any]) -> StrictModel:
    """Validate values against a kind's fields; the first error becomes a 422 naming the
    field (the JSON API's validation errors look the same)."""
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        kind = str(first.get("type", "value_error"))
        field = ".".join(str(p) for p in first.get("loc", ())) or "body"
        message = _VALIDATION_MESSAGES.get(kind, N_("A value is not valid."))
        raise Invalid(message, code=kind, field=field) from None


# Output --------------------------------------------------------------------------------------


class EntryOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: int
    institution_id: int
    institution_name: str = ""
    source: str
    source_ref: str
    recorded_by_user_id: int | None
    recorded_by_practitioner_id: int | None
    recorded_by_name: str = ""
    recorded_at: datetime
    client_request_id: str | None
    version: int
    entry_status: str
    corrected_at: datetime | None
    error_at: datetime | None
    error_reason: str


class EncounterOut(EntryOut):
    record_kind: Literal["encounter"] = "encounter"
    kind: str
    department_id: int | None
    department_name: str = ""
    start_date: date
    end_date: date | None
    attending_practitioner_id: int | None
    attending_name: str = ""
    chief_complaint: str
    summary: str


class DiagnosisOut(EntryOut):
    record_kind: Literal["diagnosis"] = "diagnosis"
    encounter_id: int | None
    code: str
    name: str
    kind: str
    status: str
    diagnosed_on: date


class LabResultOut(EntryOut):
    record_kind: Literal["lab_result"] = "lab_result"
    encounter_id: int | None
    item_name: str
    loinc_code: str | None
    local_code: str | None
    value_text: str
    value_numeric: float | None
    unit: str
    ref_low: float | None
    ref_high: float | None
    ref_text: str
    abnormal_flag: str | None
    flag_computed: bool
    collected_at: datetime
    reported_at: datetime | None


class MedicationOut(EntryOut):
    record_kind: Literal["medication"] = "medication"
    encounter_id: int | None
    order_kind: str
    name: str
    dose: float | None
    unit: str
    route: str
    frequency: str
    start_date: date
    end_date: date | None
    status: str


class VitalSignOut(EntryOut):
    record_kind: Literal["vital_sign"] = "vital_sign"
    encounter_id: int | None
    measured_at: datetime
    kind: str
    value: float
    unit: str
    abnormal_flag: str | None


class AllergyOut(EntryOut):
    record_kind: Literal["allergy"] = "allergy"
    substance: str
    reaction: str
    severity: str
    status: str
    noted_on: date


RecordOut = Annotated[
    EncounterOut | DiagnosisOut | LabResultOut | MedicationOut | VitalSignOut | AllergyOut,
    Field(discriminator="record_kind"),
]

OUT_BY_KIND: dict[str, type[EntryOut]] = {
    "encounter": EncounterOut,
    "diagnosis": DiagnosisOut,
    "lab_result": LabResultOut,
    "medication": MedicationOut,
    "vital_sign": VitalSignOut,
    "allergy": AllergyOut,
}

T = TypeVar("T", bound=EntryOut)


class Page(BaseModel, Generic[T]):
    items: list[T]
    total: int
    limit: int
    offset: int


class RevisionOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    version: int
    change: str
    previous: dict[str, Any]
    reason: str
    changed_at: datetime
    changed_by_user_id: int | None
    changed_by_institution_id: int | None


class TimelineEntryOut(BaseModel):
    kind: str
    id: int
    date: date  # the calendar date in China time
    at: datetime | None  # the moment, for kinds recorded to the minute (labs, vitals)
    institution_id: int
    institution_name: str
    subtype: str
    label: str  # the subtype, translated
    title: str
    detail: str
    abnormal_flag: str | None
    thumbnail_url: str | None = None  # documents: the first page's thumbnail


class TimelinePage(BaseModel):
    items: list[TimelineEntryOut]
    total: int
    limit: int
    offset: int


class Icd10Out(BaseModel):
    code: str
    name: str  # in the request's language; English where no Chinese title is shipped
    name_zh: str
    name_en: str
    leaf: bool

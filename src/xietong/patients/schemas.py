"""API shapes of the patient index: strict input, masked output."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from xietong.core.validation import Id, StrictModel

SexCode = Literal["0", "1", "2", "9"]  # GB/T 2261.1
IdentifierKindCode = Literal["resident_id", "passport", "mrn", "health_card"]
ItemKind = str
# A person's name: letters (any script), marks, digits, spaces and the separators names use
# (· • . ' -). Anything else (; = < > quotes, brackets, %) has no place in a name and is
# refused with a 422 naming the field, before it reaches a query or a page.
NAME_PATTERN = r"^[\p{L}\p{M}\p{N}][\p{L}\p{M}\p{N} ·•.'\-]*$"
PersonName = Annotated[str, Field(min_length=1, max_length=64, pattern=NAME_PATTERN)]
Relation = Annotated[str, Field(max_length=32, pattern=r"^[\p{L}\p{M} ·\-]*$")]


class IdentifierIn(StrictModel):
    kind: IdentifierKindCode
    value: str = Field(min_length=1, max_length=40)
    # Passport: the issuing country (ISO 3166 alpha-3); health card: the issuer's code.
    # A medical record number is always the registering institution's own.
    issuer: str = Field(default="", max_length=32)


class EmergencyContactIn(StrictModel):
    name: PersonName
    relation: Relation = ""
    phone: str = Field(min_length=1, max_length=32)


class PatientIn(StrictModel):
    name: PersonName
    sex: SexCode
    birth_date: date
    resident_id: str | None = Field(default=None, max_length=32)
    identifiers: list[IdentifierIn] = Field(default_factory=list, max_length=8)
    phone: str | None = Field(default=None, max_length=32)
    address_region_code: str | None = Field(default=None, max_length=12, pattern=r"^\d{2,12}$")
    address_detail: str = Field(default="", max_length=200)
    emergency_contact: EmergencyContactIn | None = None
    # Registering a patient the index already holds under another number: the id of the
    # suggested near match the user confirmed (it must be one the index would suggest).
    same_as_patient_id: Id | None = None
    client_request_id: str | None = Field(default=None, max_length=64)


class PatientUpdateIn(StrictModel):
    """PATCH: only the fields sent change; ``null`` clears the optional ones (phone,
    address, emergency contact) and is refused for name, sex and birth date."""

    name: PersonName | None = None
    sex: SexCode | None = None
    birth_date: date | None = None
    phone: str | None = Field(default=None, max_length=32)
    address_region_code: str | None = Field(default=None, max_length=12, pattern=r"^\d{2,12}$")
    address_detail: str | None = Field(default=None, max_length=200)
    emergency_contact: EmergencyContactIn | None = None


class PatientSearchIn(StrictModel):
    """Search criteria (query parameters); those given must all match. Without any, the
    list holds the principal's patients, newest first."""

    resident_id: str | None = Field(default=None, max_length=32)
    name: PersonName | None = None  # a prefix
    birth_date: date | None = None
    phone: str | None = Field(default=None, max_length=32)
    mrn: str | None = Field(default=None, max_length=40)
    # Whose record number: an institution id; the principal's own institution by default.
    mrn_issuer: Id | None = None
    limit: int = Field(default=20, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class IdentifierOut(BaseModel):
    kind: str
    issuer: str
    value: str  # masked in every list; full only on an audited detail read
    issuer_name: str = ""  # the institution, for a medical record number
    patient_id: int  # the record holding it (a merged record's numbers show on its survivor)


class PatientInstitutionOut(BaseModel):
    id: int
    name: str
    relation: str  # registered | treated


class PatientSummary(BaseModel):
    """What a list shows: masked identifiers and phone."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    name: str
    sex: str
    birth_date: date
    age: int
    resident_id: str  # masked
    phone: str  # masked
    registered_institution_id: int
    registered_institution_name: str
    merged_into_id: int | None


class PatientDetail(PatientSummary):
    identifiers: list[IdentifierOut]
    address_region_code: str | None
    address_region_name: str
    address_detail: str
    emergency_name: str
    emergency_relation: str
    emergency_phone: str
    institutions: list[PatientInstitutionOut]
    member_ids: list[int]  # this record and the records merged into it
    created_at: datetime
    revealed: bool  # True when identifiers and phones are shown in full
    can_reveal: bool
    can_edit: bool


class PatientPage(BaseModel):
    items: list[PatientSummary]
    total: int
    limit: int
    offset: int


class LevelCount(BaseModel):
    level: str
    count: int


class PatientStatsOut(BaseModel):
    """Counts for authorities: never names, never ids of patients."""

    jurisdiction_code: str | None  # None: the whole platform (platform admin)
    total: int
    by_level: list[LevelCount]


class NearMatch(BaseModel):
    """A possible duplicate, shown masked: enough to recognise, not to identify."""

    id: int
    name: str
    sex: str
    birth_year: int
    phone: str
    registered_institution_name: str
    reasons: list[str]


class RegistrationOut(BaseModel):
    created: bool
    patient: PatientSummary
    near_matches: list[NearMatch]


class MergeIn(StrictModel):
    survivor_id: Id
    merged_id: Id
    reason: str = Field(min_length=2, max_length=500)


class UndoMergeIn(StrictModel):
    reason: str = Field(min_length=2, max_length=500)


class MergeOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    survivor_id: int
    merged_id: int
    reason: str
    merged_at: datetime
    merged_by_user_id: int | None
    merged_by_institution_id: int | None
    undone_at: datetime | None
    undone_by_user_id: int | None
    undo_reason: str


class GrantItemIn(StrictModel):
    kind: str = Field(min_length=1, max_length=32, pattern=r"^[a-z_]+$")
    id: Id


class GrantIn(StrictModel):
    patient_id: Id
    grantee_institution_id: Id | None = None
    grantee_user_id: Id | None = None
    scope: Literal["chart", "items"]
    items: list[GrantItemIn] = Field(default_factory=list, max_length=500)
    purpose: str = Field(min_length=2, max_length=200)
    expires_at: datetime
    subject_kind: str = Field(default="", max_length=32, pattern=r"^[a-z_]*$")
    subject_id: str = Field(default="", max_length=64)


class GrantOut(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: int
    patient_id: int
    grantee_institution_id: int | None
    grantee_user_id: int | None
    scope: str
    items: list[GrantItemIn]
    purpose: str
    subject_kind: str
    subject_id: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    active: bool

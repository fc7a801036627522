"""API shapes of the directory: what comes in (strict, extra fields refused) and goes out."""

from __future__ import annotations

from datetime import datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

LevelCode = Literal["provincial", "city", "county", "township", "village"]
GradeCode = Literal["3A", "3B", "2A", "2B", "1A", "1", "ungraded"]
SexCode = Literal["0", "1", "2", "9"]  # GB/T 2261.1
INSTITUTION_CODE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9_-]{1,31}$"
PHONE_PATTERN = r"^[0-9+() -]{0,32}$"
CODE_MAX = 32


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Out(BaseModel):
    model_config = ConfigDict(from_attributes=True)


# Regions ----------------------------------------------------------------------------------


class RegionRef(Out):
    code: str
    name: str
    level: str


class RegionNode(RegionRef):
    child_count: int


class RegionOut(RegionRef):
    parent_code: str | None
    ancestors: list[RegionRef]
    child_count: int


class RegionChildrenOut(RegionRef):
    children: list[RegionNode]
    child_count: int


# Institutions -----------------------------------------------------------------------------


class InstitutionCreateIn(Strict):
    code: str | None = Field(default=None, pattern=INSTITUTION_CODE_PATTERN)
    name: str = Field(min_length=1, max_length=128)
    name_en: str = Field(default="", max_length=200)
    level: LevelCode
    grade: GradeCode | None = None
    region_code: str = Field(min_length=1, max_length=12)
    address: str = Field(default="", max_length=256)
    phone: str = Field(default="", max_length=32, pattern=PHONE_PATTERN)


class InstitutionUpdateIn(Strict):
    """Only the fields sent are changed. ``level``, ``region_code``, ``code`` and
    ``is_active`` are kept for platform admins."""

    code: str | None = Field(default=None, pattern=INSTITUTION_CODE_PATTERN)
    name: str | None = Field(default=None, min_length=1, max_length=128)
    name_en: str | None = Field(default=None, max_length=200)
    level: LevelCode | None = None
    grade: GradeCode | None = None
    region_code: str | None = Field(default=None, min_length=1, max_length=12)
    address: str | None = Field(default=None, max_length=256)
    phone: str | None = Field(default=None, max_length=32, pattern=PHONE_PATTERN)
    is_active: bool | None = None


class InstitutionRef(Out):
    id: int
    name: str
    level: str
    region_code: str


class InstitutionOut(Out):
    id: int
    code: str
    name: str
    name_en: str
    level: str
    grade: str | None
    region_code: str
    address: str
    phone: str
    is_active: bool


class InstitutionDetailOut(InstitutionOut):
    region_path: list[RegionRef]
    service_centres: list[InstitutionRef]
    served_count: int
    department_count: int
    practitioner_count: int
    expert_count: int


class InstitutionPage(BaseModel):
    items: list[InstitutionOut]
    total: int
    limit: int
    offset: int


class InstitutionRefPage(BaseModel):
    items: list[InstitutionRef]
    total: int
    limit: int
    offset: int


class ServiceLinkIn(Strict):
    centre_id: int = Field(ge=1)


class ServiceLinkOut(Out):
    applicant_id: int
    centre_id: int
    created_at: datetime


# Departments ------------------------------------------------------------------------------


class DepartmentCreateIn(Strict):
    name: str = Field(min_length=1, max_length=64)
    specialty: str | None = Field(default=None, max_length=CODE_MAX)


class DepartmentUpdateIn(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    specialty: str | None = Field(default=None, max_length=CODE_MAX)
    is_active: bool | None = None


class DepartmentOut(Out):
    id: int
    institution_id: int
    name: str
    specialty: str | None
    is_active: bool


# Practitioners and experts ----------------------------------------------------------------


class PractitionerCreateIn(Strict):
    name: str = Field(min_length=1, max_length=64)
    sex: SexCode = "0"
    title: str = Field(min_length=1, max_length=CODE_MAX)
    department_id: int | None = Field(default=None, ge=1)
    specialties: list[str] = Field(default_factory=list, max_length=8)
    is_expert: bool = False


class PractitionerUpdateIn(Strict):
    name: str | None = Field(default=None, min_length=1, max_length=64)
    sex: SexCode | None = None
    title: str | None = Field(default=None, min_length=1, max_length=CODE_MAX)
    department_id: int | None = Field(default=None, ge=1)
    specialties: list[str] | None = Field(default=None, max_length=8)
    is_expert: bool | None = None
    is_active: bool | None = None


class ExpertProfileIn(Strict):
    summary: str = Field(default="", max_length=2000)
    expertise: str = Field(default="", max_length=2000)
    accepts_requests: bool = True


class AvailabilityWindow(Strict):
    weekday: int = Field(ge=0, le=6)  # 0 = Monday
    start: time
    end: time


class AvailabilityIn(Strict):
    windows: list[AvailabilityWindow] = Field(max_length=28)


class ExpertProfileOut(Out):
    summary: str
    expertise: str
    accepts_requests: bool
    updated_at: datetime


class AvailabilityOut(BaseModel):
    windows: list[AvailabilityWindow]


class PractitionerOut(BaseModel):
    id: int
    institution_id: int
    institution_name: str
    department_id: int | None
    department_name: str | None
    name: str
    sex: str
    title: str
    specialties: list[str]
    is_expert: bool
    is_active: bool


class PractitionerDetailOut(PractitionerOut):
    profile: ExpertProfileOut | None
    availability: list[AvailabilityWindow]


class PractitionerPage(BaseModel):
    items: list[PractitionerOut]
    total: int
    limit: int
    offset: int


class ExpertOut(BaseModel):
    id: int
    name: str
    title: str
    specialties: list[str]
    institution: InstitutionRef
    department_name: str | None
    summary: str
    expertise: str
    accepts_requests: bool
    availability: list[AvailabilityWindow]


class ExpertPage(BaseModel):
    items: list[ExpertOut]
    total: int
    limit: int
    offset: int


# Code sets --------------------------------------------------------------------------------


class CodeOut(BaseModel):
    code: str
    name: str
    name_zh: str
    name_en: str

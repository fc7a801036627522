"""Input and output shapes of the slot (号源) API.

Times of day and dates are China time (UTC+8); instants (``starts_at``, ``booked_at``) are
UTC. The cross-field rules (end after start, reserve within capacity, the exam type that
goes with the kind, the department and practitioner of the institution) are checked in
the service, which names the field, because an update merges with the stored template.
"""

from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from xietong.core.validation import Id, StrictModel

Kind = Literal["outpatient", "exam", "admission"]
ExamType = Literal["", "ct", "mri", "ultrasound", "xray", "endoscopy", "ecg", "lab", "other"]
Channel = Literal["normal", "green"]
MAX_CAPACITY = 500
MAX_GREEN_QUOTA = 50
# Dates the API takes: anything else is a typing slip, and far dates overflow arithmetic.
EARLIEST = date(2000, 1, 1)
LATEST = date(2199, 12, 31)
MAX_DAYS = 62
ClientRequestId = Field(default=None, min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$")


def _naive(value: time | None) -> time | None:
    """A time of day is China time: a zone or offset on it is refused."""
    if value is not None and value.tzinfo is not None:
        raise ValueError("A time of day without a zone is expected.")
    return value


class TemplateIn(StrictModel):
    department_id: Id
    practitioner_id: Id | None = None
    kind: Kind = "outpatient"
    exam_type: ExamType = ""
    weekday: int = Field(ge=0, le=6)  # 0 = Monday
    start_time: time
    end_time: time
    capacity: int = Field(ge=1, le=MAX_CAPACITY)
    referral_reserved: int = Field(default=0, ge=0, le=MAX_CAPACITY)
    green_quota: int = Field(default=0, ge=0, le=MAX_GREEN_QUOTA)
    valid_from: date | None = Field(default=None, ge=EARLIEST, le=LATEST)
    valid_until: date | None = Field(default=None, ge=EARLIEST, le=LATEST)

    _times = field_validator("start_time", "end_time")(_naive)


class TemplateUpdateIn(StrictModel):
    """Only the fields sent change (``practitioner_id: null`` removes the practitioner)."""

    department_id: Id | None = None
    practitioner_id: Id | None = None
    kind: Kind | None = None
    exam_type: ExamType | None = None
    weekday: int | None = Field(default=None, ge=0, le=6)
    start_time: time | None = None
    end_time: time | None = None
    capacity: int | None = Field(default=None, ge=1, le=MAX_CAPACITY)
    referral_reserved: int | None = Field(default=None, ge=0, le=MAX_CAPACITY)
    green_quota: int | None = Field(default=None, ge=0, le=MAX_GREEN_QUOTA)
    valid_from: date | None = Field(default=None, ge=EARLIEST, le=LATEST)
    valid_until: date | None = Field(default=None, ge=EARLIEST, le=LATEST)
    is_active: bool | None = None

    _times = field_validator("start_time", "end_time")(_naive)


class OneOffSlotIn(StrictModel):
    """A slot outside the weekly templates, on ``day`` from ``start_time`` to ``end_time``."""

    department_id: Id
    practitioner_id: Id | None = None
    kind: Kind = "outpatient"
    exam_type: ExamType = ""
    day: date = Field(ge=EARLIEST, le=LATEST)
    start_time: time
    end_time: time
    capacity: int = Field(ge=1, le=MAX_CAPACITY)
    referral_reserved: int = Field(default=0, ge=0, le=MAX_CAPACITY)
    green_quota: int = Field(default=0, ge=0, le=MAX_GREEN_QUOTA)

    _times = field_validator("start_time", "end_time")(_naive)


class LocalBookingIn(StrictModel):
    patient_id: Id
    # A retry with the same id (same slot, same user) answers with the first booking.
    client_request_id: str | None = ClientRequestId


# Answers ----------------------------------------------------------------------------------


class TemplateOut(BaseModel):
    id: int
    institution_id: int
    department_id: int
    department_name: str
    practitioner_id: int | None
    practitioner_name: str | None
    kind: str
    exam_type: str
    weekday: int
    start_time: time
    end_time: time
    capacity: int
    referral_reserved: int
    green_quota: int
    valid_from: date
    valid_until: date | None
    is_active: bool
    created_at: datetime


class SlotOut(BaseModel):
    id: int
    institution_id: int
    department_id: int
    department_name: str
    practitioner_id: int | None
    practitioner_name: str | None
    kind: str
    exam_type: str
    starts_at: datetime
    ends_at: datetime
    capacity: int
    referral_reserved: int
    green_quota: int
    booked_referral: int
    booked_local: int
    booked_green: int
    status: str
    template_id: int | None


class AvailabilityOut(BaseModel):
    slot_id: int
    department_id: int
    department_name: str
    practitioner_id: int | None
    practitioner_name: str | None
    kind: str
    exam_type: str
    starts_at: datetime
    ends_at: datetime
    free: int


class AvailabilityPage(BaseModel):
    institution_id: int
    channel: str
    start: date
    days: int
    items: list[AvailabilityOut]


class BookingOut(BaseModel):
    id: int
    slot_id: int
    patient_id: int
    referral_id: int | None
    purpose: str
    channel: str
    status: str
    booked_at: datetime
    released_at: datetime | None
    arrived_at: datetime | None


class CalendarBookingOut(BookingOut):
    patient_name: str | None
    referral_href: str | None


class CalendarSlotOut(SlotOut):
    bookings: list[CalendarBookingOut]


class CalendarDayOut(BaseModel):
    day: date
    slots: list[CalendarSlotOut]


class CalendarOut(BaseModel):
    institution_id: int
    department_id: int | None
    week_start: date
    week_end: date
    days: list[CalendarDayOut]


class GenerationOut(BaseModel):
    institution_id: int
    created: int
    through: date

"""Appointment slots (号源) a receiving institution publishes, and the bookings in them.

A slot holds ``capacity`` normal places, of which ``referral_reserved`` only referrals from
lower levels may take (the institution's own bookings stop short of them), and a separate
``green_quota`` of emergency places that only green-channel referrals use. The counters
are changed only by conditional UPDATEs (referral/slots.py), and CHECK constraints hold
them within bounds even against a bug: a slot is never overbooked, whatever the
concurrency.
"""

from __future__ import annotations

from datetime import date, datetime, time

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from xietong.core.clock import now
from xietong.core.db import Base, UTCDateTime

# slot_booking.referral_id names the referral table: whoever loads the slots loads it too.
from xietong.referral import models as _referral_models  # noqa: F401

SLOT_KINDS = ("outpatient", "exam", "admission")
EXAM_TYPES = ("", "ct", "mri", "ultrasound", "xray", "endoscopy", "ecg", "lab", "other")
SLOT_STATUSES = ("open", "closed", "cancelled")
BOOKING_PURPOSES = ("referral", "local")
BOOKING_CHANNELS = ("normal", "green")
BOOKING_STATUSES = ("booked", "arrived", "cancelled", "no_show")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({','.join(repr(v) for v in values)})"


class SlotTemplate(Base):
    """A weekly pattern (China time) from which slots are generated."""

    __tablename__ = "slot_template"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    kind: Mapped[str] = mapped_column(String(16))
    exam_type: Mapped[str] = mapped_column(String(16), default="")
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 = Monday
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)
    capacity: Mapped[int] = mapped_column(Integer)
    referral_reserved: Mapped[int] = mapped_column(Integer, default=0)
    green_quota: Mapped[int] = mapped_column(Integer, default=0)
    valid_from: Mapped[date] = mapped_column(Date)
    valid_until: Mapped[date | None] = mapped_column(Date)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    __table_args__ = (
        CheckConstraint(_in("kind", SLOT_KINDS), name="kind"),
        CheckConstraint(_in("exam_type", EXAM_TYPES), name="exam_type"),
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("start_time < end_time", name="window"),
        CheckConstraint("capacity >= 1", name="capacity"),
        CheckConstraint(
            "referral_reserved >= 0 AND referral_reserved <= capacity", name="reserved"
        ),
        CheckConstraint("green_quota >= 0", name="green_quota"),
    )


class Slot(Base):
    __tablename__ = "slot"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    department_id: Mapped[int] = mapped_column(ForeignKey("department.id"))
    practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    kind: Mapped[str] = mapped_column(String(16))
    exam_type: Mapped[str] = mapped_column(String(16), default="")
    starts_at: Mapped[datetime] = mapped_column(UTCDateTime)
    ends_at: Mapped[datetime] = mapped_column(UTCDateTime)
    capacity: Mapped[int] = mapped_column(Integer)
    referral_reserved: Mapped[int] = mapped_column(Integer, default=0)
    green_quota: Mapped[int] = mapped_column(Integer, default=0)
    booked_referral: Mapped[int] = mapped_column(Integer, default=0)
    booked_local: Mapped[int] = mapped_column(Integer, default=0)
    booked_green: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str] = mapped_column(String(16), default="open")
    template_id: Mapped[int | None] = mapped_column(ForeignKey("slot_template.id"))
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    __table_args__ = (
        CheckConstraint(_in("kind", SLOT_KINDS), name="kind"),
        CheckConstraint(_in("exam_type", EXAM_TYPES), name="exam_type"),
        CheckConstraint(_in("status", SLOT_STATUSES), name="status"),
        CheckConstraint("starts_at < ends_at", name="window"),
        CheckConstraint("capacity >= 1", name="capacity"),
        CheckConstraint(
            "referral_reserved >= 0 AND referral_reserved <= capacity", name="reserved"
        ),
        CheckConstraint("green_quota >= 0", name="green_quota"),
        CheckConstraint(
            "booked_referral >= 0 AND booked_local >= 0 AND booked_green >= 0", name="booked"
        ),
        CheckConstraint("booked_referral + booked_local <= capacity", name="not_overbooked"),
        CheckConstraint("booked_local <= capacity - referral_reserved", name="reserve_kept"),
        CheckConstraint("booked_green <= green_quota", name="green_within_quota"),
        # Generating slots from a template twice makes each slot once.
        UniqueConstraint("template_id", "starts_at", name="uq_slot_template_start"),
        Index("ix_slot_calendar", "institution_id", "department_id", "starts_at"),
    )


class SlotBooking(Base):
    """A place taken in a slot: by a referral (``referral_id``) or by the institution's own
    desk (``local``). Cancelled and no-show bookings stay, with their status."""

    __tablename__ = "slot_booking"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    slot_id: Mapped[int] = mapped_column(ForeignKey("slot.id"), index=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    referral_id: Mapped[int | None] = mapped_column(ForeignKey("referral.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(16))
    channel: Mapped[str] = mapped_column(String(8), default="normal")
    status: Mapped[str] = mapped_column(String(16), default="booked")
    booked_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    released_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    released_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    arrived_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    arrived_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    client_request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(_in("purpose", BOOKING_PURPOSES), name="purpose"),
        CheckConstraint(_in("channel", BOOKING_CHANNELS), name="channel"),
        CheckConstraint(_in("status", BOOKING_STATUSES), name="status"),
        CheckConstraint("channel = 'normal' OR purpose = 'referral'", name="green_is_referral"),
        UniqueConstraint(
            "slot_id", "booked_by_user_id", "client_request_id", name="uq_booking_request"
        ),
    )

"""Reading slots: the places a sender may book (the slot picker), the desk's week
calendar with its bookings, and the answers' shapes.

The calendar shows patients' names (through ``patients.workflow_view``, never the patient
tables): it is the desk's, and every read of it is audited as ``slot.calendar``.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import deny_not_found
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Invalid
from xietong.directory.models import Department, Practitioner
from xietong.directory.service.links import is_upward
from xietong.identity.roles import Role
from xietong.patients.access import CHART_ROLES
from xietong.patients.workflow_view import patient_cards
from xietong.referral.slot_models import Slot, SlotBooking, SlotTemplate
from xietong.referral.slot_service.common import (
    DESK_ROLES,
    china_instant,
    department_names,
    kind_set,
    open_institution,
    practitioner_names,
    week_start,
)

# Staff of another institution who may look for places to refer a patient to.
SENDER_ROLES = frozenset(str(r) for r in CHART_ROLES - {Role.PLATFORM_ADMIN})
MAX_AVAILABLE = 1000


@dataclass(frozen=True)
class SlotAvailability:
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


@dataclass(frozen=True)
class CalendarBooking:
    booking: SlotBooking
    patient_name: str | None  # None: not shown to this reader
    referral_href: str | None


@dataclass(frozen=True)
class CalendarSlot:
    slot: Slot
    department_name: str
    practitioner_name: str | None
    bookings: list[CalendarBooking]

    @property
    def booked(self) -> int:
        """Normal places taken (referrals and local), out of ``capacity``."""
        return self.slot.booked_referral + self.slot.booked_local


@dataclass(frozen=True)
class CalendarDay:
    day: date
    slots: list[CalendarSlot] = field(default_factory=list)


@dataclass(frozen=True)
class Calendar:
    institution_id: int
    department_id: int | None
    week_start: date
    days: list[CalendarDay]
    shows_patients: bool

    @property
    def week_end(self) -> date:
        return self.week_start + timedelta(days=6)


# The sender's slot picker --------------------------------------------------------------------


def available_slots(
    session: Session,
    institution_id: int,
    *,
    department_id: int | None = None,
    practitioner_id: int | None = None,
    kinds: Collection[str] = ("outpatient",),
    exam_type: str | None = None,
    start: date,
    days: int = 14,
    channel: Literal["normal", "green"] = "normal",
) -> list[SlotAvailability]:
    """Open slots of the institution starting on the China-time days ``[start, start +
    days)`` and after now, with places left for a referral on ``channel`` (normal: the
    capacity less every normal booking, the reserve included; green: the green quota less
    the green bookings), by start. No access check: callers decide who asks."""
    lower = china_instant(start, time(0))
    upper = china_instant(start + timedelta(days=days), time(0))
    if channel == "green":
        free = Slot.green_quota - Slot.booked_green
    else:
        free = Slot.capacity - Slot.booked_referral - Slot.booked_local
    stmt = (
        select(Slot, free.label("free"), Department.name, Practitioner.name)
        .join(Department, Department.id == Slot.department_id)
        .outerjoin(Practitioner, Practitioner.id == Slot.practitioner_id)
        .where(
            Slot.institution_id == institution_id,
            Slot.status == "open",
            Slot.kind.in_(sorted(kind_set(kinds))),
            Slot.starts_at >= lower,
            Slot.starts_at < upper,
            Slot.starts_at > now(),
            free > 0,
        )
        .order_by(Slot.starts_at, Slot.id)
        .limit(MAX_AVAILABLE)
    )
    if department_id is not None:
        stmt = stmt.where(Slot.department_id == department_id)
    if practitioner_id is not None:
        stmt = stmt.where(Slot.practitioner_id == practitioner_id)
    if exam_type is not None:
        stmt = stmt.where(Slot.exam_type == exam_type)
    return [
        SlotAvailability(
            slot_id=slot.id,
            department_id=slot.department_id,
            department_name=str(dept_name),
            practitioner_id=slot.practitioner_id,
            practitioner_name=str(prac_name) if prac_name is not None else None,
            kind=slot.kind,
            exam_type=slot.exam_type,
            starts_at=slot.starts_at,
            ends_at=slot.ends_at,
            free=int(places),
        )
        for slot, places, dept_name, prac_name in session.execute(stmt)
    ]


def may_see_availability(session: Session, principal: Principal, institution_id: int) -> bool:
    """The institution's own staff, and clinical staff of an institution that sends work
    up to it (``directory.is_upward``)."""
    if principal.institution_id is None:
        return False
    if principal.institution_id == institution_id:
        return True
    return bool(principal.roles & SENDER_ROLES) and is_upward(
        session, principal.institution_id, institution_id
    )


def slots_for_sender(
    session: Session,
    principal: Principal,
    institution_id: int,
    *,
    department_id: int | None = None,
    practitioner_id: int | None = None,
    kinds: Collection[str] = ("outpatient",),
    exam_type: str | None = None,
    start: date,
    days: int = 14,
    channel: Literal["normal", "green"] = "normal",
) -> list[SlotAvailability]:
    """:func:`available_slots` for someone who may refer to the institution; anyone else
    gets 404 as if it did not exist (audited)."""
    if not may_see_availability(session, principal, institution_id):
        raise deny_not_found(
            session,
            principal,
            "slot.availability",
            "institution",
            institution_id,
            field="institution_id",
        )
    return available_slots(
        session,
        institution_id,
        department_id=department_id,
        practitioner_id=practitioner_id,
        kinds=kinds,
        exam_type=exam_type,
        start=start,
        days=days,
        channel=channel,
    )


# The desk's calendar -------------------------------------------------------------------------


def slot_calendar(
    session: Session,
    principal: Principal,
    institution_id: int,
    *,
    week: date,
    department_id: int | None = None,
) -> Calendar:
    """The week (Monday to Sunday, China time) of ``week``: every slot of the institution
    (or of one of its departments) with its counters and bookings. Coordinators and
    institution admins of the institution read it; only coordinators (the desk) see the
    patients' names. Audited as ``slot.calendar``."""
    action = "slot.calendar"
    open_institution(session, principal, institution_id, action=action)
    if department_id is not None:
        department = session.get(Department, department_id)
        if department is None or department.institution_id != institution_id:
            raise Invalid(
                N_("This department is not one of the institution's."),
                code="department_not_found",
                field="department_id",
            )
    monday = week_start(week)
    stmt = select(Slot).where(
        Slot.institution_id == institution_id,
        Slot.starts_at >= china_instant(monday, time(0)),
        Slot.starts_at < china_instant(monday + timedelta(days=7), time(0)),
    )
    if department_id is not None:
        stmt = stmt.where(Slot.department_id == department_id)
    slots = list(session.execute(stmt.order_by(Slot.starts_at, Slot.id)).scalars())
    bookings = _bookings_of(session, [s.id for s in slots])
    shows_patients = bool(principal.roles & {str(r) for r in DESK_ROLES})
    names = (
        patient_cards(session, {b.patient_id for rows in bookings.values() for b in rows})
        if shows_patients
        else {}
    )
    departments = department_names(session, {s.department_id for s in slots})
    practitioners = practitioner_names(session, {s.practitioner_id for s in slots})
    days = [CalendarDay(monday + timedelta(days=n)) for n in range(7)]
    for slot in slots:
        day = (slot.starts_at - china_instant(monday, time(0))).days
        days[day].slots.append(
            CalendarSlot(
                slot,
                departments.get(slot.department_id, ""),
                practitioners.get(slot.practitioner_id) if slot.practitioner_id else None,
                [
                    CalendarBooking(
                        b,
                        names[b.patient_id].name if b.patient_id in names else None,
                        f"/referrals/{b.referral_id}" if b.referral_id is not None else None,
                    )
                    for b in bookings.get(slot.id, [])
                ],
            )
        )
    audit.record(
        session,
        principal,
        action,
        object_kind="institution",
        object_id=institution_id,
        detail={
            "week": monday.isoformat(),
            "department_id": department_id,
            "slots": len(slots),
            "bookings": sum(len(rows) for rows in bookings.values()),
            "patients_shown": shows_patients,
        },
    )
    return Calendar(institution_id, department_id, monday, days, shows_patients)


def _bookings_of(session: Session, slot_ids: Sequence[int]) -> dict[int, list[SlotBooking]]:
    found: dict[int, list[SlotBooking]] = {}
    if not slot_ids:
        return found
    rows = session.execute(
        select(SlotBooking)
        .where(SlotBooking.slot_id.in_(slot_ids))
        .order_by(SlotBooking.slot_id, SlotBooking.id)
    ).scalars()
    for booking in rows:
        found.setdefault(booking.slot_id, []).append(booking)
    return found


# Answers -------------------------------------------------------------------------------------


def template_out(session: Session, templates: Sequence[SlotTemplate]) -> list[dict[str, Any]]:
    departments = department_names(session, {t.department_id for t in templates})
    practitioners = practitioner_names(session, {t.practitioner_id for t in templates})
    return [
        {
            "id": t.id,
            "institution_id": t.institution_id,
            "department_id": t.department_id,
            "department_name": departments.get(t.department_id, ""),
            "practitioner_id": t.practitioner_id,
            "practitioner_name": practitioners.get(t.practitioner_id)
            if t.practitioner_id
            else None,
            "kind": t.kind,
            "exam_type": t.exam_type,
            "weekday": t.weekday,
            "start_time": t.start_time,
            "end_time": t.end_time,
            "capacity": t.capacity,
            "referral_reserved": t.referral_reserved,
            "green_quota": t.green_quota,
            "valid_from": t.valid_from,
            "valid_until": t.valid_until,
            "is_active": t.is_active,
            "created_at": t.created_at,
        }
        for t in templates
    ]


def _slot_fields(slot: Slot, department_name: str, practitioner_name: str | None) -> dict[str, Any]:
    return {
        "id": slot.id,
        "institution_id": slot.institution_id,
        "department_id": slot.department_id,
        "department_name": department_name,
        "practitioner_id": slot.practitioner_id,
        "practitioner_name": practitioner_name,
        "kind": slot.kind,
        "exam_type": slot.exam_type,
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "capacity": slot.capacity,
        "referral_reserved": slot.referral_reserved,
        "green_quota": slot.green_quota,
        "booked_referral": slot.booked_referral,
        "booked_local": slot.booked_local,
        "booked_green": slot.booked_green,
        "status": slot.status,
        "template_id": slot.template_id,
    }


def slot_out(session: Session, slots: Sequence[Slot]) -> list[dict[str, Any]]:
    departments = department_names(session, {s.department_id for s in slots})
    practitioners = practitioner_names(session, {s.practitioner_id for s in slots})
    return [
        _slot_fields(
            s,
            departments.get(s.department_id, ""),
            practitioners.get(s.practitioner_id) if s.practitioner_id else None,
        )
        for s in slots
    ]


def booking_out(booking: SlotBooking) -> dict[str, Any]:
    return {
        "id": booking.id,
        "slot_id": booking.slot_id,
        "patient_id": booking.patient_id,
        "referral_id": booking.referral_id,
        "purpose": booking.purpose,
        "channel": booking.channel,
        "status": booking.status,
        "booked_at": booking.booked_at,
        "released_at": booking.released_at,
        "arrived_at": booking.arrived_at,
    }


def calendar_out(calendar: Calendar) -> dict[str, Any]:
    return {
        "institution_id": calendar.institution_id,
        "department_id": calendar.department_id,
        "week_start": calendar.week_start,
        "week_end": calendar.week_end,
        "days": [
            {
                "day": day.day,
                "slots": [
                    {
                        **_slot_fields(s.slot, s.department_name, s.practitioner_name),
                        "bookings": [
                            {
                                **booking_out(b.booking),
                                "patient_name": b.patient_name,
                                "referral_href": b.referral_href,
                            }
                            for b in s.bookings
                        ],
                    }
                    for s in day.slots
                ],
            }
            for day in calendar.days
        ],
    }


def availability_out(rows: Sequence[SlotAvailability]) -> list[dict[str, Any]]:
    return [
        {
            "slot_id": r.slot_id,
            "department_id": r.department_id,
            "department_name": r.department_name,
            "practitioner_id": r.practitioner_id,
            "practitioner_name": r.practitioner_name,
            "kind": r.kind,
            "exam_type": r.exam_type,
            "starts_at": r.starts_at,
            "ends_at": r.ends_at,
            "free": r.free,
        }
        for r in rows
    ]

"""Demo appointment slots (号源): the receiving institutions where the demo desk and experts
work publish weekly templates (outpatient clinics of a few departments, the experts' own
clinics, CT, MRI and ultrasound, a few admission beds, each with a referral reserve and
green-channel places), the slots are generated for the coming weeks, and the county
hospital's desk books a few of its own demo patients, so the desk's calendar looks real.

The templates are checked by the slot service's rules and inserted at once (one audit
row per institution); generation and the bookings go through the slot services, as the
institution's desk (recorded in the audit log as ``system:demo``). A second run adds
nothing: an institution that has templates keeps them, generation skips the slots that
exist, and a patient booked at the institution already is not booked again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time, timedelta

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.authentication import principal_for
from xietong.access.principal import Principal
from xietong.config import ReferralSettings
from xietong.core.clock import now
from xietong.demo.accounts import ACCOUNTS
from xietong.directory.models import Department, Institution, Practitioner
from xietong.identity import service as identity
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.patients.models import PatientInstitution
from xietong.referral import slots as svc
from xietong.referral.slot_models import Slot, SlotBooking, SlotTemplate
from xietong.referral.slot_schemas import ExamType, Kind, TemplateIn
from xietong.referral.slot_service.publishing import check_place, check_shape

WEEKDAYS = (0, 1, 2, 3, 4)
EVERY_DAY = (0, 1, 2, 3, 4, 5, 6)
# Outpatient clinics: the first four of these an institution has.
CLINICS = (
    "cardiology",
    "internal_medicine",
    "respiratory",
    "neurology",
    "general_surgery",
    "orthopaedics",
    "paediatrics",
)
WARDS = ("cardiology", "internal_medicine", "general_surgery")
LOCAL_BOOKINGS = 3  # the county desk's own demo patients


@dataclass(frozen=True)
class Pattern:
    specialty: str
    kind: Kind
    exam_type: ExamType
    days: tuple[int, ...]
    start: time
    end: time
    capacity: int
    reserved: int
    green: int
    practitioner_id: int | None = None
    department_id: int | None = None  # the practitioner's, for an expert's clinic


def _patterns(tertiary: bool, specialties: set[str]) -> list[Pattern]:
    """The week of an institution: bigger at a provincial hospital than at a county one."""
    scale = 1 if tertiary else 0
    found: list[Pattern] = []
    for specialty in [s for s in CLINICS if s in specialties][:4]:
        found.append(
            Pattern(
                specialty,
                "outpatient",
                "",
                WEEKDAYS,
                time(8),
                time(11, 30),
                (30, 20)[1 - scale],
                8,
                2,
            )
        )
        found.append(
            Pattern(
                specialty, "outpatient", "", WEEKDAYS, time(14), time(17), (20, 12)[1 - scale], 5, 1
            )
        )
    if "radiology" in specialties:
        found += [
            Pattern("radiology", "exam", "ct", (0, 1, 2, 3, 4, 5), time(8), time(12), 16, 6, 2),
            Pattern("radiology", "exam", "ct", WEEKDAYS, time(14), time(17), 12, 4, 2),
            Pattern(
                "radiology",
                "exam",
                "mri",
                WEEKDAYS if tertiary else (1, 3),
                time(8),
                time(12),
                (8, 4)[1 - scale],
                3 if tertiary else 2,
                1,
            ),
        ]
    if "ultrasound" in specialties:
        found.append(
            Pattern("ultrasound", "exam", "ultrasound", WEEKDAYS, time(8), time(11, 30), 20, 6, 2)
        )
    for specialty in [s for s in WARDS if s in specialties][:2]:
        found.append(Pattern(specialty, "admission", "", EVERY_DAY, time(10), time(11), 3, 2, 1))
    return found


def _receiving_institutions(session: Session) -> list[Institution]:
    """Where the demo desk and the demo experts work."""
    codes = sorted(
        {
            a.institution
            for a in ACCOUNTS
            if a.institution
            and (a.role == Role.COORDINATOR or (a.person is not None and a.person.expert))
        }
    )
    return list(
        session.execute(
            select(Institution).where(Institution.code.in_(codes)).order_by(Institution.code)
        ).scalars()
    )


def _desk(institution: Institution) -> Principal:
    return Principal(
        user_id=None,
        username="system:demo",
        roles=frozenset({str(Role.COORDINATOR)}),
        institution_id=institution.id,
        institution_region_code=institution.region_code,
    )


def _experts(session: Session, institution_id: int) -> list[tuple[int, int]]:
    """(practitioner, department) of the demo accounts' experts at the institution."""
    names = [a.username for a in ACCOUNTS if a.person is not None and a.person.expert]
    rows = session.execute(
        select(Practitioner.id, Practitioner.department_id)
        .join(User, User.practitioner_id == Practitioner.id)
        .where(User.username.in_(names), User.institution_id == institution_id)
        .order_by(Practitioner.id)
    ).all()
    return [(int(p), int(d)) for p, d in rows if d is not None]


def _publish(session: Session, institution: Institution) -> int:
    """The institution's weekly templates, checked by the slot service's rules and
    inserted at once (one audit row for them all: a few hundred rows stay fast)."""
    departments = {
        d.specialty: d.id
        for d in session.execute(
            select(Department)
            .where(Department.institution_id == institution.id, Department.is_active.is_(True))
            .order_by(Department.id.desc())
        ).scalars()
        if d.specialty
    }
    patterns = _patterns(institution.level == "provincial", set(departments))
    # The experts' own clinics (专家门诊): Tuesday and Thursday mornings.
    patterns += [
        Pattern("", "outpatient", "", (1, 3), time(8, 30), time(11, 30), 12, 6, 1, expert, dept)
        for expert, dept in _experts(session, institution.id)
    ]
    moment = now()
    rows = []
    for pattern in patterns:
        department_id = pattern.department_id or departments[pattern.specialty]
        for weekday in pattern.days:
            data = TemplateIn(
                department_id=department_id,
                practitioner_id=pattern.practitioner_id,
                kind=pattern.kind,
                exam_type=pattern.exam_type,
                weekday=weekday,
                start_time=pattern.start,
                end_time=pattern.end,
                capacity=pattern.capacity,
                referral_reserved=pattern.reserved,
                green_quota=pattern.green,
                valid_from=svc.china_today(moment),
            )
            check_place(session, institution.id, data.department_id, data.practitioner_id)
            check_shape(
                kind=data.kind,
                exam_type=data.exam_type,
                start_time=data.start_time,
                end_time=data.end_time,
                capacity=data.capacity,
                referral_reserved=data.referral_reserved,
            )
            rows.append(
                {
                    **data.model_dump(),
                    "institution_id": institution.id,
                    "is_active": True,
                    "created_by_user_id": None,
                    "created_at": moment,
                }
            )
    if rows:
        session.execute(insert(SlotTemplate), rows)
        audit.record(
            session,
            _desk(institution),
            "slot.template.create",
            object_kind="institution",
            object_id=institution.id,
            detail={"templates": len(rows), "demo": True},
        )
    return len(rows)


def _book_local_patients(session: Session, institution: Institution) -> int:
    """The desk (the ``coordinator`` account) books a few of its own demo patients into
    the next outpatient slots, unless they have a booking at the institution already."""
    account = next((a for a in ACCOUNTS if a.role == Role.COORDINATOR), None)
    user = identity.find_user(session, account.username) if account else None
    if user is None or user.institution_id != institution.id:
        return 0
    desk = principal_for(session, user)
    booked = set(
        session.execute(
            select(SlotBooking.patient_id)
            .join(Slot, Slot.id == SlotBooking.slot_id)
            .where(Slot.institution_id == institution.id)
        ).scalars()
    )
    patients = [
        pid
        for pid in session.execute(
            select(PatientInstitution.patient_id)
            .where(PatientInstitution.institution_id == institution.id)
            .order_by(PatientInstitution.patient_id)
        ).scalars()
        if pid not in booked
    ][:LOCAL_BOOKINGS]
    if not patients or len(booked) >= LOCAL_BOOKINGS:
        return 0
    slots = list(
        session.execute(
            select(Slot)
            .where(
                Slot.institution_id == institution.id,
                Slot.kind == "outpatient",
                Slot.status == "open",
                Slot.starts_at > now() + timedelta(hours=2),
                Slot.booked_local < Slot.capacity - Slot.referral_reserved,
            )
            .order_by(Slot.starts_at, Slot.id)
            .limit(len(patients) * 3)
        ).scalars()
    )
    made = 0
    for n, patient_id in enumerate(patients):
        if n * 3 >= len(slots):
            break
        svc.book_local(
            session,
            desk,
            slots[n * 3].id,
            patient_id=patient_id,
            client_request_id=f"demo:slot:{patient_id}",
        )
        made += 1
    return made


def add_demo_slots(session: Session, settings: ReferralSettings | None = None) -> dict[str, int]:
    """Publish the receiving institutions' templates, generate their slots, book a few of
    the county desk's patients; report what was added."""
    settings = settings or ReferralSettings()
    counts = {"slot_templates": 0, "slots": 0, "slot_bookings": 0}
    for institution in _receiving_institutions(session):
        has_templates = session.execute(
            select(func.count())
            .select_from(SlotTemplate)
            .where(SlotTemplate.institution_id == institution.id)
        ).scalar_one()
        if not has_templates:
            counts["slot_templates"] += _publish(session, institution)
        run = svc.generate_slots(session, _desk(institution), institution.id, settings)
        counts["slots"] += run.created
        counts["slot_bookings"] += _book_local_patients(session, institution)
    return counts

"""Fixtures of the slot (号源) tests, loaded by tests/conftest.py (``pytest_plugins``) so that
they need no conftest of their own in tests/referral.

A city hospital (the receiving centre, with a referral desk, an institution admin, a doctor,
a cardiology department with an expert and a radiology department) receives from a county
hospital; another county hospital has no link to it; another city hospital has its own
desk. Time is frozen on a Friday, 12:00 China time.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import bearer, fast_user
from tests.patients.conftest import principal_of
from xietong.access.models import AuditEvent
from xietong.access.principal import Principal
from xietong.config import ReferralSettings
from xietong.core import clock
from xietong.core.pii import PiiProtector
from xietong.directory.models import Department, Institution, Practitioner
from xietong.identity.roles import Role
from xietong.patients.models import Patient
from xietong.patients.registration import register_patient
from xietong.patients.schemas import PatientIn
from xietong.referral import slots as svc
from xietong.referral.models import Referral
from xietong.referral.slot_models import Slot, SlotBooking, SlotTemplate
from xietong.referral.slot_schemas import OneOffSlotIn, TemplateIn

SLOT_NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # Friday 2026-11-20, 12:00 in China
SLOT_TODAY = date(2026, 11, 20)
SLOT_SETTINGS = ReferralSettings()
PII = PiiProtector("slot-test-pii-key-0123456789abcdef0123456")


@dataclass
class SlotWorld:
    centre: Institution
    sender: Institution
    stranger: Institution
    other_centre: Institution
    cardio: Department
    radiology: Department
    other_dept: Department
    expert: Practitioner
    patient: Patient  # registered at the centre
    outsider: Patient  # registered at the stranger county only
    p: dict[str, Principal]
    tokens: dict[str, dict[str, str]]

    def template(self, **changes: Any) -> dict[str, Any]:
        return {
            "department_id": self.cardio.id,
            "kind": "outpatient",
            "weekday": 0,
            "start_time": "08:00",
            "end_time": "12:00",
            "capacity": 5,
            "referral_reserved": 2,
            "green_quota": 1,
            **changes,
        }

    def one_off(self, **changes: Any) -> dict[str, Any]:
        return {
            "department_id": self.cardio.id,
            "kind": "outpatient",
            "day": "2026-11-23",
            "start_time": "08:00",
            "end_time": "12:00",
            "capacity": 3,
            "referral_reserved": 1,
            "green_quota": 1,
            **changes,
        }


def _patient(db: Session, principal: Principal, name: str, birth_date: date) -> Patient:
    data = PatientIn.model_validate({"name": name, "sex": "1", "birth_date": birth_date})
    return register_patient(db, principal, PII, data).patient


@pytest.fixture
def slot_world(db: Session) -> Iterator[SlotWorld]:
    clock.set_clock(lambda: SLOT_NOW)
    centre = factories.institution(db, name="号源市中心医院", level="city", region_code="410302")
    sender = factories.institution(db, name="号源县人民医院", level="county", region_code="410323")
    stranger = factories.institution(db, name="无关县医院", level="county", region_code="410325")
    other_centre = factories.institution(db, name="另一市医院", level="city", region_code="410303")
    factories.link(db, sender, centre)
    factories.link(db, stranger, other_centre)
    cardio = factories.department(db, centre, name="心内科", specialty="cardiology")
    radiology = factories.department(db, centre, name="放射科", specialty="radiology")
    other_dept = factories.department(db, other_centre, name="心内科", specialty="cardiology")
    expert = factories.practitioner(db, centre, name="张主任", department=cardio, is_expert=True)
    users = {
        "coordinator": fast_user(db, "s_coord", Role.COORDINATOR, centre),
        "admin": fast_user(db, "s_admin", Role.INSTITUTION_ADMIN, centre),
        "doctor": fast_user(db, "s_doctor", Role.APPLICANT_DOCTOR, centre),
        "sender_doctor": fast_user(db, "s_sender", Role.APPLICANT_DOCTOR, sender),
        "sender_admin": fast_user(db, "s_sender_admin", Role.INSTITUTION_ADMIN, sender),
        "stranger_doctor": fast_user(db, "s_stranger", Role.APPLICANT_DOCTOR, stranger),
        "other_coordinator": fast_user(db, "s_other_coord", Role.COORDINATOR, other_centre),
        "platform": fast_user(db, "s_platform", Role.PLATFORM_ADMIN),
    }
    p = {name: principal_of(user) for name, user in users.items()}
    patient = _patient(db, p["doctor"], "李号源", date(1970, 5, 5))
    outsider = _patient(db, p["stranger_doctor"], "王外院", date(1980, 6, 6))
    tokens = {name: bearer(db, user) for name, user in users.items()}
    db.commit()
    yield SlotWorld(
        centre,
        sender,
        stranger,
        other_centre,
        cardio,
        radiology,
        other_dept,
        expert,
        patient,
        outsider,
        p,
        tokens,
    )
    clock.set_clock(None)


# Building slots and bookings through the services -------------------------------------------


def make_template(db: Session, w: SlotWorld, **changes: Any) -> SlotTemplate:
    data = TemplateIn.model_validate(w.template(**changes))
    return svc.create_template(db, w.p["coordinator"], w.centre.id, data)


def make_slot(db: Session, w: SlotWorld, **changes: Any) -> Slot:
    """A one-off slot of the centre (Monday 2026-11-23 08:00–12:00 China time unless told:
    capacity 3, 1 reserved for referrals, green quota 1)."""
    data = OneOffSlotIn.model_validate(w.one_off(**changes))
    return svc.create_slot(db, w.p["coordinator"], w.centre.id, data)


def make_referral(db: Session, w: SlotWorld, *, priority: str = "normal") -> Referral:
    user_id = w.p["sender_doctor"].uid
    referral = Referral(
        kind="up",
        patient_id=w.patient.id,
        sender_user_id=user_id,
        sender_institution_id=w.sender.id,
        target_institution_id=w.centre.id,
        priority=priority,
        reason="胸痛待查",
    )
    db.add(referral)
    db.flush()
    return referral


def book(
    db: Session,
    w: SlotWorld,
    slot: Slot,
    *,
    channel: str = "normal",
    kinds: tuple[str, ...] = ("outpatient", "exam", "admission"),
    institution_id: int | None = None,
    field: str = "slot_id",
) -> SlotBooking:
    referral = make_referral(db, w, priority="green" if channel == "green" else "normal")
    return svc.book_for_referral(
        db,
        slot.id,
        patient_id=w.patient.id,
        referral_id=referral.id,
        channel=channel,  # type: ignore[arg-type]
        booked_by_user_id=w.p["sender_doctor"].uid,
        institution_id=institution_id or w.centre.id,
        kinds=kinds,
        field=field,
    )


def counters(db: Session, slot_id: int) -> tuple[int, int, int]:
    slot = db.get(Slot, slot_id)
    assert slot is not None
    db.refresh(slot)
    return slot.booked_referral, slot.booked_local, slot.booked_green


def row_counts(db: Session) -> dict[str, int]:
    return {
        name: db.execute(select(func.count()).select_from(model)).scalar_one()
        for name, model in (
            ("template", SlotTemplate),
            ("slot", Slot),
            ("booking", SlotBooking),
        )
    }


def slot_audits(db: Session, action: str, outcome: str | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action)
    if outcome:
        stmt = stmt.where(AuditEvent.outcome == outcome)
    return list(db.execute(stmt.order_by(AuditEvent.seq)).scalars())


def china(day: date, hour: int, minute: int = 0) -> datetime:
    return svc.china_instant(day, time(hour, minute))

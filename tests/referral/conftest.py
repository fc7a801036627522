"""A small network for the referral tests: a village clinic refers up to its county
hospital (the receiving institution: a referral desk, a cardiologist, a radiologist and a
doctor) and gets its patients back; the county hospital refers up to a city hospital; an
outside hospital knows nothing of them. The county publishes an outpatient slot and a CT
slot tomorrow. Time is frozen."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import bearer, fast_user
from tests.patients.conftest import principal_of
from tests.records.conftest import _patient_in, add
from tests.records.test_documents import phone_photo
from xietong.access.models import AuditEvent
from xietong.access.principal import Principal
from xietong.config import ReferralSettings, UploadSettings
from xietong.core import clock
from xietong.core.pii import PiiProtector
from xietong.core.storage import LocalBlobStore
from xietong.core.workflow_events import WorkflowEvent
from xietong.directory.models import Institution
from xietong.identity.roles import Role
from xietong.patients.models import Patient
from xietong.patients.registration import register_patient
from xietong.records import documents
from xietong.records.kinds import RecordKind
from xietong.records.models import EntryColumns
from xietong.referral import service as svc
from xietong.referral.models import FollowUp, Referral, ReferralHistory
from xietong.referral.schemas import (
    AcceptIn,
    DecisionIn,
    DownReferralIn,
    ExamReportIn,
    ReferralIn,
    ResubmitIn,
)
from xietong.referral.slot_models import Slot, SlotBooking

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # a Friday, 12:00 in China
TOMORROW_9 = datetime(2026, 11, 21, 1, 0, tzinfo=UTC)  # Saturday 09:00 China time
SETTINGS = ReferralSettings()


@dataclass
class Net:
    village: Institution
    county: Institution
    city: Institution
    other: Institution
    patient: Patient
    shared: EntryColumns
    p: dict[str, Principal]
    tokens: dict[str, dict[str, str]]
    departments: dict[str, int]
    slots: dict[str, int]
    blobs: LocalBlobStore
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self, **changes: Any) -> dict[str, Any]:
        return {
            "kind": "up",
            "patient_id": self.patient.id,
            "target_institution_id": self.county.id,
            "target_department_id": self.departments["cardio"],
            "slot_id": self.slots["outpatient"],
            "reason": "胸痛待查，需专科诊治",
            "diagnosis_code": "I20.9",
            "summary": "反复胸痛2周",
            "shared_items": [{"kind": "diagnosis", "id": self.shared.id}],
            **changes,
        }

    def exam_body(self, **changes: Any) -> dict[str, Any]:
        exam = {
            "kind": "exam",
            "exam_type": "ct",
            "slot_id": self.slots["ct"],
            "target_department_id": self.departments["radiology"],
            "reason": "头痛，需头颅CT",
        }
        return self.body(**{**exam, **changes})


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.set_clock(lambda: NOW)
    yield
    clock.set_clock(None)


def slot(
    db: Session,
    inst: Institution,
    department_id: int,
    *,
    kind: str = "outpatient",
    exam_type: str = "",
    starts_at: datetime = TOMORROW_9,
    capacity: int = 5,
    referral_reserved: int = 2,
    green_quota: int = 1,
) -> int:
    row = Slot(
        institution_id=inst.id,
        department_id=department_id,
        kind=kind,
        exam_type=exam_type,
        starts_at=starts_at,
        ends_at=starts_at + timedelta(minutes=30),
        capacity=capacity,
        referral_reserved=referral_reserved,
        green_quota=green_quota,
    )
    db.add(row)
    db.flush()
    return row.id


@pytest.fixture
def net(db: Session, tmp_path: Path) -> Net:
    pii = PiiProtector("test-pii-key-0123456789abcdef0123456789")
    village = factories.institution(db, name="测试村卫生室", level="village", region_code="410102")
    county = factories.institution(db, name="测试县医院", level="county", region_code="410102")
    city = factories.institution(db, name="测试市医院", level="city", region_code="410102")
    other = factories.institution(db, name="外地医院", level="county", region_code="410300")
    factories.link(db, village, county)
    factories.link(db, county, city)
    cardio = factories.department(db, county, name="心内科", specialty="cardiology")
    radiology = factories.department(db, county, name="放射科", specialty="radiology")
    users = {
        "sender": fast_user(db, "r_sender", Role.APPLICANT_DOCTOR, village),
        "village_desk": fast_user(db, "r_vdesk", Role.COORDINATOR, village),
        "desk": fast_user(db, "r_desk", Role.COORDINATOR, county),
        "clinician": fast_user(db, "r_clinician", Role.EXPERT, county),
        "radiologist": fast_user(db, "r_radiologist", Role.RADIOLOGIST, county),
        "county_doctor": fast_user(db, "r_countydoc", Role.APPLICANT_DOCTOR, county),
        "city_desk": fast_user(db, "r_citydesk", Role.COORDINATOR, city),
        "other_doctor": fast_user(db, "r_otherdoc", Role.APPLICANT_DOCTOR, other),
        "other_desk": fast_user(db, "r_otherdesk", Role.COORDINATOR, other),
        "platform": fast_user(db, "r_platform", Role.PLATFORM_ADMIN),
    }
    cardiologist = factories.practitioner(db, county, name="张主任", department=cardio)
    users["clinician"].practitioner_id = cardiologist.id
    practitioners = {"cardiologist": cardiologist.id}
    db.flush()
    p = {name: principal_of(user) for name, user in users.items()}
    patient = register_patient(db, p["sender"], pii, _patient_in()).patient
    shared = add(db, p["sender"], RecordKind.DIAGNOSIS, patient.id)
    tokens = {name: bearer(db, user) for name, user in users.items()}
    slots = {
        "outpatient": slot(db, county, cardio.id),
        "ct": slot(db, county, radiology.id, kind="exam", exam_type="ct", capacity=3),
        "outpatient_later": slot(db, county, cardio.id, starts_at=TOMORROW_9 + timedelta(days=1)),
    }
    db.commit()
    return Net(
        village,
        county,
        city,
        other,
        patient,
        shared,
        p,
        tokens,
        {"cardio": cardio.id, "radiology": radiology.id},
        slots,
        LocalBlobStore(tmp_path / "blobs"),
        {"practitioners": practitioners},
    )


# Driving referrals through the services -----------------------------------------------------


def create(db: Session, n: Net, **changes: Any) -> Referral:
    data = ReferralIn.model_validate(n.body(**changes))
    return svc.create_referral(db, n.p["sender"], data, SETTINGS).referral


def create_exam(db: Session, n: Net, **changes: Any) -> Referral:
    data = ReferralIn.model_validate(n.exam_body(**changes))
    return svc.create_referral(db, n.p["sender"], data, SETTINGS).referral


def exam_document(db: Session, n: Net) -> int:
    """The CT report, as the county's radiologist files it on the patient's chart."""
    meta = documents.DocumentMeta(
        doc_type="exam_report", title="头颅CT报告", document_date=date(2026, 11, 20)
    )
    upload = documents.UploadedFile("ct.jpg", "image/jpeg", phone_photo())
    doc, _ = documents.upload_document(
        db, n.p["radiologist"], n.blobs, UploadSettings(), n.patient.id, meta, [upload]
    )
    return doc.id


def down_body(n: Net, parent_id: int | None, **changes: Any) -> dict[str, Any]:
    return {
        "patient_id": n.patient.id,
        "parent_id": parent_id,
        "reason": "病情稳定，回基层康复",
        "discharge": {
            "diagnoses": [{"code": "I20.9", "text": "心绞痛"}],
            "procedures": ["冠脉造影"],
            "medications": [{"name": "阿司匹林", "dose": "100mg", "frequency": "qd", "days": 90}],
            "follow_up_plan": "每月随访血压、心率",
        },
        "rehab_plan": "低盐饮食，规律运动",
        "follow_ups": [
            {"due_date": "2026-12-20", "purpose": "复查血压"},
            {"due_date": "2027-01-20", "purpose": "复查心电图"},
        ],
        **changes,
    }


def create_down(db: Session, n: Net, parent_id: int | None, **changes: Any) -> Referral:
    data = DownReferralIn.model_validate(down_body(n, parent_id, **changes))
    return svc.create_down(db, n.p["county_doctor"], data, SETTINGS).referral


def reach(db: Session, n: Net, kind: str, state: str, **changes: Any) -> Referral:
    """A referral of ``kind`` brought to ``state`` through the services."""
    if kind == "down":
        return _reach_down(db, n, state)
    r = create(db, n, **changes) if kind == "up" else create_exam(db, n, **changes)
    if state == "requested":
        return r
    if state in ("returned",):
        svc.simple_action(db, n.p["desk"], r.id, "return", "请补充心电图")
        return r
    if state == "rejected":
        svc.simple_action(db, n.p["desk"], r.id, "reject", "无床位")
        return r
    if state == "cancelled":
        svc.simple_action(db, n.p["sender"], r.id, "cancel", "")
        return r
    if state == "expired":
        svc.run_deadlines(db, SETTINGS, NOW + timedelta(days=3))
        db.refresh(r)
        return r
    svc.accept(db, n.p["desk"], r.id, AcceptIn())
    if state == "accepted":
        return r
    if state == "no_show":
        after_start()
        svc.simple_action(db, n.p["desk"], r.id, "no_show", "")
        return r
    svc.check_in(db, n.p["desk"], r.id)
    if state == "arrived":
        return r
    if kind == "up":
        svc.simple_action(db, n.p["clinician"], r.id, "start", "")
        if state == "in_treatment":
            return r
        svc.simple_action(db, n.p["clinician"], r.id, "complete", "")
        assert state == "completed"
        return r
    svc.attach_report(db, n.p["radiologist"], r.id, ExamReportIn(document_id=exam_document(db, n)))
    if state == "reported":
        return r
    svc.decide(db, n.p["clinician"], r.id, DecisionIn(decision="stay", note="基层随访"), SETTINGS)
    assert state == "completed"
    return r


def after_start() -> None:
    """Move the clock past the start of tomorrow's slots (a no-show is marked then)."""
    clock.set_clock(lambda: TOMORROW_9 + timedelta(hours=1))


def _reach_down(db: Session, n: Net, state: str) -> Referral:
    up = reach(db, n, "up", "in_treatment")
    r = create_down(db, n, up.id)
    if state == "requested":
        return r
    if state == "rejected":
        svc.simple_action(db, n.p["village_desk"], r.id, "reject", "无康复条件")
    elif state == "cancelled":
        svc.simple_action(db, n.p["county_doctor"], r.id, "cancel", "")
    elif state == "expired":
        svc.run_deadlines(db, SETTINGS, NOW + timedelta(days=4))
    else:
        svc.accept(db, n.p["village_desk"], r.id, AcceptIn())
        if state == "completed":
            svc.simple_action(db, n.p["sender"], r.id, "complete", "")
    db.refresh(r)
    assert r.state == state
    return r


def resubmit(db: Session, n: Net, r: Referral) -> None:
    svc.resubmit(db, n.p["sender"], r.id, ResubmitIn(note="已补充"), SETTINGS)


# Counting -------------------------------------------------------------------------------------


def counts(db: Session) -> dict[str, int]:
    models = {
        "referral": Referral,
        "history": ReferralHistory,
        "booking": SlotBooking,
        "follow_up": FollowUp,
        "event": WorkflowEvent,
    }
    return {
        name: db.execute(select(func.count()).select_from(model)).scalar_one()
        for name, model in models.items()
    }


def audits(db: Session, action: str, **where: Any) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action)
    for name, value in where.items():
        stmt = stmt.where(getattr(AuditEvent, name) == value)
    return list(db.execute(stmt.order_by(AuditEvent.seq)).scalars())

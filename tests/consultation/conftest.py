"""A small network for the consultation tests: a village clinic sends work up to its county
hospital (the centre, with a coordinator and three experts); an outside hospital with its
own doctor and coordinator knows nothing of it. The village clinic's nurse-coordinator sees
the clinic's consultations but takes no part in them. Time is frozen."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, time
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import bearer, fast_user
from tests.patients.conftest import principal_of
from tests.records.conftest import _patient_in, add
from xietong.access.models import AuditEvent
from xietong.access.principal import Principal
from xietong.config import ConsultationSettings
from xietong.consultation import service as svc
from xietong.consultation.models import (
    Consultation,
    ConsultationAssignment,
    ConsultationHistory,
    ConsultationOpinion,
    ConsultationReport,
)
from xietong.consultation.schemas import (
    AcceptIn,
    ConsultationIn,
    OpinionIn,
    RateIn,
    ReportIn,
    ScheduleIn,
)
from xietong.core import clock
from xietong.core.pii import PiiProtector
from xietong.core.workflow_events import WorkflowEvent
from xietong.directory.models import ExpertAvailability, Institution, PractitionerSpecialty
from xietong.identity.roles import Role
from xietong.patients.models import Patient
from xietong.patients.registration import register_patient
from xietong.records.kinds import RecordKind
from xietong.records.models import EntryColumns

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # a Friday, 12:00 in China
SETTINGS = ConsultationSettings()


@dataclass
class Net:
    village: Institution
    county: Institution
    other: Institution
    patient: Patient
    shared: EntryColumns  # a diagnosis the applicant shares
    unshared: EntryColumns  # one they keep
    p: dict[str, Principal]
    tokens: dict[str, dict[str, str]]
    experts: dict[str, int]  # practitioner ids: a (lead), b, c (another specialty)
    extra: dict[str, Any] = field(default_factory=dict)

    def body(self, **changes: Any) -> dict[str, Any]:
        return {
            "patient_id": self.patient.id,
            "purpose": "明确诊断",
            "clinical_summary": "反复胸痛2周",
            "questions": "是否需要冠脉造影？",
            "specialty": "cardiology",
            "urgency": "routine",
            "mode": "async",
            "target_institution_id": self.county.id,
            "shared_items": [{"kind": "diagnosis", "id": self.shared.id}],
            **changes,
        }


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.set_clock(lambda: NOW)
    yield
    clock.set_clock(None)


@pytest.fixture
def net(db: Session) -> Net:
    return build_net(db)


def build_net(db: Session) -> Net:
    """The network above, committed (also run by the live-server seeds, outside pytest)."""
    pii = PiiProtector("test-pii-key-0123456789abcdef0123456789")
    village = factories.institution(db, name="测试村卫生室", level="village", region_code="410102")
    county = factories.institution(db, name="测试县医院", level="county", region_code="410102")
    other = factories.institution(db, name="外地医院", level="county", region_code="410300")
    factories.link(db, village, county)
    cardio = factories.department(db, county, name="心内科", specialty="cardiology")
    ortho = factories.department(db, county, name="骨科", specialty="orthopaedics")
    users = {
        "applicant": fast_user(db, "c_applicant", Role.APPLICANT_DOCTOR, village),
        "viewer": fast_user(db, "c_viewer", Role.COORDINATOR, village),
        "coordinator": fast_user(db, "c_coord", Role.COORDINATOR, county),
        "coordinator2": fast_user(db, "c_coord2", Role.COORDINATOR, county),
        "county_doctor": fast_user(db, "c_countydoc", Role.APPLICANT_DOCTOR, county),
        "other_doctor": fast_user(db, "c_otherdoc", Role.APPLICANT_DOCTOR, other),
        "other_coordinator": fast_user(db, "c_othercoord", Role.COORDINATOR, other),
        "other_expert": fast_user(db, "c_otherexp", Role.EXPERT, other),
        "platform": fast_user(db, "c_platform", Role.PLATFORM_ADMIN),
    }
    experts: dict[str, int] = {}
    for key, name, dept in (
        ("a", "张主任", cardio),
        ("b", "李主任", cardio),
        ("c", "王主任", ortho),
    ):
        prac = factories.practitioner(db, county, name=name, department=dept, is_expert=True)
        user = fast_user(db, f"c_expert_{key}", Role.EXPERT, county)
        user.practitioner_id = prac.id
        users[f"expert_{key}"] = user
        experts[key] = prac.id
    db.add(PractitionerSpecialty(practitioner_id=experts["b"], specialty="cardiology"))
    # Expert b sits on Saturday mornings (China time), before a routine deadline.
    db.add(
        ExpertAvailability(
            practitioner_id=experts["b"], weekday=5, start_time=time(9), end_time=time(11)
        )
    )
    db.flush()
    p = {name: principal_of(user) for name, user in users.items()}
    patient = register_patient(db, p["applicant"], pii, _patient_in()).patient
    shared = add(db, p["applicant"], RecordKind.DIAGNOSIS, patient.id)
    unshared = add(db, p["applicant"], RecordKind.DIAGNOSIS, patient.id, code="E11.9")
    tokens = {name: bearer(db, user) for name, user in users.items()}
    db.commit()
    return Net(village, county, other, patient, shared, unshared, p, tokens, experts)


# Driving a consultation through the services ----------------------------------------------


def create(db: Session, n: Net, *, submit: bool = False, **changes: Any) -> Consultation:
    data = ConsultationIn.model_validate({**n.body(**changes), "submit": submit})
    return svc.create_consultation(db, n.p["applicant"], data, SETTINGS).consultation


def accept(db: Session, n: Net, c: Consultation) -> None:
    body = AcceptIn(experts=[n.experts["a"], n.experts["b"]], lead=n.experts["a"])
    svc.accept(db, n.p["coordinator"], c.id, body)


def opinions(db: Session, n: Net, c: Consultation) -> None:
    for who in ("expert_a", "expert_b"):
        svc.write_opinion(db, n.p[who], c.id, OpinionIn(text=f"{who} 意见"))


REPORT = ReportIn(impression="稳定型心绞痛", recommendations="冠脉CTA")
LATER = datetime(2026, 11, 21, 2, 0, tzinfo=UTC)


def reach(db: Session, n: Net, state: str, *, mode: str = "async") -> Consultation:
    """A consultation brought to ``state`` through the services."""
    c = create(db, n, submit=state != "draft", mode=mode)
    if state in ("draft", "submitted"):
        return c
    if state in ("returned", "resubmitted"):
        svc.simple_action(db, n.p["coordinator"], c.id, "return", "请补充心电图")
        if state == "resubmitted":
            from xietong.consultation.schemas import ResubmitIn

            svc.resubmit(db, n.p["applicant"], c.id, ResubmitIn(note="已补充"), SETTINGS)
        return c
    if state == "rejected":
        svc.simple_action(db, n.p["coordinator"], c.id, "reject", "不在服务范围")
        return c
    if state == "cancelled":
        svc.simple_action(db, n.p["applicant"], c.id, "cancel", "")
        return c
    if state == "expired":
        svc.expire_overdue(db, datetime(2026, 12, 1, tzinfo=UTC))
        db.refresh(c)
        return c
    accept(db, n, c)
    if state == "accepted":
        return c
    if mode == "live":
        svc.schedule(db, n.p["coordinator"], c.id, ScheduleIn(scheduled_at=LATER))
        if state == "scheduled":
            return c
    svc.start(db, n.p["expert_b"], c.id)
    if state == "in_progress":
        return c
    opinions(db, n, c)
    svc.sign_report(db, n.p["expert_a"], c.id, REPORT)
    if state == "report_signed":
        return c
    svc.complete(db, n.p["applicant"], c.id, RateIn(rating=5))
    assert state == "completed"
    return c


# Counting ----------------------------------------------------------------------------------


def counts(db: Session) -> dict[str, int]:
    models = {
        "consultation": Consultation,
        "assignment": ConsultationAssignment,
        "history": ConsultationHistory,
        "opinion": ConsultationOpinion,
        "report": ConsultationReport,
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


# The imaging read world (reads_world imports this module's network, so it comes last).
from tests.consultation.reads_world import rw  # noqa: E402, F401

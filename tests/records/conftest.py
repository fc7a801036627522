"""A small network for the record tests: a village clinic and its county hospital, which
both know the patient, and an outside hospital that does not; their doctors, an authority,
an institution admin and a platform admin, each with a bearer token. Time is frozen."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import bearer, fast_user
from tests.patients.conftest import RESIDENT_ID_MALE, principal_of
from xietong.access.models import AuditEvent
from xietong.access.principal import Principal
from xietong.core import clock
from xietong.core.pii import PiiProtector
from xietong.directory.models import Department, Institution, Practitioner
from xietong.identity.roles import Role
from xietong.patients.models import Patient
from xietong.patients.registration import register_patient
from xietong.patients.schemas import PatientIn
from xietong.records import service as svc
from xietong.records.kinds import MODELS, RecordKind
from xietong.records.models import EntryColumns, RecordRevision
from xietong.records.schemas import (
    AllergyIn,
    DiagnosisIn,
    EncounterIn,
    LabResultIn,
    MedicationIn,
    VitalSignIn,
)

NOW = datetime(2026, 11, 20, 4, 0, tzinfo=UTC)  # 12:00 in China
KINDS = list(RecordKind)
PATHS = {
    RecordKind.ENCOUNTER: "encounters",
    RecordKind.DIAGNOSIS: "diagnoses",
    RecordKind.LAB_RESULT: "labs",
    RecordKind.MEDICATION: "medications",
    RecordKind.VITAL_SIGN: "vitals",
    RecordKind.ALLERGY: "allergies",
}
# A valid body per kind, as a client would send it.
VALID: dict[RecordKind, dict[str, Any]] = {
    RecordKind.ENCOUNTER: {
        "kind": "outpatient",
        "start_date": "2026-10-01",
        "chief_complaint": "头晕3天",
    },
    RecordKind.DIAGNOSIS: {"code": "I10", "diagnosed_on": "2026-10-01"},
    RecordKind.LAB_RESULT: {
        "item_name": "空腹血糖",
        "loinc_code": "1558-6",
        "value_text": "7.8",
        "unit": "mmol/L",
        "ref_low": 3.9,
        "ref_high": 6.1,
        "collected_at": "2026-10-01T08:00:00+08:00",
    },
    RecordKind.MEDICATION: {
        "name": "苯磺酸氨氯地平片",
        "dose": 5,
        "unit": "mg",
        "route": "oral",
        "frequency": "qd",
        "start_date": "2026-10-01",
    },
    RecordKind.VITAL_SIGN: {
        "kind": "bp_systolic",
        "value": 152,
        "measured_at": "2026-10-01T08:30:00+08:00",
    },
    RecordKind.ALLERGY: {
        "substance": "青霉素",
        "reaction": "皮疹",
        "severity": "moderate",
        "noted_on": "2015-05-01",
    },
}
INPUT_MODELS = {
    RecordKind.ENCOUNTER: EncounterIn,
    RecordKind.DIAGNOSIS: DiagnosisIn,
    RecordKind.LAB_RESULT: LabResultIn,
    RecordKind.MEDICATION: MedicationIn,
    RecordKind.VITAL_SIGN: VitalSignIn,
    RecordKind.ALLERGY: AllergyIn,
}


@dataclass
class Site:
    village: Institution
    county: Institution
    other: Institution
    patient: Patient
    village_doctor: Principal
    county_doctor: Principal
    other_doctor: Principal
    authority: Principal
    institution_admin: Principal
    platform: Principal
    tokens: dict[str, dict[str, str]]
    village_department: Department
    village_practitioner: Practitioner


@pytest.fixture(autouse=True)
def _frozen_clock() -> Iterator[None]:
    clock.set_clock(lambda: NOW)
    yield
    clock.set_clock(None)


@pytest.fixture
def pii() -> PiiProtector:
    return PiiProtector("test-pii-key-0123456789abcdef0123456789")


def _patient_in() -> PatientIn:
    return PatientIn.model_validate(
        {
            "name": "张建国",
            "sex": "1",
            "birth_date": date(1980, 1, 1),
            "resident_id": RESIDENT_ID_MALE,
        }
    )


@pytest.fixture
def site(db: Session, pii: PiiProtector) -> Site:
    village = factories.institution(db, name="测试村卫生室", level="village", region_code="410102")
    county = factories.institution(db, name="测试县医院", level="county", region_code="410102")
    other = factories.institution(db, name="外地医院", level="county", region_code="410300")
    department = factories.department(db, village, name="全科")
    practitioner = factories.practitioner(db, village, name="李医生", department=department)
    users = {
        "village_doctor": fast_user(db, "r_village", Role.APPLICANT_DOCTOR, village),
        "county_doctor": fast_user(db, "r_county", Role.EXPERT, county),
        "other_doctor": fast_user(db, "r_other", Role.APPLICANT_DOCTOR, other),
        "authority": fast_user(db, "r_authority", Role.AUTHORITY),
        "institution_admin": fast_user(db, "r_instadmin", Role.INSTITUTION_ADMIN, village),
        "platform": fast_user(db, "r_platform", Role.PLATFORM_ADMIN),
    }
    users["village_doctor"].practitioner_id = practitioner.id
    users["authority"].jurisdiction_code = "410000"
    db.flush()
    principals = {name: principal_of(user) for name, user in users.items()}
    patient = register_patient(db, principals["village_doctor"], pii, _patient_in()).patient
    register_patient(db, principals["county_doctor"], pii, _patient_in())  # links the county
    tokens = {name: bearer(db, user) for name, user in users.items()}
    db.commit()
    return Site(
        village=village,
        county=county,
        other=other,
        patient=patient,
        tokens=tokens,
        village_department=department,
        village_practitioner=practitioner,
        **principals,
    )


def add(
    db: Session,
    principal: Principal,
    kind: RecordKind,
    patient_id: int,
    /,
    **changes: Any,
) -> EntryColumns:
    """An entry added through the service: the kind's valid body with ``changes``."""
    body = INPUT_MODELS[kind].model_validate({**VALID[kind], **changes})
    return svc.add_entry(db, principal, kind, patient_id, body).entry


def audits(db: Session, action: str, **where: Any) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.action == action)
    for name, value in where.items():
        stmt = stmt.where(getattr(AuditEvent, name) == value)
    return list(db.execute(stmt.order_by(AuditEvent.seq)).scalars())


def entry_counts(db: Session) -> dict[str, int]:
    counts = {
        kind.value: db.execute(select(func.count()).select_from(model)).scalar_one()
        for kind, model in MODELS.items()
    }
    counts["revisions"] = db.execute(select(func.count()).select_from(RecordRevision)).scalar_one()
    return counts

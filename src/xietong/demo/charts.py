"""Demo patients with charts: the four fictional residents of 新安县 of chart_data.py,
registered at the demo village clinic (the ``doctor`` account's) and the county hospital
(the ``coordinator``'s), with visits, diagnoses, lab results (some abnormal), orders, vital
signs and allergies.

Everything goes through the services a user would call (registration, adding entries), so
the demo obeys the same rules and leaves the same audit trail. Dates count back from today,
so the charts look recent whenever the demo is loaded. A second run adds nothing: the
resident ID number finds the patient and each entry's client request id finds the entry.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access.authentication import principal_for
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.pii import PiiProtector
from xietong.demo.chart_data import PATIENTS, A, D, DemoPatient, E, Item, L, M, V
from xietong.directory.models import Department
from xietong.identity import service as identity
from xietong.patients.registration import register_patient
from xietong.patients.schemas import PatientIn
from xietong.records import rules
from xietong.records import service as records
from xietong.records.kinds import RecordKind
from xietong.records.schemas import (
    AllergyIn,
    DiagnosisIn,
    EncounterIn,
    EntryIn,
    LabResultIn,
    MedicationIn,
    VitalSignIn,
)

INPUT: dict[RecordKind, type[EntryIn]] = {
    E: EncounterIn,
    D: DiagnosisIn,
    L: LabResultIn,
    M: MedicationIn,
    V: VitalSignIn,
    A: AllergyIn,
}
# Who records at each site: the demo accounts of the village clinic and the county hospital.
RECORDERS = {"village": "doctor", "county": "coordinator"}
DEMO_ADDRESS = "演示数据，非真实患者"  # demo data, not a real patient


def _clinician(session: Session, username: str) -> Principal | None:
    user = identity.find_user(session, username)
    return principal_for(session, user) if user is not None else None


def _department(session: Session, institution_id: int | None, specialty: str | None) -> int | None:
    if specialty is None or institution_id is None:
        return None
    return session.execute(
        select(Department.id)
        .where(Department.institution_id == institution_id, Department.specialty == specialty)
        .order_by(Department.id)
        .limit(1)
    ).scalar()


def _moment(today: date, days: int, clock: str) -> datetime:
    hour, minute = (int(p) for p in clock.split(":"))
    return datetime.combine(today - timedelta(days=days), time(hour, minute), tzinfo=rules.CHINA_TZ)


def _body(item: Item, today: date, visits: dict[str, int], dept: int | None) -> dict[str, Any]:
    day = today - timedelta(days=item.days)
    end = today - timedelta(days=item.ends) if item.ends is not None else None
    body = dict(item.fields)
    if item.visit is not None:
        body["encounter_id"] = visits[item.visit]
    if item.kind is E:
        body.update(start_date=day, end_date=end, department_id=dept)
    elif item.kind is D:
        body["diagnosed_on"] = day
    elif item.kind is L:
        body["collected_at"] = _moment(today, item.days, item.clock)
        body["reported_at"] = body["collected_at"] + timedelta(hours=3)
    elif item.kind is M:
        body.update(start_date=day, end_date=end)
    elif item.kind is V:
        body["measured_at"] = _moment(today, item.days, item.clock)
    else:
        body["noted_on"] = day
    return body


def add_demo_charts(session: Session, pii: PiiProtector) -> dict[str, int]:
    """Register the demo patients and add their entries (what exists already is kept)."""
    clinicians = {site: _clinician(session, name) for site, name in RECORDERS.items()}
    counts = {"patients": 0, "record_entries": 0}
    today = rules.local_date(now())
    for patient in PATIENTS:
        sites = [s for s in patient.sites if clinicians[s] is not None]
        if not sites:
            continue
        patient_id = 0
        for site in sites:
            registration = register_patient(
                session,
                clinicians[site],  # type: ignore[arg-type]
                pii,
                PatientIn(
                    name=patient.name,
                    sex=patient.sex,
                    birth_date=patient.birth_date,
                    resident_id=patient.resident_id,
                    address_region_code="410323",
                    address_detail=DEMO_ADDRESS,
                ),
            )
            patient_id = registration.patient.id
            counts["patients"] += int(registration.created)
        counts["record_entries"] += _add_items(session, patient, patient_id, clinicians, today)
    return counts


def _add_items(
    session: Session,
    patient: DemoPatient,
    patient_id: int,
    clinicians: dict[str, Principal | None],
    today: date,
) -> int:
    visits: dict[str, int] = {}
    added = 0
    for number, item in enumerate(patient.items, start=1):
        clinician = clinicians.get(item.site)
        if clinician is None:
            continue
        dept = _department(session, clinician.institution_id, item.specialty)
        body = _body(item, today, visits, dept)
        body["client_request_id"] = f"demo:{patient.key}:{number}"
        data = INPUT[item.kind].model_validate(body)
        result = records.add_entry(session, clinician, item.kind, patient_id, data)
        added += int(result.created)
        if item.key is not None:
            visits[item.key] = result.entry.id
    return added

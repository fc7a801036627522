"""Demo referrals: the village doctor sends three of the demo patients up to the county
hospital where the demo desk works — one already accepted into a booked slot, one waiting
for the desk, and an exam referral for a CT — so the desk's inbox, the calendar and the
patients' charts show real referrals. They go through the referral services as the doctor
and the desk would; a second run adds nothing (a patient with a referral keeps it).
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.orm import Session

from xietong.access.authentication import principal_for
from xietong.access.principal import Principal
from xietong.config import ReferralSettings
from xietong.core.clock import now
from xietong.core.pii import PiiProtector
from xietong.demo.chart_data import PATIENTS
from xietong.identity import service as identity
from xietong.patients.schemas import PatientSearchIn
from xietong.patients.search import search_patients
from xietong.records.rules import local_date
from xietong.referral import service as referrals
from xietong.referral import slots
from xietong.referral.schemas import AcceptIn, ReferralIn


@dataclass(frozen=True)
class DemoReferral:
    patient: str  # a demo patient's key
    kind: str
    reason: str
    diagnosis_code: str
    summary: str
    slot_kinds: tuple[str, ...]
    exam_type: str = ""
    accept: bool = False


REFERRALS = (
    DemoReferral(
        "wang-defu",
        "up",
        "高血压、2型糖尿病控制不佳，需住院调整治疗",
        "I10",
        "血压168/98 mmHg，空腹血糖11.2 mmol/L，口服药物效果差。",
        ("outpatient",),
        accept=True,
    ),
    DemoReferral(
        "li-xiuying",
        "up",
        "反复胸闷气短，需心内科专科诊治",
        "I20.9",
        "活动后胸闷2月，心电图ST段压低。",
        ("outpatient",),
    ),
    DemoReferral(
        "zhao-xiaojun",
        "exam",
        "头痛伴呕吐，需头颅CT检查",
        "R51",
        "头痛3天，无外伤史，神经系统查体阴性。",
        ("exam",),
        exam_type="ct",
    ),
)


def _principal(session: Session, username: str) -> Principal | None:
    user = identity.find_user(session, username)
    return principal_for(session, user) if user is not None else None


def _patient_id(session: Session, doctor: Principal, pii: PiiProtector, key: str) -> int | None:
    patient = next((p for p in PATIENTS if p.key == key), None)
    if patient is None:
        return None
    found = search_patients(
        session, doctor, pii, PatientSearchIn(resident_id=patient.resident_id)
    ).patients
    return found[0].id if found else None


def add_demo_referrals(
    session: Session, pii: PiiProtector, settings: ReferralSettings | None = None
) -> dict[str, int]:
    """Send the demo referrals (those whose patient has none yet); returns the count."""
    config = settings or ReferralSettings()
    doctor = _principal(session, "doctor")
    desk = _principal(session, "coordinator")
    if doctor is None or desk is None or desk.institution_id is None:
        return {"referrals": 0}
    made = 0
    for demo in REFERRALS:
        patient_id = _patient_id(session, doctor, pii, demo.patient)
        if patient_id is None or referrals.referrals_of_patient(session, doctor, patient_id):
            continue
        free = slots.available_slots(
            session,
            desk.institution_id,
            kinds=demo.slot_kinds,
            exam_type=demo.exam_type or None,
            start=local_date(now()),
            days=14,
        )
        if not free:
            continue
        data = ReferralIn(
            kind=demo.kind,
            patient_id=patient_id,
            target_institution_id=desk.institution_id,
            target_department_id=free[0].department_id,
            slot_id=free[0].slot_id,
            reason=demo.reason,
            diagnosis_code=demo.diagnosis_code,
            summary=demo.summary,
            exam_type=demo.exam_type,
        )
        created = referrals.create_referral(session, doctor, data, config)
        if demo.accept:
            referrals.accept(
                session, desk, created.referral.id, AcceptIn(note="已预约，请按时就诊")
            )
        made += 1
    return {"referrals": made}

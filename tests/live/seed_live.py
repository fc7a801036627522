"""A consultation for the live-server video tests (aiortc and the browser): run as
``python -m tests.live.seed_live`` after ``tests.e2e.seed``. A county doctor asks the
provincial cardiology centre; its coordinator accepts with a cardiologist leading. Both
doctors take part in it; the consultation's id is written to ``<data dir>/live_seed.json``.
"""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.e2e.seed import COUNTY_CODE, PASSWORD, PROVINCIAL_CODE
from tests.e2e.seed_reads import _principal
from xietong.config import load_settings
from xietong.consultation import service as consultations
from xietong.consultation.schemas import AcceptIn, ConsultationIn
from xietong.core.db import make_engine, make_session_factory, session_scope
from xietong.directory.models import Department, Institution, Practitioner
from xietong.identity import service as identity
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.patients.registration import register_patient
from xietong.patients.schemas import IdentifierIn, PatientIn

DOCTOR = ("live.doctor", "陈视频")
EXPERT = ("live.expert", "林会诊")
OUTSIDER = ("live.outsider", "外院医生")
SEED_FILE = "live_seed.json"


def _institution(session: Session, code: str) -> Institution:
    return session.execute(select(Institution).where(Institution.code == code)).scalar_one()


def seed(session: Session) -> int:
    settings = load_settings()
    policy = settings.security
    provincial = _institution(session, PROVINCIAL_CODE)
    county = _institution(session, COUNTY_CODE)
    cardiology = session.execute(
        select(Department).where(
            Department.institution_id == provincial.id, Department.specialty == "cardiology"
        )
    ).scalar_one()
    prac = Practitioner(
        institution_id=provincial.id,
        department_id=cardiology.id,
        name=EXPERT[1],
        sex="2",
        title="chief_physician",
        is_expert=True,
    )
    session.add(prac)
    session.flush()
    expert = identity.create_user(
        session,
        username=EXPERT[0],
        password=PASSWORD,
        display_name=EXPERT[1],
        roles=[Role.EXPERT],
        policy=policy,
        institution_id=provincial.id,
        practitioner_id=prac.id,
    )
    doctor = identity.create_user(
        session,
        username=DOCTOR[0],
        password=PASSWORD,
        display_name=DOCTOR[1],
        roles=[Role.APPLICANT_DOCTOR],
        policy=policy,
        institution_id=county.id,
    )
    identity.create_user(
        session,
        username=OUTSIDER[0],
        password=PASSWORD,
        display_name=OUTSIDER[1],
        roles=[Role.APPLICANT_DOCTOR],
        policy=policy,
        institution_id=county.id,
    )
    applicant = _principal(doctor)
    from xietong.core.pii import PiiProtector

    pii = PiiProtector(policy.pii_key, policy.pii_cipher)
    patient = register_patient(
        session,
        applicant,
        pii,
        PatientIn(
            name="严视频",
            sex="2",
            birth_date=date(1961, 5, 9),
            identifiers=[IdentifierIn(kind="mrn", value="E2E-LIVE-0001")],
        ),
    ).patient
    c = consultations.create_consultation(
        session,
        applicant,
        ConsultationIn(
            patient_id=patient.id,
            purpose="视频会诊：胸痛待查",
            clinical_summary="活动后胸闷3个月。",
            questions="是否需要冠脉造影？",
            specialty="cardiology",
            target_institution_id=provincial.id,
            submit=True,
        ),
        settings.consultation,
    ).consultation
    coordinator = session.execute(
        select(User).where(User.username == "e2e.coordinator")
    ).scalar_one()
    consultations.accept(
        session, _principal(coordinator), c.id, AcceptIn(experts=[prac.id], lead=prac.id)
    )
    assert expert.id
    return c.id


def main() -> None:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            consultation_id = seed(session)
        (settings.data_dir / SEED_FILE).write_text(json.dumps({"consultation": consultation_id}))
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()

"""The imaging read walk's rows for the browser tests (called by ``seed``): the provincial
hospital's radiology department with a junior radiologist (attending) and a senior one
(chief physician), a county doctor whose patient has a small generated CT study stored,
and a read of it submitted to the provincial hospital and accepted with the junior
radiologist reading."""

from __future__ import annotations

from datetime import date

from sqlalchemy.orm import Session

from tests.consultation.read_study import ct_slices
from xietong.access.principal import Principal
from xietong.config import load_settings
from xietong.consultation import service as consultations
from xietong.consultation.read_schemas import ReadIn
from xietong.consultation.schemas import AcceptIn, SharedItemIn
from xietong.consultation.service import reads
from xietong.core.pii import PiiProtector
from xietong.core.storage import LocalBlobStore
from xietong.directory.models import Department, Institution, Practitioner
from xietong.identity import service as identity
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.imaging.service import ingest
from xietong.patients.registration import register_patient
from xietong.patients.schemas import IdentifierIn, PatientIn

READ_DOCTOR = ("e2e.readdoc", "冯影像申请")
JUNIOR = ("e2e.radiologist", "韩阅片", "attending_physician")
SENIOR = ("e2e.senior", "蒋主任", "chief_physician")
READ_PATIENT = "褚影像"
READ_MRN = "E2E-CT-0001"
# Enough slices for the coronal and sagittal planes of MPR to be more than a strip.
SLICES = 16


def _principal(user: User) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        roles=frozenset(user.role_names),
        institution_id=user.institution_id,
    )


def seed_reads(
    session: Session, provincial: Institution, county: Institution, password: str
) -> None:
    settings = load_settings()
    policy = settings.security
    radiology = Department(institution_id=provincial.id, name="医学影像科", specialty="radiology")
    session.add(radiology)
    session.flush()
    practitioners = {}
    for username, name, title in (JUNIOR, SENIOR):
        prac = Practitioner(
            institution_id=provincial.id,
            department_id=radiology.id,
            name=name,
            sex="1",
            title=title,
        )
        session.add(prac)
        session.flush()
        practitioners[username] = prac.id
        identity.create_user(
            session,
            username=username,
            password=password,
            display_name=name,
            roles=[Role.RADIOLOGIST],
            policy=policy,
            institution_id=provincial.id,
            practitioner_id=prac.id,
        )
    doctor = identity.create_user(
        session,
        username=READ_DOCTOR[0],
        password=password,
        display_name=READ_DOCTOR[1],
        roles=[Role.APPLICANT_DOCTOR],
        policy=policy,
        institution_id=county.id,
    )
    applicant = _principal(doctor)
    pii = PiiProtector(policy.pii_key, policy.pii_cipher)
    blobs = LocalBlobStore(settings.blob_root)
    patient = register_patient(
        session,
        applicant,
        pii,
        PatientIn(
            name=READ_PATIENT,
            sex="1",
            birth_date=date(1958, 3, 2),
            identifiers=[IdentifierIn(kind="mrn", value=READ_MRN)],
        ),
    ).patient
    study = None
    for data in ct_slices(READ_MRN, count=SLICES, size=128):
        study = ingest(
            session, blobs, pii, data, sender_institution_id=county.id, actor=applicant
        ).study
    assert study is not None
    read = reads.create_read(
        session,
        applicant,
        ReadIn(
            patient_id=patient.id,
            purpose="胸部CT阅片",
            clinical_summary="咳嗽3周，低热，吸烟30年。",
            questions="肺内有无占位？",
            urgency="urgent",
            target_institution_id=provincial.id,
            shared_items=[SharedItemIn(kind="imaging_study", id=study.id)],
            submit=True,
        ),
        settings.consultation,
    ).consultation
    coordinator = session.query(User).filter(User.username == "e2e.coordinator").one()
    junior = practitioners[JUNIOR[0]]
    consultations.accept(
        session, _principal(coordinator), read.id, AcceptIn(experts=[junior], lead=junior)
    )

"""An imaging read world on top of the consultation network: the village clinic stores a
small CT study of its patient (three generated slices) and sends it up to the county
hospital, whose radiology department has a junior radiologist (the lead), a senior one
(a chief physician, who countersigns) and a coordinator; the outside hospital's
radiologist sees nothing of it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

import pytest
from fastapi import FastAPI
from sqlalchemy.orm import Session

from tests import factories
from tests.consultation.conftest import SETTINGS, Net
from tests.consultation.read_study import ct_slices
from tests.directory.conftest import bearer, fast_user
from tests.patients.conftest import principal_of
from xietong.consultation import service as svc
from xietong.consultation.models import Consultation
from xietong.consultation.read_schemas import ReadIn, ReadReportIn, SignOffIn
from xietong.consultation.schemas import AcceptIn
from xietong.consultation.service import read_reports, reads
from xietong.identity.roles import Role
from xietong.imaging.models import ImagingStudy
from xietong.imaging.service import ingest
from xietong.patients.registration import register_patient
from xietong.patients.schemas import IdentifierIn, PatientIn

MRN = "CT-READ-1"


@dataclass
class Reads:
    n: Net
    study: ImagingStudy
    other_study: ImagingStudy  # a study of another institution's patient
    radiologists: dict[str, int]  # practitioner ids: junior (lead), senior
    archive: read_reports.Archive
    p: dict[str, Any]
    tokens: dict[str, dict[str, str]]

    def body(self, **changes: Any) -> dict[str, Any]:
        return {
            "patient_id": self.study.patient_id,
            "purpose": "胸部CT阅片",
            "clinical_summary": "咳嗽2周，低热",
            "questions": "肺部有无病变？",
            "urgency": "routine",
            "target_institution_id": self.n.county.id,
            "shared_items": [{"kind": "imaging_study", "id": self.study.id}],
            **changes,
        }


REPORT = ReadReportIn(
    template_key="ct_chest",
    technique="胸部CT平扫",
    findings="右肺下叶见小结节，直径约6mm。",
    impression="右肺下叶小结节，建议随访。",
    recommendation="6个月后复查胸部CT。",
)


@pytest.fixture
def rw(db: Session, app: FastAPI, net: Net) -> Reads:
    pii = app.state.services.pii
    blobs = app.state.services.blobs
    radiology = factories.department(db, net.county, name="医学影像科", specialty="radiology")
    factories.department(db, net.other, name="放射科", specialty="radiology")
    users = {
        "rad_junior": fast_user(db, "r_junior", Role.RADIOLOGIST, net.county),
        "rad_senior": fast_user(db, "r_senior", Role.RADIOLOGIST, net.county),
        "rad_other": fast_user(db, "r_other", Role.RADIOLOGIST, net.other),
        "village_rad": fast_user(db, "r_village", Role.RADIOLOGIST, net.village),
    }
    radiologists = {}
    for key, title in (("junior", "attending_physician"), ("senior", "chief_physician")):
        prac = factories.practitioner(
            db, net.county, name=f"{key}医生", title=title, department=radiology
        )
        users[f"rad_{key}"].practitioner_id = prac.id
        radiologists[key] = prac.id
    db.flush()
    applicant = net.p["applicant"]
    patient = register_patient(
        db,
        applicant,
        pii,
        PatientIn(
            name="张建国",
            sex="1",
            birth_date=date(1980, 1, 1),
            identifiers=[IdentifierIn(kind="mrn", value=MRN)],
        ),
    ).patient
    study = None
    for data in ct_slices(MRN):
        study = ingest(
            db, blobs, pii, data, sender_institution_id=net.village.id, actor=applicant
        ).study
    other_patient = register_patient(
        db,
        net.p["other_doctor"],
        pii,
        PatientIn(
            name="李四",
            sex="1",
            birth_date=date(1970, 1, 1),
            identifiers=[IdentifierIn(kind="mrn", value="X-1")],
        ),
    ).patient
    other_study = ingest(
        db,
        blobs,
        pii,
        ct_slices("X-1", 1)[0],
        sender_institution_id=net.other.id,
        actor=net.p["other_doctor"],
    ).study
    assert study is not None
    assert study.patient_id == patient.id
    assert other_study.patient_id == other_patient.id
    p = dict(net.p) | {name: principal_of(user) for name, user in users.items()}
    tokens = dict(net.tokens) | {name: bearer(db, user) for name, user in users.items()}
    db.commit()
    return Reads(net, study, other_study, radiologists, read_reports.Archive(blobs, pii), p, tokens)


def reach_read(db: Session, rw: Reads, state: str) -> Consultation:
    """A read brought to ``state`` through the services."""
    c = reads.create_read(
        db,
        rw.p["applicant"],
        ReadIn.model_validate({**rw.body(), "submit": state != "draft"}),
        SETTINGS,
    ).consultation
    if state in ("draft", "submitted"):
        return c
    if state == "cancelled":
        svc.simple_action(db, rw.p["applicant"], c.id, "cancel", "")
        return c
    body = AcceptIn(experts=[rw.radiologists["junior"]], lead=rw.radiologists["junior"])
    svc.accept(db, rw.p["coordinator"], c.id, body)
    if state == "accepted":
        return c
    svc.start(db, rw.p["rad_junior"], c.id)
    if state == "in_progress":
        return c
    read_reports.sign_preliminary(db, rw.p["rad_junior"], c.id, REPORT)
    if state == "preliminary":
        return c
    read_reports.countersign(db, rw.p["rad_senior"], c.id, SignOffIn(), rw.archive)
    assert state == "report_signed", state
    return c

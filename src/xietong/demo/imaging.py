"""The demo's imaging: a synthetic chest CT (:mod:`xietong.demo.phantom`) of the demo
patient 王德福, sent by the county hospital's modality ``DEMO_CT`` and stored through the
archive's ingest, so it is indexed, linked to the patient (by resident ID number) and
audited like any other study. A second load finds the study and adds nothing.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.core.pii import PiiProtector
from xietong.core.storage import BlobStore
from xietong.demo.accounts import DEMO_COUNTY
from xietong.demo.chart_data import PATIENTS
from xietong.demo.phantom import PhantomPatient, study_uid_for, synthetic_ct
from xietong.directory.models import Institution
from xietong.imaging.models import ImagingStudy
from xietong.imaging.service import ingest, node_principal

SENDER_CODE = f"HN-X{DEMO_COUNTY}"  # 新安县人民医院
MODALITY_AE = "DEMO_CT"
PATIENT_KEY = "wang-defu"
SEED = "xietong-demo-ct-wang-defu"
SLICES = 100


def add_demo_imaging(session: Session, blobs: BlobStore, pii: PiiProtector) -> dict[str, int]:
    sender = session.execute(
        select(Institution.id).where(Institution.code == SENDER_CODE)
    ).scalar_one_or_none()
    if sender is None:
        return {"imaging_instances": 0}
    study_uid = study_uid_for(SEED)
    exists = session.execute(
        select(ImagingStudy.id).where(
            ImagingStudy.sender_institution_id == sender, ImagingStudy.study_uid == study_uid
        )
    ).first()
    if exists is not None:
        return {"imaging_instances": 0}
    demo = next(p for p in PATIENTS if p.key == PATIENT_KEY)
    patient = PhantomPatient(
        name="王^德福",
        patient_id="CT" + demo.resident_id[-8:],
        birth_date=demo.birth_date.strftime("%Y%m%d"),
        sex={"1": "M", "2": "F"}.get(demo.sex, "O"),
        other_ids=(demo.resident_id,),
    )
    actor = node_principal(MODALITY_AE, sender, "127.0.0.1")
    stored = 0
    for data in synthetic_ct(patient, seed=SEED, slices=SLICES, accession="DEMO0001"):
        stored += int(
            ingest(session, blobs, pii, data, sender_institution_id=sender, actor=actor).created
        )
    return {"imaging_instances": stored}

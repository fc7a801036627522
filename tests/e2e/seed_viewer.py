"""A CT study for the viewer's browser test: 120 slices of 512x512 of the synthetic phantom,
stored through the archive's ingest at the e2e county hospital, for a patient registered
there, and a radiologist of that hospital to open it.

Run as ``python -m tests.e2e.seed_viewer`` in the live server's environment after
``tests.e2e.seed``; prints the ids as JSON.
"""

from __future__ import annotations

import json
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.e2e.seed import COUNTY_CODE, PASSWORD, Account
from xietong.access.authentication import principal_for
from xietong.config import load_settings
from xietong.core.db import make_engine, make_session_factory, session_scope
from xietong.core.pii import PiiProtector
from xietong.core.storage import LocalBlobStore
from xietong.demo.phantom import PhantomPatient, synthetic_ct
from xietong.directory.models import Institution
from xietong.identity import service as identity
from xietong.identity.roles import Role
from xietong.imaging.service import ingest
from xietong.patients.registration import register_patient
from xietong.patients.schemas import IdentifierIn, PatientIn

VIEWER = Account("e2e.viewer", "冯影像", Role.RADIOLOGIST)
SLICES = 120
MRN = "E2E-CT-0120"  # not the read test's patient (seed_reads)


def seed(session: Session) -> dict[str, int]:
    settings = load_settings()
    county = session.execute(
        select(Institution).where(Institution.code == COUNTY_CODE)
    ).scalar_one()
    user = identity.create_user(
        session,
        username=VIEWER.username,
        password=PASSWORD,
        display_name=VIEWER.display_name,
        roles=[VIEWER.role],
        policy=settings.security,
        institution_id=county.id,
    )
    actor = principal_for(session, user)
    pii = PiiProtector(settings.security.pii_key, settings.security.pii_cipher)
    patient = register_patient(
        session,
        actor,
        pii,
        PatientIn(
            name="冯体模",
            sex="1",
            birth_date=date(1962, 4, 18),
            identifiers=[IdentifierIn(kind="mrn", value=MRN)],
        ),
    ).patient
    blobs = LocalBlobStore(settings.blob_root)
    phantom = PhantomPatient("冯^体模", MRN, "19620418", "M")
    study_id = 0
    for data in synthetic_ct(phantom, seed="e2e-viewer", slices=SLICES, slice_spacing=2.5):
        stored = ingest(session, blobs, pii, data, sender_institution_id=county.id, actor=actor)
        study_id = stored.study.id
    return {"study_id": study_id, "patient_id": patient.id}


def main() -> None:
    engine = make_engine(load_settings().database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            ids = seed(session)
    finally:
        engine.dispose()
    print(json.dumps(ids))


if __name__ == "__main__":
    main()

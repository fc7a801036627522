"""An imaging world: a county hospital sends studies, a township hospital does not see
them, DICOM files from pydicom's wheel (and hostile variants of them)."""

from __future__ import annotations

import struct
from dataclasses import dataclass
from datetime import date
from io import BytesIO
from pathlib import Path

import pytest
from fastapi import FastAPI
from pydicom import dcmread
from pydicom.data import get_testdata_file
from sqlalchemy.orm import Session

from tests import factories
from tests.patients.conftest import RESIDENT_ID_MALE, principal_of
from xietong.access.principal import Principal
from xietong.core.pii import PiiProtector
from xietong.core.storage import LocalBlobStore
from xietong.directory.models import Institution
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.patients.models import Patient
from xietong.patients.registration import register_patient
from xietong.patients.schemas import IdentifierIn, PatientIn

# Several transfer syntaxes: explicit and implicit little endian, big endian, JPEG 2000,
# RLE, JPEG baseline, deflated.
SAMPLES = (
    "CT_small.dcm",
    "MR_small.dcm",
    "MR_small_implicit.dcm",
    "MR_small_bigendian.dcm",
    "JPEG2000.dcm",
    "MR_small_RLE.dcm",
    "SC_rgb_rle.dcm",
    "JPEG-lossy.dcm",
    "image_dfl.dcm",
)


def sample(name: str) -> bytes:
    path = get_testdata_file(name)
    assert path is not None, name
    return Path(str(path)).read_bytes()


def with_attributes(name: str, **values: object) -> bytes:
    """A pydicom sample with attributes changed, written back as Part 10."""
    ds = dcmread(BytesIO(sample(name)))
    for keyword, value in values.items():
        setattr(ds, keyword, value)
    if "SOPInstanceUID" in values:
        ds.file_meta.MediaStorageSOPInstanceUID = values["SOPInstanceUID"]
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


def with_raw_uid(name: str, keyword_tag: bytes, new: bytes) -> bytes:
    """Replace a UI element's value byte for byte (pydicom would refuse to write it)."""
    data = sample(name)
    at = data.find(keyword_tag + b"UI", 300)
    assert at > 0
    (length,) = struct.unpack_from("<H", data, at + 6)
    value = new + (b"\x00" if len(new) % 2 else b"")
    return data[: at + 6] + struct.pack("<H", len(value)) + value + data[at + 8 + length :]


@dataclass
class World:
    db: Session
    county: Institution
    township: Institution
    radiologist: User
    technician: User
    stranger: User
    county_p: Principal
    stranger_p: Principal
    patient: Patient
    pii: PiiProtector
    blobs: LocalBlobStore
    blob_root: Path


@pytest.fixture
def world(db: Session, app: FastAPI, tmp_path: Path) -> World:
    county = factories.institution(db, level="county")
    township = factories.institution(db, level="township")
    radiologist = factories.user(db, Role.RADIOLOGIST, institution=county)
    technician = factories.user(db, Role.APPLICANT_DOCTOR, institution=county)
    stranger = factories.user(db, Role.RADIOLOGIST, institution=township)
    pii: PiiProtector = app.state.services.pii
    patient = register_patient(
        db,
        principal_of(technician),
        pii,
        PatientIn(
            name="张建国",
            sex="1",
            birth_date=date(1980, 1, 1),
            resident_id=RESIDENT_ID_MALE,
            identifiers=[IdentifierIn(kind="mrn", value="CT-0001")],
        ),
    ).patient
    db.commit()
    return World(
        db=db,
        county=county,
        township=township,
        radiologist=radiologist,
        technician=technician,
        stranger=stranger,
        county_p=principal_of(technician),
        stranger_p=principal_of(stranger),
        patient=patient,
        pii=pii,
        blobs=app.state.services.blobs,
        blob_root=app.state.services.settings.blob_root,
    )

"""The demo's synthetic CT: stored through ingest for 王德福 at the county hospital, linked
to the patient by resident ID number, readable by the county's coordinator and listed in
the chart's studies; a second load adds nothing."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session

from xietong.access.authentication import principal_for
from xietong.core.storage import LocalBlobStore
from xietong.demo import build_demo
from xietong.demo import imaging as demo_imaging
from xietong.demo.phantom import DESCRIPTION
from xietong.identity import service as identity
from xietong.imaging import viewer
from xietong.imaging.models import ImagingInstance, ImagingStudy
from xietong.patients.models import Patient


@pytest.fixture
def demo(
    engine: Engine, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Session, LocalBlobStore]]:
    monkeypatch.setattr(demo_imaging, "SLICES", 4)  # the content, not the size, is tested
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    blobs = LocalBlobStore(tmp_path / "blobs")
    yield session, blobs
    session.close()
    outer.rollback()
    connection.close()


def test_the_demo_ct_belongs_to_wang_defu(demo: tuple[Session, LocalBlobStore]) -> None:
    session, blobs = demo

    report = build_demo(session, scale="demo", blobs=blobs)

    assert report.counts["imaging_instances"] == 4
    study = session.execute(select(ImagingStudy)).scalar_one()
    assert study.description == DESCRIPTION
    assert study.instance_count == 4
    assert study.modalities == "CT"
    patient = session.get(Patient, study.patient_id)
    assert patient is not None  # matched by the resident ID number in OtherPatientIDs
    user = identity.find_user(session, "coordinator")
    assert user is not None
    coordinator = principal_for(session, user)
    assert study.sender_institution_id == coordinator.institution_id
    listed = viewer.patient_studies(session, coordinator, patient.id)
    assert [s.id for s in listed] == [study.id]
    [series] = viewer.manifest(session, coordinator, blobs, study.id)["series"]
    assert (series["rows"], series["columns"], series["volume"]) == (512, 512, True)
    assert series["slices"][0]["intercept"] == -1024.0

    again = build_demo(session, scale="demo", blobs=blobs)

    assert again.counts["imaging_instances"] == 0
    assert len(session.execute(select(ImagingInstance.id)).all()) == 4

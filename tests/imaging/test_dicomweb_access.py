"""Every DICOMweb route against users of other institutions, anonymous callers and the
grantee of a share: 404 (or an empty 204 search) with an audited denial, 401, 200."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from tests.helpers import token_for
from tests.imaging.conftest import World, sample, with_attributes
from tests.imaging.test_dicomweb import dataset, multipart
from xietong.access.models import AuditEvent
from xietong.core.clock import now
from xietong.imaging.models import ImagingInstance, ImagingStudy
from xietong.patients.grants import create_grant
from xietong.patients.schemas import GrantIn

CT = dataset("CT_small.dcm")
STUDY, SERIES, SOP = CT.StudyInstanceUID, CT.SeriesInstanceUID, CT.SOPInstanceUID
INSTANCE = f"/dicomweb/studies/{STUDY}/series/{SERIES}/instances/{SOP}"
WADO_URI = f"/dicomweb/wado?requestType=WADO&studyUID={STUDY}&seriesUID={SERIES}&objectUID={SOP}"
# Every read route of the study, at every level.
READ_ROUTES = (
    f"/dicomweb/studies/{STUDY}/series",
    f"/dicomweb/studies/{STUDY}/instances",
    f"/dicomweb/studies/{STUDY}/series/{SERIES}/instances",
    f"/dicomweb/studies/{STUDY}",
    f"/dicomweb/studies/{STUDY}/series/{SERIES}",
    INSTANCE,
    f"/dicomweb/studies/{STUDY}/metadata",
    f"/dicomweb/studies/{STUDY}/series/{SERIES}/metadata",
    f"{INSTANCE}/metadata",
    f"{INSTANCE}/frames/1",
    f"{INSTANCE}/bulkdata/7FE00010",
    f"/dicomweb/studies/{STUDY}/rendered",
    f"/dicomweb/studies/{STUDY}/series/{SERIES}/rendered",
    f"{INSTANCE}/rendered",
    f"{INSTANCE}/frames/1/rendered",
    f"/dicomweb/studies/{STUDY}/thumbnail",
    f"/dicomweb/studies/{STUDY}/series/{SERIES}/thumbnail",
    f"{INSTANCE}/thumbnail",
    f"{INSTANCE}/frames/1/thumbnail",
    WADO_URI,
    WADO_URI + "&contentType=image/jpeg",
)


def count(world: World, *conditions: object) -> int:
    world.db.expire_all()
    return world.db.execute(
        select(func.count()).select_from(AuditEvent).where(*conditions)  # type: ignore[arg-type]
    ).scalar_one()


@pytest.fixture
def stored(world: World, client: TestClient) -> dict[str, str]:
    """The county's CT, linked to the county's patient; the county's token."""
    auth = token_for(client, world.technician.username)
    body, headers = multipart([with_attributes("CT_small.dcm", PatientID="CT-0001")])
    answer = client.post("/dicomweb/studies", content=body, headers={**auth, **headers})
    assert answer.status_code == 200, answer.text
    return auth


def test_every_route_hides_the_study_from_other_institutions(
    world: World, client: TestClient, stored: dict[str, str]
) -> None:
    stranger = token_for(client, world.stranger.username)
    for path in READ_ROUTES:
        before = count(world, AuditEvent.outcome == "denied")
        answer = client.get(path, headers=stranger)
        assert answer.status_code == 404, (path, answer.status_code)
        assert STUDY not in answer.text  # the 404 says nothing about the study
        assert count(world, AuditEvent.outcome == "denied") == before + 1, path
        assert client.get(path, headers=stored).status_code == 200, path
    searches = count(world, AuditEvent.action == "imaging.search")
    assert client.get("/dicomweb/studies", headers=stranger).status_code == 204
    assert (
        client.get(f"/dicomweb/studies?StudyInstanceUID={STUDY}", headers=stranger).status_code
        == 204
    )
    assert count(world, AuditEvent.action == "imaging.search") == searches + 2


def test_every_route_refuses_anonymous_callers(
    world: World, client: TestClient, stored: dict[str, str]
) -> None:
    for path in ("/dicomweb/studies", *READ_ROUTES):
        answer = client.get(path)
        assert answer.status_code == 401, path
        assert answer.headers["www-authenticate"] == "Bearer"
    body, headers = multipart([sample("MR_small.dcm")])
    for path in ("/dicomweb/studies", f"/dicomweb/studies/{STUDY}"):
        assert client.post(path, content=body, headers=headers).status_code == 401
    assert world.db.execute(select(func.count()).select_from(ImagingInstance)).scalar_one() == 1


def test_stow_of_another_institution_never_touches_the_senders_study(
    world: World, client: TestClient, stored: dict[str, str]
) -> None:
    stranger = token_for(client, world.stranger.username)
    body, headers = multipart([sample("CT_small.dcm")])
    answer = client.post(
        f"/dicomweb/studies/{STUDY}", content=body, headers={**stranger, **headers}
    )
    assert answer.status_code == 200
    studies = world.db.execute(
        select(ImagingStudy.sender_institution_id, ImagingStudy.instance_count).where(
            ImagingStudy.study_uid == STUDY
        )
    ).all()
    assert sorted(studies) == sorted([(world.county.id, 1), (world.township.id, 1)])
    stores = count(
        world,
        AuditEvent.action == "imaging.store",
        AuditEvent.actor_institution_id == world.township.id,
    )
    assert stores == 1
    # Its own copy is what it sees: no patient link, no county data.
    meta = client.get(f"{INSTANCE}/metadata", headers=stranger).json()[0]
    assert meta["00100020"].get("Value") != ["CT-0001"]


def test_a_granted_institution_reads_every_route(
    world: World, client: TestClient, stored: dict[str, str]
) -> None:
    study = world.db.execute(
        select(ImagingStudy).where(ImagingStudy.study_uid == STUDY)
    ).scalar_one()
    assert study.patient_id == world.patient.id
    create_grant(
        world.db,
        world.county_p,
        GrantIn(
            patient_id=world.patient.id,
            grantee_institution_id=world.township.id,
            scope="items",
            items=[{"kind": "imaging_study", "id": study.id}],
            purpose="会诊",
            expires_at=now() + timedelta(days=3),
        ),
    )
    world.db.commit()
    grantee = token_for(client, world.stranger.username)
    for path in READ_ROUTES:
        before = count(world, AuditEvent.actor_institution_id == world.township.id)
        assert client.get(path, headers=grantee).status_code == 200, path
        assert count(world, AuditEvent.actor_institution_id == world.township.id) > before, path
    listed = client.get("/dicomweb/studies", headers=grantee)
    assert [s["0020000D"]["Value"][0] for s in listed.json()] == [STUDY]

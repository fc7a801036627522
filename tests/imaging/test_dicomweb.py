"""DICOMweb through a real client (dicomweb-client, on a requests session whose adapter
calls the app): STOW-RS, QIDO-RS, WADO-RS; other institutions see nothing, audited."""

from __future__ import annotations

from io import BytesIO
from typing import Any
from urllib.parse import quote

import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from fastapi.testclient import TestClient
from pydicom import dcmread
from pydicom.dataset import Dataset
from requests.adapters import BaseAdapter
from requests.structures import CaseInsensitiveDict
from sqlalchemy import func, select

from tests.helpers import token_for
from tests.imaging.conftest import World, sample, with_attributes, with_raw_uid
from xietong.access.models import AuditEvent
from xietong.imaging.models import ImagingInstance

BASE = "http://testserver/dicomweb"


class AppAdapter(BaseAdapter):
    """requests → the ASGI app through Starlette's TestClient."""

    def __init__(self, client: TestClient) -> None:
        super().__init__()
        self.client = client

    def send(self, request: requests.PreparedRequest, **_: Any) -> requests.Response:  # type: ignore[override]
        body = request.body
        if isinstance(body, str):
            body = body.encode()
        answer = self.client.request(
            str(request.method),
            str(request.url),
            content=body,
            headers=dict(request.headers),
        )
        response = requests.Response()
        response.status_code = answer.status_code
        response._content = answer.content
        response.headers = CaseInsensitiveDict(answer.headers)
        response.url = str(request.url)
        response.request = request
        response.reason = answer.reason_phrase
        return response

    def close(self) -> None:
        pass


def dicomweb(client: TestClient, auth: dict[str, str]) -> DICOMwebClient:
    session = requests.Session()
    session.mount("http://testserver", AppAdapter(client))
    return DICOMwebClient(url=BASE, session=session, headers=auth)


def dataset(name: str) -> Dataset:
    return dcmread(BytesIO(sample(name)))


def multipart(files: list[bytes], boundary: str = "xietong-test") -> tuple[bytes, dict[str, str]]:
    body = b"".join(
        b"--" + boundary.encode() + b"\r\nContent-Type: application/dicom\r\n\r\n" + f + b"\r\n"
        for f in files
    )
    body += b"--" + boundary.encode() + b"--\r\n"
    headers = {"Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}'}
    return body, headers


@pytest.fixture
def auth(world: World, client: TestClient) -> dict[str, str]:
    return token_for(client, world.technician.username)


@pytest.fixture
def stranger(world: World, client: TestClient) -> dict[str, str]:
    return token_for(client, world.stranger.username)


def test_stow_qido_wado_round_trip(world: World, client: TestClient, auth: dict[str, str]) -> None:
    web = dicomweb(client, auth)
    ct, mr = dataset("CT_small.dcm"), dataset("MR_small_RLE.dcm")
    answer = web.store_instances([ct, mr])
    assert len(answer.ReferencedSOPSequence) == 2
    assert "FailedSOPSequence" not in answer
    studies = web.search_for_studies()
    assert {s["0020000D"]["Value"][0] for s in studies} == {
        ct.StudyInstanceUID,
        mr.StudyInstanceUID,
    }
    ct_study = next(s for s in studies if s["0020000D"]["Value"][0] == ct.StudyInstanceUID)
    assert ct_study["00201206"]["Value"] == [1]
    assert ct_study["00201208"]["Value"] == [1]
    assert ct_study["00080061"]["Value"] == ["CT"]
    series = web.search_for_series(ct.StudyInstanceUID)
    assert series[0]["0020000E"]["Value"] == [ct.SeriesInstanceUID]
    instances = web.search_for_instances(ct.StudyInstanceUID, ct.SeriesInstanceUID)
    assert instances[0]["00080018"]["Value"] == [ct.SOPInstanceUID]
    back = web.retrieve_instance(ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID)
    assert back.SOPInstanceUID == ct.SOPInstanceUID
    assert back.pixel_array.shape == (128, 128)
    rle = web.retrieve_instance(mr.StudyInstanceUID, mr.SeriesInstanceUID, mr.SOPInstanceUID)
    assert rle.pixel_array.shape == (64, 64)  # decoded through pylibjpeg-rle
    meta = web.retrieve_instance_metadata(
        ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID
    )
    assert meta["00100010"]["Value"][0]["Alphabetic"] == str(ct.PatientName)
    assert "BulkDataURI" in meta["7FE00010"]


def test_qido_matching(world: World, client: TestClient, auth: dict[str, str]) -> None:
    web = dicomweb(client, auth)
    chinese = dataset("CT_small.dcm")
    chinese.SpecificCharacterSet = "ISO_IR 192"
    chinese.PatientName = "张^建国"
    chinese.StudyDate = "20261120"
    chinese.AccessionNumber = "ACC1"
    web.store_instances([chinese, dataset("MR_small.dcm")])

    def uids(**filters: Any) -> list[str]:
        return sorted(s["0020000D"]["Value"][0] for s in web.search_for_studies(**filters))

    ct_uid = chinese.StudyInstanceUID
    assert uids(search_filters={"PatientName": "张*"}) == [ct_uid]
    assert uids(search_filters={"PatientName": "张^建?"}) == [ct_uid]
    assert uids(search_filters={"StudyDate": "20261101-20261130"}) == [ct_uid]
    assert uids(search_filters={"StudyDate": "20261121-"}) == []
    assert uids(search_filters={"ModalitiesInStudy": "MR"}) != [ct_uid]
    assert uids(search_filters={"AccessionNumber": "ACC1"}) == [ct_uid]
    assert uids(search_filters={"StudyInstanceUID": ct_uid}) == [ct_uid]
    assert len(uids(limit=1)) == 1
    # Percent-encoded UTF-8 straight from the wire; 204 for nothing found.
    raw = client.get(f"/dicomweb/studies?PatientName={quote('张*')}", headers=auth)
    assert raw.status_code == 200
    assert raw.headers["content-type"] == "application/dicom+json"
    assert raw.json()[0]["00100010"]["Value"][0]["Alphabetic"] == "张^建国"
    empty = client.get("/dicomweb/studies?PatientName=Nobody", headers=auth)
    assert empty.status_code == 204
    fuzzy = client.get("/dicomweb/studies?fuzzymatching=true&limit=1", headers=auth)
    assert "299" in fuzzy.headers["warning"]
    included = client.get("/dicomweb/studies?includefield=StudyDescription", headers=auth)
    assert all("00081030" in s for s in included.json())
    assert client.get("/dicomweb/studies", headers={**auth, "Accept": "image/png"}).status_code == (
        406
    )


def test_stow_reports_failures(world: World, client: TestClient, auth: dict[str, str]) -> None:
    good = sample("CT_small.dcm")
    hostile = with_raw_uid("MR_small.dcm", b"\x08\x00\x18\x00", b"../../etc/passwd")
    truncated = sample("MR_small.dcm")[:2000]
    body, headers = multipart([good, hostile, truncated])
    response = client.post("/dicomweb/studies", content=body, headers={**auth, **headers})
    assert response.status_code == 202, response.text
    answer = response.json()
    assert len(answer["00081199"]["Value"]) == 1
    failed = answer["00081198"]["Value"]
    assert [f["00081197"]["Value"][0] for f in failed] == [0xC000, 0xC000]
    assert world.db.execute(select(func.count()).select_from(ImagingInstance)).scalar_one() == 1
    # Nothing stored: 409; the same instance again, identical: accepted.
    body, headers = multipart([hostile])
    response = client.post("/dicomweb/studies", content=body, headers={**auth, **headers})
    assert response.status_code == 409
    body, headers = multipart([good])
    response = client.post("/dicomweb/studies", content=body, headers={**auth, **headers})
    assert response.status_code == 200
    changed = with_attributes("CT_small.dcm", StudyDescription="other")
    body, headers = multipart([changed])
    response = client.post("/dicomweb/studies", content=body, headers={**auth, **headers})
    assert response.status_code == 409
    assert response.json()["00081198"]["Value"][0]["00081197"]["Value"] == [0x0111]


def test_stow_refuses_other_media_types(client: TestClient, auth: dict[str, str]) -> None:
    response = client.post(
        "/dicomweb/studies",
        content=sample("CT_small.dcm"),
        headers={**auth, "Content-Type": "application/dicom"},
    )
    assert response.status_code == 415
    body, headers = multipart([sample("CT_small.dcm")])
    headers["Content-Type"] = headers["Content-Type"].replace("application/dicom", "image/jpeg")
    response = client.post("/dicomweb/studies", content=body, headers={**auth, **headers})
    assert response.status_code == 415


def test_other_institutions_see_nothing(
    world: World, client: TestClient, auth: dict[str, str], stranger: dict[str, str]
) -> None:
    ct = dataset("CT_small.dcm")
    dicomweb(client, auth).store_instances([ct])
    study, series, sop = ct.StudyInstanceUID, ct.SeriesInstanceUID, ct.SOPInstanceUID
    assert client.get("/dicomweb/studies", headers=stranger).status_code == 204
    paths = [
        f"/dicomweb/studies/{study}/series",
        f"/dicomweb/studies/{study}/instances",
        f"/dicomweb/studies/{study}/series/{series}/instances",
        f"/dicomweb/studies/{study}",
        f"/dicomweb/studies/{study}/series/{series}",
        f"/dicomweb/studies/{study}/series/{series}/instances/{sop}",
        f"/dicomweb/studies/{study}/series/{series}/instances/{sop}/metadata",
    ]
    for path in paths:
        assert client.get(path, headers=stranger).status_code == 404, path
        assert client.get(path, headers=auth).status_code == 200, path
    denials = world.db.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.outcome == "denied", AuditEvent.object_kind == "imaging_study")
    ).scalar_one()
    assert denials == len(paths)
    # A stranger cannot store into the sender's name either: its own institution is the sender.
    body, headers = multipart([sample("CT_small.dcm")])
    response = client.post("/dicomweb/studies", content=body, headers={**stranger, **headers})
    assert response.status_code == 200
    assert client.get(f"/dicomweb/studies/{study}/series", headers=stranger).status_code == 200
    assert client.get("/dicomweb/studies").status_code == 401

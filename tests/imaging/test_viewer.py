"""The viewer's routes: manifest order and geometry, pixels equal to pydicom's decoding
(native and compressed), thumbnails, tags, caching, hostile parameters, and access: a user
of another institution gets the audited 404 on every route, a visitor is sent to sign in."""

from __future__ import annotations

import random
from io import BytesIO

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image
from pydicom import dcmread
from pydicom.uid import generate_uid
from sqlalchemy import func, select

from tests.helpers import page_login
from tests.imaging.conftest import World, with_attributes
from xietong.access.models import AuditEvent
from xietong.demo.phantom import PhantomPatient, synthetic_ct
from xietong.imaging import service
from xietong.imaging.models import ImagingInstance, ImagingSeries, ImagingStudy

PATIENT = PhantomPatient("测试^体模", "CT-0001", "19800101", "M")


def store(world: World, files: list[bytes]) -> ImagingStudy:
    study = None
    for data in files:
        study = service.ingest(
            world.db,
            world.blobs,
            world.pii,
            data,
            sender_institution_id=world.county.id,
            actor=world.county_p,
        ).study
    world.db.commit()
    assert study is not None
    return study


def phantom(slices: int, seed: str = "viewer-test") -> list[bytes]:
    return list(synthetic_ct(PATIENT, seed=seed, slices=slices, size=64))


def renumbered(files: list[bytes], drop_position: bool = False) -> list[bytes]:
    """The slices numbered against their positions (the last slice is number 1)."""
    out = []
    for index, data in enumerate(files):
        ds = dcmread(BytesIO(data))
        ds.InstanceNumber = len(files) - index
        if drop_position:
            del ds.ImagePositionPatient
        buffer = BytesIO()
        ds.save_as(buffer, enforce_file_format=True)
        out.append(buffer.getvalue())
    return out


def unique(name: str) -> bytes:
    """A pydicom sample under fresh UIDs (several samples share theirs)."""
    return with_attributes(
        name,
        SOPInstanceUID=generate_uid(),
        StudyInstanceUID=generate_uid(),
        SeriesInstanceUID=generate_uid(),
    )


@pytest.fixture
def signed_in(world: World, client: TestClient) -> TestClient:
    page_login(client, world.technician.username)
    return client


def test_manifest_orders_slices_along_the_normal(world: World, signed_in: TestClient) -> None:
    files = renumbered(phantom(7))
    shuffled = files[:]
    random.Random(6).shuffle(shuffled)
    study = store(world, shuffled)

    response = signed_in.get(f"/imaging/studies/{study.id}/manifest.json")

    assert response.status_code == 200
    assert response.headers["cache-control"] == "no-store"
    [series] = response.json()["series"]
    # Ordered by position (feet to head), whatever the instance numbers say.
    zs = [s["position"][2] for s in series["slices"]]
    assert zs == sorted(zs)
    assert len(zs) == 7
    assert [s["number"] for s in series["slices"]] == [7, 6, 5, 4, 3, 2, 1]
    assert series["slice_spacing"] == 3.0
    assert series["volume"] is True
    assert series["rows"] == series["columns"] == 64
    assert series["sample_type"] == "int16"
    assert series["pixel_spacing"] == [pytest.approx(360 / 64), pytest.approx(360 / 64)]
    first = series["slices"][0]
    assert (first["slope"], first["intercept"], first["window"]) == (1.0, -1024.0, [40.0, 400.0])
    assert series["modality"] == "CT"
    assert series["thumbnail"] == f"/imaging/series/{series['id']}/thumbnail.png"


def test_without_positions_the_instance_number_decides(world: World, signed_in: TestClient) -> None:
    study = store(world, renumbered(phantom(4, seed="no-position"), drop_position=True))

    [series] = signed_in.get(f"/imaging/studies/{study.id}/manifest.json").json()["series"]

    assert [s["number"] for s in series["slices"]] == [1, 2, 3, 4]
    assert series["slice_spacing"] == 3.0  # the declared slice thickness
    assert all(s["position"] is None for s in series["slices"])


@pytest.mark.parametrize(
    "name",
    [
        "CT_small.dcm",
        "MR_small.dcm",
        "MR_small_implicit.dcm",
        "MR_small_bigendian.dcm",
        "JPEG2000.dcm",
        "MR_small_RLE.dcm",
        "SC_rgb_rle.dcm",
        "SC_rgb_jpeg_dcmtk.dcm",
        "image_dfl.dcm",
    ],
)
def test_pixels_are_what_pydicom_decodes(world: World, signed_in: TestClient, name: str) -> None:
    data = unique(name)
    store(world, [data])
    instance = world.db.execute(select(ImagingInstance)).scalar_one()
    expected = dcmread(BytesIO(data)).pixel_array

    response = signed_in.get(f"/imaging/instances/{instance.id}/pixels")

    assert response.status_code == 200, response.text
    kind = response.headers["x-sample-type"]
    assert (int(response.headers["x-rows"]), int(response.headers["x-columns"])) == (
        expected.shape[:2]
    )
    if expected.ndim == 3:
        assert kind == "rgb8"
        assert response.content == expected.astype(np.uint8).tobytes()
    else:
        assert kind == {"i": "int", "u": "uint"}[expected.dtype.kind] + str(
            expected.dtype.itemsize * 8
        )
        assert response.content == expected.astype(expected.dtype.newbyteorder("<")).tobytes()
    assert response.headers["cache-control"] == "private, max-age=86400, immutable"
    etag = response.headers["etag"]
    again = signed_in.get(
        f"/imaging/instances/{instance.id}/pixels", headers={"If-None-Match": etag}
    )
    assert again.status_code == 304
    assert again.content == b""


def test_a_codec_that_is_not_installed_is_a_415(world: World, signed_in: TestClient) -> None:
    store(world, [unique("JPEG-lossy.dcm")])  # 12-bit JPEG: only a GPL decoder reads it
    instance = world.db.execute(select(ImagingInstance)).scalar_one()

    response = signed_in.get(f"/imaging/instances/{instance.id}/pixels")

    assert response.status_code == 415
    error = response.json()["error"]
    assert error["code"] == "pixels_undecodable"
    assert "1.2.840.10008.1.2.4.51" in error["message"]


def test_frames_thumbnail_tags_and_page(world: World, signed_in: TestClient) -> None:
    study = store(world, phantom(3, seed="tags"))
    series = world.db.execute(select(ImagingSeries)).scalar_one()
    instance = world.db.execute(select(ImagingInstance).limit(1)).scalar_one()

    thumb = signed_in.get(f"/imaging/series/{series.id}/thumbnail.png")
    assert thumb.status_code == 200
    assert thumb.headers["content-type"] == "image/png"
    assert max(Image.open(BytesIO(thumb.content)).size) == 64  # never enlarged
    tags = signed_in.get(f"/imaging/instances/{instance.id}/tags.json").json()["tags"]
    by_keyword = {t["keyword"]: t for t in tags}
    assert by_keyword["PatientName"]["value"] == "测试^体模"
    assert by_keyword["TransferSyntaxUID"]["tag"] == "(0002,0010)"
    assert "PixelData" not in by_keyword
    assert by_keyword["ImageType"]["value"] == "DERIVED\\SECONDARY\\AXIAL"
    page = signed_in.get(f"/imaging/studies/{study.id}/view")
    assert page.status_code == 200
    assert f'data-manifest="/imaging/studies/{study.id}/manifest.json"' in page.text
    assert 'src="/static/viewer/viewer.js"' in page.text
    from_read = signed_in.get(f"/imaging/studies/{study.id}/view?read=7")
    assert 'href="/reads/7"' in from_read.text
    assert signed_in.get(f"/imaging/studies/{study.id}/view?read=x").status_code == 422
    chart = signed_in.get(f"/patients/{world.patient.id}/chart")
    assert chart.status_code == 200
    # The phantom's PatientID is the registered patient's MRN: the study is in the chart.
    assert f'href="/imaging/studies/{study.id}/view"' in chart.text


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/imaging/instances/{i}/pixels?frame=0", 422),
        ("/imaging/instances/{i}/pixels?frame=2", 422),
        ("/imaging/instances/{i}/pixels?frame=x", 422),
        ("/imaging/instances/{i}/pixels?frame=99999999999", 422),
        ("/imaging/instances/0/pixels", 422),
        ("/imaging/instances/99999999999999/pixels", 422),
        ("/imaging/instances/..%2F..%2Fetc/pixels", 404),
        ("/imaging/studies/-1/manifest.json", 422),
        ("/imaging/studies/987654/manifest.json", 404),
        ("/imaging/series/987654/thumbnail.png", 404),
        ("/imaging/instances/987654/tags.json", 404),
    ],
)
def test_hostile_parameters(world: World, signed_in: TestClient, path: str, status: int) -> None:
    store(world, phantom(1, seed="hostile"))
    instance = world.db.execute(select(ImagingInstance)).scalar_one()

    response = signed_in.get(path.format(i=instance.id))

    assert response.status_code == status, response.text
    assert "error" in response.json()


def test_another_institution_gets_404_on_every_route(world: World, client: TestClient) -> None:
    study = store(world, phantom(2, seed="access"))
    series = world.db.execute(select(ImagingSeries)).scalar_one()
    instance = world.db.execute(select(ImagingInstance).limit(1)).scalar_one()
    paths = [
        f"/imaging/studies/{study.id}/view",
        f"/imaging/studies/{study.id}/manifest.json",
        f"/imaging/instances/{instance.id}/pixels",
        f"/imaging/series/{series.id}/thumbnail.png",
        f"/imaging/instances/{instance.id}/tags.json",
    ]
    for path in paths:  # a visitor is sent to sign in
        response = client.get(path, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")

    page_login(client, world.stranger.username)
    for path in paths:
        response = client.get(path)
        assert response.status_code == 404, path
        assert str(study.id) not in response.text or path.endswith("/view")
    denials = world.db.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.outcome == "denied", AuditEvent.action.like("imaging.viewer.%"))
    ).scalar_one()
    assert denials == len(paths)
    opened = world.db.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.outcome == "success", AuditEvent.action.like("imaging.viewer.%"))
    ).scalar_one()
    assert opened == 0


def test_each_read_is_audited(world: World, signed_in: TestClient) -> None:
    study = store(world, phantom(1, seed="audit"))
    instance = world.db.execute(select(ImagingInstance)).scalar_one()

    signed_in.get(f"/imaging/studies/{study.id}/manifest.json")
    signed_in.get(f"/imaging/instances/{instance.id}/pixels")

    actions = (
        world.db.execute(
            select(AuditEvent.action)
            .where(AuditEvent.object_kind == "imaging_study", AuditEvent.outcome == "success")
            .order_by(AuditEvent.id)
        )
        .scalars()
        .all()
    )
    assert actions[-2:] == ["imaging.viewer.open", "imaging.viewer.pixels"]

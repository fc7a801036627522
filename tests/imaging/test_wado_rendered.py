"""Rendered images, thumbnails and WADO-URI; hostile frame numbers, windows, viewports and
paths."""

from __future__ import annotations

from copy import deepcopy
from io import BytesIO
from typing import Any

import numpy as np
import pytest
from dicomweb_client.api import DICOMwebClient
from fastapi.testclient import TestClient
from PIL import Image
from pydicom.dataset import Dataset
from pydicom.uid import generate_uid

from tests.imaging import test_wado
from tests.imaging.conftest import sample
from tests.imaging.test_dicomweb import dataset
from tests.imaging.test_wado import parts, stored, uids, url
from xietong.imaging import retrieve

# The fixtures of test_wado: a token of the sending institution and a client using it.
auth, web = test_wado.auth, test_wado.web

PNG = {"Accept": "image/png"}


def image(data: bytes, kind: str = "PNG") -> Image.Image:
    picture = Image.open(BytesIO(data))
    assert picture.format == kind
    return picture


def pixels_of(data: bytes) -> Any:
    return np.asarray(image(data))


def test_instance_rendered_as_jpeg_and_png(
    web: DICOMwebClient, client: TestClient, auth: dict[str, str]
) -> None:
    ct = stored(web, "CT_small.dcm")
    jpeg = web.retrieve_instance_rendered(*uids(ct), media_types=("image/jpeg",))
    assert image(jpeg, "JPEG").size == (128, 128)
    answer = client.get(url(ct, "/rendered"), headers=auth)
    assert answer.headers["content-type"] == "image/jpeg"
    png = client.get(url(ct, "/rendered?viewport=64,32"), headers={**auth, **PNG})
    assert image(png.content).size == (32, 32)  # fitted, aspect kept
    crop = client.get(url(ct, "/rendered?viewport=40,40,0,0,64,32"), headers={**auth, **PNG})
    assert image(crop.content).size == (40, 20)
    quality = client.get(url(ct, "/rendered?quality=5"), headers=auth)
    assert len(quality.content) < len(answer.content)


def test_window_is_applied_after_the_modality_lut(
    web: DICOMwebClient, client: TestClient, auth: dict[str, str]
) -> None:
    ct = dataset("CT_small.dcm")
    ct.WindowCenter, ct.WindowWidth = 40, 400
    web.store_instances([ct])
    hu = ct.pixel_array * float(ct.RescaleSlope) + float(ct.RescaleIntercept)
    answer = client.get(url(ct, "/rendered?window=40,400,linear-exact"), headers={**auth, **PNG})
    expected = np.clip(np.rint(((hu - 40) / 400 + 0.5) * 255), 0, 255)
    assert np.array_equal(pixels_of(answer.content), expected.astype(np.uint8))
    # No window asked: the file's WindowCenter/Width (linear).
    c, w = float(ct.WindowCenter), float(ct.WindowWidth)
    default = client.get(url(ct, "/rendered"), headers={**auth, **PNG})
    linear = np.clip(np.rint(((hu - (c - 0.5)) / (w - 1) + 0.5) * 255), 0, 255)
    assert np.array_equal(pixels_of(default.content), linear.astype(np.uint8))


def test_monochrome1_is_inverted_and_colour_passes_through(
    web: DICOMwebClient, client: TestClient, auth: dict[str, str]
) -> None:
    mr = stored(web, "MR_small.dcm")
    inverted = deepcopy(mr)
    inverted.PhotometricInterpretation = "MONOCHROME1"
    inverted.SOPInstanceUID = generate_uid()
    inverted.file_meta.MediaStorageSOPInstanceUID = inverted.SOPInstanceUID
    web.store_instances([inverted])
    window = "?window=600,1200,linear"
    two = pixels_of(client.get(url(mr, f"/rendered{window}"), headers={**auth, **PNG}).content)
    one = client.get(url(inverted, f"/rendered{window}"), headers={**auth, **PNG})
    assert np.array_equal(pixels_of(one.content), 255 - two)
    rgb = stored(web, "SC_rgb_rle.dcm")
    colour = client.get(url(rgb, "/rendered"), headers={**auth, **PNG})
    assert np.array_equal(pixels_of(colour.content), rgb.pixel_array)


def test_multi_image_levels_are_multipart(
    web: DICOMwebClient, client: TestClient, auth: dict[str, str]
) -> None:
    ybr = stored(web, "examples_ybr_color.dcm")  # 30 frames of JPEG baseline
    study, series, _ = uids(ybr)
    rendered = parts(client.get(url(ybr, "/rendered"), headers=auth))
    assert len(rendered) == 30
    assert {kind for kind, _ in rendered} == {"image/jpeg"}
    assert image(rendered[0][1], "JPEG").size == (320, 240)
    for path in (
        f"/dicomweb/studies/{study}/rendered",
        f"/dicomweb/studies/{study}/series/{series}/rendered",
    ):
        multipart = {**auth, "Accept": 'multipart/related; type="image/png"'}
        assert len(parts(client.get(path + "?viewport=32,32", headers=multipart))) == 30
    some = parts(client.get(url(ybr, "/frames/2,30/rendered"), headers=auth))
    assert len(some) == 2
    one = client.get(url(ybr, "/frames/30/rendered"), headers={**auth, **PNG})
    assert image(one.content).size == (320, 240)


def test_thumbnails_at_every_level(
    web: DICOMwebClient, client: TestClient, auth: dict[str, str]
) -> None:
    ct = stored(web, "CT_small.dcm")
    ybr = stored(web, "examples_ybr_color.dcm")
    study, series, _ = uids(ct)
    for path in (
        f"/dicomweb/studies/{study}/thumbnail",
        f"/dicomweb/studies/{study}/series/{series}/thumbnail",
        url(ct, "/thumbnail"),
        url(ct, "/frames/1/thumbnail"),
    ):
        answer = client.get(path, headers=auth)
        assert answer.status_code == 200, path
        assert image(answer.content, "JPEG").size == (128, 128)
    small = client.get(url(ybr, "/frames/3/thumbnail?viewport=64,64"), headers={**auth, **PNG})
    assert image(small.content).size == (64, 48)
    assert client.get(url(ybr, "/frames/31/thumbnail"), headers=auth).status_code == 404


def test_wado_uri(web: DICOMwebClient, client: TestClient, auth: dict[str, str]) -> None:
    j2k, ybr = stored(web, "JPEG2000.dcm"), stored(web, "examples_ybr_color.dcm")

    def wado(ds: Dataset, **params: str) -> Any:
        study, series, sop = uids(ds)
        query = {"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop}
        return client.get("/dicomweb/wado", params={**query, **params}, headers=auth)

    whole = wado(j2k)
    assert whole.headers["content-type"] == "application/dicom"
    assert whole.content == sample("JPEG2000.dcm")
    explicit = wado(j2k, transferSyntax="1.2.840.10008.1.2.1")
    assert b"1.2.840.10008.1.2.1\x00" in explicit.content[:400]
    framed = wado(ybr, contentType="image/png", frameNumber="30", rows="60", columns="100")
    assert image(framed.content).size == (80, 60)
    windowed = wado(j2k, contentType="image/jpeg", windowCenter="0", windowWidth="2000")
    assert image(windowed.content, "JPEG").size == (256, 1024)
    for params, status, field in (
        ({"requestType": "WADO-RS"}, 400, "requestType"),
        ({"windowCenter": "10"}, 400, "windowCenter"),
        ({"contentType": "image/png", "windowCenter": "10"}, 400, "windowWidth"),
        ({"contentType": "image/png", "frameNumber": "31"}, 404, "frameNumber"),
        ({"contentType": "image/png", "frameNumber": "0"}, 400, "frameNumber"),
        ({"contentType": "image/png", "rows": "100000"}, 400, "rows"),
        (
            {"contentType": "image/png", "windowWidth": "nan", "windowCenter": "1"},
            400,
            "windowWidth",
        ),
        ({"anonymize": "yes"}, 400, "anonymize"),
        ({"contentType": "text/html"}, 406, "accept"),
        ({"transferSyntax": "1.2.840.10008.1.2.4.70"}, 406, "accept"),
        ({"transferSyntax": "../x"}, 400, "transferSyntax"),
        ({"studyUID": "1.2.3/../../etc"}, 400, "studyUID"),
    ):
        answer = wado(ybr, **params)
        assert answer.status_code == status, (params, answer.text)
        if answer.headers["content-type"].startswith("application/json"):
            assert answer.json()["error"]["field"] == field, params
    missing = client.get("/dicomweb/wado?requestType=WADO", headers=auth)
    assert missing.json()["error"]["field"] == "studyUID"


HOSTILE_FRAMES = ("0", "-1", "1;2", "1,,2", "1.5", ",".join(["1"] * 1001), "9" * 12, "")


def test_hostile_requests_are_400_or_404_and_read_no_file(
    web: DICOMwebClient,
    client: TestClient,
    auth: dict[str, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ct = stored(web, "CT_small.dcm")
    reads: list[str] = []
    original = retrieve.read_bytes

    def counted(blobs: Any, instance: Any) -> bytes:
        reads.append(instance.blob_key)
        return original(blobs, instance)

    monkeypatch.setattr(retrieve, "read_bytes", counted)
    study, series, sop = uids(ct)
    for frames in HOSTILE_FRAMES:
        for tail in (f"/frames/{frames}", f"/frames/{frames}/rendered"):
            answer = client.get(url(ct, tail), headers=auth)
            assert answer.status_code in (400, 404), (tail, answer.status_code)
            if answer.status_code == 400:
                assert answer.json()["error"]["field"] == "frames"
    for query in (
        "window=nan,400",
        "window=40,inf",
        "window=1e308,400",
        "window=40,0",
        "window=40,400,cubic",
        "window=40",
        "viewport=100000,100000",
        "viewport=0,10",
        "viewport=10,10,1,2",
        "quality=0",
        "quality=101",
    ):
        answer = client.get(url(ct, f"/rendered?{query}"), headers=auth)
        assert answer.status_code == 400, query
        assert answer.json()["error"]["field"] == query.split("=")[0], query
    for path in (
        f"/dicomweb/studies/{study}/series/{series}/instances/..%2F..%2Fetc/frames/1",
        f"/dicomweb/studies/%2e%2e/series/{series}/instances/{sop}/rendered",
        f"/dicomweb/studies/{study}/series/%2e%2e%2f%2e%2e/thumbnail",
        f"/dicomweb/studies/{study}/../../../etc/passwd",
        f"/dicomweb/studies/{study}/series/{series}/instances/{sop}/bulkdata/../../etc/passwd",
        f"/dicomweb/studies/{study}/series/{series}/instances/{sop}/bulkdata/%2e%2e%2fx",
        f"/dicomweb/studies/{study}/series/{series}/instances/{sop}/bulkdata/7FE00010/0/1",
    ):
        assert client.get(path, headers=auth).status_code in (400, 404), path
    assert reads == []
    assert client.get(url(ct, "/frames/1"), headers=auth).status_code == 200
    assert len(reads) == 1
    # A frame beyond the last: 404 naming the field.
    beyond = client.get(url(ct, "/frames/2"), headers=auth)
    assert beyond.status_code == 404
    assert beyond.json()["error"]["field"] == "frames"
    big = client.get(url(ct, "/frames/99999"), headers=auth)
    assert big.status_code == 404


def test_a_frame_claiming_huge_dimensions_is_not_decoded(
    web: DICOMwebClient, client: TestClient, auth: dict[str, str]
) -> None:
    huge = dataset("JPEG2000.dcm")
    huge.Rows = huge.Columns = 65535
    web.store_instances([huge])
    for tail in ("/rendered", "/thumbnail"):
        answer = client.get(url(huge, tail), headers=auth)
        assert answer.status_code == 406, tail
        assert answer.json()["error"]["code"] == "pixel_undecodable"
    decoded = {"Accept": 'multipart/related; type="application/octet-stream"'}
    assert client.get(url(huge, "/frames/1"), headers={**auth, **decoded}).status_code == 406
    assert client.get(url(huge, "/frames/1"), headers=auth).status_code == 200  # as stored


@pytest.mark.parametrize("function", ["linear", "linear-exact", "sigmoid"])
@pytest.mark.parametrize("signed", [False, True])
def test_windowing_through_the_table_gives_the_per_pixel_bytes(function: str, signed: bool) -> None:
    """The table of stored values (_window_lut) against the per-pixel computation."""
    from xietong.imaging import pixels

    rng = np.random.default_rng(7)
    dtype = np.int16 if signed else np.uint16
    low = -1024 if signed else 0
    array = rng.integers(low, low + 3000, size=(64, 64)).astype(dtype)
    ds = Dataset()
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.RescaleSlope, ds.RescaleIntercept = 1.5, -100
    window = pixels.Window(300.0, 1200.0, function)
    table = pixels._window_lut(ds, array, window)
    values = np.asarray(pixels.apply_modality_lut(array, ds), dtype=np.float64)
    assert table is not None
    assert np.array_equal(table, pixels._apply_window(values, window))
    wide = np.array([[0, 70_000]], dtype=np.uint32)  # too wide a span: per pixel
    assert pixels._window_lut(ds, wide, window) is None

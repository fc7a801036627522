"""WADO-RS frames, transcoding, metadata and bulk data through dicomweb-client, with the
DICOM files in pydicom's wheel in several transfer syntaxes."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import numpy as np
import pytest
from dicomweb_client.api import DICOMwebClient
from fastapi.testclient import TestClient
from numpy.typing import NDArray
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.uid import generate_uid
from requests import HTTPError

from tests.helpers import token_for
from tests.imaging.conftest import World, sample
from tests.imaging.test_dicomweb import dataset, dicomweb

EXPLICIT_LE = "1.2.840.10008.1.2.1"
DECODED = (("application/octet-stream", EXPLICIT_LE),)
# name, frames asked for
DECODABLE = (
    ("CT_small.dcm", [1]),  # explicit little endian
    ("MR_small_implicit.dcm", [1]),
    ("MR_small_bigendian.dcm", [1]),
    ("image_dfl.dcm", [1]),  # deflated
    ("JPEG2000.dcm", [1]),
    ("MR_small_RLE.dcm", [1]),
    ("SC_rgb_jpeg_dcmtk.dcm", [1]),  # JPEG baseline, YBR_FULL
    ("SC_rgb_rle_2frame.dcm", [2, 1]),
    ("examples_ybr_color.dcm", [1, 15, 30]),  # JPEG baseline, 30 frames
    ("rtdose.dcm", [3, 15]),  # implicit, 15 frames of 32 bits
)
JPEG_LS = "MR_small_jpeg_ls_lossless.dcm"
# JPEG Lossless (process 14, SV1): no non-GPL decoder is installed, so it is served as stored.
JPEG_LOSSLESS = "SC_rgb_jpeg_gdcm.dcm"


@pytest.fixture
def auth(world: World, client: TestClient) -> dict[str, str]:
    return token_for(client, world.technician.username)


@pytest.fixture
def web(client: TestClient, auth: dict[str, str]) -> DICOMwebClient:
    return dicomweb(client, auth)


def stored(web: DICOMwebClient, name: str, fresh: bool = False) -> Dataset:
    """A sample stored through STOW-RS (with a new SOP Instance UID if ``fresh``: several
    MR samples share theirs)."""
    ds = dataset(name)
    if fresh:
        ds.SOPInstanceUID = generate_uid()
        ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    answer = web.store_instances([ds])
    assert "FailedSOPSequence" not in answer, name
    return ds


def uids(ds: Dataset) -> tuple[str, str, str]:
    return ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID


def url(ds: Dataset, tail: str = "") -> str:
    study, series, sop = uids(ds)
    return f"/dicomweb/studies/{study}/series/{series}/instances/{sop}{tail}"


def frame_of(ds: Dataset, number: int) -> NDArray[Any]:
    array = ds.pixel_array
    return array[number - 1] if int(ds.get("NumberOfFrames", 1) or 1) > 1 else array


def parts(response: Any) -> list[tuple[str, bytes]]:
    """(Content-Type, body) of each part of a multipart/related answer."""
    content_type = response.headers["content-type"]
    assert content_type.startswith("multipart/related"), content_type
    boundary = content_type.split("boundary=")[1].split(";")[0].strip('"').encode()
    found = []
    for chunk in response.content.split(b"--" + boundary)[1:]:
        if chunk.startswith(b"--"):
            break
        head, _, body = chunk.partition(b"\r\n\r\n")
        kind = next(
            line.split(b":", 1)[1].strip().decode()
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-type")
        )
        found.append((kind, body[:-2]))
    return found


@pytest.mark.parametrize(("name", "numbers"), DECODABLE)
def test_decoded_frames_are_pydicoms_pixels(
    web: DICOMwebClient, name: str, numbers: list[int]
) -> None:
    ds = stored(web, name)
    frames = web.retrieve_instance_frames(*uids(ds), frame_numbers=numbers, media_types=DECODED)
    assert len(frames) == len(numbers)
    for number, data in zip(numbers, frames, strict=True):
        expected = frame_of(ds, number)
        got = np.frombuffer(data, dtype=expected.dtype.newbyteorder("<"))
        assert np.array_equal(got.reshape(expected.shape), expected), (name, number)


def test_default_accept_gives_frames_as_stored(
    web: DICOMwebClient, client: TestClient, auth: dict[str, str]
) -> None:
    # dicomweb-client asks for multipart/related; type="*/*" by default.
    from openjpeg import decode  # type: ignore[attr-defined]

    j2k, rle, native = (
        stored(web, "JPEG2000.dcm"),
        stored(web, "MR_small_RLE.dcm"),
        stored(web, "CT_small.dcm"),
    )
    (frame,) = web.retrieve_instance_frames(*uids(j2k), frame_numbers=[1])
    assert frame[:4] == b"\xff\x4f\xff\x51"  # a JPEG 2000 codestream
    assert np.array_equal(decode(frame), j2k.pixel_array)
    (frame,) = web.retrieve_instance_frames(*uids(rle), frame_numbers=[1])
    assert frame == get_frame(rle.PixelData, 0, number_of_frames=1)
    (frame,) = web.retrieve_instance_frames(*uids(native), frame_numbers=[1])
    assert frame == native.PixelData
    answer = client.get(url(j2k, "/frames/1"), headers=auth)
    assert parts(answer)[0][0] == "image/jp2; transfer-syntax=1.2.840.10008.1.2.4.91"
    # The explicit media types, and transfer-syntax=* on octet-stream (as OHIF asks).
    (frame,) = web.retrieve_instance_frames(
        *uids(rle), frame_numbers=[1], media_types=(("image/x-dicom-rle", "1.2.840.10008.1.2.5"),)
    )
    assert frame == get_frame(rle.PixelData, 0, number_of_frames=1)
    star = client.get(
        url(j2k, "/frames/1"),
        headers={
            **auth,
            "Accept": 'multipart/related; type="application/octet-stream"; transfer-syntax=*',
        },
    )
    kind, body = parts(star)[0]
    assert kind == "application/octet-stream; transfer-syntax=1.2.840.10008.1.2.4.91"
    assert body[:4] == b"\xff\x4f\xff\x51"


def test_frames_that_cannot_be_served_are_406_listing_what_can(
    web: DICOMwebClient, client: TestClient, auth: dict[str, str]
) -> None:
    j2k, jls = stored(web, "JPEG2000.dcm"), stored(web, JPEG_LS)
    lossless = stored(web, JPEG_LOSSLESS)
    answer = client.get(
        url(j2k, "/frames/1"), headers={**auth, "Accept": 'multipart/related; type="image/jpeg"'}
    )
    assert answer.status_code == 406
    error = answer.json()["error"]
    assert error["field"] == "accept"
    assert "image/jp2" in error["message"]
    assert EXPLICIT_LE in error["message"]
    # JPEG-LS is decoded (pyjpegls, CharLS) and also served as stored.
    (decoded,) = web.retrieve_instance_frames(*uids(jls), frame_numbers=[1], media_types=DECODED)
    assert decoded == jls.pixel_array.astype(jls.pixel_array.dtype.newbyteorder("<")).tobytes()
    (frame,) = web.retrieve_instance_frames(*uids(jls), frame_numbers=[1])
    assert frame[:2] == b"\xff\xd8"  # a JPEG-LS stream starts with SOI
    answer = client.get(url(jls, "/frames/1"), headers=auth)
    assert parts(answer)[0][0].startswith("image/jls")
    # JPEG Lossless cannot be decoded here: decoded frames 406, as stored served.
    with pytest.raises(HTTPError) as refused:
        web.retrieve_instance_frames(*uids(lossless), frame_numbers=[1], media_types=DECODED)
    assert getattr(refused.value.response, "status_code", None) == 406
    (frame,) = web.retrieve_instance_frames(*uids(lossless), frame_numbers=[1])
    assert frame[:2] == b"\xff\xd8"


def test_instances_in_other_transfer_syntaxes(
    web: DICOMwebClient, client: TestClient, auth: dict[str, str]
) -> None:
    j2k, big, jls = (
        stored(web, "JPEG2000.dcm"),
        stored(web, "MR_small_bigendian.dcm"),
        stored(web, JPEG_LOSSLESS, fresh=True),
    )
    explicit = (("application/dicom", EXPLICIT_LE),)
    back = web.retrieve_instance(*uids(j2k), media_types=explicit)
    assert back.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert np.array_equal(back.pixel_array, j2k.pixel_array)
    star = web.retrieve_instance(*uids(j2k), media_types=(("application/dicom", "*"),))
    assert star.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2.4.91"
    same = web.retrieve_instance(
        *uids(j2k), media_types=(("application/dicom", "1.2.840.10008.1.2.4.91"),)
    )
    assert same.PixelData == j2k.PixelData
    for ds in (big, jls):  # pydicom cannot swap big endian; JPEG Lossless cannot be decoded
        with pytest.raises(HTTPError) as refused:
            web.retrieve_instance(*uids(ds), media_types=explicit)
        assert getattr(refused.value.response, "status_code", None) == 406
    other = client.get(
        url(j2k),
        headers={
            **auth,
            "Accept": 'multipart/related; type="application/dicom"; '
            "transfer-syntax=1.2.840.10008.1.2.4.50",
        },
    )
    assert other.status_code == 406
    # The study level transcodes every instance it can.
    study = web.retrieve_study(j2k.StudyInstanceUID, media_types=explicit)
    assert {s.file_meta.TransferSyntaxUID for s in study} == {EXPLICIT_LE}


def _with_icon(name: str) -> Dataset:
    ds = dataset(name)
    icon = Dataset()
    icon.Rows, icon.Columns, icon.SamplesPerPixel = 32, 64, 1
    icon.BitsAllocated, icon.BitsStored, icon.HighBit, icon.PixelRepresentation = 8, 8, 7, 0
    icon.PhotometricInterpretation = "MONOCHROME2"
    icon.PixelData = bytes(range(256)) * 8
    ds.IconImageSequence = [icon]
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    return ds


def test_metadata_at_every_level_round_trips_with_bulk_data(web: DICOMwebClient) -> None:
    ct, overlay = stored(web, "CT_small.dcm"), _with_icon("CT_small.dcm")
    web.store_instances([overlay])
    study = web.retrieve_study_metadata(ct.StudyInstanceUID)
    series = web.retrieve_series_metadata(ct.StudyInstanceUID, ct.SeriesInstanceUID)
    assert len(study) == len(series) == 2
    for item in study:
        for element in item.values():
            if "BulkDataURI" in element:
                assert element["BulkDataURI"].startswith("http://testserver/dicomweb/studies/")
    meta = web.retrieve_instance_metadata(*uids(overlay))
    icon_uri = meta["00880200"]["Value"][0]["7FE00010"]["BulkDataURI"]
    assert icon_uri.endswith("/bulkdata/00880200/1/7FE00010")

    def fetch(uri: str) -> bytes:
        return bytes(web.retrieve_bulkdata(uri)[0])

    back = Dataset.from_json(meta, bulk_data_uri_handler=fetch)
    assert back.IconImageSequence[0].PixelData == overlay.IconImageSequence[0].PixelData
    back.file_meta = overlay.file_meta
    assert np.array_equal(back.pixel_array, overlay.pixel_array)
    assert back.PatientName == overlay.PatientName


def test_bulk_data_of_big_endian_and_compressed_pixels(web: DICOMwebClient) -> None:
    big, rle = stored(web, "MR_small_bigendian.dcm"), stored(web, "SC_rgb_rle_2frame.dcm")
    meta = web.retrieve_instance_metadata(*uids(big))
    (value,) = web.retrieve_bulkdata(meta["7FE00010"]["BulkDataURI"])
    assert np.array_equal(np.frombuffer(value, "<i2").reshape(64, 64), big.pixel_array)
    (head,) = web.retrieve_bulkdata(meta["7FE00010"]["BulkDataURI"], byte_range=(10, 109))
    assert head == value[10:110]
    meta = web.retrieve_instance_metadata(*uids(rle))
    frames = web.retrieve_bulkdata(meta["7FE00010"]["BulkDataURI"])
    assert frames == [get_frame(rle.PixelData, i, number_of_frames=2) for i in range(2)]


def test_part_10_bytes_are_returned_as_stored(web: DICOMwebClient) -> None:
    ds = stored(web, "MR_small_implicit.dcm")
    back = web.retrieve_instance(*uids(ds))
    assert back.file_meta.TransferSyntaxUID == "1.2.840.10008.1.2"
    out = BytesIO()
    back.save_as(out)
    assert (
        dcmread(BytesIO(out.getvalue())).PixelData
        == dcmread(BytesIO(sample("MR_small_implicit.dcm"))).PixelData
    )


def test_byte_ranges_of_bulk_data(
    web: DICOMwebClient, client: TestClient, auth: dict[str, str]
) -> None:
    ct = stored(web, "CT_small.dcm")
    path = url(ct, "/bulkdata/7FE00010")
    whole = parts(client.get(path, headers=auth))[0][1]
    assert len(whole) == 128 * 128 * 2
    tail = client.get(path, headers={**auth, "Range": "bytes=-16"})
    assert tail.status_code == 206
    assert tail.headers["content-range"] == f"bytes {len(whole) - 16}-{len(whole) - 1}/{len(whole)}"
    assert parts(tail)[0][1] == whole[-16:]
    open_ended = client.get(path, headers={**auth, "Range": "bytes=32000-"})
    assert parts(open_ended)[0][1] == whole[32000:]
    beyond = client.get(path, headers={**auth, "Range": "bytes=99999-"})
    assert beyond.status_code == 416
    assert beyond.headers["content-range"] == f"bytes */{len(whole)}"
    several = client.get(path, headers={**auth, "Range": "bytes=0-1,4-5"})
    assert several.status_code == 200  # several ranges: the whole value
    assert client.get(path, headers={**auth, "Range": "bytes=9-2"}).status_code == 416


def test_cached_metadata_names_the_url_of_each_request(
    web: DICOMwebClient, client: TestClient, auth: dict[str, str]
) -> None:
    """The second read comes from the metadata cache: same attributes, and the
    BulkDataURIs name the host of that request, not the one that filled the cache."""
    overlay = _with_icon("CT_small.dcm")
    web.store_instances([overlay])
    headers = {**auth, "Accept": "application/dicom+json"}
    first = client.get(url(overlay, "/metadata"), headers=headers)
    second = client.get(
        url(overlay, "/metadata"), headers={**headers, "Host": "other.example:8443"}
    )
    assert first.status_code == second.status_code == 200
    a, b = first.json()[0], second.json()[0]
    assert a.keys() == b.keys()
    icon_a = a["00880200"]["Value"][0]["7FE00010"]["BulkDataURI"]
    icon_b = b["00880200"]["Value"][0]["7FE00010"]["BulkDataURI"]
    assert icon_a.startswith("http://testserver/dicomweb/studies/")
    assert icon_b == icon_a.replace("http://testserver", "http://other.example:8443")
    assert b["7FE00010"]["BulkDataURI"].startswith("http://other.example:8443/dicomweb/")
    assert a["00100010"] == b["00100010"]


def test_dicomweb_json_is_gzipped_on_request_and_retrieves_are_not(
    web: DICOMwebClient, client: TestClient, auth: dict[str, str]
) -> None:
    ct = stored(web, "CT_small.dcm")
    meta = url(ct, "/metadata")
    plain = client.get(meta, headers={**auth, "Accept-Encoding": "identity"})
    zipped = client.get(meta, headers={**auth, "Accept-Encoding": "gzip"})
    assert "content-encoding" not in plain.headers
    assert zipped.headers["content-encoding"] == "gzip"
    assert zipped.json() == plain.json()  # httpx inflates it
    instance = client.get(
        url(ct),
        headers={
            **auth,
            "Accept-Encoding": "gzip",
            "Accept": 'multipart/related; type="application/dicom"',
        },
    )
    assert instance.status_code == 200
    assert "content-encoding" not in instance.headers
    rendered = client.get(
        url(ct, "/rendered"), headers={**auth, "Accept-Encoding": "gzip", "Accept": "image/png"}
    )
    assert rendered.status_code == 200
    assert "content-encoding" not in rendered.headers
    page = client.get("/login", headers={"Accept-Encoding": "gzip"})
    assert "content-encoding" not in page.headers  # pages stay plain (BREACH)

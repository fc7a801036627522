"""dicomweb-client against the real server (uvicorn in a subprocess, over TCP): streamed
multipart answers, frames, transcoding, metadata with bulk data, rendered, WADO-URI."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from io import BytesIO

import numpy as np
import pytest
import requests
from dicomweb_client.api import DICOMwebClient
from PIL import Image
from pydicom.dataset import Dataset

from tests.e2e.conftest import _run, _server_env, _start_server, _stop
from tests.e2e.seed import PASSWORD, SEARCHER
from tests.imaging.test_dicomweb import dataset
from tests.imaging.test_wado import DECODED, EXPLICIT_LE, frame_of, uids

SAMPLES = ("CT_small.dcm", "JPEG2000.dcm", "MR_small_RLE.dcm", "examples_ybr_color.dcm")


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    data_dir = tmp_path_factory.mktemp("wado-live")
    env = _server_env(data_dir)
    _run([sys.executable, "-m", "xietong.cli", "migrate"], env, "xietong migrate")
    _run([sys.executable, "-m", "tests.e2e.seed"], env, "seeding the accounts")
    proc, url = _start_server(env, data_dir / "server.log")
    try:
        yield url
    finally:
        _stop(proc)


@pytest.fixture(scope="module")
def web(server: str) -> DICOMwebClient:
    answer = requests.post(
        f"{server}/api/v1/auth/token",
        data={"username": SEARCHER.username, "password": PASSWORD},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text
    token = answer.json()["access_token"]
    client = DICOMwebClient(url=f"{server}/dicomweb", headers={"Authorization": f"Bearer {token}"})
    stored = client.store_instances([dataset(name) for name in SAMPLES])
    assert "FailedSOPSequence" not in stored
    return client


@pytest.mark.parametrize("name", SAMPLES)
def test_frames_and_instances_over_http(web: DICOMwebClient, name: str) -> None:
    ds = dataset(name)
    count = int(ds.get("NumberOfFrames", 1) or 1)
    numbers = sorted({1, count})
    frames = web.retrieve_instance_frames(*uids(ds), frame_numbers=numbers, media_types=DECODED)
    for number, data in zip(numbers, frames, strict=True):
        expected = frame_of(ds, number)
        got = np.frombuffer(data, dtype=expected.dtype.newbyteorder("<"))
        assert np.array_equal(got.reshape(expected.shape), expected)
    stored = web.retrieve_instance_frames(*uids(ds), frame_numbers=[1])  # default Accept
    assert len(stored) == 1
    back = web.retrieve_instance(*uids(ds), media_types=(("application/dicom", EXPLICIT_LE),))
    assert back.file_meta.TransferSyntaxUID == EXPLICIT_LE
    assert np.array_equal(back.pixel_array, ds.pixel_array)


def test_metadata_rendered_and_wado_uri_over_http(web: DICOMwebClient, server: str) -> None:
    ct = dataset("CT_small.dcm")
    (meta,) = web.retrieve_series_metadata(ct.StudyInstanceUID, ct.SeriesInstanceUID)
    # URIs are built from the Host header, and dicomweb-client (0.61) sends it without the
    # port (web.py: headers['Host'] = self.host); our server answers what it was told.
    host_only = server.rsplit(":", 1)[0]
    assert meta["7FE00010"]["BulkDataURI"].startswith(f"{host_only}/dicomweb/studies/")

    def fetch(uri: str) -> bytes:
        return bytes(web.retrieve_bulkdata(uri.replace(host_only, server, 1))[0])

    back = Dataset.from_json(meta, bulk_data_uri_handler=fetch)
    back.file_meta = ct.file_meta
    assert np.array_equal(back.pixel_array, ct.pixel_array)
    jpeg = web.retrieve_instance_rendered(
        *uids(ct), media_types=("image/jpeg",), params={"viewport": "64,64"}
    )
    assert Image.open(BytesIO(jpeg)).size == (64, 64)
    study, series, sop = uids(ct)
    answer = web._session.get(  # WADO-URI is outside dicomweb-client's API
        f"{server}/dicomweb/wado",
        params={"requestType": "WADO", "studyUID": study, "seriesUID": series, "objectUID": sop},
        timeout=30,
    )
    assert answer.status_code == 200
    assert answer.content[128:132] == b"DICM"

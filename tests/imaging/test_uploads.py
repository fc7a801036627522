"""Resumable web uploads (/api/v1/imaging/uploads): the tus offsets, limits and owners, and
what completion stores from a DICOM file or a zip (hostile zips store nothing)."""

from __future__ import annotations

import hashlib
import io
import json
import os
import re
import stat
import zipfile
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from typer.testing import CliRunner

from tests import factories
from tests.helpers import page_login, token_for
from tests.imaging.conftest import World, sample, with_attributes
from xietong.access.models import AuditEvent
from xietong.cli import app as cli_app
from xietong.cli import run_migrations
from xietong.config import DatabaseSettings, Settings
from xietong.core import clock
from xietong.identity.roles import Role
from xietong.imaging import service as imaging_service
from xietong.imaging.models import ImagingInstance
from xietong.imaging.upload_expiry import expire
from xietong.imaging.upload_models import ImagingUpload
from xietong.imaging.uploads import part_store

API = "/api/v1/imaging/uploads"
# One instance per SOP Instance UID (the MR_small variants share theirs): explicit and
# implicit little endian, JPEG 2000, RLE, JPEG baseline, deflated.
SAMPLES = (
    "CT_small.dcm",
    "MR_small_implicit.dcm",
    "JPEG2000.dcm",
    "SC_rgb_rle.dcm",
    "JPEG-lossy.dcm",
    "image_dfl.dcm",
)
CHUNK = {"Content-Type": "application/offset+octet-stream", "Tus-Resumable": "1.0.0"}


@pytest.fixture
def auth(world: World, client: TestClient) -> dict[str, str]:
    return token_for(client, world.technician.username)


def declare(
    client: TestClient, auth: dict[str, str], data: bytes, kind: str = "dicom", **extra: Any
) -> dict[str, Any]:
    answer = client.post(
        API, json={"file_name": "a.dcm", "size": len(data), "kind": kind, **extra}, headers=auth
    )
    assert answer.status_code in (200, 201), answer.text
    body: dict[str, Any] = answer.json()
    return body


def send(
    client: TestClient, auth: dict[str, str], upload_id: str, offset: int, chunk: bytes
) -> Any:
    return client.patch(
        f"{API}/{upload_id}",
        content=chunk,
        headers={**auth, **CHUNK, "Upload-Offset": str(offset)},
    )


def upload(
    client: TestClient, auth: dict[str, str], data: bytes, kind: str = "dicom", step: int = 4096
) -> dict[str, Any]:
    created = declare(client, auth, data, kind)
    for at in range(0, len(data), step):
        assert send(client, auth, created["id"], at, data[at : at + step]).status_code == 204
    done = client.post(f"{API}/{created['id']}/complete", headers=auth)
    assert done.status_code == 200, done.text
    body: dict[str, Any] = done.json()
    return body


def zipped(entries: list[tuple[str, bytes]], method: int = zipfile.ZIP_DEFLATED) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", method) as zf:
        for name, data in entries:
            zf.writestr(name, data)
    return out.getvalue()


def instances(world: World) -> int:
    return int(world.db.execute(select(func.count(ImagingInstance.id))).scalar_one())


# The protocol ---------------------------------------------------------------------------------


def test_chunks_in_order_then_complete(
    world: World, client: TestClient, auth: dict[str, str]
) -> None:
    data = sample("CT_small.dcm")
    created = declare(client, auth, data, sha256=hashlib.sha256(data).hexdigest())
    assert (created["offset"], created["status"]) == (0, "receiving")
    for at in range(0, len(data), 10_000):
        answer = send(client, auth, created["id"], at, data[at : at + 10_000])
        assert answer.status_code == 204
        assert answer.headers["Upload-Offset"] == str(min(at + 10_000, len(data)))
        assert answer.headers["Tus-Resumable"] == "1.0.0"
    done = client.post(f"{API}/{created['id']}/complete", headers=auth).json()
    assert done["status"] == "completed"
    assert done["counts"]["stored"] == 1
    assert done["files"][0]["outcome"] == "stored"
    assert done["studies"][0]["chart_href"] is None or done["studies"][0]["chart_href"].startswith(
        "/patients/"
    )
    assert re.fullmatch(r"/imaging/studies/\d+/view", done["studies"][0]["viewer_href"])
    assert instances(world) == 1
    # The partial file is gone once the instance is stored.
    assert list(part_store(client.app.state.services.settings).names()) == []  # type: ignore[attr-defined]


def test_resume_after_a_break(world: World, client: TestClient, auth: dict[str, str]) -> None:
    data = sample("MR_small.dcm")
    created = declare(client, auth, data)
    assert send(client, auth, created["id"], 0, data[:5000]).status_code == 204
    # The connection broke while the next chunk was on the way: ask where to continue.
    head = client.head(f"{API}/{created['id']}", headers=auth)
    assert head.status_code == 200
    assert head.headers["Upload-Offset"] == "5000"
    assert head.headers["Upload-Length"] == str(len(data))
    assert head.headers["Cache-Control"] == "no-store"
    # Resending the chunk that did arrive is refused with the offset to continue at.
    again = send(client, auth, created["id"], 0, data[:5000])
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "upload_offset_mismatch"
    assert again.headers["Upload-Offset"] == "5000"
    assert send(client, auth, created["id"], 5000, data[5000:]).status_code == 204
    done = client.post(f"{API}/{created['id']}/complete", headers=auth).json()
    assert done["counts"]["stored"] == 1


def test_limits_and_errors(
    world: World, client: TestClient, auth: dict[str, str], app: Any
) -> None:
    data = sample("CT_small.dcm")
    created = declare(client, auth, data)
    upload_id = created["id"]
    ahead = send(client, auth, upload_id, 100, data[:10])
    assert (ahead.status_code, ahead.headers["Upload-Offset"]) == (409, "0")
    beyond = send(client, auth, upload_id, 0, data + b"x")
    assert (beyond.status_code, beyond.json()["error"]["code"]) == (413, "upload_beyond_size")
    app.state.services.settings.imaging.upload_chunk_max_bytes = 65_536
    big = declare(client, auth, b"\0" * 200_000)
    too_big = send(client, auth, big["id"], 0, b"\0" * 70_000)
    assert (too_big.status_code, too_big.json()["error"]["code"]) == (413, "upload_chunk_too_large")
    huge = client.post(
        API, json={"file_name": "x.zip", "size": 3 * 2**30, "kind": "zip"}, headers=auth
    )
    assert (huge.status_code, huge.json()["error"]["code"]) == (413, "upload_too_large")
    incomplete = client.post(f"{API}/{upload_id}/complete", headers=auth)
    assert (incomplete.status_code, incomplete.json()["error"]["code"]) == (
        409,
        "upload_incomplete",
    )
    assert client.head(f"{API}/{'0' * 32}", headers=auth).status_code == 404
    assert client.get(f"{API}/{'0' * 32}", headers=auth).status_code == 404
    assert client.get(f"{API}/..%2Fetc", headers=auth).status_code in (404, 422)
    wrong_type = client.patch(
        f"{API}/{upload_id}",
        content=b"x",
        headers={**auth, "Content-Type": "text/plain", "Upload-Offset": "0"},
    )
    assert wrong_type.status_code == 415
    bad_offset = client.patch(
        f"{API}/{upload_id}", content=b"x", headers={**auth, **CHUNK, "Upload-Offset": "-1"}
    )
    assert (bad_offset.status_code, bad_offset.json()["error"]["code"]) == (
        400,
        "upload_offset_invalid",
    )
    old_tus = client.patch(
        f"{API}/{upload_id}",
        content=b"x",
        headers={**auth, **CHUNK, "Upload-Offset": "0", "Tus-Resumable": "0.2.2"},
    )
    assert (old_tus.status_code, old_tus.headers["Tus-Version"]) == (412, "1.0.0")
    for hostile in (
        {"file_name": "a", "size": 0, "kind": "dicom"},
        {"file_name": "a", "size": 10, "kind": "exe"},
        {"file_name": "", "size": 10, "kind": "zip"},
        {"file_name": "a", "size": 10, "kind": "zip", "sha256": "ZZ"},
        {"file_name": "a", "size": 10, "kind": "zip", "client_request_id": "../x"},
        {"file_name": "a", "size": 10, "kind": "zip", "extra": 1},
    ):
        assert client.post(API, json=hostile, headers=auth).status_code == 422, hostile
    assert client.post(API, content=b"{", headers=auth).status_code in (400, 422)


def test_chunk_after_completion_and_idempotent_completion(
    world: World, client: TestClient, auth: dict[str, str]
) -> None:
    data = sample("CT_small.dcm")
    done = upload(client, auth, data)
    late = send(client, auth, done["id"], len(data), b"x")
    assert (late.status_code, late.json()["error"]["code"]) == (409, "upload_not_receiving")
    again = client.post(f"{API}/{done['id']}/complete", headers=auth)
    assert again.status_code == 200
    assert again.json()["files"] == done["files"]
    assert instances(world) == 1
    stores = world.db.execute(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "imaging.store")
    ).scalar_one()
    assert stores == 1
    # The same file uploaded again is recognised, not stored twice.
    second = upload(client, auth, data)
    assert second["files"][0]["outcome"] == "already_stored"
    assert instances(world) == 1


def test_client_request_id_returns_the_same_upload(
    world: World, client: TestClient, auth: dict[str, str]
) -> None:
    body = {"file_name": "s.zip", "size": 1000, "kind": "zip", "client_request_id": "r-1"}
    first = client.post(API, json=body, headers=auth)
    retry = client.post(API, json=body, headers=auth)
    assert (first.status_code, retry.status_code) == (201, 200)
    assert first.json()["id"] == retry.json()["id"]
    other = client.post(API, json={**body, "size": 999}, headers=auth)
    assert (other.status_code, other.json()["error"]["code"]) == (409, "upload_request_reused")


def test_quota_of_open_uploads(
    world: World, client: TestClient, auth: dict[str, str], app: Any
) -> None:
    app.state.services.settings.imaging.upload_max_open_per_user = 2
    declare(client, auth, b"x" * 10)
    second = declare(client, auth, b"x" * 10)
    third = client.post(API, json={"file_name": "a", "size": 10, "kind": "dicom"}, headers=auth)
    assert (third.status_code, third.json()["error"]["code"]) == (429, "upload_quota")
    assert client.delete(f"{API}/{second['id']}", headers=auth).status_code == 204
    assert client.head(f"{API}/{second['id']}", headers=auth).status_code == 404
    assert (
        client.post(
            API, json={"file_name": "a", "size": 10, "kind": "dicom"}, headers=auth
        ).status_code
        == 201
    )


def test_other_users_and_institutions_get_404(
    world: World, client: TestClient, auth: dict[str, str]
) -> None:
    data = sample("CT_small.dcm")
    created = declare(client, auth, data)
    colleague = factories.user(world.db, Role.RADIOLOGIST, institution=world.county)
    world.db.commit()
    for other in (
        token_for(client, colleague.username),
        token_for(client, world.stranger.username),
    ):
        assert client.head(f"{API}/{created['id']}", headers=other).status_code == 404
        assert client.get(f"{API}/{created['id']}", headers=other).status_code == 404
        assert send(client, other, created["id"], 0, data).status_code == 404
        assert client.post(f"{API}/{created['id']}/complete", headers=other).status_code == 404
        assert client.delete(f"{API}/{created['id']}", headers=other).status_code == 404
        assert client.get(API, headers=other).json()["items"] == []
    denied = world.db.execute(
        select(func.count(AuditEvent.id)).where(
            AuditEvent.object_kind == "imaging_upload", AuditEvent.outcome == "denied"
        )
    ).scalar_one()
    assert denied >= 10
    assert client.head(f"{API}/{created['id']}", headers=auth).headers["Upload-Offset"] == "0"


def test_who_may_upload(world: World, client: TestClient) -> None:
    learner = factories.user(world.db, Role.LEARNER, institution=world.county)
    admin = factories.user(world.db, Role.INSTITUTION_ADMIN, institution=world.county)
    world.db.commit()
    body = {"file_name": "a", "size": 10, "kind": "dicom"}
    for user in (learner, admin):
        answer = client.post(API, json=body, headers=token_for(client, user.username))
        assert answer.status_code == 403
    assert client.post(API, json=body).status_code == 401


def test_expiry_job(world: World, client: TestClient, auth: dict[str, str], app: Any) -> None:
    created = declare(client, auth, b"x" * 100)
    assert send(client, auth, created["id"], 0, b"x" * 50).status_code == 204
    parts = part_store(app.state.services.settings)
    assert len(list(parts.names())) == 1
    stray = parts.root / ("f" * 32 + ".part")
    stray.write_bytes(b"left by a create that never committed")
    later = clock.now() + timedelta(hours=25)
    clock.set_clock(lambda: later)
    run = expire(world.db, parts)
    world.db.commit()
    assert (run.expired, run.orphans) == (1, 2)
    assert list(parts.names()) == []
    clock.set_clock(None)  # the bearer token lives on wall time
    assert client.head(f"{API}/{created['id']}", headers=auth).status_code == 404
    status = world.db.execute(select(ImagingUpload.status)).scalar_one()
    assert status == "expired"


# What completion stores ------------------------------------------------------------------------


def test_zip_of_samples_with_junk(world: World, client: TestClient, auth: dict[str, str]) -> None:
    corrupt = sample("CT_small.dcm")[:2000]
    entries = [(f"study/{name}", sample(name)) for name in SAMPLES]
    entries += [
        ("study/readme.txt", b"not an image"),
        ("DICOMDIR", b"\0" * 128 + b"DICM" + b"\0" * 64),
        ("study/broken.dcm", corrupt),
        ("__MACOSX/study/._CT_small.dcm", b"\0\5\26\7 apple double"),
    ]
    done = upload(client, auth, zipped(entries), kind="zip")
    by_name = {f["name"]: f for f in done["files"]}
    assert all(by_name[f"study/{n}"]["outcome"] == "stored" for n in SAMPLES), done["files"]
    assert by_name["study/readme.txt"]["outcome"] == "skipped"
    assert by_name["study/readme.txt"]["code"] == "not_dicom"
    assert by_name["DICOMDIR"]["code"] == "dicomdir"
    assert by_name["study/broken.dcm"]["outcome"] == "refused"
    assert by_name["study/broken.dcm"]["code"].startswith("dicom_")
    assert by_name["study/broken.dcm"]["message"]
    assert done["counts"] == {
        "stored": len(SAMPLES),
        "already_stored": 0,
        "refused": 1,
        "skipped": 3,
    }
    assert instances(world) == len(SAMPLES)
    assert len(done["studies"]) >= 2
    assert {s["study_uid"] for s in done["studies"]}
    completes = world.db.execute(
        select(AuditEvent.detail).where(AuditEvent.action == "imaging.upload.complete")
    ).scalar_one()
    detail = json.loads(completes) if isinstance(completes, str) else completes
    assert detail["stored"] == len(SAMPLES)


def test_conflicting_instance_in_zip_is_refused_alone(
    world: World, client: TestClient, auth: dict[str, str]
) -> None:
    upload(client, auth, sample("CT_small.dcm"))
    changed = with_attributes("CT_small.dcm", StudyDescription="changed")
    done = upload(
        client, auth, zipped([("a.dcm", changed), ("b.dcm", sample("MR_small.dcm"))]), "zip"
    )
    outcomes = {f["name"]: (f["outcome"], f["code"]) for f in done["files"]}
    assert outcomes == {"a.dcm": ("refused", "instance_conflict"), "b.dcm": ("stored", None)}


def test_single_file_that_is_not_dicom_is_refused(
    world: World, client: TestClient, auth: dict[str, str]
) -> None:
    done = upload(client, auth, b"<html>not dicom</html>")
    assert done["files"][0]["outcome"] == "refused"
    assert done["files"][0]["code"] == "dicom_not_dicom"
    assert instances(world) == 0


def test_checksum_mismatch_fails_the_upload(
    world: World, client: TestClient, auth: dict[str, str]
) -> None:
    data = sample("CT_small.dcm")
    created = declare(client, auth, data, sha256="0" * 64)
    assert send(client, auth, created["id"], 0, data).status_code == 204
    done = client.post(f"{API}/{created['id']}/complete", headers=auth)
    assert (done.status_code, done.json()["error"]["code"]) == (422, "upload_checksum_mismatch")
    assert instances(world) == 0
    status = client.get(f"{API}/{created['id']}", headers=auth).json()
    assert status["status"] == "failed"
    assert status["error"]["code"] == "upload_checksum_mismatch"


def _symlink_zip() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as zf:
        zf.writestr("CT_small.dcm", sample("CT_small.dcm"))
        link = zipfile.ZipInfo("passwd.dcm")
        link.create_system = 3
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        zf.writestr(link, "/etc/passwd")
    return out.getvalue()


def _many_entries() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr("CT_small.dcm", sample("CT_small.dcm"))
        for n in range(100_000):
            zf.writestr(f"{n}", b"")
    return out.getvalue()


HOSTILE: dict[str, tuple[Callable[[], bytes], int, str]] = {
    "traversal": (
        lambda: zipped([("CT_small.dcm", sample("CT_small.dcm")), ("../../x.dcm", b"x")]),
        422,
        "zip_unsafe_name",
    ),
    "absolute": (lambda: zipped([("/etc/x.dcm", sample("CT_small.dcm"))]), 422, "zip_unsafe_name"),
    "windows": (lambda: zipped([("C:\\x.dcm", sample("CT_small.dcm"))]), 422, "zip_unsafe_name"),
    "backslash": (
        lambda: zipped([("a\\..\\..\\x.dcm", sample("CT_small.dcm"))]),
        422,
        "zip_unsafe_name",
    ),
    "symlink": (_symlink_zip, 422, "zip_symlink"),
    "bomb": (
        lambda: zipped([("CT_small.dcm", sample("CT_small.dcm")), ("z.dcm", b"\0" * 50_000_000)]),
        422,
        "zip_bomb",
    ),
    "entries": (_many_entries, 422, "zip_too_many_entries"),
    "nested": (
        lambda: zipped(
            [("CT_small.dcm", sample("CT_small.dcm")), ("inner.dcm", zipped([("a", b"a")]))]
        ),
        422,
        "zip_nested",
    ),
    "not_a_zip": (lambda: sample("CT_small.dcm"), 422, "zip_corrupt"),
}


@pytest.mark.parametrize("case", sorted(HOSTILE))
def test_hostile_zips_store_nothing(
    case: str, world: World, client: TestClient, auth: dict[str, str], app: Any
) -> None:
    make, status, code = HOSTILE[case]
    data = make()
    created = declare(client, auth, data, kind="zip")
    step = 4 * 1024 * 1024
    for at in range(0, len(data), step):
        assert send(client, auth, created["id"], at, data[at : at + step]).status_code == 204
    answer = client.post(f"{API}/{created['id']}/complete", headers=auth)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, code)
    assert instances(world) == 0
    assert list(Path(app.state.services.settings.blob_root).rglob("??/??/*")) == []
    # Asking again gives the same refusal; nothing is stored on the second try either.
    again = client.post(f"{API}/{created['id']}/complete", headers=auth)
    assert (again.status_code, again.json()["error"]["code"]) == (status, code)
    assert instances(world) == 0
    assert list(part_store(app.state.services.settings).names()) == []


def test_total_inflated_size_is_limited(
    world: World, client: TestClient, auth: dict[str, str], app: Any
) -> None:
    app.state.services.settings.imaging.upload_zip_max_uncompressed_bytes = 10_000
    data = zipped([(n, sample(n)) for n in ("CT_small.dcm", "MR_small.dcm")])
    created = declare(client, auth, data, kind="zip")
    assert send(client, auth, created["id"], 0, data).status_code == 204
    answer = client.post(f"{API}/{created['id']}/complete", headers=auth)
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "zip_too_large")
    assert instances(world) == 0


def test_completion_that_died_resumes_without_ingesting_twice(
    world: World, client: TestClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    names = ("CT_small.dcm", "JPEG2000.dcm", "SC_rgb_rle.dcm")
    data = zipped([(n, sample(n)) for n in names])
    created = declare(client, auth, data, kind="zip")
    assert send(client, auth, created["id"], 0, data).status_code == 204
    real = imaging_service.ingest
    calls: list[int] = []

    def dies_on_the_third(*args: Any, **kwargs: Any) -> Any:
        calls.append(1)
        if len(calls) == 3:
            raise OperationalError("INSERT", {}, Exception("disk I/O error"))
        return real(*args, **kwargs)

    monkeypatch.setattr(imaging_service, "ingest", dies_on_the_third)
    died = client.post(f"{API}/{created['id']}/complete", headers=auth)
    assert died.status_code == 500
    assert instances(world) == 2  # the two acknowledged files are committed
    monkeypatch.setattr(imaging_service, "ingest", real)
    busy = client.post(f"{API}/{created['id']}/complete", headers=auth)
    assert (busy.status_code, busy.json()["error"]["code"]) == (409, "upload_ingesting")
    later = clock.now() + timedelta(minutes=11)
    clock.set_clock(lambda: later)
    done = client.post(f"{API}/{created['id']}/complete", headers=auth)
    assert done.status_code == 200, done.text
    assert [f["outcome"] for f in done.json()["files"]] == ["stored"] * 3
    assert instances(world) == 3
    stores = world.db.execute(
        select(func.count(AuditEvent.id)).where(AuditEvent.action == "imaging.store")
    ).scalar_one()
    assert stores == 3


def test_a_parser_failure_is_one_refused_file(
    world: World, client: TestClient, auth: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real = imaging_service.ingest

    def fails_on_jpeg2000(session: Any, blobs: Any, pii: Any, data: bytes, **kwargs: Any) -> Any:
        if data == sample("JPEG2000.dcm"):
            raise RecursionError("a pathological file")
        return real(session, blobs, pii, data, **kwargs)

    monkeypatch.setattr(imaging_service, "ingest", fails_on_jpeg2000)
    data = zipped([(n, sample(n)) for n in ("CT_small.dcm", "JPEG2000.dcm")])
    done = upload(client, auth, data, kind="zip")
    assert [(f["outcome"], f["code"]) for f in done["files"]] == [
        ("stored", None),
        ("refused", "ingest_failed"),
    ]


def test_upload_page(world: World, client: TestClient) -> None:
    page_login(client, world.technician.username)
    page = client.get("/imaging/upload")
    assert page.status_code == 200
    assert 'id="upload-folder" webkitdirectory' in page.text
    assert 'data-api="/api/v1/imaging/uploads"' in page.text
    assert 'href="/imaging/upload"' in page.text  # in the menu
    learner = factories.user(world.db, Role.LEARNER, institution=world.county)
    world.db.commit()
    client.cookies.clear()
    page_login(client, learner.username)
    assert client.get("/imaging/upload").status_code == 403
    assert 'href="/imaging/upload"' not in client.get("/").text


def test_the_cli_job_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`xietong jobs uploads` against a migrated database of its own."""
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    monkeypatch.setenv("XIETONG_DATABASE_URL", url)
    monkeypatch.setenv("XIETONG_DATA_DIR", str(tmp_path))
    run_migrations(Settings(data_dir=tmp_path, database=DatabaseSettings(url=url)))
    stray = tmp_path / "imaging-uploads" / ("a" * 32 + ".part")
    stray.parent.mkdir()
    stray.write_bytes(b"x")
    old = stray.stat().st_mtime - 2 * 3600
    os.utime(stray, (old, old))
    result = CliRunner().invoke(cli_app, ["jobs", "uploads"])
    assert result.exit_code == 0, result.output
    assert "uploads expired 0; partial files deleted 1" in result.output
    assert not stray.exists()

"""The DICOM SCP on a free port, driven by Debian's dcmtk (echoscu, storescu) and by
pynetdicom as a client: known peer stores, unknown AE refused, resends accepted once,
invalid datasets refused with nothing stored.

The SCP commits in its own threads, so it runs on a database of its own (a SQLite file,
or a PostgreSQL schema of its own), never on the rolled-back test transaction.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from pydicom import dcmread
from pydicom.data import get_testdata_file
from pynetdicom import AE
from pynetdicom.sop_class import CTImageStorage  # type: ignore[attr-defined]
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from tests import factories
from xietong.cli import alembic_config
from xietong.config import DatabaseSettings, DimseSettings, SecuritySettings, Settings
from xietong.core.db import make_engine
from xietong.core.pii import PiiProtector
from xietong.core.storage import LocalBlobStore
from xietong.directory.regions import load_regions
from xietong.imaging.models import ImagingInstance, ImagingStudy
from xietong.interop.dimse.scp import StoreScp

ECHOSCU = shutil.which("echoscu")
STORESCU = shutil.which("storescu")
# File and the storescu option proposing its transfer syntax (as is: no conversion).
FILES = {
    "CT_small.dcm": "-xe",
    "MR_small.dcm": "-xe",
    "JPEG2000.dcm": "-xw",  # JPEG 2000 (lossless or lossy)
    "SC_rgb_rle.dcm": "-xr",  # MR_small_RLE.dcm is MR_small.dcm's instance: a conflict
}
needs_dcmtk = pytest.mark.skipif(
    ECHOSCU is None or STORESCU is None, reason="dcmtk (echoscu, storescu) is not installed"
)


def _path(name: str) -> str:
    path = get_testdata_file(name)
    assert path is not None, name
    return str(path)


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Running:
    port: int
    factory: sessionmaker[Session]
    county_id: int

    def count(self, model: type) -> int:
        with self.factory() as session:
            return int(session.execute(select(func.count()).select_from(model)).scalar_one())

    def sender_of(self, sop_uid: str) -> int | None:
        with self.factory() as session:
            return session.execute(
                select(ImagingInstance.sender_institution_id).where(
                    ImagingInstance.sop_instance_uid == sop_uid
                )
            ).scalar_one_or_none()


def _own_db_url(tmp_path: Path, worker_id: str) -> str:
    url = os.environ.get("XIETONG_DATABASE_URL", "")
    if url.startswith(("postgresql", "postgres")):
        schema = f"xt_dimse_{worker_id}".replace("-", "_")
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        joiner = "&" if "?" in url else "?"
        return f"{url}{joiner}options=-csearch_path%3D{schema}"
    return f"sqlite:///{tmp_path / 'dimse.sqlite3'}"


def _migrated(url: str) -> Engine:
    engine = make_engine(url)
    config = alembic_config(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with Session(engine) as session:
        load_regions(session)
        session.commit()
    return engine


def _start(tmp_path: Path, worker_id: str, **dimse: object) -> Iterator[Running]:
    url = _own_db_url(tmp_path, worker_id)
    engine = _migrated(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    with factory() as session:
        county = factories.institution(session, name="新安县人民医院", region_code="410323")
        county.code = "HN-X410323"  # the demo peer DEMO_CT's institution
        factories.institution(session)  # another institution: never the sender
        session.commit()
        county_id = county.id
    settings = Settings(
        env="test",
        data_dir=tmp_path,
        database=DatabaseSettings(url=url),
        security=SecuritySettings(secret_key="test-secret-key-0123456789abcdef"),
        dimse=DimseSettings(**dimse),  # type: ignore[arg-type]
    )
    server = StoreScp(
        settings,
        factory,
        LocalBlobStore(settings.blob_root),
        PiiProtector(settings.security.pii_key, settings.security.pii_cipher),
    )
    port = _free_port()
    server.start("127.0.0.1", port, block=False)
    try:
        yield Running(port, factory, county_id)
    finally:
        server.stop()
        engine.dispose()


@pytest.fixture
def scp(tmp_path: Path, worker_id: str) -> Iterator[Running]:
    yield from _start(tmp_path, worker_id)


@pytest.fixture
def open_scp(tmp_path: Path, worker_id: str) -> Iterator[Running]:
    """Unknown callers allowed (XIETONG_DIMSE_ALLOW_UNKNOWN)."""
    yield from _start(tmp_path, worker_id, allow_unknown=True)


def _dcmtk(tool: str | None, port: int, *args: str, aet: str = "DEMO_CT") -> int:
    assert tool is not None
    done = subprocess.run(  # noqa: S603 - dcmtk with fixed arguments
        [tool, "-v", "-aet", aet, "-aec", "XIETONG", "-to", "10", "127.0.0.1", str(port), *args],
        env={**os.environ, "TCP_NODELAY": "1"},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    if done.returncode:
        print(done.stdout, done.stderr)  # shown when a test fails
    return done.returncode


@needs_dcmtk
def test_the_demo_peer_echoes_and_stores(scp: Running) -> None:
    assert _dcmtk(ECHOSCU, scp.port) == 0
    for name, propose in FILES.items():
        assert _dcmtk(STORESCU, scp.port, propose, _path(name)) == 0, name
    assert scp.count(ImagingInstance) == len(FILES)
    for name in FILES:
        uid = str(dcmread(_path(name), stop_before_pixels=True).SOPInstanceUID)
        assert scp.sender_of(uid) == scp.county_id, name


@needs_dcmtk
def test_a_resend_is_stored_once(scp: Running) -> None:
    assert _dcmtk(STORESCU, scp.port, _path("CT_small.dcm")) == 0
    assert _dcmtk(STORESCU, scp.port, _path("CT_small.dcm")) == 0
    assert scp.count(ImagingInstance) == 1
    with scp.factory() as session:
        study = session.execute(select(ImagingStudy)).scalar_one()
        assert study.instance_count == 1


@needs_dcmtk
def test_an_unknown_calling_ae_is_rejected(scp: Running) -> None:
    assert _dcmtk(ECHOSCU, scp.port, aet="STRANGER") != 0
    assert _dcmtk(STORESCU, scp.port, _path("CT_small.dcm"), aet="STRANGER") != 0
    assert scp.count(ImagingInstance) == 0


@needs_dcmtk
def test_storescu_sends_nothing_of_a_non_dicom_file(scp: Running, tmp_path: Path) -> None:
    """dcmtk refuses the file itself; what reaches the SCP is tested with pynetdicom below."""
    hostile = tmp_path / "hostile.dcm"
    hostile.write_bytes(b"MZ" + b"\x00" * 500)
    assert _dcmtk(STORESCU, scp.port, str(hostile)) != 0
    assert scp.count(ImagingInstance) == 0


def _send(port: int, dataset: object) -> int:
    ae = AE(ae_title="DEMO_CT")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", port, ae_title="XIETONG")
    assert assoc.is_established
    try:
        status = assoc.send_c_store(dataset)  # type: ignore[arg-type]
    finally:
        assoc.release()
    return int(status.Status)


def test_an_invalid_dataset_is_refused_with_nothing_stored(scp: Running) -> None:
    ds = dcmread(_path("CT_small.dcm"))
    del ds.StudyInstanceUID
    assert _send(scp.port, ds) == 0xC000
    assert scp.count(ImagingInstance) == 0
    assert scp.count(ImagingStudy) == 0


def test_a_uid_against_the_grammar_reaches_the_scp_and_is_refused(scp: Running) -> None:
    """The refusal is ours, not the client's: pynetdicom sends the dataset as it is."""
    ds = dcmread(_path("CT_small.dcm"))
    ds.SOPInstanceUID = "1.2.826.0.1.3680043.8.498.01"  # a component with a leading zero
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    assert _send(scp.port, ds) == 0xC000
    assert scp.count(ImagingInstance) == 0
    assert scp.count(ImagingStudy) == 0


@needs_dcmtk
def test_other_content_under_a_stored_uid_is_refused(scp: Running) -> None:
    assert _dcmtk(STORESCU, scp.port, "-xe", _path("MR_small.dcm")) == 0
    # The same SOP Instance UID, RLE-encoded: other bytes, a conflict (0xA900).
    assert _dcmtk(STORESCU, scp.port, "-xr", _path("MR_small_RLE.dcm")) != 0
    assert scp.count(ImagingInstance) == 1


def test_a_known_title_from_another_address_is_aborted(scp: Running) -> None:
    """DEMO_CT is known from 127.0.0.1 only: the same title from 127.0.0.2 stores nothing."""
    ae = AE(ae_title="DEMO_CT")
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="XIETONG", bind_address=("127.0.0.2", 0))
    try:  # the abort may come before or after the request goes out
        status = assoc.send_c_store(dcmread(_path("CT_small.dcm")))
        assert not status or int(status.Status) != 0x0000
    except RuntimeError:  # pynetdicom: "must be established before sending"
        pass
    assert not assoc.is_established
    assert scp.count(ImagingInstance) == 0


def test_a_pdu_over_the_limit_is_not_read(scp: Running) -> None:
    """A declared PDU length far over the limit closes the connection at once instead of
    waiting for 2 GiB; the server goes on answering others."""
    with socket.create_connection(("127.0.0.1", scp.port), timeout=10) as sock:
        sock.sendall(b"\x01\x00" + (0x7FFF_FFFF).to_bytes(4, "big") + b"\x00" * 64)
        sock.settimeout(10)
        try:
            answer = sock.recv(1024)
        except ConnectionResetError:
            answer = b""
    assert answer == b""  # closed, not waiting for the rest
    ae = AE(ae_title="DEMO_CT")
    ae.add_requested_context("1.2.840.10008.1.1")  # Verification
    assoc = ae.associate("127.0.0.1", scp.port, ae_title="XIETONG")
    assert assoc.is_established
    assert int(assoc.send_c_echo().Status) == 0x0000
    assoc.release()


def test_unknown_callers_when_allowed_echo_but_store_for_nobody(open_scp: Running) -> None:
    """With unknown callers allowed, a stranger is associated (C-ECHO answers) but has no
    institution to store for: 0x0124, nothing stored."""
    ae = AE(ae_title="STRANGER")
    ae.add_requested_context("1.2.840.10008.1.1")  # Verification
    ae.add_requested_context(CTImageStorage)
    assoc = ae.associate("127.0.0.1", open_scp.port, ae_title="XIETONG")
    assert assoc.is_established
    try:
        assert int(assoc.send_c_echo().Status) == 0x0000
        assert int(assoc.send_c_store(dcmread(_path("CT_small.dcm"))).Status) == 0x0124
    finally:
        assoc.release()
    assert open_scp.count(ImagingInstance) == 0

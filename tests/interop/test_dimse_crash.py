"""Crash test: ``kill -9`` the DICOM SCP (``xietong dicom-scp``, its own process) in the
middle of a storescu push of 300 instances, restart it, and check that every instance
storescu saw acknowledged is indexed with its blob byte for byte, and that nothing is
half-indexed (no row without its blob, no counter that disagrees with the rows). Then the
whole push again: the rest is stored, the stored ones are accepted as identical resends.

Runs on a SQLite file, or on PostgreSQL when XIETONG_DATABASE_URL names it (a schema of
its own).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from pydicom import Dataset, dcmread
from pydicom.dataset import FileMetaDataset
from pydicom.uid import CTImageStorage, ExplicitVRLittleEndian, generate_uid
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests.interop.dimse_support import (
    DCMTK_ENV,
    TOOLS,
    free_port,
    migrated,
    needs_dcmtk,
    own_db_url,
    seed_network,
)
from xietong.core.storage import LocalBlobStore
from xietong.imaging.models import ImagingInstance, ImagingSeries, ImagingStudy

pytestmark = needs_dcmtk
COUNT = 300
KILL_AFTER = 100
XIETONG = str(Path(sys.executable).with_name("xietong"))


def _instance(folder: Path, study: str, series: str, number: int) -> Path:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = CTImageStorage
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = CTImageStorage
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.Modality = "CT"
    ds.PatientName = "崩溃^测试"
    ds.PatientID = "CRASH1"
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.StudyDate = "20240105"
    ds.InstanceNumber = number
    ds.Rows = ds.Columns = 16
    ds.BitsAllocated = ds.BitsStored = 16
    ds.HighBit = 15
    ds.PixelRepresentation = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.PixelData = (np.arange(256, dtype=np.int16) * number).tobytes()
    path = folder / f"{number:04d}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return path


def _dataset_bytes(data: bytes) -> bytes:
    """The bytes after the file meta (the meta is the receiver's own: its implementation
    class UID, not the sender's)."""
    ds = dcmread(__import__("io").BytesIO(data), stop_before_pixels=True)
    meta_end = 132 + 12 + int(ds.file_meta.FileMetaInformationGroupLength)
    return data[meta_end:]


@dataclass
class Node:
    url: str
    data_dir: Path
    port: int
    process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        env = {
            **os.environ,
            "XIETONG_ENV": "test",
            "XIETONG_DATABASE_URL": self.url,
            "XIETONG_DATA_DIR": str(self.data_dir),
            "XIETONG_DIMSE_HOST": "127.0.0.1",
        }
        self.process = subprocess.Popen(  # noqa: S603 - our own command
            [XIETONG, "dicom-scp", "--port", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return
            except OSError:
                time.sleep(0.2)
        raise AssertionError("the SCP did not start")

    def kill(self) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


@pytest.fixture
def node(tmp_path: Path, worker_id: str) -> Iterator[Node]:
    url = own_db_url(tmp_path, worker_id, name="crash")
    engine = migrated(url)
    seed_network(sessionmaker(bind=engine))
    engine.dispose()
    running = Node(url, tmp_path / "data", free_port())
    try:
        yield running
    finally:
        running.stop()


def _storescu(node: Node, files: list[Path], kill_after: int | None) -> list[bool]:
    """Push the files in this order; the i-th response answers the i-th file. With
    ``kill_after``, the SCP is killed once that many successes were seen."""
    process = subprocess.Popen(  # noqa: S603 - dcmtk with fixed arguments
        [
            str(TOOLS["storescu"]),
            "-v",
            "-aet",
            "DEMO_CT",
            "-aec",
            "XIETONG",
            "-to",
            "10",
            "127.0.0.1",
            str(node.port),
            *map(str, files),
        ],
        env=DCMTK_ENV,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    assert process.stdout is not None
    acknowledged: list[bool] = []
    for line in process.stdout:
        if re.search(r"Received Store Response", line):
            acknowledged.append("(Success)" in line)
            if kill_after is not None and sum(acknowledged) == kill_after:
                node.kill()
    process.wait(timeout=120)
    return acknowledged


def _check_consistent(factory: sessionmaker[Session], blobs: LocalBlobStore) -> int:
    with factory() as session:
        instances = list(session.execute(select(ImagingInstance)).scalars())
        for instance in instances:
            with blobs.open(instance.blob_key) as handle:
                assert len(handle.read()) == instance.size
            assert blobs.verify(instance.blob_key), instance.sop_instance_uid
        for series in session.execute(select(ImagingSeries)).scalars():
            rows = session.execute(
                select(func.count()).where(ImagingInstance.series_id == series.id)
            ).scalar_one()
            assert series.instance_count == rows > 0
        for study in session.execute(select(ImagingStudy)).scalars():
            rows = session.execute(
                select(func.count()).where(ImagingInstance.study_id == study.id)
            ).scalar_one()
            series_rows = session.execute(
                select(func.count()).where(ImagingSeries.study_id == study.id)
            ).scalar_one()
            assert study.instance_count == rows > 0
            assert study.series_count == series_rows
        return len(instances)


def test_kill_9_during_a_push_leaves_nothing_half_indexed(node: Node, tmp_path: Path) -> None:
    folder = tmp_path / "push"
    folder.mkdir()
    study = generate_uid()
    series = [generate_uid() for _ in range(3)]
    files = [_instance(folder, study, series[i % 3], i + 1) for i in range(COUNT)]
    node.start()
    acknowledged = _storescu(node, files, kill_after=KILL_AFTER)
    acked = [f for f, ok in zip(files, acknowledged, strict=False) if ok]
    assert KILL_AFTER <= len(acked) < COUNT, "the push should have been cut short"

    node.start()  # restart on the same database and blob store
    engine = migrated(node.url)  # already at head: opens it
    factory = sessionmaker(bind=engine)
    blobs = LocalBlobStore(node.data_dir / "blobs")
    try:
        stored = _check_consistent(factory, blobs)
        assert stored >= len(acked)
        with factory() as session:
            for path in acked:
                sent = path.read_bytes()
                uid = str(dcmread(path, stop_before_pixels=True).SOPInstanceUID)
                instance = session.execute(
                    select(ImagingInstance).where(ImagingInstance.sop_instance_uid == uid)
                ).scalar_one()
                with blobs.open(instance.blob_key) as handle:
                    assert _dataset_bytes(handle.read()) == _dataset_bytes(sent), path.name

        again = _storescu(node, files, kill_after=None)
        assert again == [True] * COUNT
        assert _check_consistent(factory, blobs) == COUNT
    finally:
        engine.dispose()

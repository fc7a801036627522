"""Benchmark: the imaging archive against Orthanc on the same machine, in the same run.

    .venv/bin/python bench/imaging.py [--quick] [--pg] [--json out.json] [--rounds 15]

Installs orthanc, orthanc-dicomweb and dcmtk with apt-get when missing (sudo -n when not
root). Generates with pydicom a synthetic CT series (300 slices of 512×512, 16 bits) and a
batch of small studies (1–3 instances each, some with Chinese names in ISO_IR 192), plus a
second copy of each with other UIDs for STOW-RS. Starts Orthanc (DICOMweb plugin, fresh
storage, gzip off, SyncStorageArea on) and Xietong (``xietong serve --dicom`` with one
worker: the web application and the DICOM SCP in one process, as ``make run``; a fresh data
folder and SQLite, or with ``--pg`` a fresh PostgreSQL database; the bench's AE a known DICOM
node of its institution) on loopback, then measures, for each, with the same client:

* C-STORE ingest (dcmtk storescu, one association, TCP_NODELAY=1): instances/s;
* STOW-RS ingest (httpx, batches of ``--batch`` instances per request): instances/s;
* C-FIND study level (dcmtk findscu, process and association included): median ms;
* QIDO-RS study search by name wildcard and by date range: median ms;
* WADO-RS series retrieve (multipart, whole body read): MB/s and instances/s;
* WADO-RS instance metadata and rendered frame (JPEG): median ms;
* the same QIDO and metadata requests with ``Accept-Encoding: gzip`` in separate rows
  (Orthanc restarted with HttpCompressionEnabled; bytes on the wire shown);
* the disk write ceiling: dd of 256 MiB with conv=fsync.

A figure our side cannot give yet (an endpoint or a DIMSE service not there) is "n/a". The
ratio is always Xietong over Orthanc; the "target" column says which way is better.
"""

from __future__ import annotations

import argparse
import fnmatch
import functools
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, CTImageStorage, ExplicitVRLittleEndian, MRImageStorage, generate_uid

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
APT_PACKAGES = {"Orthanc": "orthanc", "storescu": "dcmtk", "findscu": "dcmtk"}
DICOMWEB_PLUGIN = "/usr/share/orthanc/plugins/libOrthancDicomWeb.so"
SCU_AET = "BENCHSCU"
ORTHANC_AET = "ORTHANC"
XIETONG_AET = "XIETONG"
INSTITUTION = "HN-BENCH"
USERNAME = "bench_radiologist"
PASSWORD = "bench-Passw0rd-imaging"  # noqa: S105 - a throwaway account in a temp database
NAMES = ["ZHANG^SAN", "LI^SI", "WANG^WU", "ZHAO^LIU", "CHEN^QI", "张^伟", "王^芳", "李^娜"]
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}


# Tools -------------------------------------------------------------------------------------


def ensure_tools() -> None:
    """apt-get install what is missing, as .ci/run does (sudo -n when not root)."""
    missing = sorted({pkg for tool, pkg in APT_PACKAGES.items() if shutil.which(tool) is None})
    if not Path(DICOMWEB_PLUGIN).exists():
        missing.append("orthanc-dicomweb")
    if not missing:
        return
    sudo = [] if os.geteuid() == 0 else ["sudo", "-n"]
    print(f"installing {' '.join(missing)} with apt-get", flush=True)
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    subprocess.run([*sudo, "apt-get", "update", "-q"], check=True, env=env)  # noqa: S603
    subprocess.run([*sudo, "apt-get", "install", "-y", "-q", *missing], check=True, env=env)  # noqa: S603


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def disk_ceiling(folder: Path) -> float:
    """MB/s of dd writing 256 MiB with one fsync at the end (the sequential ceiling)."""
    target = folder / "dd.bin"
    done = subprocess.run(  # noqa: S603
        ["dd", "if=/dev/zero", f"of={target}", "bs=1M", "count=256", "conv=fsync"],  # noqa: S607
        capture_output=True,
        text=True,
        check=True,
    )
    target.unlink()
    # "268435456 bytes (268 MB, 256 MiB) copied, 0.52 s, 516 MB/s"
    seconds = float(done.stderr.strip().splitlines()[-1].split(",")[-2].split()[0])
    return 268_435_456 / seconds / 1e6


# Data --------------------------------------------------------------------------------------


@dataclass
class Study:
    study_uid: str
    series_uid: str
    sop_uids: list[str]
    patient_name: str
    study_date: str = ""


@dataclass
class DataSet:
    ct: Path
    ct_study: Study
    small: Path
    small_studies: list[Study]
    ct_stow: Path
    small_stow: Path
    ct_bytes: int = 0
    every_study: list[Study] = field(default_factory=list)  # the STOW copies too


def _base(sop_class: str, study: Study, patient_id: str, study_date: str, modality: str) -> Dataset:
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = UID(sop_class)
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.SOPClassUID = sop_class
    ds.StudyInstanceUID = study.study_uid
    ds.SeriesInstanceUID = study.series_uid
    ds.PatientName = study.patient_name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "M"
    ds.StudyDate = study_date
    ds.SeriesDate = study_date
    ds.StudyTime = "083000"
    ds.AccessionNumber = patient_id[-8:]
    ds.StudyID = "1"
    ds.Modality = modality
    ds.SeriesNumber = 1
    ds.Manufacturer = "Xietong bench"
    ds.InstitutionName = "新安县人民医院"
    ds.ReferringPhysicianName = "REF^DOC"
    return ds


def _write(ds: Dataset, sop_uid: str, path: Path) -> int:
    ds.SOPInstanceUID = sop_uid
    ds.file_meta.MediaStorageSOPInstanceUID = UID(sop_uid)
    ds.save_as(path, enforce_file_format=True)
    return path.stat().st_size


def _phantom(size: int) -> np.ndarray:
    """A body-like disc with two 'organs', in CT numbers stored with a -1024 intercept."""
    y, x = np.mgrid[:size, :size]
    r = np.hypot(x - size / 2, y - size / 2)
    image = np.where(r < size * 0.42, 1064, 24).astype(np.int32)
    image[np.hypot(x - size * 0.35, y - size / 2) < size * 0.1] = 1024 - 800  # lung
    image[np.hypot(x - size * 0.62, y - size * 0.55) < size * 0.08] = 1024 + 60  # liver
    return image


def make_ct(folder: Path, slices: int, size: int = 512) -> tuple[Study, int]:
    folder.mkdir(parents=True)
    study = Study(generate_uid(), generate_uid(), [], "ZHANG^SAN")
    study.study_date = date.today().strftime("%Y%m%d")
    ds = _base(CTImageStorage, study, "CT0000001", study.study_date, "CT")
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.StudyDescription = "CT CHEST W/O CONTRAST"
    ds.SeriesDescription = "AXIAL 1.0 B30f"
    ds.BodyPartExamined = "CHEST"
    ds.KVP = "120"
    ds.SliceThickness = "1.0"
    ds.PixelSpacing = ["0.7", "0.7"]
    ds.ImageOrientationPatient = ["1", "0", "0", "0", "1", "0"]
    ds.FrameOfReferenceUID = generate_uid()
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.Rows = ds.Columns = size
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = "-1024"
    ds.RescaleSlope = "1"
    ds.WindowCenter = "40"
    ds.WindowWidth = "400"
    base = _phantom(size)
    rng = np.random.default_rng(6)
    total = 0
    for n in range(slices):
        noise = rng.integers(0, 20, size=(size, size), dtype=np.int32)
        ds.PixelData = np.clip(base + noise + n % 50, 0, 4095).astype(np.uint16).tobytes()
        ds.InstanceNumber = n + 1
        ds.ImagePositionPatient = ["-180", "-180", f"{-n * 1.0:.1f}"]
        ds.SliceLocation = f"{-n * 1.0:.1f}"
        sop = generate_uid()
        study.sop_uids.append(sop)
        total += _write(ds, sop, folder / f"ct{n:04d}.dcm")
    return study, total


def make_small(folder: Path, count: int, seed: int) -> list[Study]:
    """``count`` MR studies of 1–3 instances of 128×128, spread over two years."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    studies = []
    first = date(2024, 1, 1)
    for s in range(count):
        name = NAMES[s % len(NAMES)] + ("" if s < len(NAMES) else f"{s}")
        study = Study(generate_uid(), generate_uid(), [], name)
        day = (first + timedelta(days=int(rng.integers(0, 730)))).strftime("%Y%m%d")
        study.study_date = day
        ds = _base(MRImageStorage, study, f"P{seed}{s:06d}", day, "MR")
        ds.StudyDescription = "MR HEAD"
        ds.SeriesDescription = "T1 AX"
        ds.SamplesPerPixel = 1
        ds.PhotometricInterpretation = "MONOCHROME2"
        ds.Rows = ds.Columns = 128
        ds.BitsAllocated = ds.BitsStored = 16
        ds.HighBit = 15
        ds.PixelRepresentation = 0
        for n in range(int(rng.integers(1, 4))):
            ds.InstanceNumber = n + 1
            ds.PixelData = rng.integers(0, 1000, (128, 128), dtype=np.uint16).tobytes()
            sop = generate_uid()
            study.sop_uids.append(sop)
            _write(ds, sop, folder / f"s{s:04d}_{n}.dcm")
        studies.append(study)
    return studies


def generate(root: Path, slices: int, studies: int) -> DataSet:
    start = time.perf_counter()
    ct_study, ct_bytes = make_ct(root / "ct", slices)
    ct_copy, _ = make_ct(root / "ct_stow", slices)
    small = make_small(root / "small", studies, 1)
    small_copy = make_small(root / "small_stow", studies, 2)
    print(
        f"data: CT {slices} × 512×512 ({ct_bytes / 1e6:.0f} MB), {studies} small studies "
        f"({sum(len(s.sop_uids) for s in small)} instances), twice; "
        f"{time.perf_counter() - start:.0f} s",
        flush=True,
    )
    return DataSet(
        ct=root / "ct",
        ct_study=ct_study,
        small=root / "small",
        small_studies=small,
        ct_stow=root / "ct_stow",
        small_stow=root / "small_stow",
        ct_bytes=ct_bytes,
        every_study=[ct_study, ct_copy, *small, *small_copy],
    )


# Servers -----------------------------------------------------------------------------------


def _wait_http(url: str, headers: dict[str, str] | None = None, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            if httpx.get(url, headers=headers, timeout=2).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not come up")


def _wait_port(port: int, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.2)
    raise RuntimeError(f"port {port} did not open")


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@dataclass
class Server:
    name: str
    aet: str
    dicom_port: int
    http: str  # DICOMweb root, no trailing slash
    headers: dict[str, str] = field(default_factory=dict)


def warm(server: Server) -> None:
    """One search before measuring: FastAPI builds its route table on the first request
    (0.4 s here), which a long-running server has long paid."""
    headers = {**server.headers, "Accept": "application/dicom+json"}
    httpx.get(f"{server.http}/studies", headers=headers, timeout=60).raise_for_status()


@contextmanager
def orthanc(root: Path, *, gzip: bool) -> Iterator[Server]:
    http_port, dicom_port = free_port(), free_port()
    storage = root / "orthanc"
    config = {
        "Name": "bench",
        "StorageDirectory": str(storage),
        "IndexDirectory": str(storage),
        "StorageCompression": False,
        "SyncStorageArea": True,  # fsync after each file (Orthanc's default)
        "HttpPort": http_port,
        "DicomPort": dicom_port,
        "DicomAet": ORTHANC_AET,
        "RemoteAccessAllowed": False,
        "AuthenticationEnabled": False,
        "HttpCompressionEnabled": gzip,
        "DicomModalities": {"bench": [SCU_AET, "127.0.0.1", 4242]},
        "Plugins": [DICOMWEB_PLUGIN],
        "DicomWeb": {"Enable": True, "Root": "/dicom-web/", "EnableWado": True},
    }
    path = root / f"orthanc-{'gzip' if gzip else 'plain'}.json"
    path.write_text(json.dumps(config, indent=1))
    log = (root / "orthanc.log").open("ab")
    # Orthanc's DICOM sockets are dcmtk's: TCP_NODELAY=1 in its environment too.
    process = subprocess.Popen(  # noqa: S603
        ["Orthanc", str(path)],  # noqa: S607
        stdout=log,
        stderr=log,
        env=DCMTK_ENV,
    )
    try:
        _wait_http(f"http://127.0.0.1:{http_port}/system")
        _wait_port(dicom_port)
        server = Server(
            "Orthanc", ORTHANC_AET, dicom_port, f"http://127.0.0.1:{http_port}/dicom-web"
        )
        warm(server)
        yield server
    finally:
        _stop(process)
        log.close()


def _xietong_env(root: Path, database_url: str, dicom_port: int) -> dict[str, str]:
    env = {
        k: v for k, v in os.environ.items() if not k.startswith("XIETONG_") or k == "XIETONG_ENV"
    }
    return {
        **env,
        "XIETONG_DATA_DIR": str(root / "xietong"),
        "XIETONG_DATABASE_URL": database_url,
        "XIETONG_DIMSE_ENABLED": "true",
        "XIETONG_DIMSE_PORT": str(dicom_port),
        "XIETONG_DIMSE_AE_TITLE": XIETONG_AET,
        "XIETONG_SECURITY_SECRET_KEY": "bench-secret-key-0123456789abcdef0123",
    }


def _prepare_xietong(env: dict[str, str]) -> None:
    """Migrate, the regions, the bench institution, its DICOM node (the bench's storescu and
    findscu) and one radiologist."""
    script = f"""
from xietong.config import load_settings
from xietong.cli import run_migrations
from xietong.core.db import make_engine, make_session_factory, session_scope
from xietong.directory.models import Institution
from xietong.directory.peer_schemas import DicomPeerCreateIn
from xietong.directory.regions import load_regions
from xietong.directory.service import register_peer
from xietong.identity import service as identity
from xietong.identity.roles import Role
settings = load_settings()
run_migrations(settings)
factory = make_session_factory(make_engine(settings.database_url))
with session_scope(factory) as s:
    load_regions(s)
    inst = Institution(code={INSTITUTION!r}, name="新安县人民医院", level="county",
                       region_code="410323")
    s.add(inst)
    s.flush()
    register_peer(s, inst, DicomPeerCreateIn(ae_title={SCU_AET!r}, host="127.0.0.1", port=4242))
    identity.create_user(s, username={USERNAME!r}, password={PASSWORD!r},
                         display_name="影像科医生", roles=[Role.RADIOLOGIST],
                         policy=settings.security, institution_id=inst.id)
"""
    subprocess.run([sys.executable, "-c", script], env=env, check=True, cwd=REPO)  # noqa: S603


def fresh_database(pg: bool, root: Path) -> tuple[str, Callable[[], None]]:
    if not pg:
        return f"sqlite:///{root / 'xietong' / 'xietong.sqlite3'}", lambda: None
    admin = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
    name = f"bench_imaging_{os.getpid()}"
    subprocess.run(["psql", admin, "-qc", f"CREATE DATABASE {name}"], check=True)  # noqa: S603, S607
    url = admin.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://") + f"/{name}"

    def drop() -> None:
        subprocess.run(  # noqa: S603
            ["psql", admin, "-qc", f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"],  # noqa: S607
            check=False,
        )

    return url, drop


@contextmanager
def xietong(root: Path, database_url: str) -> Iterator[Server]:
    http_port, dicom_port = free_port(), free_port()
    (root / "xietong").mkdir(exist_ok=True)
    env = _xietong_env(root, database_url, dicom_port)
    _prepare_xietong(env)
    log = (root / "xietong.log").open("ab")
    xietong_bin = str(BIN / "xietong")
    # As `make run`: one process serves the web application and the DICOM SCP.
    web = subprocess.Popen(  # noqa: S603
        [
            xietong_bin,
            "serve",
            "--host",
            "127.0.0.1",
            "--port",
            str(http_port),
            "--workers",
            "1",
            "--dicom",
        ],
        env=env,
        stdout=log,
        stderr=log,
    )
    try:
        base = f"http://127.0.0.1:{http_port}"
        _wait_http(f"{base}/healthz")
        _wait_port(dicom_port)
        answer = httpx.post(
            f"{base}/api/v1/auth/token", data={"username": USERNAME, "password": PASSWORD}
        )
        answer.raise_for_status()
        token = {"Authorization": f"Bearer {answer.json()['access_token']}"}
        server = Server("Xietong", XIETONG_AET, dicom_port, f"{base}/dicomweb", token)
        warm(server)
        yield server
    finally:
        _stop(web)
        log.close()


# Measurements ------------------------------------------------------------------------------


def median_ms(work: Callable[[], object], rounds: int) -> float:
    work()  # warm: connections, caches
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def storescu(server: Server, folder: Path) -> float:
    """Seconds to send every file of the folder in one association."""
    start = time.perf_counter()
    done = subprocess.run(  # noqa: S603
        [  # noqa: S607
            "storescu",
            "-aet",
            SCU_AET,
            "-aec",
            server.aet,
            "-to",
            "60",
            "+sd",
            "+r",
            "127.0.0.1",
            str(server.dicom_port),
            str(folder),
        ],
        env=DCMTK_ENV,
        capture_output=True,
        text=True,
        check=False,
    )
    seconds = time.perf_counter() - start
    if done.returncode or "Failed" in done.stderr or "E:" in done.stderr:
        raise RuntimeError(f"storescu to {server.name} failed: {done.stderr[-2000:]}")
    return seconds


def stow(client: httpx.Client, server: Server, folder: Path, batch: int) -> float:
    files = sorted(folder.iterdir())
    boundary = "benchboundary0123456789"
    start = time.perf_counter()
    for at in range(0, len(files), batch):
        body = bytearray()
        for path in files[at : at + batch]:
            body += f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            body += path.read_bytes()
            body += b"\r\n"
        body += f"--{boundary}--\r\n".encode()
        answer = client.post(
            f"{server.http}/studies",
            content=bytes(body),
            headers={
                **server.headers,
                "Content-Type": f'multipart/related; type="application/dicom"; boundary={boundary}',
                "Accept": "application/dicom+json",
            },
        )
        if answer.status_code != 200:
            raise RuntimeError(f"STOW to {server.name}: {answer.status_code} {answer.text[:300]}")
    return time.perf_counter() - start


def findscu(server: Server, keys: list[str]) -> Callable[[], object] | None:
    args = [
        "findscu", "-S", "-aet", SCU_AET, "-aec", server.aet, "-to", "30",
        "-k", "QueryRetrieveLevel=STUDY", "-k", "StudyInstanceUID", "-k", "PatientName",
        "-k", "StudyDate", "-k", "NumberOfStudyRelatedInstances",
        *[a for k in keys for a in ("-k", k)],
        "127.0.0.1", str(server.dicom_port),
    ]  # fmt: skip

    def run() -> int:
        done = subprocess.run(args, env=DCMTK_ENV, capture_output=True, text=True, check=False)  # noqa: S603
        if done.returncode:
            raise RuntimeError(done.stderr[-500:])
        return done.stderr.count("Find Response:")

    try:
        if run() == 0:
            return None
    except RuntimeError:
        return None  # C-FIND not offered (no presentation context accepted)
    return run


def get(client: httpx.Client, server: Server, path: str, accept: str, gzip: bool = False) -> int:
    headers = {**server.headers, "Accept": accept}
    headers["Accept-Encoding"] = "gzip" if gzip else "identity"
    with client.stream("GET", f"{server.http}{path}", headers=headers) as answer:
        if answer.status_code not in (200, 204):
            raise RuntimeError(f"{server.name} GET {path}: {answer.status_code}")
        return sum(len(chunk) for chunk in answer.iter_raw())


def matches(client: httpx.Client, server: Server, path: str) -> int:
    """How many results the search gave (a server that fails to match answers fast)."""
    answer = client.get(
        f"{server.http}{path}", headers={**server.headers, "Accept": "application/dicom+json"}
    )
    return len(answer.json()) if answer.status_code == 200 else 0


def expected_matches(studies: list[Study], path: str) -> int:
    """What the search should find in the generated data (limit 100, as both page)."""
    key, _, value = urllib.parse.unquote(path.split("?", 1)[1]).partition("=")
    if key == "PatientName":
        hits = [s for s in studies if fnmatch.fnmatchcase(s.patient_name, value)]
    else:
        start, _, end = value.partition("-")
        hits = [s for s in studies if start <= s.study_date <= end]
    return min(len(hits), 100)


def available(client: httpx.Client, server: Server, path: str, accept: str) -> bool:
    headers = {**server.headers, "Accept": accept}
    answer = client.get(f"{server.http}{path}", headers=headers)
    return answer.status_code == 200


@dataclass
class Row:
    name: str
    unit: str
    better: str  # "higher" or "lower"
    ours: float | None
    theirs: float | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.theirs:
            return None
        return self.ours / self.theirs

    @property
    def met(self) -> bool | None:
        ratio = self.ratio
        if ratio is None:
            return None
        return ratio >= 1.0 if self.better == "higher" else ratio <= 1.0


@dataclass
class Bench:
    args: argparse.Namespace
    data: DataSet
    rows: list[Row] = field(default_factory=list)

    def add(self, row: Row) -> None:
        self.rows.append(row)
        print(_format(row), flush=True)


def ingest_rows(bench: Bench, ours: Server, theirs: Server) -> None:
    data, n_ct = bench.data, len(bench.data.ct_study.sop_uids)
    n_small = sum(len(s.sop_uids) for s in data.small_studies)
    figures: dict[str, dict[str, float]] = {"ours": {}, "theirs": {}}
    for side, server in (("ours", ours), ("theirs", theirs)):
        figures[side]["ct"] = n_ct / storescu(server, data.ct)
        figures[side]["small"] = n_small / storescu(server, data.small)
        with httpx.Client(timeout=300) as client:
            figures[side]["stow_ct"] = n_ct / stow(client, server, data.ct_stow, bench.args.batch)
            figures[side]["stow_small"] = n_small / stow(
                client, server, data.small_stow, bench.args.batch
            )
    labels = {
        "ct": f"C-STORE CT series ({n_ct} × 512²)",
        "small": f"C-STORE small studies ({n_small})",
        "stow_ct": f"STOW-RS CT series ({bench.args.batch}/request)",
        "stow_small": f"STOW-RS small studies ({bench.args.batch}/req)",
    }
    for key, label in labels.items():
        bench.add(Row(label, "inst/s", "higher", figures["ours"][key], figures["theirs"][key]))


def query_rows(bench: Bench, ours: Server, theirs: Server) -> None:
    rounds = bench.args.rounds
    date_from = "20240301"
    date_to = "20240630"
    queries = {
        "QIDO-RS studies, PatientName=ZHANG*": "/studies?PatientName=ZHANG*",
        "QIDO-RS studies, date range": f"/studies?StudyDate={date_from}-{date_to}",
        "QIDO-RS studies, PatientName=张*": "/studies?PatientName=%E5%BC%A0*",
    }
    for label, path in queries.items():
        results: list[float | None] = []
        found: list[str] = []
        for server in (ours, theirs):
            with httpx.Client(timeout=60) as client:
                found.append(str(matches(client, server, path)))
                results.append(
                    median_ms(
                        functools.partial(get, client, server, path, "application/dicom+json"),
                        rounds,
                    )
                )
        expected = expected_matches(bench.data.every_study, path)
        note = f"matches {' / '.join(found)} of {expected}"
        if found[1] != str(expected):
            note += ": Orthanc's answer is wrong, no ratio"
            results[1] = None
        bench.add(Row(label, "ms", "lower", results[0], results[1], note))
    finds = {
        "C-FIND studies, PatientName=ZHANG*": ["PatientName=ZHANG*"],
        "C-FIND studies, date range": [f"StudyDate={date_from}-{date_to}"],
    }
    for label, keys in finds.items():
        runners = [findscu(ours, keys), findscu(theirs, keys)]
        values = [None if r is None else median_ms(r, max(3, rounds // 2)) for r in runners]
        note = "no C-FIND SCP yet" if runners[0] is None else "findscu process included"
        bench.add(Row(label, "ms", "lower", values[0], values[1], note))


def retrieve_rows(bench: Bench, ours: Server, theirs: Server) -> None:
    ct = bench.data.ct_study
    series = f"/studies/{ct.study_uid}/series/{ct.series_uid}"
    middle = ct.sop_uids[len(ct.sop_uids) // 2]
    instance = f"{series}/instances/{middle}"
    accept = 'multipart/related; type="application/dicom"'
    mbs: list[float] = []
    ips: list[float] = []
    for server in (ours, theirs):
        with httpx.Client(timeout=300) as client:
            get(client, server, series, accept)  # warm
            times, size = [], 0
            for _ in range(3):
                start = time.perf_counter()
                size = get(client, server, series, accept)
                times.append(time.perf_counter() - start)
            seconds = statistics.median(times)
            mbs.append(size / seconds / 1e6)
            ips.append(len(ct.sop_uids) / seconds)
    bench.add(Row("WADO-RS series retrieve", "MB/s", "higher", mbs[0], mbs[1]))
    bench.add(Row("WADO-RS series retrieve", "inst/s", "higher", ips[0], ips[1]))
    single: list[float | None] = []
    for server in (ours, theirs):
        with httpx.Client(timeout=60) as client:
            single.append(
                median_ms(
                    functools.partial(get, client, server, instance, accept), bench.args.rounds
                )
            )
    bench.add(Row("WADO-RS one CT instance", "ms", "lower", single[0], single[1]))
    for label, path, media in (
        ("WADO-RS instance metadata", f"{instance}/metadata", "application/dicom+json"),
        ("WADO-RS series metadata", f"{series}/metadata", "application/dicom+json"),
        ("rendered frame (JPEG)", f"{instance}/rendered", "image/jpeg"),
        ("rendered frame 1 (JPEG)", f"{instance}/frames/1/rendered", "image/jpeg"),
    ):
        values: list[float | None] = []
        for server in (ours, theirs):
            with httpx.Client(timeout=60) as client:
                if not available(client, server, path, media):
                    values.append(None)
                    continue
                values.append(
                    median_ms(
                        functools.partial(get, client, server, path, media),
                        bench.args.rounds,
                    )
                )
        note = "not served by Xietong yet" if values[0] is None else ""
        bench.add(Row(label, "ms", "lower", values[0], values[1], note))


def gzip_rows(bench: Bench, ours: Server, theirs: Server) -> None:
    """The browser's way: Accept-Encoding gzip (Orthanc now has compression on)."""
    ct = bench.data.ct_study
    series = f"/studies/{ct.study_uid}/series/{ct.series_uid}"
    paths = {
        "gzip QIDO-RS studies, date range": "/studies?StudyDate=20240101-20251231",
        "gzip WADO-RS series metadata": f"{series}/metadata",
        "gzip WADO-RS instance metadata": f"{series}/instances/{ct.sop_uids[0]}/metadata",
    }
    for label, path in paths.items():
        values: list[float | None] = []
        sizes: list[str] = []
        for server in (ours, theirs):
            with httpx.Client(timeout=60) as client:
                if not available(client, server, path, "application/dicom+json"):
                    values.append(None)
                    sizes.append("-")
                    continue
                size = get(client, server, path, "application/dicom+json", gzip=True)
                sizes.append(f"{size / 1024:.0f} KiB")
                values.append(
                    median_ms(
                        functools.partial(
                            get, client, server, path, "application/dicom+json", gzip=True
                        ),
                        bench.args.rounds,
                    )
                )
        bench.add(Row(label, "ms", "lower", values[0], values[1], f"wire {' / '.join(sizes)}"))


def _format(row: Row) -> str:
    def figure(value: float | None) -> str:
        return "n/a" if value is None else f"{value:,.1f}"

    ratio = "n/a" if row.ratio is None else f"{row.ratio:.2f}"
    target = "≥1" if row.better == "higher" else "≤1"
    mark = {True: "ok", False: "MISS", None: ""}[row.met]
    return (
        f"{row.name:44} {row.unit:6} {figure(row.ours):>10} {figure(row.theirs):>10} "
        f"{ratio:>6} {target:>3} {mark:4} {row.note}"
    )


def header() -> str:
    return (
        f"{'figure':44} {'unit':6} {'Xietong':>10} {'Orthanc':>10} {'ratio':>6} "
        f"{'tgt':>3} {'':4} note"
    )


def machine() -> dict[str, Any]:
    cpu = ""
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            cpu = line.split(":", 1)[1].strip()
            break
    memory = Path("/proc/meminfo").read_text().splitlines()[0].split()[1]
    orthanc_version = subprocess.run(
        ["Orthanc", "--version"],  # noqa: S607
        capture_output=True,
        text=True,
        check=False,
    ).stdout.splitlines()[0]
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "memory_gib": round(int(memory) / 1_048_576, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "orthanc": orthanc_version,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="60 slices, 40 small studies")
    parser.add_argument("--pg", action="store_true", help="Xietong on a fresh PostgreSQL db")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--rounds", type=int, default=15, help="repeats of each latency")
    parser.add_argument("--batch", type=int, default=10, help="instances per STOW request")
    parser.add_argument("--slices", type=int, default=None)
    parser.add_argument("--studies", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the temp folder and logs")
    args = parser.parse_args()
    slices = args.slices or (60 if args.quick else 300)
    studies = args.studies or (40 if args.quick else 200)
    ensure_tools()
    root = Path(tempfile.mkdtemp(prefix="bench-imaging-"))
    database_url, drop = fresh_database(args.pg, root)
    try:
        print(f"folder {root}; Xietong on {'PostgreSQL' if args.pg else 'SQLite'}", flush=True)
        bench = Bench(args, generate(root / "data", slices, studies))
        ceiling = disk_ceiling(root)
        print(f"disk write ceiling (dd 256 MiB, conv=fsync): {ceiling:,.0f} MB/s\n")
        print(header())
        with xietong(root, database_url) as ours:
            with orthanc(root, gzip=False) as theirs:
                ingest_rows(bench, ours, theirs)
                query_rows(bench, ours, theirs)
                retrieve_rows(bench, ours, theirs)
            with orthanc(root, gzip=True) as theirs:
                gzip_rows(bench, ours, theirs)
        load = os.getloadavg()
        print(
            f"\nload average at the end (1, 5, 15 min): {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        )
        print(
            "Both fsync each stored file before answering (Orthanc: SyncStorageArea true; "
            "Xietong: blob fsync + directory fsync, then the database commit)."
        )
        if args.json:
            report = {
                "machine": machine(),
                "command": " ".join(sys.argv),
                "database": "postgresql" if args.pg else "sqlite",
                "slices": slices,
                "small_studies": studies,
                "disk_write_ceiling_mb_s": ceiling,
                "load_average_at_end": load,
                "rows": [{**asdict(r), "ratio": r.ratio, "met": r.met} for r in bench.rows],
            }
            args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    finally:
        if args.keep:
            print(f"kept {root}")
        else:
            shutil.rmtree(root, ignore_errors=True)
        drop()


if __name__ == "__main__":
    main()

"""Query/retrieve against the running SCP with dcmtk (findscu, movescu, getscu, storescp):
C-FIND at every level of both models with Chinese names, wildcards, date ranges and the
number-of-related counters; C-MOVE to a known peer, C-GET into getscu; the association
limit; and access: another institution's AE finds and retrieves nothing of ours, a move
to an unknown destination is refused (0xA801). Fixtures: conftest.py, dimse_support.py.
"""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from pydicom import Dataset, dcmread
from pydicom.uid import generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    StudyRootQueryRetrieveInformationModelFind,
    Verification,
)

from tests.interop.dimse_support import (
    DCMTK_ENV,
    TOOLS,
    Running,
    dcmtk,
    free_port,
    needs_dcmtk,
    sample_file,
    start,
)

pytestmark = needs_dcmtk


@dataclass(frozen=True)
class Study:
    uid: str
    series: tuple[str, ...]
    instances: tuple[str, ...]


def _write(
    folder: Path,
    source: str,
    *,
    name: str,
    patient_id: str,
    study: str,
    series: str,
    date: str,
    number: int,
) -> str:
    ds = dcmread(sample_file(source))
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.PatientBirthDate = "19600101"
    ds.PatientSex = "M"
    ds.StudyInstanceUID = study
    ds.SeriesInstanceUID = series
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.StudyDate = date
    ds.StudyTime = "103000"
    ds.AccessionNumber = f"ACC{number}"
    ds.InstanceNumber = number
    path = folder / f"{ds.SOPInstanceUID}.dcm"
    ds.save_as(path, enforce_file_format=True)
    return str(ds.SOPInstanceUID)


@dataclass
class Archive:
    scp: Running
    zhang: Study  # 张三, P001, 2024-01-05: two CT series, three instances
    li: Study  # 李四, P002, 2024-03-10: one MR series, one instance
    wang: Study  # 王五, P003, of the other institution (sent by OTHER_CT)
    tmp: Path


def _study(
    folder: Path, source: str, name: str, patient_id: str, date: str, per_series: tuple[int, ...]
) -> Study:
    study = generate_uid()
    series_uids, instances = [], []
    for count in per_series:
        series = generate_uid()
        series_uids.append(series)
        for _ in range(count):
            instances.append(
                _write(
                    folder,
                    source,
                    name=name,
                    patient_id=patient_id,
                    study=study,
                    series=series,
                    date=date,
                    number=len(instances) + 1,
                )
            )
    return Study(study, tuple(series_uids), tuple(instances))


@pytest.fixture
def archive(tmp_path: Path, worker_id: str) -> Iterator[Archive]:
    for running in start(tmp_path, worker_id):
        county, other = tmp_path / "county", tmp_path / "other"
        county.mkdir()
        other.mkdir()
        zhang = _study(county, "CT_small.dcm", "张^三", "P001", "20240105", (2, 1))
        li = _study(county, "MR_small.dcm", "李^四", "P002", "20240310", (1,))
        wang = _study(other, "CT_small.dcm", "王^五", "P003", "20240105", (1,))
        assert dcmtk("storescu", running.port, "+sd", str(county)).returncode == 0
        assert dcmtk("storescu", running.port, "+sd", str(other), aet="OTHER_CT").returncode == 0
        yield Archive(running, zhang, li, wang, tmp_path)


def _find(
    archive: Archive, model: str, level: str, *keys: str, aet: str = "DEMO_CT"
) -> list[Dataset]:
    out = archive.tmp / f"find-{time.monotonic_ns()}"
    out.mkdir()
    done = dcmtk(
        "findscu",
        archive.scp.port,
        model,
        "-X",
        "-od",
        str(out),
        "-k",
        f"QueryRetrieveLevel={level}",
        "-k",
        "SpecificCharacterSet=ISO_IR 192",
        *[arg for key in keys for arg in ("-k", key)],
        aet=aet,
    )
    assert done.returncode == 0, done.stderr
    return [dcmread(p) for p in sorted(out.glob("rsp*.dcm"))]


def _values(results: list[Dataset], keyword: str) -> list[str]:
    return sorted(str(ds.get(keyword, "")) for ds in results)


# C-FIND ------------------------------------------------------------------------------------


def test_patient_level_in_the_patient_root_with_chinese_names_and_counters(
    archive: Archive,
) -> None:
    results = _find(
        archive,
        "-P",
        "PATIENT",
        "PatientName=张*",
        "PatientID",
        "PatientBirthDate",
        "NumberOfPatientRelatedStudies",
        "NumberOfPatientRelatedSeries",
        "NumberOfPatientRelatedInstances",
    )
    assert len(results) == 1
    patient = results[0]
    assert patient.SpecificCharacterSet == "ISO_IR 192"
    assert str(patient.PatientName) == "张^三"
    assert patient.PatientID == "P001"
    assert patient.PatientBirthDate == "19600101"
    assert int(patient.NumberOfPatientRelatedStudies) == 1
    assert int(patient.NumberOfPatientRelatedSeries) == 2
    assert int(patient.NumberOfPatientRelatedInstances) == 3


@pytest.mark.parametrize("model", ["-P", "-S"])
def test_study_level_matches_wildcards_dates_and_lists(archive: Archive, model: str) -> None:
    keys = (
        "StudyInstanceUID",
        "PatientName",
        "NumberOfStudyRelatedSeries",
        "NumberOfStudyRelatedInstances",
        "ModalitiesInStudy",
        "StudyDate",
    )
    everyone = _find(archive, model, "STUDY", *keys)
    assert _values(everyone, "StudyInstanceUID") == sorted([archive.zhang.uid, archive.li.uid])
    zhang = _find(archive, model, "STUDY", *keys[:-1], "StudyDate=20240101-20240131")
    assert [ds.StudyInstanceUID for ds in zhang] == [archive.zhang.uid]
    assert str(zhang[0].PatientName) == "张^三"
    assert int(zhang[0].NumberOfStudyRelatedSeries) == 2
    assert int(zhang[0].NumberOfStudyRelatedInstances) == 3
    assert zhang[0].ModalitiesInStudy == "CT"
    assert [
        ds.StudyInstanceUID
        for ds in _find(archive, model, "STUDY", "StudyInstanceUID", "StudyDate=20240301-")
    ] == [archive.li.uid]
    # "?" is exactly one character (here the "^" between family and given name).
    assert len(_find(archive, model, "STUDY", "PatientName=李?四")) == 1
    assert _find(archive, model, "STUDY", "PatientName=李?") == []
    both = f"StudyInstanceUID={archive.zhang.uid}\\{archive.li.uid}"
    assert len(_find(archive, model, "STUDY", both)) == 2
    assert _find(archive, model, "STUDY", "PatientName=赵*") == []


@pytest.mark.parametrize("model", ["-P", "-S"])
def test_series_and_image_levels(archive: Archive, model: str) -> None:
    series = _find(
        archive,
        model,
        "SERIES",
        f"StudyInstanceUID={archive.zhang.uid}",
        "SeriesInstanceUID",
        "Modality",
        "NumberOfSeriesRelatedInstances",
    )
    counts = {ds.SeriesInstanceUID: int(ds.NumberOfSeriesRelatedInstances) for ds in series}
    assert counts == {archive.zhang.series[0]: 2, archive.zhang.series[1]: 1}
    assert {ds.Modality for ds in series} == {"CT"}
    images = _find(
        archive,
        model,
        "IMAGE",
        f"StudyInstanceUID={archive.zhang.uid}",
        f"SeriesInstanceUID={archive.zhang.series[0]}",
        "SOPInstanceUID",
        "SOPClassUID",
        "InstanceNumber",
    )
    assert sorted(ds.SOPInstanceUID for ds in images) == sorted(archive.zhang.instances[:2])
    one = _find(
        archive, model, "IMAGE", f"SOPInstanceUID={archive.zhang.instances[2]}", "PatientName"
    )
    assert len(one) == 1
    assert str(one[0].PatientName) == "张^三"


def test_a_query_in_gb18030_matches_and_is_answered_in_utf8(archive: Archive) -> None:
    ae = AE(ae_title="DEMO_CT")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    query = Dataset()
    query.SpecificCharacterSet = "GB18030"
    query.QueryRetrieveLevel = "STUDY"
    query.PatientName = "李*"
    query.StudyInstanceUID = ""
    assoc = ae.associate("127.0.0.1", archive.scp.port, ae_title="XIETONG")
    assert assoc.is_established
    try:
        answers = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    finally:
        assoc.release()
    matches = [ds for status, ds in answers if status and status.Status == 0xFF00]
    assert [str(ds.PatientName) for ds in matches] == ["李^四"]
    assert matches[0].SpecificCharacterSet == "ISO_IR 192"
    assert answers[-1][0].Status == 0x0000


def test_the_result_cap_ends_the_query_with_out_of_resources(
    tmp_path: Path, worker_id: str
) -> None:
    for running in start(tmp_path, worker_id, max_find_results=1):
        folder = tmp_path / "two"
        folder.mkdir()
        _study(folder, "CT_small.dcm", "张^三", "P001", "20240105", (1,))
        _study(folder, "CT_small.dcm", "李^四", "P002", "20240105", (1,))
        assert dcmtk("storescu", running.port, "+sd", str(folder)).returncode == 0
        done = dcmtk(
            "findscu",
            running.port,
            "-S",
            "-k",
            "QueryRetrieveLevel=STUDY",
            "-k",
            "StudyInstanceUID",
        )
        assert "Final Find Response (Refused: OutOfResources)" in done.stderr  # 0xA700


# Access ------------------------------------------------------------------------------------


def test_another_institution_finds_only_its_own(archive: Archive) -> None:
    theirs = _find(archive, "-S", "STUDY", "StudyInstanceUID", "PatientName", aet="OTHER_CT")
    assert [ds.StudyInstanceUID for ds in theirs] == [archive.wang.uid]
    for level, key in (
        ("PATIENT", "PatientName=张*"),
        ("SERIES", f"StudyInstanceUID={archive.zhang.uid}"),
        ("IMAGE", f"SOPInstanceUID={archive.zhang.instances[0]}"),
    ):
        model = "-P" if level == "PATIENT" else "-S"
        assert _find(archive, model, level, key, aet="OTHER_CT") == [], level


def test_unknown_and_unauthorised_callers_are_refused(archive: Archive) -> None:
    done = dcmtk(
        "findscu", archive.scp.port, "-S", "-k", "QueryRetrieveLevel=STUDY", aet="STRANGER"
    )
    assert done.returncode != 0
    assert "Rejected" in done.stderr + done.stdout


# C-MOVE and C-GET --------------------------------------------------------------------------


@pytest.fixture
def store_scp(archive: Archive) -> Iterator[tuple[int, Path]]:
    """A dcmtk storescp taking C-MOVE results, registered as the county's MOVE_DEST."""
    port = free_port()
    folder = archive.tmp / "moved"
    folder.mkdir()
    process = subprocess.Popen(  # noqa: S603 - dcmtk with fixed arguments
        [str(TOOLS["storescp"]), "-aet", "MOVE_DEST", "+xa", "-od", str(folder), str(port)],
        env=DCMTK_ENV,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    archive.scp.add_peer(archive.scp.county_id, "MOVE_DEST", port)
    time.sleep(0.5)
    try:
        yield port, folder
    finally:
        process.terminate()
        process.wait(timeout=10)


def _move(
    archive: Archive, destination: str, *keys: str, aet: str = "DEMO_CT", model: str = "-S"
) -> str:
    done = dcmtk(
        "movescu",
        archive.scp.port,
        model,
        "-aem",
        destination,
        *[arg for key in keys for arg in ("-k", key)],
        aet=aet,
    )
    return done.stdout + done.stderr


def _received(folder: Path) -> set[str]:
    return {str(dcmread(p, stop_before_pixels=True).SOPInstanceUID) for p in folder.iterdir()}


def test_c_move_sends_a_study_to_a_known_peer(
    archive: Archive, store_scp: tuple[int, Path]
) -> None:
    _, folder = store_scp
    log = _move(
        archive, "MOVE_DEST", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={archive.zhang.uid}"
    )
    assert _received(folder) == set(archive.zhang.instances), log
    log = _move(
        archive,
        "MOVE_DEST",
        "QueryRetrieveLevel=SERIES",
        f"StudyInstanceUID={archive.li.uid}",
        f"SeriesInstanceUID={archive.li.series[0]}",
        model="-P",
    )
    assert set(archive.li.instances) <= _received(folder), log


def test_c_move_to_an_unknown_destination_is_refused(archive: Archive) -> None:
    log = _move(
        archive, "NOWHERE", "QueryRetrieveLevel=STUDY", f"StudyInstanceUID={archive.zhang.uid}"
    )
    assert "Refused: MoveDestinationUnknown" in log  # dcmtk's name of 0xA801


def test_another_institution_moves_and_gets_nothing_of_ours(
    archive: Archive, store_scp: tuple[int, Path]
) -> None:
    _, folder = store_scp
    # OTHER_CT may not send to the county's node, nor take the county's study to its own.
    log = _move(
        archive,
        "MOVE_DEST",
        "QueryRetrieveLevel=STUDY",
        f"StudyInstanceUID={archive.zhang.uid}",
        aet="OTHER_CT",
    )
    assert "Refused: MoveDestinationUnknown" in log  # dcmtk's name of 0xA801
    archive.scp.add_peer(archive.scp.other_id, "OTHER_DEST", store_scp[0])
    log = _move(
        archive,
        "OTHER_DEST",
        "QueryRetrieveLevel=STUDY",
        f"StudyInstanceUID={archive.zhang.uid}",
        aet="OTHER_CT",
    )
    assert _received(folder) == set(), log
    out = archive.tmp / "got-other"
    out.mkdir()
    dcmtk(
        "getscu",
        archive.scp.port,
        "-S",
        "-od",
        str(out),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={archive.zhang.uid}",
        aet="OTHER_CT",
    )
    assert list(out.iterdir()) == []


def test_c_get_returns_a_study_to_getscu(archive: Archive) -> None:
    out = archive.tmp / "got"
    out.mkdir()
    done = dcmtk(
        "getscu",
        archive.scp.port,
        "-S",
        "-od",
        str(out),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={archive.zhang.uid}",
    )
    assert done.returncode == 0
    assert _received(out) == set(archive.zhang.instances)
    out2 = archive.tmp / "got-image"
    out2.mkdir()
    done = dcmtk(
        "getscu",
        archive.scp.port,
        "-P",
        "-od",
        str(out2),
        "-k",
        "QueryRetrieveLevel=IMAGE",
        "-k",
        "PatientID=P002",
        "-k",
        f"StudyInstanceUID={archive.li.uid}",
        "-k",
        f"SeriesInstanceUID={archive.li.series[0]}",
        "-k",
        f"SOPInstanceUID={archive.li.instances[0]}",
    )
    assert _received(out2) == set(archive.li.instances)


# Limits ------------------------------------------------------------------------------------


def test_the_association_limit_is_enforced(tmp_path: Path, worker_id: str) -> None:
    for running in start(tmp_path, worker_id, max_associations=2):
        ae = AE(ae_title="DEMO_CT")
        ae.add_requested_context(Verification)
        held = [ae.associate("127.0.0.1", running.port, ae_title="XIETONG") for _ in range(2)]
        try:
            assert all(a.is_established for a in held)
            third = dcmtk("echoscu", running.port)
            assert third.returncode != 0
            assert "Rejected" in third.stdout + third.stderr
        finally:
            for assoc in held:
                assoc.release()
        time.sleep(0.5)
        assert dcmtk("echoscu", running.port).returncode == 0


def test_retrievals_without_their_unique_key_or_right_fail(archive: Archive) -> None:
    log = _move(archive, "DEMO_CT", "QueryRetrieveLevel=STUDY", "PatientName=张*")
    assert "Final Move Response (Failed: UnableToProcess)" in log  # 0xC514: no unique key
    archive.scp.add_peer(archive.scp.county_id, "VIEWER", may_retrieve=False, may_query=False)
    out = archive.tmp / "not-allowed"
    out.mkdir()
    done = dcmtk(
        "getscu",
        archive.scp.port,
        "-S",
        "-od",
        str(out),
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        f"StudyInstanceUID={archive.zhang.uid}",
        aet="VIEWER",
    )
    assert "Received C-GET Response (Failed: UnableToProcess)" in done.stderr  # 0xC413
    assert list(out.iterdir()) == []
    refused = dcmtk(
        "findscu",
        archive.scp.port,
        "-S",
        "-k",
        "QueryRetrieveLevel=STUDY",
        "-k",
        "StudyInstanceUID",
        aet="VIEWER",
    )
    assert "Final Find Response (Unknown Status: 0x124)" in refused.stderr  # not authorised


@pytest.mark.parametrize(
    ("keyword", "value"),
    [
        ("StudyDate", "2024-13-45"),
        ("StudyDate", "20240230"),
        ("StudyInstanceUID", "1.2.3/../4"),
        ("PatientName", "张" * 2000),
        ("QueryRetrieveLevel", "FRAME"),
        ("StudyTime", "10:30-abc"),
    ],
)
def test_hostile_query_values_are_refused(archive: Archive, keyword: str, value: str) -> None:
    ae = AE(ae_title="DEMO_CT")
    ae.add_requested_context(StudyRootQueryRetrieveInformationModelFind)
    query = Dataset()
    query.SpecificCharacterSet = "ISO_IR 192"
    query.QueryRetrieveLevel = "STUDY"
    query.StudyInstanceUID = ""
    setattr(query, keyword, value)
    assoc = ae.associate("127.0.0.1", archive.scp.port, ae_title="XIETONG")
    assert assoc.is_established
    try:
        answers = list(assoc.send_c_find(query, StudyRootQueryRetrieveInformationModelFind))
    finally:
        assoc.release()
    assert [int(status.Status) for status, _ in answers] == [0xC000]


class _CancelledAfter:
    """A C-FIND event whose C-CANCEL arrives after ``n`` pending answers."""

    def __init__(self, identifier: Dataset, n: int) -> None:
        self.identifier = identifier
        self.n = n
        self.asked = 0
        self.assoc = type(
            "Assoc",
            (),
            {"requestor": type("R", (), {"ae_title": "DEMO_CT", "address": "127.0.0.1"})()},
        )()

    @property
    def is_cancelled(self) -> bool:
        self.asked += 1
        return self.asked > self.n


def test_a_cancel_ends_the_answers_with_fe00(archive: Archive) -> None:
    query = Dataset()
    query.QueryRetrieveLevel = "IMAGE"
    query.SOPInstanceUID = ""
    event = _CancelledAfter(query, 1)
    answers = list(archive.scp.server.query_retrieve.on_find(event))  # type: ignore[arg-type]
    assert [status for status, _ in answers] == [0xFF00, 0xFE00]

"""Ingest: several transfer syntaxes indexed, resends recognised, hostile files refused with
nothing stored, studies linked to the patient index."""

from __future__ import annotations

import struct

import pytest
from sqlalchemy import func, select

from tests.imaging.conftest import SAMPLES, World, sample, with_attributes, with_raw_uid
from xietong.access.models import AuditEvent
from xietong.core.errors import (
    Conflict,
    Forbidden,
    Invalid,
    NotFound,
    PayloadTooLarge,
    XietongError,
)
from xietong.imaging import service
from xietong.imaging.models import ImagingInstance, ImagingSeries, ImagingStudy


def ingest(w: World, data: bytes, **kwargs: object) -> service.Ingested:
    return service.ingest(
        w.db,
        w.blobs,
        w.pii,
        data,
        sender_institution_id=w.county.id,
        actor=w.county_p,
        **kwargs,  # type: ignore[arg-type]
    )


def count(w: World, model: type) -> int:
    return w.db.execute(select(func.count()).select_from(model)).scalar_one()


def blob_files(w: World) -> int:
    return sum(1 for p in w.blob_root.rglob("*") if p.is_file() and ".tmp" not in p.parts)


@pytest.mark.parametrize("name", SAMPLES)
def test_each_transfer_syntax_is_indexed(w: World, name: str) -> None:
    result = ingest(w, sample(name))
    assert result.created
    instance = result.instance
    assert instance.sha256
    assert instance.size == len(sample(name))
    assert w.blobs.verify(instance.blob_key)
    assert instance.rows
    assert instance.columns
    study = w.db.get(ImagingStudy, result.study.id)
    assert study is not None
    assert (study.series_count, study.instance_count) == (1, 1)
    assert study.modalities


@pytest.fixture
def w(world: World) -> World:
    return world


def test_an_identical_resend_is_accepted_once(w: World) -> None:
    first = ingest(w, sample("CT_small.dcm"))
    _accepted_once(w, first, ingest(w, sample("CT_small.dcm")))


def _accepted_once(w: World, first: service.Ingested, again: service.Ingested) -> None:
    assert not again.created
    assert again.instance.id == first.instance.id
    assert count(w, ImagingInstance) == 1
    study = w.db.get(ImagingStudy, first.study.id)
    assert study is not None
    w.db.refresh(study)
    assert study.instance_count == 1


def test_other_content_under_the_same_uid_is_a_conflict(w: World) -> None:
    ingest(w, sample("CT_small.dcm"))
    changed = with_attributes("CT_small.dcm", StudyDescription="changed")
    with pytest.raises(Conflict) as caught:
        ingest(w, changed)
    assert caught.value.code == "instance_conflict"
    assert caught.value.field == "file"


def test_refuse_mode_refuses_even_identical_resends(w: World) -> None:
    ingest(w, sample("CT_small.dcm"))
    with pytest.raises(Conflict):
        ingest(w, sample("CT_small.dcm"), duplicate="refuse")


def test_two_series_of_one_study_are_counted(w: World) -> None:
    ingest(w, sample("CT_small.dcm"))
    other = with_attributes(
        "CT_small.dcm", SeriesInstanceUID="1.2.3.4.5", SOPInstanceUID="1.2.3.4.5.6", Modality="MR"
    )
    result = ingest(w, other)
    study = w.db.get(ImagingStudy, result.study.id)
    assert study is not None
    assert (study.series_count, study.instance_count) == (2, 2)
    assert study.modalities == "CT\\MR"


def _refused(w: World, data: bytes, code: str, attribute: str | None = None) -> None:
    before = blob_files(w)
    with pytest.raises(XietongError) as caught:
        ingest(w, data)
    assert caught.value.code == code, caught.value
    assert caught.value.field == "file"
    if attribute is not None:
        assert caught.value.params.get("attribute") == attribute
    assert count(w, ImagingInstance) == 0
    assert count(w, ImagingStudy) == 0
    assert blob_files(w) == before


def test_non_dicom_is_refused(w: World) -> None:
    _refused(w, b"%PDF-1.7 not an image" * 20, "dicom_not_dicom")
    _refused(w, b"", "dicom_not_dicom")
    _refused(w, sample("no_meta.dcm"), "dicom_not_dicom")


def test_truncated_files_are_refused(w: World) -> None:
    data = sample("CT_small.dcm")
    _refused(w, data[: len(data) // 2], "dicom_malformed", "(7FE0,0010)")
    _refused(w, data[:-1], "dicom_malformed")
    _refused(w, sample("MR_truncated.dcm"), "dicom_malformed")
    _refused(w, sample("rtplan_truncated.dcm"), "dicom_malformed")


def test_a_huge_declared_length_is_refused(w: World) -> None:
    data = bytearray(sample("CT_small.dcm"))
    at = data.find(b"\xe0\x7f\x10\x00OW")
    data[at + 8 : at + 12] = struct.pack("<I", 0xFFFFFFF0)
    _refused(w, bytes(data), "dicom_malformed", "(7FE0,0010)")
    name = bytearray(sample("CT_small.dcm"))
    at = name.find(b"\x10\x00\x10\x00PN")
    name[at + 6 : at + 8] = struct.pack("<H", 0xFFF0)
    _refused(w, bytes(name), "dicom_malformed", "(0010,0010)")


@pytest.mark.parametrize(
    ("tag", "value", "attribute"),
    [
        (b"\x08\x00\x18\x00", b"../../etc/passwd", "SOPInstanceUID"),
        (b"\x20\x00\x0d\x00", b"1.2.3/../4", "StudyInstanceUID"),
        (b"\x20\x00\x0e\x00", b"1.02.3", "SeriesInstanceUID"),
        (b"\x20\x00\x0d\x00", b"1." + b"2" * 70, "StudyInstanceUID"),
    ],
)
def test_hostile_uids_are_refused(w: World, tag: bytes, value: bytes, attribute: str) -> None:
    _refused(w, with_raw_uid("CT_small.dcm", tag, value), "dicom_uid_invalid", attribute)


def test_a_missing_required_attribute_is_named(w: World) -> None:
    _refused(w, with_attributes("CT_small.dcm", Modality=""), "dicom_attribute_missing", "Modality")


def test_too_large_a_file_is_refused(w: World) -> None:
    with pytest.raises(PayloadTooLarge):
        ingest(w, sample("CT_small.dcm"), max_bytes=1024)
    assert count(w, ImagingInstance) == 0


def test_a_study_links_to_the_patient_by_the_senders_record_number(w: World) -> None:
    data = with_attributes("CT_small.dcm", PatientID="CT-0001", PatientName="Zhang^Jianguo")
    result = ingest(w, data)
    assert result.study.patient_id == w.patient.id


def test_a_study_links_by_resident_id_in_other_patient_ids(w: World) -> None:
    data = with_attributes("MR_small.dcm", PatientID="X9", OtherPatientIDs="41010219800101123X")
    assert ingest(w, data).study.patient_id == w.patient.id


def test_staff_of_another_institution_cannot_store_as_the_sender(w: World) -> None:
    w.county_p = w.stranger_p
    with pytest.raises(Forbidden):
        ingest(w, sample("CT_small.dcm"))
    assert count(w, ImagingInstance) == 0


def test_an_unknown_patient_id_leaves_the_study_unlinked(w: World) -> None:
    assert ingest(w, sample("MR_small.dcm")).study.patient_id is None


def test_a_second_patient_id_in_one_study_is_a_conflict(w: World) -> None:
    ingest(w, sample("CT_small.dcm"))
    other = with_attributes("CT_small.dcm", SOPInstanceUID="1.2.3.9", PatientID="SOMEONE-ELSE")
    with pytest.raises(Conflict) as caught:
        ingest(w, other)
    assert caught.value.code == "study_patient_mismatch"


def test_the_sender_opens_the_study_and_a_stranger_gets_404_audited(w: World) -> None:
    study_uid = ingest(w, sample("CT_small.dcm")).study.study_uid
    opened = service.open_study(w.db, w.county_p, study_uid)
    assert opened.basis == ("sender",)
    with pytest.raises(NotFound):
        service.open_study(w.db, w.stranger_p, study_uid)
    with pytest.raises(NotFound):
        service.open_study(w.db, w.stranger_p, "../../x")
    denials = w.db.execute(
        select(AuditEvent).where(
            AuditEvent.action == "imaging.study.read", AuditEvent.outcome == "denied"
        )
    ).scalars()
    assert len(list(denials)) == 2


def test_a_grant_on_the_study_opens_it_for_the_grantee(w: World) -> None:
    from datetime import timedelta

    from xietong.core.clock import now
    from xietong.patients.grants import create_grant
    from xietong.patients.schemas import GrantIn

    data = with_attributes("CT_small.dcm", PatientID="CT-0001")
    study = ingest(w, data).study
    create_grant(
        w.db,
        w.county_p,
        GrantIn(
            patient_id=w.patient.id,
            grantee_institution_id=w.township.id,
            scope="items",
            items=[{"kind": "imaging_study", "id": study.id}],
            purpose="会诊",
            expires_at=now() + timedelta(days=3),
        ),
    )
    opened = service.open_study(w.db, w.stranger_p, study.study_uid)
    assert opened.study.id == study.id
    visible = w.db.execute(
        select(ImagingStudy.id).where(service.readable_clause(w.stranger_p))
    ).scalars()
    assert list(visible) == [study.id]


def test_nothing_invalid_is_left_in_series(w: World) -> None:
    assert count(w, ImagingSeries) == 0
    with pytest.raises(Invalid):
        ingest(w, with_attributes("CT_small.dcm", Modality=""))
    assert count(w, ImagingSeries) == 0


class _FailingStore:
    """A blob store whose disk is full: the write fails after the index work began."""

    def __init__(self, inner: object) -> None:
        self.inner = inner
        self.calls = 0

    def put_bytes(self, data: bytes) -> object:
        self.calls += 1
        raise OSError(28, "No space left on device")


def test_a_failed_blob_write_fails_the_ingest_with_nothing_indexed(w: World) -> None:
    """The blob is written while the instance is indexed; its failure still reaches the
    caller, so the edge rolls back and acknowledges nothing."""
    failing = _FailingStore(w.blobs)
    with pytest.raises(OSError, match="No space"), w.db.begin_nested():
        service.ingest(
            w.db,
            failing,  # type: ignore[arg-type]
            w.pii,
            sample("CT_small.dcm"),
            sender_institution_id=w.county.id,
            actor=w.county_p,
        )
    assert failing.calls == 1
    assert count(w, ImagingInstance) == 0
    assert count(w, ImagingStudy) == 0
    assert blob_files(w) == 0


def test_the_blob_is_on_disk_when_ingest_returns(w: World) -> None:
    result = ingest(w, sample("MR_small.dcm"))
    assert w.blobs.verify(result.instance.blob_key)
    assert blob_files(w) == 1


def test_a_study_and_series_committed_after_the_lookup_are_joined(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A concurrent transaction created the study and series after our lookup: the unique
    keys refuse our inserts and the instance joins their rows, counted once."""
    ingest(w, sample("CT_small.dcm"))
    monkeypatch.setattr(service, "existing", lambda *_: (None, None))
    second = with_attributes("CT_small.dcm", SOPInstanceUID="1.2.3.4.5.6.7")
    result = ingest(w, second)
    assert result.created
    assert count(w, ImagingStudy) == 1
    assert count(w, ImagingSeries) == 1
    study = w.db.get(ImagingStudy, result.study.id)
    series = w.db.get(ImagingSeries, result.instance.series_id)
    assert study is not None
    assert series is not None
    w.db.refresh(study)
    w.db.refresh(series)
    assert (study.series_count, study.instance_count) == (1, 2)
    assert series.instance_count == 2


def test_an_identical_instance_committed_after_the_lookup_is_accepted_once(
    w: World, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The resend check missed a concurrent commit of the same instance: the unique key
    refuses the insert, and the winner's row is the answer (other bytes: a conflict)."""
    first = ingest(w, sample("CT_small.dcm"))
    lookup = service._instance
    calls: list[int] = []

    def late(*args: object) -> ImagingInstance | None:
        calls.append(1)
        return None if len(calls) == 1 else lookup(*args)  # type: ignore[arg-type]

    monkeypatch.setattr(service, "_instance", late)
    _accepted_once(w, first, ingest(w, sample("CT_small.dcm")))
    calls.clear()
    with pytest.raises(Conflict):
        ingest(w, with_attributes("CT_small.dcm", StudyDescription="changed"))

"""Recording: idempotent retries, the institution link, derived values, corrections with
their revisions, entries marked entered in error."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.records.conftest import KINDS, NOW, PATHS, VALID, Site, add, audits, entry_counts
from xietong.core.errors import Conflict
from xietong.patients.grants import create_grant
from xietong.patients.models import Patient, PatientInstitution
from xietong.patients.registration import link_institution
from xietong.patients.schemas import GrantIn
from xietong.records import service as svc
from xietong.records.kinds import RecordKind
from xietong.records.models import LabResult, RecordRevision


@pytest.mark.parametrize("kind", KINDS)
def test_a_retried_post_returns_the_first_entry(
    client: TestClient, db: Session, site: Site, kind: RecordKind
) -> None:
    url = f"/api/v1/patients/{site.patient.id}/{PATHS[kind]}"
    body = {**VALID[kind], "client_request_id": "phone-7f3a:1"}
    headers = site.tokens["village_doctor"]
    first = client.post(url, json=body, headers=headers)
    again = client.post(url, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert entry_counts(db)[kind.value] == 1
    # The same request id at another institution, or for another kind, is another request.
    county = client.post(url, json=body, headers=site.tokens["county_doctor"])
    assert county.status_code == 201
    other_kind = next(k for k in KINDS if k is not kind)
    other = client.post(
        f"/api/v1/patients/{site.patient.id}/{PATHS[other_kind]}",
        json={**VALID[other_kind], "client_request_id": "phone-7f3a:1"},
        headers=headers,
    )
    assert other.status_code == 201


def test_a_request_id_reused_for_another_patient_is_a_conflict(db: Session, site: Site) -> None:
    second = Patient(
        name="王芳",
        sex="2",
        birth_date=site.patient.birth_date,
        registered_institution_id=site.village.id,
    )
    db.add(second)
    db.flush()
    link_institution(db, second.id, site.village.id, "registered")
    add(db, site.village_doctor, RecordKind.ALLERGY, site.patient.id, client_request_id="r1")
    with pytest.raises(Conflict) as caught:
        add(db, site.village_doctor, RecordKind.ALLERGY, second.id, client_request_id="r1")
    assert caught.value.field == "client_request_id"


def test_recording_links_the_recorders_institution_as_treating(db: Session, site: Site) -> None:
    # The outside hospital opens the chart through a grant, records, and is then linked.
    create_grant(
        db,
        site.village_doctor,
        GrantIn(
            patient_id=site.patient.id,
            grantee_institution_id=site.other.id,
            scope="chart",
            purpose="referral",
            expires_at=NOW + timedelta(days=1),
        ),
    )
    add(db, site.other_doctor, RecordKind.ENCOUNTER, site.patient.id)
    link = db.get(PatientInstitution, (site.patient.id, site.other.id))
    assert link is not None
    assert link.relation == "treated"


def test_lab_flags_are_computed_unless_given(db: Session, site: Site) -> None:
    high = add(db, site.village_doctor, RecordKind.LAB_RESULT, site.patient.id)
    assert (high.abnormal_flag, high.flag_computed, high.value_numeric) == ("H", True, 7.8)
    given = add(db, site.village_doctor, RecordKind.LAB_RESULT, site.patient.id, abnormal_flag="HH")
    assert (given.abnormal_flag, given.flag_computed) == ("HH", False)
    text = add(
        db,
        site.village_doctor,
        RecordKind.LAB_RESULT,
        site.patient.id,
        item_name="尿蛋白",
        loinc_code=None,
        value_text="阴性",
        unit="",
        ref_low=None,
        ref_high=None,
        ref_text="阴性",
    )
    assert (text.abnormal_flag, text.value_numeric) == ("N", None)
    unknown = add(
        db,
        site.village_doctor,
        RecordKind.LAB_RESULT,
        site.patient.id,
        value_text="<0.5",
        ref_low=None,
        ref_high=None,
    )
    assert unknown.abnormal_flag is None


def test_vitals_take_the_kinds_unit_and_adult_flags(db: Session, site: Site) -> None:
    fever = add(
        db,
        site.village_doctor,
        RecordKind.VITAL_SIGN,
        site.patient.id,
        kind="temperature",
        value=38.5,
        unit="℃",
    )
    assert (fever.unit, fever.abnormal_flag) == ("°C", "H")
    weight = add(
        db, site.village_doctor, RecordKind.VITAL_SIGN, site.patient.id, kind="weight", value=70
    )
    assert (weight.unit, weight.abnormal_flag) == ("kg", None)


def test_a_diagnosis_records_the_lists_chinese_title_unless_named(db: Session, site: Site) -> None:
    coded = add(db, site.village_doctor, RecordKind.DIAGNOSIS, site.patient.id, code="e119")
    assert (coded.code, coded.name) == ("E11.9", "2型糖尿病不伴有并发症")
    named = add(
        db, site.village_doctor, RecordKind.DIAGNOSIS, site.patient.id, code="I10", name="高血压2级"
    )
    assert named.name == "高血压2级"


def test_a_correction_keeps_the_earlier_version(
    client: TestClient, db: Session, site: Site
) -> None:
    lab = add(db, site.village_doctor, RecordKind.LAB_RESULT, site.patient.id)
    db.commit()
    headers = site.tokens["village_doctor"]
    response = client.patch(
        f"/api/v1/records/lab_result/{lab.id}",
        json={"reason": "transcription error: 5.8 not 7.8", "value_text": "5.8"},
        headers=headers,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["value_text"], body["abnormal_flag"], body["version"]) == ("5.8", "N", 2)
    assert body["corrected_at"] is not None
    history = client.get(f"/api/v1/records/lab_result/{lab.id}/revisions", headers=headers)
    assert history.status_code == 200
    (revision,) = history.json()
    assert revision["version"] == 1
    assert revision["change"] == "correct"
    assert revision["previous"]["value_text"] == "7.8"
    assert revision["previous"]["abnormal_flag"] == "H"
    assert revision["reason"] == "transcription error: 5.8 not 7.8"
    row = audits(db, "lab_result.correct", object_id=str(lab.id))[-1]
    assert '"fields": ["abnormal_flag", "value_numeric", "value_text"]' in row.detail
    assert audits(db, "lab_result.history", object_id=str(lab.id))


def test_correcting_a_diagnosis_code_records_the_new_title(db: Session, site: Site) -> None:
    diagnosis = add(db, site.village_doctor, RecordKind.DIAGNOSIS, site.patient.id)
    svc.correct_entry(
        db, site.village_doctor, RecordKind.DIAGNOSIS, diagnosis.id, {"code": "I11.9"}, "recoded"
    )
    assert (diagnosis.code, diagnosis.name, diagnosis.version) == (
        "I11.9",
        "高血压心脏病不伴有（充血性）心力衰竭",
        2,
    )


def test_a_correction_that_changes_nothing_keeps_the_version(db: Session, site: Site) -> None:
    allergy = add(db, site.village_doctor, RecordKind.ALLERGY, site.patient.id)
    svc.correct_entry(
        db, site.village_doctor, RecordKind.ALLERGY, allergy.id, {"substance": "青霉素"}, "same"
    )
    assert allergy.version == 1
    assert entry_counts(db)["revisions"] == 0


def test_an_entry_entered_in_error_is_kept_but_leaves_lists_and_timeline(
    client: TestClient, db: Session, site: Site
) -> None:
    wrong = add(db, site.village_doctor, RecordKind.VITAL_SIGN, site.patient.id)
    right = add(db, site.village_doctor, RecordKind.VITAL_SIGN, site.patient.id, value=128)
    db.commit()
    headers = site.tokens["village_doctor"]
    marked = client.post(
        f"/api/v1/records/vital_sign/{wrong.id}/entered-in-error",
        json={"reason": "measured on another patient"},
        headers=headers,
    )
    assert marked.status_code == 200, marked.text
    assert marked.json()["entry_status"] == "entered_in_error"
    assert marked.json()["error_reason"] == "measured on another patient"
    listed = client.get(f"/api/v1/patients/{site.patient.id}/vitals", headers=headers).json()
    assert [i["id"] for i in listed["items"]] == [right.id]
    everything = client.get(
        f"/api/v1/patients/{site.patient.id}/vitals?include_errors=true", headers=headers
    ).json()
    assert {i["id"] for i in everything["items"]} == {wrong.id, right.id}
    timeline = client.get(f"/api/v1/patients/{site.patient.id}/timeline", headers=headers).json()
    assert [i["id"] for i in timeline["items"]] == [right.id]
    assert client.get(f"/api/v1/records/vital_sign/{wrong.id}", headers=headers).status_code == 200
    again = client.patch(
        f"/api/v1/records/vital_sign/{wrong.id}",
        json={"reason": "x y", "value": 120},
        headers=headers,
    )
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "entered_in_error"
    revision = db.execute(select(RecordRevision)).scalar_one()
    assert (revision.change, revision.version) == ("entered_in_error", 1)
    assert audits(db, "vital_sign.entered_in_error", object_id=str(wrong.id))


def test_only_the_holding_institution_corrects(client: TestClient, db: Session, site: Site) -> None:
    lab = add(db, site.village_doctor, RecordKind.LAB_RESULT, site.patient.id)
    create_grant(
        db,
        site.village_doctor,
        GrantIn(
            patient_id=site.patient.id,
            grantee_institution_id=site.county.id,
            scope="chart",
            purpose="consultation",
            expires_at=NOW + timedelta(days=1),
        ),
    )
    db.commit()
    headers = site.tokens["county_doctor"]
    assert client.get(f"/api/v1/records/lab_result/{lab.id}", headers=headers).status_code == 200
    response = client.patch(
        f"/api/v1/records/lab_result/{lab.id}",
        json={"reason": "typo", "value_text": "1"},
        headers=headers,
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "not_holding_institution"
    assert db.get(LabResult, lab.id).value_text == "7.8"  # type: ignore[union-attr]
    assert audits(db, "lab_result.correct", outcome="denied", object_id=str(lab.id))

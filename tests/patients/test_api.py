"""The patient index over HTTP: registration, search, detail and reveal, updates, counts."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import quote

from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.patients.conftest import (
    FEMALE,
    MALE,
    RESIDENT_ID_MALE,
    Api,
    audit_rows,
    error_of,
    last_seq,
    register,
    rows_since,
    with_reason,
)
from xietong.core.clock import now
from xietong.patients.models import Patient, PatientIdentifier, PatientInstitution

URL = "/api/v1/patients"


def test_register_creates_then_finds_the_same_person(client: TestClient, api: Api) -> None:
    first = client.post(URL, json=MALE, headers=api.village_doctor)
    assert first.status_code == 201, first.text
    body = first.json()
    assert body["created"] is True
    assert body["patient"]["resident_id"] == "4101**********123X"
    assert body["patient"]["phone"] == "138****5678"
    assert body["patient"]["registered_institution_name"] == "测试村卫生室"
    again = client.post(URL, json={**MALE, "phone": None}, headers=api.county_doctor)
    assert again.status_code == 200, again.text
    assert again.json()["created"] is False
    assert again.json()["patient"]["id"] == body["patient"]["id"]
    # The county hospital is linked now and opens the patient.
    detail = client.get(f"{URL}/{body['patient']['id']}", headers=api.county_doctor)
    assert detail.status_code == 200
    names = {i["name"] for i in detail.json()["institutions"]}
    assert names == {"测试村卫生室", "测试县医院"}


def test_registration_suggests_masked_near_matches(client: TestClient, api: Api) -> None:
    no_id = {k: v for k, v in MALE.items() if k != "resident_id"}
    first = register(client, api.village_doctor, no_id)
    second = client.post(URL, json={**no_id, "phone": "13800000000"}, headers=api.county_doctor)
    assert second.status_code == 201
    near = second.json()["near_matches"]
    assert [n["id"] for n in near] == [first]
    assert near[0] == {
        "id": first,
        "name": "张建国",
        "sex": "1",
        "birth_year": 1980,
        "phone": "138****5678",
        "registered_institution_name": "测试村卫生室",
        "reasons": ["name_birth_date"],
    }
    confirmed = client.post(
        URL, json={**no_id, "same_as_patient_id": first}, headers=api.other_doctor
    )
    assert confirmed.status_code == 200
    assert confirmed.json()["patient"]["id"] == first


def test_client_request_id_makes_a_retry_return_the_first_result(
    client: TestClient, db: Session, api: Api
) -> None:
    body = {**FEMALE, "resident_id": None, "client_request_id": "tablet-7:0042"}
    one = client.post(URL, json=body, headers=api.village_doctor)
    two = client.post(URL, json=body, headers=api.village_doctor)
    assert (one.status_code, two.status_code) == (201, 200)
    assert one.json()["patient"]["id"] == two.json()["patient"]["id"]
    assert db.execute(select(func.count()).select_from(Patient)).scalar_one() == 1


def _search(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get(URL, params=params, headers=headers)
    assert response.status_code == 200, response.text
    result: dict[str, Any] = response.json()
    return result


def test_search_by_each_criterion(client: TestClient, api: Api) -> None:
    male = register(
        client, api.village_doctor, {**MALE, "identifiers": [{"kind": "mrn", "value": "MZ-77"}]}
    )
    female = register(client, api.village_doctor, FEMALE)
    doc = api.village_doctor
    assert [p["id"] for p in _search(client, doc, resident_id=RESIDENT_ID_MALE)["items"]] == [male]
    lower = RESIDENT_ID_MALE.lower()  # the check character may be typed in lower case
    assert _search(client, doc, resident_id=lower)["total"] == 1
    assert _search(client, doc, phone="139-8765-4321")["items"][0]["id"] == female
    assert _search(client, doc, phone="+8613812345678")["items"][0]["id"] == male
    assert _search(client, doc, mrn="MZ-77")["items"][0]["id"] == male
    issuer = str(api.village.id)
    assert _search(client, doc, mrn="MZ-77", mrn_issuer=issuer)["total"] == 1
    assert _search(client, doc, mrn="MZ-77", mrn_issuer=str(api.county.id))["total"] == 0
    assert _search(client, doc, name="张")["items"][0]["id"] == male
    both = _search(client, doc, name="王芳", birth_date="1990-02-15")
    assert [p["id"] for p in both["items"]] == [female]
    assert _search(client, doc, name="王芳", birth_date="1990-02-16")["total"] == 0
    everything = _search(client, doc)
    assert everything["total"] == 2
    assert [p["id"] for p in everything["items"]] == [female, male]  # newest first


def test_search_never_shows_or_counts_other_institutions_patients(
    client: TestClient, api: Api
) -> None:
    mine = register(client, api.village_doctor, MALE)
    register(client, api.other_doctor, FEMALE)
    register(client, api.other_doctor, {**FEMALE, "resident_id": None, "name": "张敏"})
    result = _search(client, api.village_doctor, name="张")
    assert result["total"] == 1
    assert [p["id"] for p in result["items"]] == [mine]
    assert _search(client, api.village_doctor, phone=FEMALE["phone"])["total"] == 0
    assert _search(client, api.village_doctor, resident_id=FEMALE["resident_id"])["total"] == 0
    assert _search(client, api.village_doctor)["total"] == 1


def test_search_pages(client: TestClient, api: Api) -> None:
    for n in range(5):
        register(client, api.village_doctor, {**FEMALE, "resident_id": None, "name": f"李{n}"})
    page = _search(client, api.village_doctor, name="李", limit=2, offset=2)
    assert page["total"] == 5
    assert [p["name"] for p in page["items"]] == ["李2", "李3"]
    assert (page["limit"], page["offset"]) == (2, 2)


def test_each_search_writes_one_audit_row_with_the_kinds_not_the_values(
    client: TestClient, db: Session, api: Api
) -> None:
    register(client, api.village_doctor, MALE)
    before = last_seq(db)
    _search(client, api.village_doctor, resident_id=RESIDENT_ID_MALE, name="张")
    rows = rows_since(db, before)
    assert [r.action for r in rows] == ["patient.search"]
    assert '"criteria": ["resident_id", "name"]' in rows[0].detail
    assert RESIDENT_ID_MALE not in rows[0].detail
    assert "张" not in rows[0].detail


def test_detail_is_masked_and_reveal_is_audited(client: TestClient, db: Session, api: Api) -> None:
    patient = register(
        client,
        api.village_doctor,
        {
            **MALE,
            "emergency_contact": {"name": "李秀英", "relation": "配偶", "phone": "13700001111"},
            "identifiers": [{"kind": "passport", "value": "E12345678", "issuer": "chn"}],
        },
    )
    masked = client.get(f"{URL}/{patient}", headers=api.village_doctor).json()
    assert masked["revealed"] is False
    assert masked["can_reveal"] is True
    assert masked["emergency_phone"] == "137****1111"
    assert {i["kind"]: i["value"] for i in masked["identifiers"]} == {
        "resident_id": "4101**********123X",
        "passport": "E1*****78",
    }
    before = last_seq(db)
    full = client.get(f"{URL}/{patient}", params={"reveal": "true"}, headers=api.village_doctor)
    assert full.status_code == 200
    shown = full.json()
    assert shown["revealed"] is True
    assert shown["resident_id"] == RESIDENT_ID_MALE
    assert shown["phone"] == "13812345678"
    assert shown["emergency_phone"] == "13700001111"
    assert {i["kind"]: i["value"] for i in shown["identifiers"]} == {
        "resident_id": RESIDENT_ID_MALE,
        "passport": "E12345678",
    }
    rows = rows_since(db, before)
    assert [(r.action, r.object_id, r.outcome) for r in rows] == [
        ("patient.reveal", str(patient), "success")
    ]
    assert RESIDENT_ID_MALE not in rows[0].detail


def test_patch_changes_only_what_was_sent_and_audits_field_names(
    client: TestClient, db: Session, api: Api
) -> None:
    patient = register(client, api.village_doctor, {**MALE, "address_detail": "中原路1号"})
    before = last_seq(db)
    response = client.patch(
        f"{URL}/{patient}",
        json={"phone": "13900001111", "address_region_code": "410105", "name": "张建国"},
        headers=api.village_doctor,
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["phone"] == "139****1111"
    assert body["address_region_code"] == "410105"
    assert body["address_detail"] == "中原路1号"  # not sent, kept
    rows = rows_since(db, before)
    assert [r.action for r in rows] == ["patient.update"]
    assert '"fields": ["address_region_code", "phone"]' in rows[0].detail
    assert "13900001111" not in rows[0].detail
    # The phone was encrypted again: the new number finds the patient, the old one does not.
    assert _search(client, api.village_doctor, phone="13900001111")["total"] == 1
    assert _search(client, api.village_doctor, phone="13812345678")["total"] == 0
    stored = db.get(Patient, patient)
    assert stored is not None
    db.refresh(stored)
    assert "13900001111" not in (stored.phone_enc or "")
    # null clears the optional fields
    cleared = client.patch(
        f"{URL}/{patient}",
        json={"phone": None, "address_detail": None, "emergency_contact": None},
        headers=api.village_doctor,
    )
    assert cleared.status_code == 200
    assert (cleared.json()["phone"], cleared.json()["address_detail"]) == ("", "")


def test_patch_keeps_birth_date_and_sex_in_step_with_the_resident_id(
    client: TestClient, api: Api
) -> None:
    patient = register(client, api.village_doctor, MALE)
    for body, field in (
        ({"birth_date": "1980-01-02"}, "birth_date"),
        ({"sex": "2"}, "sex"),
        ({"name": None}, "name"),
        ({"birth_date": (now() + timedelta(days=3)).date().isoformat()}, "birth_date"),
    ):
        response = client.patch(f"{URL}/{patient}", json=body, headers=api.village_doctor)
        assert response.status_code == 422, response.text
        assert error_of(response)["field"] == field
    no_id = register(client, api.village_doctor, {**FEMALE, "resident_id": None})
    fixed = client.patch(
        f"{URL}/{no_id}", json={"birth_date": "1990-02-16"}, headers=api.village_doctor
    )
    assert fixed.json()["birth_date"] == "1990-02-16"


def test_stats_give_counts_by_level_for_the_jurisdiction(
    client: TestClient, db: Session, api: Api
) -> None:
    register(client, api.village_doctor, MALE)
    register(client, api.county_doctor, MALE)  # the same person: counted once in the total
    register(client, api.county_doctor, FEMALE)
    register(client, api.other_doctor, {**FEMALE, "resident_id": None, "name": "赵六"})
    province = client.get(f"{URL}/stats", headers=api.authority)
    assert province.status_code == 200, province.text
    counts = province.json()
    assert counts["jurisdiction_code"] == "410000"
    assert counts["total"] == 3
    by_level = {c["level"]: c["count"] for c in counts["by_level"]}
    assert by_level["village"] == 1
    assert by_level["county"] == 3  # the county hospitals: both people, and 赵六 in Luoyang
    city = client.get(f"{URL}/stats", headers=api.city_authority).json()
    assert city["total"] == 2  # Zhengzhou: not the Luoyang hospital's patient
    text = province.text + client.get(f"{URL}/stats", headers=api.platform).text
    for secret in ("张建国", "王芳", "赵六", RESIDENT_ID_MALE, "138****5678"):
        assert secret not in text
    assert audit_rows(db, "patient.stats")[-1].outcome == "success"
    platform = client.get(f"{URL}/stats", headers=api.platform).json()
    assert platform["jurisdiction_code"] is None
    assert platform["total"] == 3
    assert client.get(f"{URL}/stats", headers=api.village_doctor).status_code == 403


def test_identifiers_stay_unique_and_linked(client: TestClient, db: Session, api: Api) -> None:
    patient = register(client, api.village_doctor, MALE)
    register(client, api.county_doctor, MALE)
    assert db.execute(select(func.count()).select_from(PatientIdentifier)).scalar_one() == 1
    links = db.execute(
        select(PatientInstitution.institution_id).where(PatientInstitution.patient_id == patient)
    ).scalars()
    assert set(links) == {api.village.id, api.county.id}


def test_a_platform_admin_searches_with_a_reason(client: TestClient, db: Session, api: Api) -> None:
    register(client, api.village_doctor, MALE)
    refused = client.get(URL, headers=api.platform)
    assert refused.status_code == 403
    assert error_of(refused)["field"] == "reason"
    short = client.get(URL, headers=with_reason(api.platform, "because"))
    assert short.status_code == 403
    found = client.get(
        URL, params={"name": "张"}, headers=with_reason(api.platform, quote("投诉 调查 2026-118"))
    )
    assert found.status_code == 200
    assert found.json()["total"] == 1
    row = audit_rows(db, "patient.search")[-1]
    assert row.purpose == "投诉 调查 2026-118"
    assert '"break_glass": true' in row.detail

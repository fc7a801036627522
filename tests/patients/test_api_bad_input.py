"""Hostile and malformed input to the patient API: a 4xx JSON error naming the field, never
a 500, and nothing written (no patient, identifier, merge, grant or success audit row)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.patients.conftest import MALE, Api, error_of, register
from xietong.access.models import AuditEvent
from xietong.core.clock import now
from xietong.patients.models import (
    ChartGrant,
    Patient,
    PatientIdentifier,
    PatientInstitution,
    PatientMerge,
)

URL = "/api/v1/patients"
TOMORROW = (now() + timedelta(days=1)).date().isoformat()
SQLISH = ["'; DROP TABLE patient; --", '" OR 1=1 --', "Robert'); DELETE FROM patient;--"]

REGISTRATION_CASES: list[tuple[str, dict[str, Any], str, int]] = [
    # (description, body, field, status)
    ("extra field", {**MALE, "ssn": "1"}, "ssn", 422),
    ("name missing", {k: v for k, v in MALE.items() if k != "name"}, "name", 422),
    ("name a number", {**MALE, "name": 123}, "name", 422),
    ("name a list", {**MALE, "name": ["张"]}, "name", 422),
    ("name too long", {**MALE, "name": "张" * 65}, "name", 422),
    ("name with NUL", {**MALE, "name": "张\x00三"}, "name", 422),
    ("name with a bell", {**MALE, "name": "张\x07三"}, "name", 422),
    ("name with markup", {**MALE, "name": "<script>x</script>"}, "name", 422),
    *[(f"SQL-ish name {n}", {**MALE, "name": s}, "name", 422) for n, s in enumerate(SQLISH)],
    ("sex a number", {**MALE, "sex": 1}, "sex", 422),
    ("sex unknown code", {**MALE, "sex": "3"}, "sex", 422),
    ("birth date a number", {**MALE, "birth_date": 19800101}, "birth_date", 422),
    ("birth date not a day", {**MALE, "birth_date": "1980-02-30"}, "birth_date", 422),
    ("birth date text", {**MALE, "birth_date": "yesterday"}, "birth_date", 422),
    (
        "birth date in the future",
        {**MALE, "resident_id": None, "birth_date": TOMORROW},
        "birth_date",
        422,
    ),
    (
        "birth date too old",
        {**MALE, "resident_id": None, "birth_date": "1800-01-01"},
        "birth_date",
        422,
    ),
    ("resident ID checksum", {**MALE, "resident_id": "410102198001011235"}, "resident_id", 422),
    ("resident ID short", {**MALE, "resident_id": "41010219800101123"}, "resident_id", 422),
    ("resident ID letters", {**MALE, "resident_id": "4101021980O101123X"}, "resident_id", 422),
    ("resident ID province", {**MALE, "resident_id": "990102198001011238"}, "resident_id", 422),
    ("resident ID too long", {**MALE, "resident_id": "4" * 33}, "resident_id", 422),
    ("resident ID SQL-ish", {**MALE, "resident_id": SQLISH[0][:32]}, "resident_id", 422),
    ("resident ID a number", {**MALE, "resident_id": 410102198001011230}, "resident_id", 422),
    ("birth date disagrees", {**MALE, "birth_date": "1980-01-02"}, "birth_date", 422),
    ("sex disagrees", {**MALE, "sex": "2"}, "sex", 422),
    ("phone short", {**MALE, "phone": "12345"}, "phone", 422),
    ("phone letters", {**MALE, "phone": "1381234567a"}, "phone", 422),
    ("phone a list", {**MALE, "phone": ["13812345678"]}, "phone", 422),
    ("region letters", {**MALE, "address_region_code": "41a"}, "address_region_code", 422),
    ("region unknown", {**MALE, "address_region_code": "999999"}, "address_region_code", 422),
    ("address too long", {**MALE, "address_detail": "路" * 201}, "address_detail", 422),
    ("address NUL", {**MALE, "address_detail": "a\x00b"}, "address_detail", 422),
    ("identifiers a dict", {**MALE, "identifiers": {"kind": "mrn"}}, "identifiers", 422),
    (
        "identifiers too many",
        {**MALE, "identifiers": [{"kind": "mrn", "value": "1"}] * 9},
        "identifiers",
        422,
    ),
    (
        "identifier kind",
        {**MALE, "identifiers": [{"kind": "ssn", "value": "1"}]},
        "identifiers.0.kind",
        422,
    ),
    (
        "identifier extra",
        {**MALE, "identifiers": [{"kind": "mrn", "value": "1", "x": 1}]},
        "identifiers.0.x",
        422,
    ),
    (
        "record number SQL-ish",
        {**MALE, "identifiers": [{"kind": "mrn", "value": "1'; DROP TABLE x"}]},
        "identifiers[0].value",
        422,
    ),
    (
        "passport country",
        {**MALE, "identifiers": [{"kind": "passport", "value": "E1234567", "issuer": "China"}]},
        "identifiers[0].issuer",
        422,
    ),
    (
        "two record numbers",
        {**MALE, "identifiers": [{"kind": "mrn", "value": "1"}, {"kind": "mrn", "value": "2"}]},
        "identifiers[1].value",
        422,
    ),
    (
        "emergency phone",
        {**MALE, "emergency_contact": {"name": "李", "phone": "1"}},
        "emergency_contact.phone",
        422,
    ),
    (
        "emergency name missing",
        {**MALE, "emergency_contact": {"phone": "13700001111"}},
        "emergency_contact.name",
        422,
    ),
    ("same-as id beyond 2^31", {**MALE, "same_as_patient_id": 2**31}, "same_as_patient_id", 422),
    ("same-as id zero", {**MALE, "same_as_patient_id": 0}, "same_as_patient_id", 422),
    ("same-as id text", {**MALE, "same_as_patient_id": "1 OR 1=1"}, "same_as_patient_id", 422),
    ("request id too long", {**MALE, "client_request_id": "r" * 65}, "client_request_id", 422),
    ("not an object", [MALE], "body", 422),  # type: ignore[list-item]
]


def _written(db: Session) -> tuple[int, ...]:
    counts = [
        db.execute(select(func.count()).select_from(model)).scalar_one()
        for model in (Patient, PatientIdentifier, PatientInstitution, PatientMerge, ChartGrant)
    ]
    success = db.execute(
        select(func.count()).select_from(AuditEvent).where(AuditEvent.outcome == "success")
    ).scalar_one()
    return (*counts, success)


@pytest.mark.parametrize(
    ("body", "field", "status"),
    [(b, f, s) for _d, b, f, s in REGISTRATION_CASES],
    ids=[d for d, *_ in REGISTRATION_CASES],
)
def test_bad_registrations(
    client: TestClient, db: Session, api: Api, body: Any, field: str, status: int
) -> None:
    before = _written(db)
    response = client.post(URL, json=body, headers=api.village_doctor)
    assert response.status_code == status, response.text
    error = error_of(response)
    assert error["field"] == field, error
    assert error["message"]
    assert _written(db) == before


def test_malformed_json_and_wrong_content(client: TestClient, db: Session, api: Api) -> None:
    before = _written(db)
    for raw in (b'{"name": ', b"{'name': 'x'}", b"\xff\xfe\x00", b""):
        response = client.post(
            URL, content=raw, headers={**api.village_doctor, "Content-Type": "application/json"}
        )
        assert response.status_code in (400, 422), (raw, response.text)
        assert error_of(response)["field"] == "body"
    assert _written(db) == before


def test_a_ten_megabyte_body_is_413(client: TestClient, db: Session, api: Api) -> None:
    before = _written(db)
    huge = b'{"name": "' + b"a" * (10 * 1024 * 1024) + b'"}'
    response = client.post(
        URL, content=huge, headers={**api.village_doctor, "Content-Type": "application/json"}
    )
    assert response.status_code == 413
    assert error_of(response)["field"] == "body"
    patch = client.patch(
        f"{URL}/1", content=huge, headers={**api.village_doctor, "Content-Type": "application/json"}
    )
    assert patch.status_code == 413
    assert _written(db) == before


@pytest.mark.parametrize(
    ("url", "field"),
    [
        (f"{URL}/{2**31}", "patient_id"),
        (f"{URL}/{10**30}", "patient_id"),
        (f"{URL}/0", "patient_id"),
        (f"{URL}/-1", "patient_id"),
        (f"{URL}/abc", "patient_id"),
        (f"{URL}/1%00", "patient_id"),
        (f"{URL}/{2**31}/merges", "patient_id"),
        (f"{URL}/{2**31}/grants", "patient_id"),
        (f"{URL}/merges/{2**31}", "merge_id"),
        (f"/api/v1/grants/{2**63}", "grant_id"),
        (f"{URL}/1?reveal=maybe", "reveal"),
    ],
)
def test_bad_ids_in_paths(client: TestClient, api: Api, url: str, field: str) -> None:
    response = client.get(url, headers=api.village_doctor)
    assert response.status_code == 422, response.text
    assert error_of(response)["field"] == field


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"resident_id": "410102198001011235"}, "resident_id"),
        ({"resident_id": "x" * 33}, "resident_id"),
        ({"resident_id": SQLISH[0][:32]}, "resident_id"),
        ({"phone": "12"}, "phone"),
        ({"phone": "' OR 1=1"}, "phone"),
        ({"name": "张\x00"}, "name"),
        ({"name": "%"}, "name"),
        ({"name": "_"}, "name"),
        *[({"name": s}, "name") for s in SQLISH],
        ({"name": "张" * 65}, "name"),
        ({"birth_date": "1990-13-01"}, "birth_date"),
        ({"mrn": "a b;c"}, "mrn"),
        ({"mrn_issuer": str(2**31)}, "mrn_issuer"),
        ({"limit": "101"}, "limit"),
        ({"limit": "0"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"offset": "last"}, "offset"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_search_parameters(
    client: TestClient, db: Session, api: Api, params: dict[str, str], field: str
) -> None:
    before = _written(db)
    response = client.get(URL, params=params, headers=api.village_doctor)
    assert response.status_code == 422, response.text
    assert error_of(response)["field"] == field
    assert _written(db) == before


def test_bad_access_reason_header(client: TestClient, api: Api) -> None:
    for value in ("%00abcdefghijkl", "%FF%FEabcdefghijkl", "x" * 1501):
        response = client.get(URL, headers={**api.platform, "X-Access-Reason": value})
        assert response.status_code == 422, (value, response.text)
        assert error_of(response)["field"] == "x-access-reason"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"colour": "red"}, "colour"),
        ({"name": None}, "name"),
        ({"name": ""}, "name"),
        ({"name": SQLISH[0]}, "name"),
        ({"sex": None}, "sex"),
        ({"birth_date": None}, "birth_date"),
        ({"birth_date": TOMORROW}, "birth_date"),
        ({"phone": "abc"}, "phone"),
        ({"phone": 13812345678}, "phone"),
        ({"address_region_code": "999999"}, "address_region_code"),
        ({"emergency_contact": {"name": "李", "phone": "x"}}, "emergency_contact.phone"),
        ({"emergency_contact": "李 13700001111"}, "emergency_contact"),
        ({"address_detail": "x\x1b[31m"}, "address_detail"),
    ],
)
def test_bad_patches(
    client: TestClient, db: Session, api: Api, body: dict[str, Any], field: str
) -> None:
    patient = register(client, api.village_doctor, MALE)
    db.expire_all()
    before = _written(db)
    response = client.patch(f"{URL}/{patient}", json=body, headers=api.village_doctor)
    assert response.status_code == 422, response.text
    assert error_of(response)["field"] == field
    assert _written(db) == before
    stored = db.get(Patient, patient)
    assert stored is not None
    db.refresh(stored)
    assert (stored.name, stored.phone_masked, stored.birth_date.isoformat()) == (
        "张建国",
        "138****5678",
        "1980-01-01",
    )


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"survivor_id": 1, "merged_id": 2}, "reason"),
        ({"survivor_id": 1, "merged_id": 2, "reason": "x"}, "reason"),
        ({"survivor_id": 2**31, "merged_id": 2, "reason": "dup"}, "survivor_id"),
        ({"survivor_id": 1, "merged_id": "2", "reason": "dup", "force": True}, "force"),
        ({"survivor_id": "one", "merged_id": 2, "reason": "dup"}, "survivor_id"),
        ({"survivor_id": 1, "merged_id": None, "reason": "dup"}, "merged_id"),
        ({"survivor_id": 1, "merged_id": 2, "reason": "d\x00up"}, "reason"),
        ({"survivor_id": 1, "merged_id": 2, "reason": "r" * 501}, "reason"),
    ],
)
def test_bad_merges(
    client: TestClient, db: Session, api: Api, body: dict[str, Any], field: str
) -> None:
    before = _written(db)
    response = client.post(f"{URL}/merges", json=body, headers=api.village_doctor)
    assert response.status_code == 422, response.text
    assert error_of(response)["field"] == field
    assert _written(db) == before
    undo = client.post(f"{URL}/merges/1/undo", json={"why": "x"}, headers=api.village_doctor)
    assert undo.status_code == 422


def test_sql_ish_free_text_is_stored_verbatim(client: TestClient, db: Session, api: Api) -> None:
    """Free text (an address) may hold anything printable: it is data, never SQL."""
    body = {**MALE, "address_detail": SQLISH[0] + " %_\\ <b>"}
    patient = register(client, api.village_doctor, body)
    detail = client.get(f"{URL}/{patient}", headers=api.village_doctor).json()
    assert detail["address_detail"] == SQLISH[0] + " %_\\ <b>"
    assert db.execute(select(func.count()).select_from(Patient)).scalar_one() == 1


def test_search_wildcards_match_literally(client: TestClient, api: Api) -> None:
    register(client, api.village_doctor, MALE)
    # A prefix is a prefix: LIKE wildcards in it are refused, never interpreted.
    response = client.get(URL, params={"name": "张%"}, headers=api.village_doctor)
    assert response.status_code == 422


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"patient_id": 2**31}, "patient_id"),
        ({"patient_id": 1, "grantee_institution_id": 2**40}, "grantee_institution_id"),
        ({"patient_id": 1, "items": [{"kind": "lab'; --", "id": 1}]}, "items.0.kind"),
        ({"patient_id": 1, "items": [{"kind": "lab", "id": 2**31}]}, "items.0.id"),
        ({"patient_id": 1, "purpose": "p\x00"}, "purpose"),
        ({"patient_id": 1, "expires_at": "tomorrow"}, "expires_at"),
    ],
)
def test_bad_grant_bodies(
    client: TestClient, db: Session, api: Api, body: dict[str, Any], field: str
) -> None:
    payload = {
        "grantee_user_id": 1,
        "scope": "items",
        "purpose": "consultation",
        "expires_at": (now() + timedelta(days=1)).isoformat(),
        **body,
    }
    before = _written(db)
    response = client.post("/api/v1/grants", json=payload, headers=api.village_doctor)
    assert response.status_code == 422, response.text
    assert error_of(response)["field"] == field
    assert _written(db) == before

"""Bad input to every records endpoint: a 4xx naming the field, never a 500, nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.records.conftest import PATHS, VALID, Site, add, entry_counts
from xietong.records.kinds import RecordKind

BIG = 2**31
NUL = "a\x00b"
E, D, L, M, V, A = (
    RecordKind.ENCOUNTER,
    RecordKind.DIAGNOSIS,
    RecordKind.LAB_RESULT,
    RecordKind.MEDICATION,
    RecordKind.VITAL_SIGN,
    RecordKind.ALLERGY,
)

# (kind, description, changes to the valid body, field, status, code or None)
CREATE_CASES: list[tuple[RecordKind, str, dict[str, Any], str, int, str | None]] = [
    (E, "extra field", {"ward": "3"}, "ward", 422, "extra_forbidden"),
    (E, "wrong kind", {"kind": "surgery"}, "kind", 422, "literal_error"),
    (E, "wrong type", {"start_date": 20261001}, "start_date", 422, None),
    (E, "future start", {"start_date": "2026-11-21"}, "start_date", 422, "date_future"),
    (E, "before birth", {"start_date": "1979-12-31"}, "start_date", 422, "before_birth"),
    (
        E,
        "end before start",
        {"start_date": "2026-10-05", "end_date": "2026-10-01"},
        "end_date",
        422,
        "end_before_start",
    ),
    (E, "future end", {"end_date": "2026-12-01"}, "end_date", 422, "date_future"),
    (E, "NUL", {"chief_complaint": NUL}, "chief_complaint", 422, "control_characters"),
    (E, "huge", {"summary": "长" * 4001}, "summary", 422, "string_too_long"),
    (E, "id beyond 2^31", {"department_id": BIG}, "department_id", 422, None),
    (E, "foreign department", {"department_id": "{county_dept}"}, "department_id", 422, None),
    (
        E,
        "unknown attending",
        {"attending_practitioner_id": 999999},
        "attending_practitioner_id",
        422,
        "practitioner_not_found",
    ),
    (E, "source", {"source": "fax"}, "source", 422, "literal_error"),
    (E, "request id", {"client_request_id": "a b"}, "client_request_id", 422, None),
    (
        E,
        "recorder",
        {"recorded_by_practitioner_id": "{county_prac}"},
        "recorded_by_practitioner_id",
        422,
        "practitioner_not_found",
    ),
    (D, "unknown ICD-10", {"code": "X99.9"}, "code", 422, "icd10_unknown"),
    (D, "not a code", {"code": "高血压"}, "code", 422, "icd10_unknown"),
    (D, "retired code", {"code": "A90"}, "code", 422, "icd10_unknown"),
    (D, "future", {"diagnosed_on": "2026-11-21"}, "diagnosed_on", 422, "date_future"),
    (D, "kind", {"kind": "tertiary"}, "kind", 422, "literal_error"),
    (D, "encounter beyond 2^31", {"encounter_id": BIG}, "encounter_id", 422, None),
    (D, "unknown encounter", {"encounter_id": 999999}, "encounter_id", 422, "encounter_not_found"),
    (D, "name NUL", {"name": NUL}, "name", 422, "control_characters"),
    (D, "missing date", {"diagnosed_on": None}, "diagnosed_on", 422, None),
    (L, "LOINC check digit", {"loinc_code": "1558-5"}, "loinc_code", 422, "loinc_invalid"),
    (L, "LOINC shape", {"loinc_code": "glucose"}, "loinc_code", 422, None),
    (L, "range inverted", {"ref_low": 7, "ref_high": 3}, "ref_high", 422, "range_inverted"),
    (
        L,
        "future",
        {"collected_at": "2026-11-21T08:00:00+08:00"},
        "collected_at",
        422,
        "date_future",
    ),
    (
        L,
        "reported before collected",
        {"reported_at": "2026-09-30T08:00:00+08:00"},
        "reported_at",
        422,
        "end_before_start",
    ),
    (L, "huge value", {"value_text": "9" * 65}, "value_text", 422, "string_too_long"),
    (L, "number too big", {"ref_high": 1e12}, "ref_high", 422, None),
    (L, "flag", {"abnormal_flag": "HHH"}, "abnormal_flag", 422, "literal_error"),
    (L, "empty value", {"value_text": ""}, "value_text", 422, None),
    (M, "end before start", {"end_date": "2026-09-01"}, "end_date", 422, "end_before_start"),
    (M, "future start", {"start_date": "2026-12-01"}, "start_date", 422, "date_future"),
    (M, "dose without unit", {"unit": ""}, "unit", 422, "unit_required"),
    (M, "negative dose", {"dose": -5}, "dose", 422, None),
    (M, "route", {"route": "iv drip"}, "route", 422, "literal_error"),
    (M, "order kind", {"order_kind": "diet"}, "order_kind", 422, "literal_error"),
    (V, "fever of 50", {"kind": "temperature", "value": 50}, "value", 422, "vital_out_of_range"),
    (V, "heart rate 0", {"kind": "heart_rate", "value": 0}, "value", 422, "vital_out_of_range"),
    (V, "SpO2 over 100", {"kind": "spo2", "value": 101}, "value", 422, "vital_out_of_range"),
    (
        V,
        "Fahrenheit",
        {"kind": "temperature", "value": 98.6, "unit": "°F"},
        "unit",
        422,
        "unit_not_allowed",
    ),
    (V, "unknown kind", {"kind": "mood"}, "kind", 422, "literal_error"),
    (V, "text value", {"value": "high"}, "value", 422, None),
    (V, "future", {"measured_at": "2026-11-20T12:10:00+08:00"}, "measured_at", 422, "date_future"),
    (A, "future", {"noted_on": "2026-11-21"}, "noted_on", 422, "date_future"),
    (A, "severity", {"severity": "fatal"}, "severity", 422, "literal_error"),
    (A, "empty substance", {"substance": ""}, "substance", 422, None),
    (A, "NUL", {"substance": NUL}, "substance", 422, "control_characters"),
    (A, "list", {"reaction": ["rash"]}, "reaction", 422, None),
]


@pytest.fixture
def refs(db: Session, site: Site) -> dict[str, int]:
    county_dept = factories.department(db, site.county, name="心内科")
    county_prac = factories.practitioner(db, site.county, name="赵医生")
    db.commit()
    return {"county_dept": county_dept.id, "county_prac": county_prac.id}


def _resolve(value: Any, refs: dict[str, int]) -> Any:
    if isinstance(value, str) and value.startswith("{") and value.endswith("}"):
        return refs[value[1:-1]]
    return value


@pytest.mark.parametrize(
    ("kind", "changes", "field", "status", "code"),
    [(k, c, f, s, code) for k, _d, c, f, s, code in CREATE_CASES],
    ids=[f"{k}-{d}" for k, d, *_ in CREATE_CASES],
)
def test_bad_entries_are_refused_naming_the_field(
    client: TestClient,
    db: Session,
    site: Site,
    refs: dict[str, int],
    kind: RecordKind,
    changes: dict[str, Any],
    field: str,
    status: int,
    code: str | None,
) -> None:
    before = entry_counts(db)
    body = {**VALID[kind], **{k: _resolve(v, refs) for k, v in changes.items()}}
    response = client.post(
        f"/api/v1/patients/{site.patient.id}/{PATHS[kind]}",
        json=body,
        headers=site.tokens["village_doctor"],
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert error["message"]
    if code:
        assert error["code"] == code
    assert entry_counts(db) == before


def test_nan_and_infinity_are_refused(client: TestClient, db: Session, site: Site) -> None:
    before = entry_counts(db)
    for raw in (b"NaN", b"Infinity", b"-Infinity"):
        body = (
            b'{"item_name": "x", "value_text": "1", '
            b'"collected_at": "2026-10-01T08:00:00Z", "ref_low": ' + raw + b"}"
        )
        response = client.post(
            f"/api/v1/patients/{site.patient.id}/labs",
            content=body,
            headers={**site.tokens["village_doctor"], "Content-Type": "application/json"},
        )
        assert response.status_code == 422, response.text
        assert response.json()["error"]["field"] == "ref_low"
    assert entry_counts(db) == before


def test_malformed_json_is_400(client: TestClient, site: Site) -> None:
    response = client.post(
        f"/api/v1/patients/{site.patient.id}/vitals",
        content=b'{"kind": ',
        headers={**site.tokens["village_doctor"], "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


@pytest.mark.parametrize(
    ("method", "path", "field"),
    [
        ("GET", "/api/v1/patients/{big}/encounters", "patient_id"),
        ("POST", "/api/v1/patients/{big}/diagnoses", "patient_id"),
        ("GET", "/api/v1/patients/0/labs", "patient_id"),
        ("GET", "/api/v1/patients/abc/labs", "patient_id"),
        ("GET", "/api/v1/records/diagnosis/{big}", "entry_id"),
        ("PATCH", "/api/v1/records/lab_result/{big}", "entry_id"),
        ("POST", "/api/v1/records/vital_sign/{big}/entered-in-error", "entry_id"),
        ("GET", "/api/v1/records/document/1", "kind"),
        ("GET", "/api/v1/records/allergy/{big}/revisions", "entry_id"),
        ("GET", "/api/v1/patients/{big}/timeline", "patient_id"),
    ],
)
def test_bad_ids_and_kinds_in_paths(
    client: TestClient, db: Session, site: Site, method: str, path: str, field: str
) -> None:
    before = entry_counts(db)
    url = path.format(big=BIG)
    body = {"reason": "typo fix"} if method != "GET" else None
    response = client.request(method, url, json=body, headers=site.tokens["village_doctor"])
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert entry_counts(db) == before


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": 1000}, "limit"),
        ({"offset": -1}, "offset"),
        ({"include_errors": "perhaps"}, "include_errors"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_bad_list_parameters(
    client: TestClient, site: Site, params: dict[str, Any], field: str
) -> None:
    response = client.get(
        f"/api/v1/patients/{site.patient.id}/labs",
        params=params,
        headers=site.tokens["village_doctor"],
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("params", "field", "code"),
    [
        ({"date_from": "2026-10-02", "date_to": "2026-10-01"}, "date_to", "end_before_start"),
        ({"date_from": "yesterday"}, "date_from", None),
        ({"kind": "photo"}, "kind.0", None),
        ({"institution_id": 2**31}, "institution_id", None),
        ({"abnormal_only": "x"}, "abnormal_only", None),
        ({"limit": 0}, "limit", None),
        ({"sort": "asc"}, "sort", "extra_forbidden"),
    ],
)
def test_bad_timeline_filters(
    client: TestClient, site: Site, params: dict[str, Any], field: str, code: str | None
) -> None:
    response = client.get(
        f"/api/v1/patients/{site.patient.id}/timeline",
        params=params,
        headers=site.tokens["village_doctor"],
    )
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    if code:
        assert error["code"] == code


# (kind, body, field, status, code)
CORRECTION_CASES: list[tuple[RecordKind, dict[str, Any], str, int, str | None]] = [
    (E, {"reason": "typo", "ward": "3"}, "ward", 422, "extra_forbidden"),
    (E, {"reason": "typo", "source": "interface"}, "source", 422, "not_correctable"),
    (E, {"reason": "typo", "end_date": "2026-09-01"}, "end_date", 422, "end_before_start"),
    (E, {"reason": "typo", "kind": None}, "kind", 422, None),
    (E, {"reason": "typo"}, "body", 422, "no_changes"),
    (E, {"end_date": "2026-10-02"}, "reason", 422, "missing"),
    (E, {"reason": NUL, "end_date": "2026-10-02"}, "reason", 422, None),
    (E, {"reason": "x" * 501, "end_date": "2026-10-02"}, "reason", 422, None),
    (D, {"reason": "typo", "code": "X99.9"}, "code", 422, "icd10_unknown"),
    (D, {"reason": "typo", "name": NUL}, "name", 422, "control_characters"),
    (L, {"reason": "typo", "value_text": "长" * 65}, "value_text", 422, "string_too_long"),
    (
        L,
        {"reason": "typo", "collected_at": "2026-12-01T00:00:00Z"},
        "collected_at",
        422,
        "date_future",
    ),
    (M, {"reason": "typo", "dose": "five"}, "dose", 422, None),
    (V, {"reason": "typo", "value": 400}, "value", 422, "vital_out_of_range"),
    (V, {"reason": "typo", "encounter_id": BIG}, "encounter_id", 422, None),
    (A, {"reason": "typo", "noted_on": "2027-01-01"}, "noted_on", 422, "date_future"),
]


@pytest.mark.parametrize(
    ("kind", "body", "field", "status", "code"),
    CORRECTION_CASES,
    ids=[f"{c[0]}-{c[2]}-{i}" for i, c in enumerate(CORRECTION_CASES)],
)
def test_bad_corrections_change_nothing(
    client: TestClient,
    db: Session,
    site: Site,
    kind: RecordKind,
    body: dict[str, Any],
    field: str,
    status: int,
    code: str | None,
) -> None:
    entry = add(db, site.village_doctor, kind, site.patient.id)
    db.commit()
    before = entry_counts(db)
    response = client.patch(
        f"/api/v1/records/{kind}/{entry.id}", json=body, headers=site.tokens["village_doctor"]
    )
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == field
    if code:
        assert error["code"] == code
    assert entry_counts(db) == before
    db.refresh(entry)
    assert entry.version == 1


@pytest.mark.parametrize(
    ("body", "field"),
    [({}, "reason"), ({"reason": "x"}, "reason"), ({"reason": "wrong", "at": "now"}, "at")],
)
def test_bad_entered_in_error_bodies(
    client: TestClient, db: Session, site: Site, body: dict[str, Any], field: str
) -> None:
    entry = add(db, site.village_doctor, RecordKind.ALLERGY, site.patient.id)
    db.commit()
    response = client.post(
        f"/api/v1/records/allergy/{entry.id}/entered-in-error",
        json=body,
        headers=site.tokens["village_doctor"],
    )
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field
    db.refresh(entry)
    assert entry.entry_status == "current"


@pytest.mark.parametrize(
    ("url", "field", "code"),
    [
        ("/api/v1/codes/icd10", "q", "missing"),
        ("/api/v1/codes/icd10?q=" + "x" * 65, "q", "string_too_long"),
        ("/api/v1/codes/icd10?q=a%00b", "q", "control_characters"),
        ("/api/v1/codes/icd10?q=E11&limit=51", "limit", None),
        ("/api/v1/codes/icd10/X99.9", "code", "icd10_unknown"),
        ("/api/v1/codes/icd10/" + "E" * 17, "code", None),
    ],
)
def test_bad_code_lookups(
    client: TestClient, site: Site, url: str, field: str, code: str | None
) -> None:
    response = client.get(url, headers=site.tokens["village_doctor"])
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    if code:
        assert error["code"] == code


@pytest.mark.parametrize("value", ["%00reason long enough", "%E6%8A", "x" * 201])
def test_bad_access_reasons(client: TestClient, site: Site, value: str) -> None:
    headers = {**site.tokens["platform"], "X-Access-Reason": value}
    response = client.get(f"/api/v1/patients/{site.patient.id}/labs", headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "X-Access-Reason"

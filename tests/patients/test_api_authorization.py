"""Who gets what, endpoint by endpoint: own institution 2xx, another institution 404 (as if
absent), roles without charts 403, a platform admin 403 without a reason and 2xx with one;
every access and every refusal has its audit row."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.patients.conftest import (
    MALE,
    Api,
    error_of,
    last_seq,
    register,
    rows_since,
    with_reason,
)
from xietong.core.clock import now

ABSENT = 987_654


def _calls(patient: int, county: int) -> list[tuple[str, str, dict[str, Any] | None]]:
    grant = {
        "patient_id": patient,
        "grantee_institution_id": county,
        "scope": "chart",
        "purpose": "referral",
        "expires_at": (now() + timedelta(days=1)).isoformat(),
    }
    return [
        ("GET", f"/api/v1/patients/{patient}", None),
        ("GET", f"/api/v1/patients/{patient}?reveal=true", None),
        ("PATCH", f"/api/v1/patients/{patient}", {"address_detail": "人民路2号"}),
        ("GET", f"/api/v1/patients/{patient}/merges", None),
        ("GET", f"/api/v1/patients/{patient}/grants", None),
        ("POST", "/api/v1/grants", grant),
    ]


CALL_IDS = ["read", "reveal", "patch", "merges", "grants", "grant"]


@pytest.fixture
def patient(client: TestClient, api: Api) -> int:
    return register(client, api.village_doctor, MALE)


def _call(client: TestClient, call: tuple[str, str, Any], headers: dict[str, str]) -> Any:
    method, url, body = call
    return client.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize("index", range(6), ids=CALL_IDS)
def test_own_institution_succeeds_and_is_audited(
    client: TestClient, db: Session, api: Api, patient: int, index: int
) -> None:
    call = _calls(patient, api.county.id)[index]
    before = last_seq(db)
    response = _call(client, call, api.village_doctor)
    assert response.status_code in (200, 201), response.text
    rows = rows_since(db, before)
    assert rows, "no audit row"
    assert all(r.outcome == "success" for r in rows)
    assert any(r.object_id == str(patient) and r.object_kind == "patient" for r in rows)


@pytest.mark.parametrize("index", range(6), ids=CALL_IDS)
def test_another_institution_gets_the_absent_answer(
    client: TestClient, db: Session, api: Api, patient: int, index: int
) -> None:
    call = _calls(patient, api.county.id)[index]
    before = last_seq(db)
    hidden = _call(client, call, api.other_doctor)
    assert hidden.status_code == 404, hidden.text
    rows = rows_since(db, before)
    assert [(r.outcome, r.object_id) for r in rows] == [("denied", str(patient))]
    assert '"reason": "scope"' in rows[0].detail
    absent_call = _calls(ABSENT, api.county.id)[index]
    absent = _call(client, absent_call, api.other_doctor)
    assert absent.status_code == 404
    assert error_of(absent) == error_of(hidden)


@pytest.mark.parametrize("index", range(6), ids=CALL_IDS)
@pytest.mark.parametrize("who", ["authority", "institution_admin", "audit_admin"])
def test_roles_without_charts_get_403(
    client: TestClient, db: Session, api: Api, patient: int, index: int, who: str
) -> None:
    call = _calls(patient, api.county.id)[index]
    before = last_seq(db)
    response = _call(client, call, getattr(api, who))
    assert response.status_code == 403, response.text
    rows = rows_since(db, before)
    assert [r.outcome for r in rows] == ["denied"]


def test_a_radiologist_of_an_unlinked_hospital_gets_404(
    client: TestClient, api: Api, patient: int
) -> None:
    for call in _calls(patient, api.county.id):
        assert _call(client, call, api.radiologist).status_code == 404, call


@pytest.mark.parametrize("index", range(5), ids=CALL_IDS[:5])
def test_platform_admin_needs_a_reason(
    client: TestClient, db: Session, api: Api, patient: int, index: int
) -> None:
    call = _calls(patient, api.county.id)[index]
    refused = _call(client, call, api.platform)
    assert refused.status_code == 403
    assert (error_of(refused)["code"], error_of(refused)["field"]) == (
        "break_glass_reason_required",
        "reason",
    )
    before = last_seq(db)
    reason = "complaint 2026-118 investigation"
    allowed = _call(client, call, with_reason(api.platform, reason))
    assert allowed.status_code == 200, allowed.text
    rows = rows_since(db, before)
    glass = [r for r in rows if r.action == "patient.break_glass"]
    assert glass, [r.action for r in rows]
    assert all(r.purpose == reason for r in glass)


def test_a_platform_admin_does_not_create_grants(
    client: TestClient, api: Api, patient: int
) -> None:
    call = _calls(patient, api.county.id)[5]
    assert _call(client, call, with_reason(api.platform)).status_code == 403


def test_authorities_get_counts_not_charts(client: TestClient, api: Api, patient: int) -> None:
    stats = client.get("/api/v1/patients/stats", headers=api.authority)
    assert stats.status_code == 200
    assert set(stats.json()) == {"jurisdiction_code", "total", "by_level"}
    assert client.get("/api/v1/patients", headers=api.authority).status_code == 403
    assert client.get(f"/api/v1/patients/{patient}", headers=api.authority).status_code == 403
    register_body = client.post("/api/v1/patients", json=MALE, headers=api.authority)
    assert register_body.status_code == 403


def test_anonymous_requests_are_refused(client: TestClient, patient: int) -> None:
    for method, url in (
        ("GET", "/api/v1/patients"),
        ("GET", f"/api/v1/patients/{patient}"),
        ("POST", "/api/v1/patients"),
        ("GET", "/api/v1/patients/stats"),
    ):
        assert client.request(method, url).status_code == 401


def test_revoking_someone_elses_grant_is_404(client: TestClient, api: Api, patient: int) -> None:
    call = _calls(patient, api.county.id)[5]
    grant = _call(client, call, api.village_doctor).json()
    assert (
        client.delete(f"/api/v1/grants/{grant['id']}", headers=api.other_doctor).status_code == 404
    )
    assert client.get(f"/api/v1/grants/{grant['id']}", headers=api.other_doctor).status_code == 404
    # The grantee (county) sees the grant, staff of the granting institution revoke it.
    assert client.get(f"/api/v1/grants/{grant['id']}", headers=api.county_doctor).status_code == 200
    revoked = client.delete(f"/api/v1/grants/{grant['id']}", headers=api.village_coordinator)
    assert revoked.status_code == 200

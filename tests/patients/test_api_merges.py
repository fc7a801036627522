"""Merges and their undo over HTTP; grants."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
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
)
from xietong.core.clock import now
from xietong.patients.access import register_item_kind
from xietong.patients.models import Patient, PatientMerge

URL = "/api/v1/patients"
NO_ID = {k: v for k, v in MALE.items() if k != "resident_id"}


def _pair(client: TestClient, api: Api) -> tuple[int, int]:
    """Two records of one man: one with his resident ID, one (a clinic's) without."""
    survivor = register(client, api.village_doctor, MALE)
    duplicate = register(
        client,
        api.village_doctor,
        {**NO_ID, "phone": "13600000000", "identifiers": [{"kind": "mrn", "value": "OLD-1"}]},
    )
    return survivor, duplicate


def _merge(client: TestClient, headers: dict[str, str], a: int, b: int, **extra: Any) -> Any:
    body = {"survivor_id": a, "merged_id": b, "reason": "duplicate registration", **extra}
    return client.post(f"{URL}/merges", json=body, headers=headers)


def test_merge_and_undo_round_trip(client: TestClient, db: Session, api: Api) -> None:
    a, b = _pair(client, api)
    before = last_seq(db)
    response = _merge(client, api.village_doctor, a, b)
    assert response.status_code == 201, response.text
    merge = response.json()
    assert (merge["survivor_id"], merge["merged_id"], merge["undone_at"]) == (a, b, None)
    rows = rows_since(db, before)
    assert [(r.action, r.object_id) for r in rows] == [
        ("patient.merge", str(a)),
        ("patient.merge", str(b)),
    ]
    # Opening B opens A, whose chart spans both; B's numbers show on A, marked as B's.
    opened = client.get(f"{URL}/{b}", headers=api.village_doctor).json()
    assert opened["id"] == a
    assert sorted(opened["member_ids"]) == sorted([a, b])
    assert {(i["kind"], i["patient_id"]) for i in opened["identifiers"]} == {
        ("resident_id", a),
        ("mrn", b),
    }
    # Searches show only A, whichever record's data matched.
    for params in ({"name": "张"}, {"mrn": "OLD-1"}, {"phone": "13600000000"}, {}):
        found = client.get(URL, params=params, headers=api.village_doctor).json()
        assert [p["id"] for p in found["items"]] == [a], params
    history = client.get(f"{URL}/{a}/merges", headers=api.village_doctor).json()
    assert [m["id"] for m in history] == [merge["id"]]
    assert client.get(f"{URL}/{b}/merges", headers=api.village_doctor).json() == history
    # Undo: B stands alone again; the history keeps both events.
    undone = client.post(
        f"{URL}/merges/{merge['id']}/undo",
        json={"reason": "two different people"},
        headers=api.village_doctor,
    )
    assert undone.status_code == 200, undone.text
    assert undone.json()["undone_at"] is not None
    assert undone.json()["undo_reason"] == "two different people"
    assert client.get(f"{URL}/{b}", headers=api.village_doctor).json()["id"] == b
    assert client.get(URL, params={"name": "张"}, headers=api.village_doctor).json()["total"] == 2
    assert audit_rows(db, "patient.merge_undo")
    again = client.post(
        f"{URL}/merges/{merge['id']}/undo", json={"reason": "again"}, headers=api.village_doctor
    )
    assert again.status_code == 409
    assert error_of(again)["code"] == "merge_undone"
    merged = db.get(Patient, b)
    assert merged is not None
    db.refresh(merged)
    assert merged.merged_into_id is None


def test_merge_refusals(client: TestClient, db: Session, api: Api) -> None:
    a, b = _pair(client, api)
    other_person = register(client, api.village_doctor, FEMALE)
    cases = [
        ((a, a), 409, "merge_self", "merged_id"),
        ((a, other_person), 409, "resident_id_differs", "resident_id"),
    ]
    for (survivor, merged), status, code, field in cases:
        response = _merge(client, api.village_doctor, survivor, merged)
        assert response.status_code == status, response.text
        assert (error_of(response)["code"], error_of(response)["field"]) == (code, field)
    assert _merge(client, api.village_doctor, a, b).status_code == 201
    c = register(client, api.village_doctor, {**NO_ID, "phone": "13500000000"})
    into_merged = _merge(client, api.village_doctor, b, c)
    assert into_merged.status_code == 409
    assert (error_of(into_merged)["code"], error_of(into_merged)["field"]) == (
        "already_merged",
        "survivor_id",
    )
    merged_again = _merge(client, api.village_doctor, c, b)
    assert (error_of(merged_again)["code"], error_of(merged_again)["field"]) == (
        "already_merged",
        "merged_id",
    )
    assert db.execute(select(PatientMerge)).scalars().all().__len__() == 1


def test_only_the_latest_merge_of_a_record_can_be_undone(client: TestClient, api: Api) -> None:
    a, b = _pair(client, api)
    c = register(client, api.village_doctor, {**NO_ID, "phone": "13500000000"})
    first = _merge(client, api.village_doctor, a, b).json()
    client.post(
        f"{URL}/merges/{first['id']}/undo", json={"reason": "oops"}, headers=api.village_doctor
    )
    second = _merge(client, api.village_doctor, c, b).json()
    stale = client.post(
        f"{URL}/merges/{first['id']}/undo", json={"reason": "x2"}, headers=api.village_doctor
    )
    assert stale.status_code == 409
    ok = client.post(
        f"{URL}/merges/{second['id']}/undo", json={"reason": "x3"}, headers=api.village_doctor
    )
    assert ok.status_code == 200


def test_who_may_merge(client: TestClient, api: Api) -> None:
    a, b = _pair(client, api)
    # The county hospital is linked to A only: B is hidden from it.
    register(client, api.county_doctor, MALE)
    hidden = _merge(client, api.county_doctor, a, b)
    assert (hidden.status_code, error_of(hidden)["field"]) == (404, "merged_id")
    # A grant lets it see B, but only staff of an institution linked to both merge.
    granted = _grant(
        client,
        api.village_doctor,
        patient_id=b,
        grantee_institution_id=api.county.id,
        scope="chart",
    )
    assert granted.status_code == 201
    only_one = _merge(client, api.county_doctor, a, b)
    assert only_one.status_code == 403
    assert error_of(only_one)["code"] == "merge_not_allowed"
    # Another institution's doctor: as if the records did not exist.
    assert _merge(client, api.other_doctor, a, b).status_code == 404
    assert _merge(client, api.radiologist, a, b).status_code == 403
    assert _merge(client, api.authority, a, b).status_code == 403
    no_reason = _merge(client, api.platform, a, b, reason="dup")
    assert (no_reason.status_code, error_of(no_reason)["field"]) == (403, "reason")
    by_admin = _merge(client, api.platform, a, b, reason="duplicate confirmed by ticket 2026-42")
    assert by_admin.status_code == 201
    assert by_admin.json()["merged_by_institution_id"] is None
    coordinator = client.post(
        f"{URL}/merges/{by_admin.json()['id']}/undo",
        json={"reason": "undo by the clinic"},
        headers=api.village_coordinator,
    )
    assert coordinator.status_code == 200


def test_a_link_to_a_merged_record_opens_the_survivor(client: TestClient, api: Api) -> None:
    a, b = _pair(client, api)
    # The county hospital registers the duplicate's person by its record only.
    client.post(
        URL,
        json={**NO_ID, "phone": "13600000000", "same_as_patient_id": b},
        headers=api.county_doctor,
    )
    assert client.get(f"{URL}/{a}", headers=api.county_doctor).status_code == 404
    _merge(client, api.village_doctor, a, b)
    opened = client.get(f"{URL}/{a}", headers=api.county_doctor)
    assert opened.status_code == 200
    found = client.get(URL, params={"name": "张"}, headers=api.county_doctor).json()
    assert [p["id"] for p in found["items"]] == [a]


# Grants --------------------------------------------------------------------------------------


def _grant(client: TestClient, headers: dict[str, str], **body: Any) -> Any:
    payload = {"purpose": "remote consultation", "expires_at": _in_days(2), **body}
    return client.post("/api/v1/grants", json=payload, headers=headers)


def _in_days(days: int) -> str:
    return (now() + timedelta(days=days)).isoformat()


# A stand-in item kind of its own (test_registration_access has another): item id →
# (patient id, holding institution id), filled by the test.
_MERGE_TEST_ITEMS: dict[int, tuple[int, int | None]] = {}


def _item_resolver(db: Session, item_id: int) -> tuple[int, int | None] | None:
    return _MERGE_TEST_ITEMS.get(item_id)


def test_grants_create_list_read_revoke(client: TestClient, db: Session, api: Api) -> None:
    patient = register(client, api.village_doctor, MALE)
    created = _grant(
        client,
        api.village_doctor,
        patient_id=patient,
        grantee_institution_id=api.other.id,
        scope="chart",
    )
    assert created.status_code == 201, created.text
    grant = created.json()
    assert grant["active"] is True
    # The other hospital now opens the patient and, holding a chart grant, may reveal.
    assert client.get(f"{URL}/{patient}", headers=api.other_doctor).status_code == 200
    revealed = client.get(f"{URL}/{patient}?reveal=true", headers=api.other_doctor)
    assert revealed.json()["resident_id"] == RESIDENT_ID_MALE
    listed = client.get(f"{URL}/{patient}/grants", headers=api.village_doctor).json()
    assert [g["id"] for g in listed] == [grant["id"]]
    read = client.get(f"/api/v1/grants/{grant['id']}", headers=api.village_doctor)
    assert read.json()["scope"] == "chart"
    revoked = client.delete(f"/api/v1/grants/{grant['id']}", headers=api.village_doctor)
    assert revoked.status_code == 200
    assert revoked.json()["active"] is False
    assert client.get(f"{URL}/{patient}", headers=api.other_doctor).status_code == 404
    assert [r.action for r in audit_rows(db) if r.object_kind == "grant"] == [
        "grant.create",
        "grant.revoke",
    ]


def test_an_items_grant_shows_the_header_but_not_full_numbers(
    client: TestClient, db: Session, api: Api
) -> None:
    register_item_kind("merge_test_item", _item_resolver)
    patient = register(client, api.village_doctor, MALE)
    _MERGE_TEST_ITEMS[1] = (patient, api.village.id)
    created = _grant(
        client,
        api.village_doctor,
        patient_id=patient,
        grantee_user_id=api.users["other_doctor"].id,
        scope="items",
        items=[{"kind": "merge_test_item", "id": 1}],
    )
    assert created.status_code == 201, created.text
    header = client.get(f"{URL}/{patient}", headers=api.other_doctor)
    assert header.status_code == 200
    assert header.json()["can_reveal"] is False
    assert header.json()["can_edit"] is False
    refused = client.get(f"{URL}/{patient}?reveal=true", headers=api.other_doctor)
    assert refused.status_code == 403
    assert error_of(refused)["code"] == "reveal_not_allowed"
    assert audit_rows(db, "patient.reveal", outcome="denied")
    patch = client.patch(f"{URL}/{patient}", json={"name": "张三"}, headers=api.other_doctor)
    assert (patch.status_code, error_of(patch)["code"]) == (403, "update_not_allowed")
    # The items grantee finds the patient in searches too.
    found = client.get(URL, headers=api.other_doctor).json()
    assert [p["id"] for p in found["items"]] == [patient]


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"scope": "chart"}, "grantee_institution_id"),
        ({"scope": "chart", "grantee_institution_id": 999_999}, "grantee_institution_id"),
        ({"scope": "items", "grantee_institution_id": -1}, "grantee_institution_id"),
        ({"scope": "items", "grantee_user_id": "USER"}, "items"),
        ({"scope": "everything", "grantee_user_id": "USER"}, "scope"),
        ({"scope": "chart", "grantee_user_id": "USER", "expires_at": "2000-01-01T00:00:00Z"}, None),
    ],
)
def test_bad_grants_name_the_field(
    client: TestClient, api: Api, body: dict[str, Any], field: str | None
) -> None:
    patient = register(client, api.village_doctor, MALE)
    if body.get("grantee_user_id") == "USER":
        body = {**body, "grantee_user_id": api.users["county_doctor"].id}
    response = _grant(client, api.village_doctor, patient_id=patient, **body)
    assert response.status_code == 422, response.text
    if field is None:
        field = "expires_at"
    assert error_of(response)["field"] == field

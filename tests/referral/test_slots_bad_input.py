"""Bad input to every slot endpoint: a 4xx naming the field, never a 500, nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.referral.slot_fixtures import SlotWorld, make_slot, make_template, row_counts

API = "/api/v1"
BIG = 2**31
NUL = "08:00\x00"

# (case, changes to a valid body, field, status); "{x}" names a world object.
TEMPLATE: list[tuple[str, dict[str, Any], str, int]] = [
    ("unknown field", {"ward": "3"}, "ward", 422),
    ("missing weekday", {"weekday": None}, "weekday", 422),
    ("NUL", {"start_time": NUL}, "start_time", 422),
    ("not a time", {"end_time": "25:00"}, "end_time", 422),
    ("zoned time", {"start_time": "08:00+08:00"}, "start_time", 422),
    ("times reversed", {"start_time": "12:00", "end_time": "08:00"}, "end_time", 422),
    ("empty window", {"start_time": "08:00", "end_time": "08:00"}, "end_time", 422),
    ("capacity 0", {"capacity": 0}, "capacity", 422),
    ("huge capacity", {"capacity": 10**12}, "capacity", 422),
    ("capacity text", {"capacity": "many"}, "capacity", 422),
    ("reserve over capacity", {"capacity": 3, "referral_reserved": 4}, "referral_reserved", 422),
    ("negative reserve", {"referral_reserved": -1}, "referral_reserved", 422),
    ("green quota", {"green_quota": 51}, "green_quota", 422),
    ("weekday 7", {"weekday": 7}, "weekday", 422),
    ("kind", {"kind": "surgery"}, "kind", 422),
    ("exam without type", {"kind": "exam"}, "exam_type", 422),
    ("type without exam", {"exam_type": "ct"}, "exam_type", 422),
    ("department beyond 2^31", {"department_id": BIG}, "department_id", 422),
    ("department elsewhere", {"department_id": "{other_dept}"}, "department_id", 422),
    ("unknown practitioner", {"practitioner_id": 999_999}, "practitioner_id", 422),
    (
        "practitioner of another department",
        {"practitioner_id": "{radiologist}"},
        "practitioner_id",
        422,
    ),
    (
        "until before from",
        {"valid_from": "2026-12-01", "valid_until": "2026-11-30"},
        "valid_until",
        422,
    ),
    ("far date", {"valid_from": "9999-12-31"}, "valid_from", 422),
]
ONE_OFF: list[tuple[str, dict[str, Any], str, int]] = [
    ("unknown field", {"date": "2026-11-23"}, "date", 422),
    ("day gone", {"day": "2026-11-19"}, "day", 422),
    ("day too far", {"day": "2027-12-01"}, "day", 422),
    ("not a day", {"day": "2026-02-30"}, "day", 422),
    ("started today", {"day": "2026-11-20", "start_time": "08:00"}, "start_time", 422),
    ("times reversed", {"start_time": "12:00", "end_time": "08:00"}, "end_time", 422),
    ("capacity 0", {"capacity": 0}, "capacity", 422),
    ("NUL", {"end_time": NUL}, "end_time", 422),
    ("exam without type", {"kind": "exam"}, "exam_type", 422),
    ("department elsewhere", {"department_id": "{other_dept}"}, "department_id", 422),
]
PATCH: list[tuple[str, dict[str, Any], str, int]] = [
    ("unknown field", {"institution_id": 3}, "institution_id", 422),
    ("null kind", {"kind": None}, "kind", 422),
    ("null capacity", {"capacity": None}, "capacity", 422),
    ("capacity 0", {"capacity": 0}, "capacity", 422),
    ("end before the stored start", {"end_time": "07:00"}, "end_time", 422),
    ("reserve over the stored capacity", {"referral_reserved": 6}, "referral_reserved", 422),
    ("exam type on an outpatient template", {"exam_type": "mri"}, "exam_type", 422),
    ("active text", {"is_active": "maybe"}, "is_active", 422),
]
BOOKING: list[tuple[str, dict[str, Any], str, int]] = [
    ("missing patient", {"patient_id": None}, "patient_id", 422),
    ("patient beyond 2^31", {"patient_id": BIG}, "patient_id", 422),
    ("unknown field", {"channel": "green"}, "channel", 422),
    ("request id with a space", {"client_request_id": "a b"}, "client_request_id", 422),
    ("request id with NUL", {"client_request_id": "a\x00"}, "client_request_id", 422),
    ("request id too long", {"client_request_id": "x" * 65}, "client_request_id", 422),
    ("unknown patient", {"patient_id": 999_999}, "patient_id", 422),
]


def _fill(w: SlotWorld, db: Session, body: dict[str, Any]) -> dict[str, Any]:
    filled = {}
    for key, value in body.items():
        if value == "{other_dept}":
            value = w.other_dept.id
        elif value == "{radiologist}":
            value = factories.practitioner(db, w.centre, name="放射医生", department=w.radiology).id
            db.commit()
        filled[key] = value
    return {k: v for k, v in filled.items() if v is not None}


def _check(db: Session, r: Any, field: str, status: int, before: dict[str, int]) -> None:
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field, r.text
    assert row_counts(db) == before


@pytest.mark.parametrize(
    ("case", "changes", "field", "status"), TEMPLATE, ids=[c[0] for c in TEMPLATE]
)
def test_template_create(
    client: TestClient,
    db: Session,
    slot_world: SlotWorld,
    case: str,
    changes: dict[str, Any],
    field: str,
    status: int,
) -> None:
    w = slot_world
    body = _fill(w, db, w.template(**changes))
    before = row_counts(db)
    r = client.post(
        f"{API}/institutions/{w.centre.id}/slot-templates",
        json=body,
        headers=w.tokens["coordinator"],
    )
    _check(db, r, field, status, before)


@pytest.mark.parametrize(
    ("case", "changes", "field", "status"), ONE_OFF, ids=[c[0] for c in ONE_OFF]
)
def test_one_off_slot(
    client: TestClient,
    db: Session,
    slot_world: SlotWorld,
    case: str,
    changes: dict[str, Any],
    field: str,
    status: int,
) -> None:
    w = slot_world
    body = _fill(w, db, w.one_off(**changes))
    if case == "unknown field":
        body = {**w.one_off(), **changes}
    before = row_counts(db)
    r = client.post(
        f"{API}/institutions/{w.centre.id}/slots", json=body, headers=w.tokens["coordinator"]
    )
    _check(db, r, field, status, before)


@pytest.mark.parametrize(("case", "changes", "field", "status"), PATCH, ids=[c[0] for c in PATCH])
def test_template_update(
    client: TestClient,
    db: Session,
    slot_world: SlotWorld,
    case: str,
    changes: dict[str, Any],
    field: str,
    status: int,
) -> None:
    w = slot_world
    template = make_template(db, w)
    db.commit()
    before = row_counts(db)
    r = client.patch(
        f"{API}/slot-templates/{template.id}", json=changes, headers=w.tokens["coordinator"]
    )
    _check(db, r, field, status, before)
    db.refresh(template)
    assert (template.capacity, template.kind, template.exam_type) == (5, "outpatient", "")


@pytest.mark.parametrize(
    ("case", "changes", "field", "status"), BOOKING, ids=[c[0] for c in BOOKING]
)
def test_local_booking(
    client: TestClient,
    db: Session,
    slot_world: SlotWorld,
    case: str,
    changes: dict[str, Any],
    field: str,
    status: int,
) -> None:
    w = slot_world
    slot = make_slot(db, w)
    db.commit()
    body = {k: v for k, v in {"patient_id": w.patient.id, **changes}.items() if v is not None}
    before = row_counts(db)
    r = client.post(f"{API}/slots/{slot.id}/bookings", json=body, headers=w.tokens["coordinator"])
    _check(db, r, field, status, before)


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"from": "soon"}, "from"),
        ({"from": "9999-12-31"}, "from"),
        ({"days": 0}, "days"),
        ({"days": 10**6}, "days"),
        ({"kind": "surgery"}, "kind.0"),
        ({"exam_type": "xray\x00"}, "exam_type"),
        ({"channel": "vip"}, "channel"),
        ({"department_id": BIG}, "department_id"),
        ({"practitioner_id": -1}, "practitioner_id"),
        ({"limit": 5}, "limit"),
    ],
)
def test_availability_query(
    client: TestClient, db: Session, slot_world: SlotWorld, params: dict[str, Any], field: str
) -> None:
    w = slot_world
    r = client.get(
        f"{API}/institutions/{w.centre.id}/slots", params=params, headers=w.tokens["sender_doctor"]
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"week": "next"}, "week"),
        ({"week": "0001-01-01"}, "week"),
        ({"department_id": "x"}, "department_id"),
        ({"view": "month"}, "view"),
    ],
)
def test_calendar_query(
    client: TestClient, db: Session, slot_world: SlotWorld, params: dict[str, Any], field: str
) -> None:
    w = slot_world
    r = client.get(
        f"{API}/institutions/{w.centre.id}/slot-calendar",
        params=params,
        headers=w.tokens["coordinator"],
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


def test_malformed_bodies_and_ids(client: TestClient, db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    template = make_template(db, w)
    slot = make_slot(db, w)
    db.commit()
    desk = {**w.tokens["coordinator"], "Content-Type": "application/json"}
    before = row_counts(db)
    for method, url in (
        ("POST", f"{API}/institutions/{w.centre.id}/slot-templates"),
        ("PATCH", f"{API}/slot-templates/{template.id}"),
        ("POST", f"{API}/institutions/{w.centre.id}/slots"),
        ("POST", f"{API}/slots/{slot.id}/bookings"),
    ):
        r = client.request(method, url, content=b'{"capacity": 3,', headers=desk)
        assert (r.status_code, r.json()["error"]["field"]) == (400, "body"), url
        r = client.request(method, url, content=b"[1, 2]", headers=desk)
        assert r.status_code == 422, url
        assert r.json()["error"]["field"] == "body", url
    for method, url, field in (
        ("GET", f"{API}/institutions/{BIG}/slot-templates", "institution_id"),
        ("POST", f"{API}/institutions/0/slots/generate", "institution_id"),
        ("GET", f"{API}/slot-templates/{BIG}", "template_id"),
        ("POST", f"{API}/slot-templates/-1/deactivate", "template_id"),
        ("GET", f"{API}/slots/{BIG}", "slot_id"),
        ("POST", f"{API}/slots/{BIG}/close", "slot_id"),
        ("POST", f"{API}/slots/x/cancel", "slot_id"),
        ("POST", f"{API}/slot-bookings/{BIG}/cancel", "booking_id"),
    ):
        r = client.request(method, url, headers=w.tokens["coordinator"])
        assert (r.status_code, r.json()["error"]["field"]) == (422, field), url
    assert row_counts(db) == before
    anonymous = client.get(f"{API}/institutions/{w.centre.id}/slots")
    assert anonymous.status_code == 401

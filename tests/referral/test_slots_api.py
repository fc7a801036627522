"""The slot API: publishing, the sender's picker, the desk's calendar and local bookings;
who may do what (403 for the role, 404 for other institutions, every refusal audited)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.directory.conftest import denials
from tests.referral.slot_fixtures import (
    SlotWorld,
    book,
    counters,
    make_slot,
    make_template,
    row_counts,
    slot_audits,
)

API = "/api/v1"


def test_the_desk_publishes_through_the_api(
    client: TestClient, db: Session, slot_world: SlotWorld
) -> None:
    w = slot_world
    desk = w.tokens["coordinator"]
    created = client.post(
        f"{API}/institutions/{w.centre.id}/slot-templates",
        json=w.template(practitioner_id=w.expert.id),
        headers=desk,
    )
    assert created.status_code == 201, created.text
    template = created.json()
    assert created.headers["Location"] == f"/api/v1/slot-templates/{template['id']}"
    assert template["department_name"] == "心内科"
    assert template["practitioner_name"] == "张主任"
    assert (template["start_time"], template["valid_from"]) == ("08:00:00", "2026-11-20")
    patched = client.patch(
        f"{API}/slot-templates/{template['id']}",
        json={"capacity": 6, "practitioner_id": None},
        headers=w.tokens["admin"],
    )
    assert patched.status_code == 200, patched.text
    assert (patched.json()["capacity"], patched.json()["practitioner_id"]) == (6, None)
    listing = client.get(f"{API}/institutions/{w.centre.id}/slot-templates", headers=desk)
    assert [t["id"] for t in listing.json()] == [template["id"]]
    generated = client.post(f"{API}/institutions/{w.centre.id}/slots/generate", headers=desk)
    assert generated.json() == {
        "institution_id": w.centre.id,
        "created": 4,
        "through": "2026-12-17",
    }
    one_off = client.post(
        f"{API}/institutions/{w.centre.id}/slots",
        json=w.one_off(kind="admission", department_id=w.cardio.id, capacity=2),
        headers=desk,
    )
    assert one_off.status_code == 201, one_off.text
    slot = one_off.json()
    assert (slot["starts_at"], slot["ends_at"]) == ("2026-11-23T00:00:00Z", "2026-11-23T04:00:00Z")
    assert slot["template_id"] is None
    assert client.get(f"{API}/slots/{slot['id']}", headers=desk).json() == slot
    closed = client.post(f"{API}/slots/{slot['id']}/close", headers=desk)
    assert closed.json()["status"] == "closed"
    reopened = client.post(f"{API}/slots/{slot['id']}/reopen", headers=desk)
    assert reopened.json()["status"] == "open"
    cancelled = client.post(f"{API}/slots/{slot['id']}/cancel", headers=desk)
    assert cancelled.json()["status"] == "cancelled"
    off = client.post(f"{API}/slot-templates/{template['id']}/deactivate", headers=desk)
    assert off.json()["is_active"] is False
    actions = [
        "slot.template.create",
        "slot.template.update",
        "slot.generate",
        "slot.create",
        "slot.close",
        "slot.reopen",
        "slot.cancel",
        "slot.template.deactivate",
    ]
    for action in actions:
        assert len(slot_audits(db, action, "success")) == 1, action


def _desk_calls(w: SlotWorld, template_id: int, slot_id: int) -> list[tuple[str, str, Any]]:
    inst = f"{API}/institutions/{w.centre.id}"
    return [
        ("GET", f"{inst}/slot-templates", None),
        ("POST", f"{inst}/slot-templates", w.template()),
        ("GET", f"{API}/slot-templates/{template_id}", None),
        ("PATCH", f"{API}/slot-templates/{template_id}", {"capacity": 9}),
        ("POST", f"{API}/slot-templates/{template_id}/deactivate", None),
        ("POST", f"{inst}/slots/generate", None),
        ("POST", f"{inst}/slots", w.one_off()),
        ("GET", f"{inst}/slot-calendar", None),
        ("GET", f"{API}/slots/{slot_id}", None),
        ("POST", f"{API}/slots/{slot_id}/close", None),
        ("POST", f"{API}/slots/{slot_id}/reopen", None),
        ("POST", f"{API}/slots/{slot_id}/cancel", None),
        ("POST", f"{API}/slots/{slot_id}/bookings", {"patient_id": w.patient.id}),
    ]


@pytest.mark.parametrize(
    ("who", "status"),
    [("other_coordinator", 404), ("doctor", 403), ("sender_doctor", 403), ("platform", 403)],
)
def test_outsiders_are_refused_and_audited(
    client: TestClient, db: Session, slot_world: SlotWorld, who: str, status: int
) -> None:
    w = slot_world
    template = make_template(db, w)
    slot = make_slot(db, w)
    db.commit()
    before = row_counts(db)
    calls = _desk_calls(w, template.id, slot.id)
    for method, url, body in calls:
        r = client.request(method, url, json=body, headers=w.tokens[who])
        assert r.status_code == status, (method, url, r.text)
        if status == 404:
            assert r.json()["error"]["code"].endswith("_not_found"), r.text
    assert row_counts(db) == before
    refused = [d for d in denials(db) if d.action.startswith("slot.")]
    assert len(refused) == len(calls)
    reason = "scope" if status == 404 else "role"
    assert all(json.loads(d.detail)["reason"] == reason for d in refused)


def test_an_institution_admin_publishes_but_books_nothing(
    client: TestClient, db: Session, slot_world: SlotWorld
) -> None:
    w = slot_world
    slot = make_slot(db, w)
    db.commit()
    r = client.post(
        f"{API}/slots/{slot.id}/bookings",
        json={"patient_id": w.patient.id},
        headers=w.tokens["admin"],
    )
    assert r.status_code == 403
    assert client.post(f"{API}/slots/{slot.id}/close", headers=w.tokens["admin"]).status_code == 200


def test_the_picker_for_senders(client: TestClient, db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    slot = make_slot(db, w, capacity=2, referral_reserved=1, green_quota=1)
    ct = make_slot(db, w, kind="exam", exam_type="ct", department_id=w.radiology.id)
    book(db, w, slot)
    db.commit()
    url = f"{API}/institutions/{w.centre.id}/slots"
    for who in ("sender_doctor", "coordinator", "doctor", "admin"):
        r = client.get(url, params={"from": "2026-11-20"}, headers=w.tokens[who])
        assert r.status_code == 200, (who, r.text)
        body = r.json()
        assert [(i["slot_id"], i["free"]) for i in body["items"]] == [(slot.id, 1)]
        assert (body["start"], body["days"], body["channel"]) == ("2026-11-20", 14, "normal")
    both = client.get(
        url, params=[("kind", "exam"), ("kind", "outpatient")], headers=w.tokens["sender_doctor"]
    )
    assert [i["slot_id"] for i in both.json()["items"]] == [slot.id, ct.id]
    ct_only = client.get(
        url,
        params={"kind": "exam", "exam_type": "ct", "channel": "green"},
        headers=w.tokens["sender_doctor"],
    )
    assert [(i["slot_id"], i["free"]) for i in ct_only.json()["items"]] == [(ct.id, 1)]
    # No link upward, or no clinical role at the linked institution: 404, audited.
    for who in ("stranger_doctor", "sender_admin", "other_coordinator", "platform"):
        r = client.get(url, headers=w.tokens[who])
        assert r.status_code == 404, who
        assert r.json()["error"] == {
            "code": "institution_not_found",
            "message": r.json()["error"]["message"],
            "field": "institution_id",
        }
    assert len(denials(db, "slot.availability")) == 4


def test_the_calendar_shows_the_desk_its_patients(
    client: TestClient, db: Session, slot_world: SlotWorld
) -> None:
    w = slot_world
    slot = make_slot(db, w, capacity=3, referral_reserved=1)
    other_day = make_slot(db, w, day="2026-11-29", department_id=w.radiology.id)
    referral_booking = book(db, w, slot)
    local = client.post(
        f"{API}/slots/{slot.id}/bookings",
        json={"patient_id": w.patient.id, "client_request_id": "k-1"},
        headers=w.tokens["coordinator"],
    )
    assert local.status_code == 201, local.text
    db.commit()
    url = f"{API}/institutions/{w.centre.id}/slot-calendar"
    r = client.get(url, params={"week": "2026-11-25"}, headers=w.tokens["coordinator"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["week_start"], body["week_end"]) == ("2026-11-23", "2026-11-29")
    days = {d["day"]: d["slots"] for d in body["days"]}
    assert len(days) == 7
    assert [s["id"] for s in days["2026-11-29"]] == [other_day.id]
    (shown,) = days["2026-11-23"]
    assert (shown["booked_referral"], shown["booked_local"], shown["capacity"]) == (1, 1, 3)
    assert [(b["purpose"], b["patient_name"], b["referral_href"]) for b in shown["bookings"]] == [
        ("referral", "李号源", f"/referrals/{referral_booking.referral_id}"),
        ("local", "李号源", None),
    ]
    audit = slot_audits(db, "slot.calendar", "success")[-1]
    assert json.loads(audit.detail) == {
        "week": "2026-11-23",
        "department_id": None,
        "slots": 2,
        "bookings": 2,
        "patients_shown": True,
    }
    one_dept = client.get(
        url,
        params={"week": "2026-11-23", "department_id": w.radiology.id},
        headers=w.tokens["coordinator"],
    ).json()
    assert [s["id"] for d in one_dept["days"] for s in d["slots"]] == [other_day.id]
    # The institution admin sees the counters, not who the patients are.
    admin = client.get(url, params={"week": "2026-11-23"}, headers=w.tokens["admin"]).json()
    names = [b["patient_name"] for d in admin["days"] for s in d["slots"] for b in s["bookings"]]
    assert names == [None, None]
    wrong = client.get(
        url, params={"department_id": w.other_dept.id}, headers=w.tokens["coordinator"]
    )
    assert (wrong.status_code, wrong.json()["error"]["field"]) == (422, "department_id")


def test_local_bookings_through_the_api(
    client: TestClient, db: Session, slot_world: SlotWorld
) -> None:
    w = slot_world
    slot = make_slot(db, w, capacity=2, referral_reserved=1)
    referral_booking = book(db, w, slot)
    db.commit()
    url = f"{API}/slots/{slot.id}/bookings"
    desk = w.tokens["coordinator"]
    first = client.post(
        url, json={"patient_id": w.patient.id, "client_request_id": "a"}, headers=desk
    )
    again = client.post(
        url, json={"patient_id": w.patient.id, "client_request_id": "a"}, headers=desk
    )
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert first.json()["purpose"] == "local"
    full = client.post(url, json={"patient_id": w.patient.id}, headers=desk)
    assert full.status_code == 409
    assert full.json()["error"]["code"] == "slot_full"
    hidden = client.post(url, json={"patient_id": w.outsider.id}, headers=desk)
    assert (hidden.status_code, hidden.json()["error"]["field"]) == (422, "patient_id")
    cancel = client.post(f"{API}/slot-bookings/{first.json()['id']}/cancel", headers=desk)
    assert cancel.json()["status"] == "cancelled"
    assert counters(db, slot.id) == (1, 0, 0)
    referral = client.post(f"{API}/slot-bookings/{referral_booking.id}/cancel", headers=desk)
    assert (referral.status_code, referral.json()["error"]["code"]) == (409, "booking_is_referral")
    stranger = client.post(
        f"{API}/slot-bookings/{first.json()['id']}/cancel", headers=w.tokens["other_coordinator"]
    )
    assert stranger.status_code == 404
    assert len(denials(db, "slot.booking.cancel")) == 1


def test_cancel_with_bookings_names_the_field(
    client: TestClient, db: Session, slot_world: SlotWorld
) -> None:
    w = slot_world
    slot = make_slot(db, w)
    book(db, w, slot)
    db.commit()
    r = client.post(f"{API}/slots/{slot.id}/cancel", headers=w.tokens["coordinator"])
    assert r.status_code == 409
    assert (r.json()["error"]["code"], r.json()["error"]["field"]) == (
        "slot_has_bookings",
        "slot_id",
    )

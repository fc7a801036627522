"""The desk's slot pages: the week calendar in zh-CN with its counters and bookings, the
template and one-off forms (303 on success, the field named on error), generate now,
close and cancel, and 404 for other institutions' slots and templates."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers import csrf_from, page_login
from tests.referral.slot_fixtures import SlotWorld, book, make_slot, make_template, row_counts
from xietong.referral.slot_models import Slot, SlotTemplate

ZH = {"Accept-Language": "zh-CN"}


def _as(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app, headers=ZH)
    page_login(client, username)
    return client


def _post(client: TestClient, url: str, page: str, data: dict[str, object]) -> httpx.Response:
    return client.post(url, data={"csrf_token": csrf_from(page), **data}, follow_redirects=False)


def test_the_calendar_in_chinese(db: Session, app: FastAPI, slot_world: SlotWorld) -> None:
    w = slot_world
    slot = make_slot(db, w, capacity=3, referral_reserved=1, green_quota=2)
    book(db, w, slot)
    book(db, w, slot, channel="green")
    make_slot(db, w, day="2026-11-26", kind="exam", exam_type="ct", department_id=w.radiology.id)
    db.commit()
    desk = _as(app, "s_coord")
    home = desk.get("/")
    assert 'href="/slots"' in home.text
    assert "号源" in home.text
    page = desk.get("/slots?week=2026-11-23")
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    text = page.text
    assert "2026-11-23 – 2026-11-29" in text
    assert "星期一" in text
    assert "08:00–12:00" in text
    assert "已约 1/3" in text
    assert "转诊预留 1" in text
    assert "绿色通道 1/2" in text
    assert "李号源" in text
    assert "门诊" in text
    assert "CT" in text
    assert 'href="/referrals/' in text
    assert "上一周" in text
    assert 'href="/slots?week=2026-11-30"' in text
    assert 'href="/slots?week=2026-11-16"' in text
    assert f'action="/slots/{slot.id}/close"' in text
    radiology = desk.get(f"/slots?week=2026-11-23&department_id={w.radiology.id}").text
    assert "CT" in radiology
    assert "李号源" not in radiology
    # This week by default (2026-11-16 … 2026-11-22: nothing yet).
    assert "2026-11-16 – 2026-11-22" in desk.get("/slots").text


def test_others_cannot_open_the_calendar(db: Session, app: FastAPI, slot_world: SlotWorld) -> None:
    slot = make_slot(db, slot_world)
    db.commit()
    doctor = _as(app, "s_doctor")
    assert doctor.get("/slots").status_code == 403
    assert 'href="/slots"' not in doctor.get("/").text
    other = _as(app, "s_other_coord")
    page = other.get("/slots")
    assert page.status_code == 200  # their own (empty) calendar
    assert "李号源" not in page.text
    refused = _post(other, f"/slots/{slot.id}/close", page.text, {})
    assert refused.status_code == 404
    db.refresh(slot)
    assert slot.status == "open"
    template = make_template(db, slot_world)
    db.commit()
    gone = _post(other, f"/slots/templates/{template.id}/deactivate", page.text, {})
    assert gone.status_code == 404


def test_templates_through_the_forms(db: Session, app: FastAPI, slot_world: SlotWorld) -> None:
    w = slot_world
    desk = _as(app, "s_coord")
    page = desk.get("/slots/templates")
    assert page.status_code == 200
    assert "每周模板" in page.text
    form = {
        "department_id": w.radiology.id,
        "practitioner_id": "",
        "kind": "exam",
        "exam_type": "mri",
        "weekday": "2",
        "start_time": "13:30",
        "end_time": "17:00",
        "capacity": "6",
        "referral_reserved": "2",
        "green_quota": "1",
        "valid_from": "",
        "valid_until": "",
    }
    bad = _post(desk, "/slots/templates", page.text, {**form, "end_time": "12:00"})
    assert bad.status_code == 422
    assert 'data-field="end_time"' in bad.text
    assert re.search(r'name="end_time"[^>]*aria-invalid="true"', bad.text)
    assert 'value="13:30"' in bad.text  # what was typed is kept
    no_exam = _post(desk, "/slots/templates", page.text, {**form, "exam_type": ""})
    assert 'data-field="exam_type"' in no_exam.text
    assert db.execute(select(SlotTemplate)).first() is None
    ok = _post(desk, "/slots/templates", page.text, form)
    assert ok.status_code == 303, ok.text
    assert ok.headers["location"] == "/slots/templates"
    listing = desk.get("/slots/templates").text
    assert "星期三 13:30–17:00" in listing
    assert "磁共振" in listing
    template = db.execute(select(SlotTemplate)).scalar_one()
    assert (template.kind, template.exam_type, template.capacity) == ("exam", "mri", 6)
    generated = _post(desk, "/slots/generate", listing, {"week": "2026-11-23"})
    assert generated.status_code == 303
    assert generated.headers["location"] == "/slots?week=2026-11-23&generated=4"
    shown = desk.get(generated.headers["location"]).text
    assert "已按模板生成 4 个号源" in shown
    off = _post(desk, f"/slots/templates/{template.id}/deactivate", listing, {})
    assert off.status_code == 303
    db.refresh(template)
    assert not template.is_active
    assert "已停用" in desk.get("/slots/templates").text


def test_one_off_slot_close_and_cancel(db: Session, app: FastAPI, slot_world: SlotWorld) -> None:
    w = slot_world
    desk = _as(app, "s_coord")
    page = desk.get("/slots/new")
    assert page.status_code == 200
    form = {
        "department_id": w.cardio.id,
        "practitioner_id": w.expert.id,
        "kind": "admission",
        "exam_type": "",
        "day": "2026-11-24",
        "start_time": "09:00",
        "end_time": "10:00",
        "capacity": "2",
        "referral_reserved": "1",
        "green_quota": "1",
    }
    before = row_counts(db)
    bad = _post(desk, "/slots/new", page.text, {**form, "capacity": "0"})
    assert bad.status_code == 422
    assert 'data-field="capacity"' in bad.text
    past = _post(desk, "/slots/new", page.text, {**form, "day": "2026-11-01"})
    assert 'data-field="day"' in past.text
    assert row_counts(db) == before
    ok = _post(desk, "/slots/new", page.text, form)
    assert ok.status_code == 303, ok.text
    assert ok.headers["location"] == "/slots?week=2026-11-24"
    slot = db.execute(select(Slot)).scalar_one()
    calendar = desk.get("/slots?week=2026-11-24").text
    assert "住院床位" in calendar
    assert "张主任" in calendar
    closed = _post(desk, f"/slots/{slot.id}/close", calendar, {"week": "2026-11-23"})
    assert closed.status_code == 303
    assert closed.headers["location"] == "/slots?week=2026-11-23"
    db.refresh(slot)
    assert slot.status == "closed"
    calendar = desk.get("/slots?week=2026-11-23").text
    assert "已停约" in calendar
    assert f'action="/slots/{slot.id}/reopen"' in calendar
    reopened = _post(desk, f"/slots/{slot.id}/reopen", calendar, {})
    assert reopened.status_code == 303, reopened.text
    book(db, w, slot)
    db.commit()
    held = _post(desk, f"/slots/{slot.id}/cancel", calendar, {"week": "2026-11-23"})
    assert held.status_code == 409
    assert 'data-code="slot_has_bookings"' in held.text
    assert 'data-field="slot_id"' in held.text
    db.refresh(slot)
    assert slot.status == "open"

"""The consultation pages: each party's list and detail (zh-CN), the lifecycle driven
through the page forms, 404 for an unrelated institution, a bad form naming its field."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.consultation.conftest import Net, accept, create, reach
from tests.helpers import csrf_from, page_login
from xietong.consultation.models import Consultation, ConsultationReport
from xietong.core.validation import as_utc

ZH = {"Accept-Language": "zh-CN"}


def _as(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app, headers=ZH)
    page_login(client, username)
    return client


def _post(client: TestClient, url: str, page: str, data: dict[str, object]) -> httpx.Response:
    return client.post(url, data={"csrf_token": csrf_from(page), **data}, follow_redirects=False)


def test_each_party_sees_its_list_and_the_consultation(db: Session, app: FastAPI, net: Net) -> None:
    c = create(db, net, submit=True)
    accept(db, net, c)
    db.commit()
    for who, tab in (
        ("c_applicant", "我的申请"),
        ("c_coord", "待处理"),
        ("c_expert_a", "工作清单"),
    ):
        client = _as(app, who)
        listing = client.get("/consultations")
        assert listing.status_code == 200, listing.text
        assert tab in listing.text
        assert "会诊" in listing.text  # the menu entry
        view = {"c_applicant": "applicant", "c_coord": "inbox", "c_expert_a": "worklist"}[who]
        rows = client.get(f"/consultations?view={view}")
        assert f'href="/consultations/{c.id}"' in rows.text
        assert net.patient.name in rows.text
        assert "已接受" in rows.text
        page = client.get(f"/consultations/{c.id}")
        assert page.status_code == 200
        assert "明确诊断" in page.text
        assert f'href="/records/diagnosis/{net.shared.id}">诊断 #' in page.text
        assert "c_coord" in page.text  # who accepted, in the history
        assert "张主任" in page.text
        assert "table-wrap" in page.text
    expert = _as(app, "c_expert_b")
    start = f'action="/consultations/{c.id}/start"'
    assert start in expert.get(f"/consultations/{c.id}").text


def test_an_unrelated_institution_gets_404(db: Session, app: FastAPI, net: Net) -> None:
    c = create(db, net, submit=True)
    db.commit()
    for who in ("c_otherdoc", "c_othercoord", "c_otherexp"):
        assert _as(app, who).get(f"/consultations/{c.id}").status_code == 404
    stranger = _as(app, "c_othercoord")
    page = stranger.get("/consultations").text
    refused = _post(stranger, f"/consultations/{c.id}/reject", page, {"note": "x"})
    assert refused.status_code == 404


def test_the_lifecycle_through_the_forms(db: Session, app: FastAPI, net: Net) -> None:
    applicant = _as(app, "c_applicant")
    chart = applicant.get(f"/patients/{net.patient.id}/chart")
    assert f'href="/patients/{net.patient.id}/consultations/new"' in chart.text
    form = applicant.get(f"/patients/{net.patient.id}/consultations/new")
    assert form.status_code == 200
    assert f'value="diagnosis:{net.shared.id}"' in form.text
    assert f'<option value="{net.county.id}"' in form.text
    key = re.search(r'name="request_key" value="([^"]+)"', form.text)
    assert key
    data = {
        "request_key": key.group(1),
        "purpose": "明确诊断",
        "clinical_summary": "反复胸痛2周",
        "questions": "是否需要冠脉造影？",
        "specialty": "cardiology",
        "urgency": "urgent",
        "mode": "async",
        "target_institution_id": str(net.county.id),
        "shared": f"diagnosis:{net.shared.id}",
        "submit": "now",
    }
    created = _post(applicant, f"/patients/{net.patient.id}/consultations/new", form.text, data)
    assert created.status_code == 303, created.text
    url = created.headers["location"]
    again = _post(applicant, f"/patients/{net.patient.id}/consultations/new", form.text, data)
    assert again.headers["location"] == url
    c = db.execute(select(Consultation)).scalar_one()
    assert c.state == "submitted"
    assert c.shared_items == [{"kind": "diagnosis", "id": net.shared.id}]

    coordinator = _as(app, "c_coord")
    page = coordinator.get(url).text
    assert "张主任" in page
    assert "专科匹配" in page
    done = _post(
        coordinator,
        f"{url}/accept",
        page,
        {"experts": [str(net.experts["a"]), str(net.experts["b"])], "lead": net.experts["a"]},
    )
    assert done.status_code == 303, done.text

    experts = {k: _as(app, f"c_expert_{k}") for k in ("a", "b")}
    page = experts["b"].get(url).text
    assert _post(experts["b"], f"{url}/start", page, {}).status_code == 303
    for k, client in experts.items():
        page = client.get(url).text
        wrote = _post(client, f"{url}/opinion", page, {"text": f"专家{k}意见"})
        assert wrote.status_code == 303, wrote.text
    page = experts["a"].get(url).text
    assert "专家b意见" in page
    signed = _post(
        experts["a"],
        f"{url}/sign",
        page,
        {"impression": "稳定型心绞痛", "recommendations": "冠脉CTA"},
    )
    assert signed.status_code == 303, signed.text

    page = applicant.get(url).text
    report = db.execute(select(ConsultationReport)).scalar_one()
    assert report.content_sha256 in page
    assert "稳定型心绞痛" in page
    completed = _post(applicant, f"{url}/complete", page, {"rating": "4", "comment": "很有帮助"})
    assert completed.status_code == 303, completed.text
    db.refresh(c)
    assert c.state == "completed"
    assert c.rating == 4
    final = applicant.get(url).text
    assert "已完成" in final
    assert "4 / 5" in final
    assert "专家a意见" in final
    assert 'action="/consultations/' not in final.split("<main", 1)[1]  # nothing left to do


def test_a_bad_form_re_renders_naming_the_field(db: Session, app: FastAPI, net: Net) -> None:
    c = create(db, net, submit=True)
    db.commit()
    coordinator = _as(app, "c_coord")
    page = coordinator.get(f"/consultations/{c.id}").text
    refused = _post(coordinator, f"/consultations/{c.id}/return", page, {"note": ""})
    assert refused.status_code == 422
    assert 'data-field="note"' in refused.text
    assert 'aria-invalid="true"' in refused.text

    applicant = _as(app, "c_applicant")
    form = applicant.get(f"/patients/{net.patient.id}/consultations/new").text
    bad = _post(
        applicant,
        f"/patients/{net.patient.id}/consultations/new",
        form,
        {
            "purpose": "x",
            "clinical_summary": "y",
            "questions": "z",
            "specialty": "cardiology",
            "target_institution_id": str(net.other.id),
            "submit": "now",
        },
    )
    assert bad.status_code == 422
    assert 'data-field="target_institution_id"' in bad.text


def test_a_live_consultation_is_scheduled_in_china_time(
    db: Session, app: FastAPI, net: Net
) -> None:
    c = create(db, net, submit=True, mode="live")
    accept(db, net, c)
    db.commit()
    url = f"/consultations/{c.id}"
    coordinator = _as(app, "c_coord")
    page = coordinator.get(url).text
    assert f'action="{url}/start"' not in page
    done = _post(coordinator, f"{url}/schedule", page, {"scheduled_at": "2026-11-21T10:00"})
    assert done.status_code == 303, done.text
    db.refresh(c)
    assert c.scheduled_at is not None
    assert as_utc(c.scheduled_at) == datetime(2026, 11, 21, 2, 0, tzinfo=UTC)
    assert "2026-11-21 10:00" in coordinator.get(url).text
    expert = _as(app, "c_expert_b")
    page = expert.get(url).text
    assert _post(expert, f"{url}/start", page, {}).status_code == 303
    db.refresh(c)
    assert c.state == "in_progress"


def test_a_draft_is_saved_then_submitted_or_cancelled(db: Session, app: FastAPI, net: Net) -> None:
    applicant = _as(app, "c_applicant")
    form = applicant.get(f"/patients/{net.patient.id}/consultations/new").text
    saved = _post(
        applicant,
        f"/patients/{net.patient.id}/consultations/new",
        form,
        {
            "purpose": "明确诊断",
            "clinical_summary": "反复胸痛2周",
            "questions": "是否需要冠脉造影？",
            "specialty": "cardiology",
            "urgency": "routine",
            "mode": "async",
            "target_institution_id": str(net.county.id),
            "submit": "draft",
        },
    )
    assert saved.status_code == 303, saved.text
    url = saved.headers["location"]
    c = db.execute(select(Consultation)).scalar_one()
    assert c.state == "draft"
    page = applicant.get(url).text
    assert "草稿" in page
    assert f'action="{url}/cancel"' in page
    assert _post(applicant, f"{url}/submit", page, {}).status_code == 303
    db.refresh(c)
    assert c.state == "submitted"
    assert c.accept_deadline is not None
    # The coordinator only sees it once submitted; the clinic's other staff see but do not act.
    viewer = _as(app, "c_viewer")
    seen = viewer.get(url)
    assert seen.status_code == 200
    assert "What you can do" not in seen.text
    assert "可执行的操作" not in seen.text


def test_return_resubmit_and_amend_through_the_forms(db: Session, app: FastAPI, net: Net) -> None:
    c = create(db, net, submit=True)
    db.commit()
    url = f"/consultations/{c.id}"
    coordinator = _as(app, "c_coord")
    page = coordinator.get(url).text
    assert _post(coordinator, f"{url}/return", page, {"note": "请补充心电图"}).status_code == 303
    applicant = _as(app, "c_applicant")
    page = applicant.get(url).text
    assert "请补充心电图" in page
    again = _post(applicant, f"{url}/resubmit", page, {"clinical_summary": "已补充心电图"})
    assert again.status_code == 303, again.text
    db.refresh(c)
    assert c.state == "resubmitted"
    assert c.clinical_summary == "已补充心电图"

    reached = reach(db, net, "report_signed")
    db.commit()
    url = f"/consultations/{reached.id}"
    lead = _as(app, "c_expert_a")
    page = lead.get(url).text
    no_reason = _post(
        lead, f"{url}/amend", page, {"impression": "不稳定型心绞痛", "recommendations": "住院"}
    )
    assert no_reason.status_code == 422
    assert 'data-field="reason"' in no_reason.text
    amended = _post(
        lead,
        f"{url}/amend",
        page,
        {"impression": "不稳定型心绞痛", "recommendations": "住院", "reason": "复核心电图"},
    )
    assert amended.status_code == 303, amended.text
    shown = applicant.get(url).text
    assert 'data-version="2"' in shown
    assert 'data-version="1"' in shown
    assert "复核心电图" in shown

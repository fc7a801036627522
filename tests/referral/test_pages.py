"""The referral pages: each party's list and the referral in zh-CN, the up-referral's life
driven through the page forms (sent with a slot, accepted, checked in, treated, sent back
down, taken back, followed up), the exam report and decision, refused forms naming their
field, 404 for an unrelated institution, the closed loop and the chart's referrals."""

from __future__ import annotations

import re

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers import csrf_from, page_login
from tests.referral.conftest import Net, create, create_down, exam_document, reach
from xietong.config import ConsultationSettings
from xietong.consultation import service as consultations
from xietong.consultation.schemas import AcceptIn as ConsultationAccept
from xietong.consultation.schemas import ConsultationIn, OpinionIn, ReportIn
from xietong.directory.models import Practitioner
from xietong.referral.models import FollowUp, Referral
from xietong.referral.slot_models import SlotBooking

ZH = {"Accept-Language": "zh-CN"}


def _as(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app, headers=ZH)
    page_login(client, username)
    return client


def _post(client: TestClient, url: str, page: str, data: dict[str, object]) -> httpx.Response:
    return client.post(url, data={"csrf_token": csrf_from(page), **data}, follow_redirects=False)


def _act(client: TestClient, url: str, action: str, data: dict[str, object] | None = None) -> None:
    page = client.get(url)
    assert page.status_code == 200, page.text
    assert f'action="{url}/{action}"' in page.text, f"no {action} form"
    done = _post(client, f"{url}/{action}", page.text, data or {})
    assert done.status_code == 303, done.text
    assert done.headers["location"] == url


def _key(html: str) -> str:
    found = re.search(r'name="request_key" value="([^"]+)"', html)
    assert found
    return found.group(1)


def test_each_party_sees_its_list_and_the_referral(db: Session, app: FastAPI, net: Net) -> None:
    r = reach(db, net, "up", "accepted")
    green = create(db, net, priority="green", slot_id=net.slots["outpatient_later"])
    db.commit()
    for who, view, tab in (
        ("r_sender", "sent", "已发出"),
        ("r_desk", "inbox", "转诊办"),
        ("r_clinician", "worklist", "工作清单"),
    ):
        client = _as(app, who)
        listing = client.get("/referrals")
        assert listing.status_code == 200, listing.text
        assert listing.headers["cache-control"] == "no-store"
        assert 'href="/referrals"' in listing.text
        assert "转诊" in listing.text
        assert tab in listing.text
        rows = client.get(f"/referrals?view={view}").text
        assert f'href="/referrals/{r.id}"' in rows
        assert net.patient.name in rows
        assert "上转" in rows
        assert "已接受" in rows
        if view != "worklist":  # the desk and the sender see it waiting
            assert f'href="/referrals/{green.id}"' in rows
            assert "绿色通道" in rows
        page = client.get(f"/referrals/{r.id}")
        assert page.status_code == 200, page.text
        assert page.headers["cache-control"] == "no-store"
        text = page.text
        assert "胸痛待查，需专科诊治" in text
        assert "测试村卫生室" in text
        assert "测试县医院" in text
        assert "心内科" in text
        assert "2026-11-21 09:00" in text  # the booked slot in China time
        assert "I20.9" in text
        assert f'href="/records/diagnosis/{net.shared.id}">诊断 #' in text
        assert "r_desk" in text  # who accepted, in the history
        assert f'href="/referrals/{r.id}/chain"' in text
    desk = _as(app, "r_desk").get("/referrals?view=inbox").text
    assert desk.index(f'data-referral="{green.id}"') < desk.index(f'data-referral="{r.id}"')
    sender = _as(app, "r_sender").get(f"/referrals/{r.id}").text
    assert f'action="/referrals/{r.id}/cancel"' in sender
    assert f'action="/referrals/{r.id}/check_in"' not in sender
    desk_page = _as(app, "r_desk").get(f"/referrals/{r.id}").text
    assert f'action="/referrals/{r.id}/check_in"' in desk_page


def test_the_up_and_down_loop_through_the_forms(db: Session, app: FastAPI, net: Net) -> None:
    sender = _as(app, "r_sender")
    pid = net.patient.id
    chart = sender.get(f"/patients/{pid}/chart").text
    assert f'href="/patients/{pid}/referrals/new"' in chart
    assert "转诊" in chart
    form = sender.get(f"/patients/{pid}/referrals/new")
    assert form.status_code == 200, form.text
    assert f'<option value="{net.county.id}"' in form.text
    assert f'value="diagnosis:{net.shared.id}"' in form.text
    picker = sender.get(
        f"/patients/{pid}/referrals/slots",
        params={
            "institution_id": net.county.id,
            "department_id": net.departments["cardio"],
            "kind": "up",
        },
        headers={"HX-Request": "true"},
    )
    assert picker.status_code == 200
    assert f'name="slot_id" value="{net.slots["outpatient"]}"' in picker.text
    assert "2026-11-21 星期六 09:00–09:30" in picker.text
    assert f'name="slot_id" value="{net.slots["ct"]}"' not in picker.text
    assert 'hx-swap-oob="true"' in picker.text
    assert "心内科" in picker.text
    data = {
        "request_key": _key(form.text),
        "kind": "up",
        "priority": "normal",
        "target_institution_id": str(net.county.id),
        "target_department_id": str(net.departments["cardio"]),
        "slot_id": str(net.slots["outpatient"]),
        "reason": "胸痛待查，需专科诊治",
        "diagnosis_code": "I20.9",
        "summary": "反复胸痛2周",
        "shared": f"diagnosis:{net.shared.id}",
    }
    # Without scripts, "show the free places" renders the form again with them.
    shown = _post(sender, f"/patients/{pid}/referrals/new", form.text, {**data, "show_slots": "1"})
    assert shown.status_code == 200
    assert f'value="{net.slots["outpatient"]}" checked' in shown.text
    assert db.execute(select(Referral)).first() is None
    sent = _post(sender, f"/patients/{pid}/referrals/new", form.text, data)
    assert sent.status_code == 303, sent.text
    url = sent.headers["location"]
    again = _post(sender, f"/patients/{pid}/referrals/new", form.text, data)
    assert again.headers["location"] == url
    r = db.execute(select(Referral)).scalar_one()
    assert (r.state, r.kind, r.diagnosis_code) == ("requested", "up", "I20.9")
    booking = db.execute(select(SlotBooking)).scalar_one()
    assert booking.slot_id == net.slots["outpatient"]

    desk = _as(app, "r_desk")
    _act(desk, url, "accept", {"note": "已安排"})
    _act(desk, url, "check_in")
    clinician = _as(app, "r_clinician")
    _act(clinician, url, "start")
    page = clinician.get(url).text
    assert f'href="{url}/down/new"' in page
    down_form = clinician.get(f"{url}/down/new")
    assert down_form.status_code == 200, down_form.text
    assert f'<option value="{net.village.id}" selected' in down_form.text
    down = {
        "request_key": _key(down_form.text),
        "target_institution_id": str(net.village.id),
        "reason": "病情稳定，回基层康复",
        "discharge.diagnoses[0].code": "I20.9",
        "discharge.diagnoses[0].text": "心绞痛",
        "discharge.procedures": "冠脉造影\n\n",
        "discharge.medications[1].name": "阿司匹林",
        "discharge.medications[1].dose": "100mg",
        "discharge.medications[1].frequency": "qd",
        "discharge.medications[1].days": "90",
        "discharge.follow_up_plan": "每月随访血压、心率",
        "rehab_plan": "低盐饮食，规律运动",
        "follow_ups[0].due_date": "2026-12-20",
        "follow_ups[0].purpose": "复查血压",
    }
    created = _post(clinician, f"{url}/down/new", down_form.text, down)
    assert created.status_code == 303, created.text
    down_url = created.headers["location"]
    db.expire_all()
    assert db.get(Referral, r.id).state == "completed"  # type: ignore[union-attr]
    back = db.execute(select(Referral).where(Referral.kind == "down")).scalar_one()
    assert back.parent_id == r.id
    assert back.discharge["medications"] == [
        {"name": "阿司匹林", "dose": "100mg", "frequency": "qd", "days": 90}
    ]
    assert back.discharge["procedures"] == ["冠脉造影"]

    village = _as(app, "r_vdesk")
    assert f'href="{down_url}"' in village.get("/referrals?view=inbox").text
    page = village.get(down_url).text
    assert "出院带药" in page
    assert "阿司匹林" in page
    assert "低盐饮食，规律运动" in page
    assert "2026-12-20" in page
    assert "复查血压" in page
    _act(village, down_url, "accept")
    follow_up = db.execute(select(FollowUp)).scalar_one()
    page = village.get(down_url).text
    action = f"{down_url}/follow-ups/{follow_up.id}"
    assert f'action="{action}"' in page
    recorded = _post(village, action, page, {"status": "done", "note": "血压 128/80"})
    assert recorded.status_code == 303, recorded.text
    db.refresh(follow_up)
    assert (follow_up.status, follow_up.note) == ("done", "血压 128/80")
    page = village.get(down_url).text
    assert "血压 128/80" in page
    assert f'action="{action}"' not in page

    chain = sender.get(f"{url}/chain")
    assert chain.status_code == 200, chain.text
    text = chain.text
    assert text.index('data-kind="up"') < text.index('data-kind="down"')
    assert f'href="{url}"' in text
    assert f'href="{down_url}"' in text
    assert "上转" in text
    assert "下转" in text
    assert "测试县医院 → 测试村卫生室" in text
    assert "复查血压" in text
    chart = sender.get(f"/patients/{pid}/chart").text
    assert f'href="{url}"' in chart
    assert f'href="{down_url}/chain"' in chart


def test_the_exam_report_and_decision_through_the_forms(
    db: Session, app: FastAPI, net: Net
) -> None:
    r = reach(db, net, "exam", "arrived")
    document_id = exam_document(db, net)
    db.commit()
    url = f"/referrals/{r.id}"
    radiologist = _as(app, "r_radiologist")
    page = radiologist.get(url).text
    assert "转检" in page
    assert "CT" in page
    assert f'<option value="{document_id}">2026-11-20 · 头颅CT报告</option>' in page
    assert f'href="/patients/{net.patient.id}/documents/new"' in page
    _act(radiologist, url, "report", {"document_id": str(document_id), "note": "未见出血"})
    clinician = _as(app, "r_clinician")
    _act(clinician, url, "decide", {"decision": "refer_up", "note": "建议住院进一步治疗"})
    db.expire_all()
    assert db.get(Referral, r.id).state == "completed"  # type: ignore[union-attr]
    child = db.execute(select(Referral).where(Referral.parent_id == r.id)).scalar_one()
    assert (child.kind, child.state) == ("up", "requested")
    sender = _as(app, "r_sender")
    page = sender.get(url).text
    assert f'href="/documents/{document_id}"' in page
    assert "上转至本院治疗" in page
    assert "建议住院进一步治疗" in page
    chain = sender.get(f"{url}/chain").text
    assert f'href="/referrals/{child.id}"' in chain
    assert chain.index(f'data-id="{r.id}"') < chain.index(f'data-id="{child.id}"')


def test_refused_forms_name_their_field(db: Session, app: FastAPI, net: Net) -> None:
    r = reach(db, net, "up", "requested")
    up = reach(db, net, "up", "in_treatment", slot_id=net.slots["outpatient_later"])
    db.commit()
    desk = _as(app, "r_desk")
    page = desk.get(f"/referrals/{r.id}").text
    refused = _post(desk, f"/referrals/{r.id}/return", page, {"note": ""})
    assert refused.status_code == 422
    assert 'data-field="note"' in refused.text
    assert 'aria-invalid="true"' in refused.text

    sender = _as(app, "r_sender")
    pid = net.patient.id
    form = sender.get(f"/patients/{pid}/referrals/new").text
    base = {"kind": "up", "reason": "x", "target_institution_id": str(net.county.id)}
    bad = _post(
        sender,
        f"/patients/{pid}/referrals/new",
        form,
        {**base, "target_institution_id": str(net.other.id)},
    )
    assert bad.status_code == 422
    assert 'data-field="target_institution_id"' in bad.text
    exam = _post(sender, f"/patients/{pid}/referrals/new", form, {**base, "kind": "exam"})
    assert exam.status_code == 422
    assert 'data-field="exam_type"' in exam.text
    wrong = _post(
        sender,
        f"/patients/{pid}/referrals/new",
        form,
        {**base, "kind": "exam", "exam_type": "mri", "slot_id": str(net.slots["ct"])},
    )
    assert wrong.status_code == 422
    assert 'data-field="slot_id"' in wrong.text
    assert db.execute(select(Referral).where(Referral.kind == "exam")).first() is None

    clinician = _as(app, "r_clinician")
    url = f"/referrals/{up.id}/down/new"
    form = clinician.get(url).text
    down = {
        "reason": "回基层",
        "discharge.diagnoses[0].text": "心绞痛",
        "discharge.follow_up_plan": "每月随访",
        "rehab_plan": "规律运动",
        "follow_ups[2].due_date": "2026-01-01",
        "follow_ups[2].purpose": "复查",
    }
    past = _post(clinician, url, form, down)
    assert past.status_code == 422
    assert 'data-field="follow_ups[2].due_date"' in past.text
    assert 'name="follow_ups[2].due_date" value="2026-01-01" aria-invalid="true"' in past.text
    no_plan = _post(clinician, url, form, {**down, "discharge.follow_up_plan": ""})
    assert 'data-field="discharge.follow_up_plan"' in no_plan.text
    code = _post(clinician, url, form, {**down, "discharge.diagnoses[1].code": "ZZZ"})
    assert code.status_code == 422
    assert 'data-field="discharge.diagnoses[1].' in code.text
    db.expire_all()
    assert db.execute(select(Referral).where(Referral.kind == "down")).first() is None
    assert db.get(Referral, up.id).state == "in_treatment"  # type: ignore[union-attr]


def test_an_unrelated_institution_gets_404(db: Session, app: FastAPI, net: Net) -> None:
    r = reach(db, net, "up", "in_treatment")
    db.commit()
    url = f"/referrals/{r.id}"
    for who in ("r_otherdoc", "r_otherdesk"):
        client = _as(app, who)
        for path in (url, f"{url}/chain", f"{url}/down/new"):
            assert client.get(path).status_code == 404, (who, path)
        page = client.get("/referrals").text
        assert _post(client, f"{url}/complete", page, {}).status_code == 404
        assert f'href="{url}"' not in client.get("/referrals?view=inbox").text
    # The sender sees it but takes no part in its treatment: 403 for the down form.
    assert _as(app, "r_sender").get(f"{url}/down/new").status_code == 403


def test_the_chart_lists_the_patients_referrals(db: Session, app: FastAPI, net: Net) -> None:
    up = reach(db, net, "up", "in_treatment")
    back = create_down(db, net, up.id)
    db.commit()
    chart = _as(app, "r_sender").get(f"/patients/{net.patient.id}/chart")
    assert chart.status_code == 200
    text = chart.text
    section = text.split('id="referrals"', 1)[1].split("</section>", 1)[0]
    for r in (up, back):
        assert f'href="/referrals/{r.id}"' in section
        assert f'href="/referrals/{r.id}/chain"' in section
    assert "上转" in section
    assert "下转" in section
    assert "待接收" in section


def test_the_desk_books_a_place_when_it_accepts(db: Session, app: FastAPI, net: Net) -> None:
    r = create(db, net, slot_id=None)
    db.commit()
    url = f"/referrals/{r.id}"
    sender = _as(app, "r_sender").get(url).text
    assert "尚未预约号源" in sender
    desk = _as(app, "r_desk")
    page = desk.get(url).text
    later = net.slots["outpatient_later"]
    assert f'name="slot_id" value="{later}"' in page
    assert f'name="slot_id" value="{net.slots["ct"]}"' not in page  # an exam slot
    refused = _post(desk, f"{url}/accept", page, {"slot_id": ""})
    assert refused.status_code == 409
    assert "接受转诊前须先预约号源" in refused.text
    _act(desk, url, "accept", {"slot_id": str(later)})
    booking = db.execute(select(SlotBooking)).scalar_one()
    assert (booking.slot_id, booking.referral_id) == (later, r.id)
    assert "2026-11-22 09:00" in desk.get(url).text


def test_a_referral_from_a_consultation_report(db: Session, app: FastAPI, net: Net) -> None:
    cardiologist = db.get(Practitioner, net.extra["practitioners"]["cardiologist"])
    assert cardiologist is not None
    cardiologist.is_expert = True
    data = ConsultationIn(
        patient_id=net.patient.id,
        purpose="明确诊断",
        clinical_summary="胸痛一周",
        questions="是否转诊？",
        specialty="cardiology",
        target_institution_id=net.county.id,
        shared_items=[{"kind": "diagnosis", "id": net.shared.id}],  # type: ignore[list-item]
        submit=True,
    )
    settings = ConsultationSettings()
    c = consultations.create_consultation(db, net.p["sender"], data, settings).consultation
    accept = ConsultationAccept(experts=[cardiologist.id], lead=cardiologist.id)
    consultations.accept(db, net.p["desk"], c.id, accept)
    consultations.start(db, net.p["clinician"], c.id)
    consultations.write_opinion(db, net.p["clinician"], c.id, OpinionIn(text="需介入"))
    report = ReportIn(
        impression="不稳定型心绞痛",
        recommendations="转上级医院心内科",
        referral_recommended=True,
        referral_institution_id=net.county.id,
    )
    consultations.sign_report(db, net.p["clinician"], c.id, report)
    db.commit()
    sender = _as(app, "r_sender")
    link = f"/patients/{net.patient.id}/referrals/new?consultation_id={c.id}"
    assert f'href="{link}"' in sender.get(f"/consultations/{c.id}").text
    assert f'href="{link}"' not in _as(app, "r_clinician").get(f"/consultations/{c.id}").text
    form = sender.get(link)
    assert form.status_code == 200, form.text
    text = form.text
    assert f'name="consultation_id" value="{c.id}"' in text
    assert "转上级医院心内科" in text
    assert "胸痛一周" in text
    assert f'<option value="{net.county.id}" selected' in text
    assert f'value="diagnosis:{net.shared.id}" checked' in text
    fields = {
        "request_key": _key(text),
        "consultation_id": str(c.id),
        "kind": "up",
        "target_institution_id": str(net.county.id),
        "reason": "转上级医院心内科",
        "summary": "胸痛一周",
    }
    sent = _post(sender, f"/patients/{net.patient.id}/referrals/new", text, fields)
    assert sent.status_code == 303, sent.text
    chain = sender.get(f"{sent.headers['location']}/chain").text
    assert f'href="/consultations/{c.id}"' in chain
    assert chain.index('data-kind="consultation"') < chain.index('data-kind="up"')

"""The printable report: a signed version as a PDF with the institutions' letterhead,
earlier versions still printable, who may print, hostile text kept as text, nothing
fetched, the user's language."""

from __future__ import annotations

import io
import json
import re

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import ImageFile
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session
from weasyprint import HTML

from tests.consultation.conftest import Net, accept, audits, create, opinions, reach
from tests.helpers import page_login
from tests.patients.conftest import RESIDENT_ID_MALE
from xietong.consultation import service as svc
from xietong.consultation.models import Consultation, ConsultationReport
from xietong.consultation.schemas import AmendIn, ReportIn
from xietong.core.pii import PiiProtector
from xietong.patients.registration import register_patient
from xietong.patients.schemas import PatientIn
from xietong.web.html_pdf import NoFetching
from xietong.web.report_pdf import (
    counter_content,
    render_report_html,
    render_report_pdf,
)

API = "/api/v1/consultations"
MRN = "MZ-2026-0042"
HOSTILE = '<script>alert("x")</script><img src="http://127.0.0.1:9/track.png">'


def _text(pdf: bytes) -> str:
    reader = PdfReader(io.BytesIO(pdf))
    return "\n".join(page.extract_text() for page in reader.pages)


def _fonts(pdf: bytes) -> set[str]:
    reader = PdfReader(io.BytesIO(pdf))
    found: set[str] = set()
    for page in reader.pages:
        resources = page["/Resources"].get_object()
        for font in resources.get("/Font", {}).values():
            found.add(str(font.get_object()["/BaseFont"]))
    return found


def _flat(text: str) -> str:
    """Text without the line breaks and spaces the layout put in (long values wrap)."""
    return re.sub(r"\s+", "", text)


def _page_client(app: FastAPI, username: str, language: str = "zh-CN") -> TestClient:
    client = TestClient(app, headers={"Accept-Language": language})
    page_login(client, username)
    return client


def _give_record_number(db: Session, net: Net) -> None:
    """The village clinic files the patient under its own record number."""
    pii = PiiProtector("test-pii-key-0123456789abcdef0123456789")
    data = PatientIn.model_validate(
        {
            "name": net.patient.name,
            "sex": net.patient.sex,
            "birth_date": net.patient.birth_date,
            "resident_id": RESIDENT_ID_MALE,
            "identifiers": [{"kind": "mrn", "value": MRN}],
        }
    )
    assert register_patient(db, net.p["applicant"], pii, data).patient.id == net.patient.id


def test_the_signed_report_as_a_pdf(db: Session, app: FastAPI, net: Net) -> None:
    _give_record_number(db, net)
    c = reach(db, net, "report_signed")
    db.commit()
    report = db.execute(select(ConsultationReport)).scalar_one()

    r = _page_client(app, "c_applicant").get(f"/consultations/{c.id}/report.pdf")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/pdf"
    assert r.headers["content-disposition"] == f'inline; filename="consultation-{c.id}-v1.pdf"'
    assert r.headers["cache-control"] == "no-store"
    assert r.content.startswith(b"%PDF-")
    text = _text(r.content)
    flat = _flat(text)
    for expected in (
        "远程会诊报告",
        "测试县医院",  # the centre issues it
        "申请机构：测试村卫生室",
        net.patient.name,
        "男",
        "1980-01-01",
        MRN,
        "明确诊断",
        "反复胸痛2周",
        "是否需要冠脉造影？",
        "心血管内科",
        "普通",
        "张主任",
        "李主任",
        "主持专家",
        "expert_a意见",
        "expert_b意见",
        "稳定型心绞痛",
        "冠脉CTA",
        report.content_sha256,
        "2026-11-2012:00",  # signed at noon, China time (frozen clock)
    ):
        assert _flat(expected) in flat, expected
    pages = len(PdfReader(io.BytesIO(r.content)).pages)
    for n in range(1, pages + 1):
        assert f"第{n}页/共{pages}页" in flat
    assert "修订" not in text  # version 1 amends nothing
    fonts = _fonts(r.content)
    assert any("Noto-Serif-CJK-SC" in f for f in fonts), fonts
    assert any("Noto-Sans-CJK-SC" in f for f in fonts), fonts

    printed = audits(db, "consultation.report_pdf", object_id=str(c.id))
    assert [(a.outcome, json.loads(a.detail)["version"]) for a in printed] == [("success", 1)]

    # The page lists a print link per version.
    page = _page_client(app, "c_expert_b").get(f"/consultations/{c.id}")
    assert f'href="/consultations/{c.id}/report.pdf?version=1"' in page.text
    assert "打印（PDF）" in page.text


def test_earlier_versions_stay_printable(client: TestClient, db: Session, net: Net) -> None:
    c = reach(db, net, "report_signed")
    amend = AmendIn(impression="稳定型心绞痛", recommendations="冠脉造影", reason="补充造影建议")
    svc.amend_report(db, net.p["expert_a"], c.id, amend)
    db.commit()
    hashes = {r.version: r.content_sha256 for r in db.execute(select(ConsultationReport)).scalars()}

    first = client.get(f"{API}/{c.id}/reports/1/pdf", headers=net.tokens["coordinator"])
    assert first.status_code == 200, first.text
    assert first.headers["content-disposition"].endswith(f'"consultation-{c.id}-v1.pdf"')
    flat = _flat(_text(first.content))
    assert "冠脉CTA" in flat
    assert hashes[1] in flat
    assert "已由第2版修订" in flat
    assert "补充造影建议" not in flat

    second = client.get(f"{API}/{c.id}/reports/2/pdf", headers=net.tokens["applicant"])
    assert second.status_code == 200, second.text
    flat = _flat(_text(second.content))
    assert "冠脉造影" in flat
    assert hashes[2] in flat
    assert "本版修订第1版。" in flat
    assert "修订原因：补充造影建议" in flat

    # Without a version, the page prints the latest.
    assert second.headers["content-disposition"].endswith(f'"consultation-{c.id}-v2.pdf"')
    printed = audits(db, "consultation.report_pdf")
    assert [json.loads(a.detail)["version"] for a in printed] == [1, 2]


def test_nothing_to_print_before_signing(
    client: TestClient, db: Session, app: FastAPI, net: Net
) -> None:
    c = reach(db, net, "in_progress")
    db.commit()
    r = client.get(f"{API}/{c.id}/reports/1/pdf", headers=net.tokens["applicant"])
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == "no_report"
    assert r.json()["error"]["field"] == "version"
    page = _page_client(app, "c_applicant").get(f"/consultations/{c.id}/report.pdf")
    assert page.status_code == 409


def test_an_unknown_version_is_404(client: TestClient, db: Session, app: FastAPI, net: Net) -> None:
    c = reach(db, net, "report_signed")
    db.commit()
    r = client.get(f"{API}/{c.id}/reports/2/pdf", headers=net.tokens["applicant"])
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "report_version_not_found"
    assert r.json()["error"]["field"] == "version"
    page = _page_client(app, "c_applicant").get(f"/consultations/{c.id}/report.pdf?version=7")
    assert page.status_code == 404
    bad = client.get(f"{API}/{c.id}/reports/0/pdf", headers=net.tokens["applicant"])
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "version"


@pytest.mark.parametrize("who", ["other_doctor", "other_coordinator", "other_expert"])
def test_an_unrelated_institution_gets_404(
    client: TestClient, db: Session, net: Net, who: str
) -> None:
    c = reach(db, net, "report_signed")
    db.commit()
    r = client.get(f"{API}/{c.id}/reports/1/pdf", headers=net.tokens[who])
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "consultation_not_found"
    denied = audits(db, "consultation.report_pdf", outcome="denied", object_id=str(c.id))
    assert len(denied) == 1
    assert denied[0].actor_user_id == net.p[who].user_id
    assert not audits(db, "consultation.report_pdf", outcome="success")


def test_hostile_text_stays_text_and_nothing_is_fetched(db: Session, net: Net) -> None:
    c = create(db, net, submit=True, clinical_summary=HOSTILE, purpose=HOSTILE)
    accept(db, net, c)
    svc.start(db, net.p["expert_b"], c.id)
    opinions(db, net, c)
    svc.sign_report(
        db, net.p["expert_a"], c.id, ReportIn(impression=HOSTILE, recommendations="<b>x</b>")
    )
    report = svc.printable_report(db, net.p["applicant"], c.id)

    html = render_report_html(report, "zh_CN")
    assert "<script" not in html
    assert "<img" not in html
    assert "<b>" not in html
    assert "&lt;script&gt;" in html

    fetcher = NoFetching()
    pdf = render_report_pdf(report, "zh_CN", fetcher=fetcher)
    assert fetcher.refused == []
    assert 'alert("x")' in _text(pdf)  # shown as the text it is
    assert "127.0.0.1:9/track.png" in _flat(_text(pdf))


def test_the_fetcher_refuses_everything_but_data_uris() -> None:
    pixel = (
        "data:image/png;base64,iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR4"
        "nGNgYGBgAAAABQABpfZFQAAAAABJRU5ErkJggg=="
    )
    markup = (
        '<img src="http://127.0.0.1:9/a.png"><img src="file:///etc/hostname">'
        f'<link rel="stylesheet" href="https://127.0.0.1:9/s.css"><img src="{pixel}">'
    )
    fetcher = NoFetching()
    HTML(string=markup, url_fetcher=fetcher).write_pdf()
    assert sorted(fetcher.refused) == [
        "file:///etc/hostname",
        "http://127.0.0.1:9/a.png",
        "https://127.0.0.1:9/s.css",
    ]


def test_english_locale(db: Session, app: FastAPI, net: Net) -> None:
    c = reach(db, net, "report_signed")
    db.commit()
    r = _page_client(app, "c_coord", "en").get(f"/consultations/{c.id}/report.pdf")
    assert r.status_code == 200, r.text
    text = _text(r.content)
    assert "Remote consultation report" in text
    assert "远程会诊报告" not in text
    assert "Requesting institution: 测试村卫生室" in text
    pages = len(PdfReader(io.BytesIO(r.content)).pages)
    assert f"Page {pages} of {pages}" in text
    assert "Cardiology" in text


def test_a_draft_is_nobody_elses(client: TestClient, db: Session, net: Net) -> None:
    c = create(db, net)
    db.commit()
    r = client.get(f"{API}/{c.id}/reports/1/pdf", headers=net.tokens["coordinator"])
    assert r.status_code == 404
    assert db.get(Consultation, c.id) is not None


def test_css_strings_cannot_leave_the_style_element() -> None:
    content = counter_content('第 {page} 页 "</style><script>" \\ {pages}')
    assert content == (
        '"第 " counter(page) " 页 \\22 \\3C /style\\3E \\3C script\\3E \\22  \\5C  " counter(pages)'
    )
    assert "<" not in content
    assert content.count('"') == 4  # the two strings' own quotes


def test_weasyprint_leaves_the_upload_vetting_strict(db: Session, net: Net) -> None:
    """weasyprint switches Pillow's LOAD_TRUNCATED_IMAGES on when imported; html_pdf puts
    it back, so truncated photos are still refused (core/uploads.py)."""
    reach(db, net, "report_signed")
    report = svc.printable_report(
        db, net.p["applicant"], db.execute(select(Consultation.id)).scalar_one()
    )
    render_report_pdf(report, "zh_CN")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False

"""The document pages: upload from the form (as a phone browser posts it), view, refuse."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.helpers import csrf_from, page_login
from tests.records.test_documents import Setup, pdf_bytes, phone_photo
from xietong.records.document_models import ClinicalDocument


def _form(s: Setup) -> str:
    page_login(s.client, s.doctor.username)
    page = s.client.get(f"/patients/{s.patient.id}/documents/new")
    assert page.status_code == 200
    return csrf_from(page.text)


def test_upload_from_the_form_then_view(db: Session, app: FastAPI, client: TestClient) -> None:
    s = Setup(db, app, client)
    csrf = _form(s)
    response = client.post(
        f"/patients/{s.patient.id}/documents/new",
        data={
            "csrf_token": csrf,
            "doc_type": "lab_report",
            "title": "血常规",
            "document_date": "2026-11-20",
            "capture": "analogue",
            "client_request_id": "form-1",
        },
        files=[("files", ("IMG_0001.JPG", phone_photo(), "image/jpeg"))],
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    viewer = client.get(response.headers["location"], headers={"Accept-Language": "zh-CN"})
    assert viewer.status_code == 200
    assert "血常规" in viewer.text
    assert "/pages/1" in viewer.text
    assert "化验报告" in viewer.text or "检验报告" in viewer.text


def test_a_bad_file_re_renders_the_form_naming_it(
    db: Session, app: FastAPI, client: TestClient
) -> None:
    s = Setup(db, app, client)
    csrf = _form(s)
    response = client.post(
        f"/patients/{s.patient.id}/documents/new",
        data={"csrf_token": csrf, "doc_type": "other", "title": "x", "document_date": "2026-11-20"},
        files=[("files", ("evil.jpg", b"<svg onload=alert(1)>", "image/jpeg"))],
    )
    assert response.status_code == 415
    assert 'data-field="files[0]"' in response.text
    assert db.execute(select(func.count()).select_from(ClinicalDocument)).scalar_one() == 0


def test_another_institution_cannot_open_the_form_or_the_viewer(
    db: Session, app: FastAPI, client: TestClient
) -> None:
    s = Setup(db, app, client)
    doc = s.upload([("p.jpg", phone_photo(), "image/jpeg")]).json()
    page_login(client, s.stranger.username)
    assert client.get(f"/patients/{s.patient.id}/documents/new").status_code == 404
    assert client.get(f"/documents/{doc['id']}").status_code == 404


def test_the_viewer_shows_photos_inline_and_links_pdfs(
    db: Session, app: FastAPI, client: TestClient
) -> None:
    s = Setup(db, app, client)
    doc = s.upload(
        [("p.jpg", phone_photo(), "image/jpeg"), ("scan.pdf", pdf_bytes(3), "application/pdf")]
    ).json()
    page_login(client, s.doctor.username)
    viewer = client.get(f"/documents/{doc['id']}", headers={"Accept-Language": "en"})
    assert viewer.status_code == 200
    assert f'<img src="/api/v1/documents/{doc["id"]}/pages/1"' in viewer.text
    assert "Open the PDF (3 pages)" in viewer.text
    assert viewer.headers["cache-control"] == "no-store"

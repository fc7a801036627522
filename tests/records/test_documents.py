"""Documents over HTTP: phone photos and PDFs in, vetted pages and thumbnails out, access by
institution or grant, every read audited, bad files refused with nothing written."""

from __future__ import annotations

import io
from datetime import date, timedelta

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from PIL import Image
from pypdf import PdfWriter
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.helpers import token_for
from tests.patients.conftest import RESIDENT_ID_MALE, principal_of
from xietong.access.models import AuditEvent
from xietong.core.clock import now
from xietong.identity.roles import Role
from xietong.patients.grants import create_grant
from xietong.patients.registration import register_patient
from xietong.patients.schemas import GrantIn, PatientIn
from xietong.records.document_models import ClinicalDocument, DocumentPage


def phone_photo(width: int = 400, height: int = 300) -> bytes:
    """A JPEG as a phone camera writes it: stored sideways with EXIF orientation 6 (rotate
    90° clockwise to show) and a GPS position."""
    image = Image.new("RGB", (width, height), (200, 30, 30))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x8825] = {1: "N", 2: (34.0, 45.0, 0.0)}
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif)
    return out.getvalue()


def pdf_bytes(pages: int = 2) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


class Setup:
    def __init__(self, db: Session, app: FastAPI, client: TestClient) -> None:
        self.db = db
        self.village = factories.institution(db, level="village")
        self.county = factories.institution(db, level="county")
        self.doctor = factories.user(db, Role.APPLICANT_DOCTOR, institution=self.village)
        self.stranger = factories.user(db, Role.EXPERT, institution=self.county)
        pii = app.state.services.pii
        self.patient = register_patient(
            db,
            principal_of(self.doctor),
            pii,
            PatientIn(
                name="张建国", sex="1", birth_date=date(1980, 1, 1), resident_id=RESIDENT_ID_MALE
            ),
        ).patient
        db.commit()
        self.client = client
        self.auth = token_for(client, self.doctor.username)
        self.stranger_auth = token_for(client, self.stranger.username)

    def upload(
        self,
        files: list[tuple[str, bytes, str]],
        auth: dict[str, str] | None = None,
        **fields: str,
    ) -> object:
        data = {"doc_type": "discharge_summary", "title": "出院小结", "document_date": "2026-11-20"}
        data.update(fields)
        return self.client.post(
            f"/api/v1/patients/{self.patient.id}/documents",
            data=data,
            files=[("files", f) for f in files],
            headers=auth or self.auth,
        )


@pytest.fixture
def s(db: Session, app: FastAPI, client: TestClient) -> Setup:
    return Setup(db, app, client)


def _documents(db: Session) -> int:
    return db.execute(select(func.count()).select_from(ClinicalDocument)).scalar_one()


def test_a_phone_photo_is_stored_upright_without_exif(s: Setup) -> None:
    response = s.upload([("photo.jpg", phone_photo(), "image/jpeg")])
    assert response.status_code == 201, response.text
    body = response.json()
    page = body["pages"][0]
    assert (page["width"], page["height"]) == (300, 400)  # turned upright
    stored = s.client.get(page["url"], headers=s.auth)
    assert stored.status_code == 200
    assert stored.headers["content-type"] == "image/jpeg"
    assert stored.headers["x-content-type-options"] == "nosniff"
    image = Image.open(io.BytesIO(stored.content))
    assert image.size == (300, 400)
    assert not image.getexif()
    thumb = s.client.get(page["thumbnail_url"], headers=s.auth)
    assert thumb.status_code == 200
    assert max(Image.open(io.BytesIO(thumb.content)).size) <= 320


def test_several_files_make_several_pages_and_pages_can_be_added(s: Setup) -> None:
    response = s.upload(
        [("p1.jpg", phone_photo(), "image/jpeg"), ("scan.pdf", pdf_bytes(3), "application/pdf")]
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["page_count"] == 2
    assert [p["media_type"] for p in body["pages"]] == ["image/jpeg", "application/pdf"]
    assert body["pages"][1]["pdf_pages"] == 3
    more = s.client.post(
        f"/api/v1/documents/{body['id']}/pages",
        files=[("files", ("p3.png", _png(), "image/png"))],
        headers=s.auth,
    )
    assert more.status_code == 200, more.text
    assert [p["page_no"] for p in more.json()["pages"]] == [1, 2, 3]


def _png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (50, 40), (0, 0, 255)).save(out, "PNG")
    return out.getvalue()


@pytest.mark.parametrize(
    ("upload", "status", "code"),
    [
        (("x.jpg", b"<html><script>alert(1)</script></html>", "image/jpeg"), 415, None),
        (("x.pdf", b"%PDX not a pdf at all" * 10, "application/pdf"), 415, None),
        (("x.jpg", phone_photo()[:600], "image/jpeg"), 422, "image_corrupt"),
        (("x.jpg", b"", "image/jpeg"), 422, "file_empty"),
    ],
)
def test_bad_files_are_refused_naming_the_file_and_nothing_is_written(
    s: Setup, upload: tuple[str, bytes, str], status: int, code: str | None
) -> None:
    response = s.upload([("good.jpg", phone_photo(), "image/jpeg"), upload])
    assert response.status_code == status, response.text
    error = response.json()["error"]
    assert error["field"] == "files[1]"
    if code:
        assert error["code"] == code
    assert _documents(s.db) == 0
    assert s.db.execute(select(func.count()).select_from(DocumentPage)).scalar_one() == 0


def test_a_decompression_bomb_is_refused(s: Setup) -> None:
    bomb = io.BytesIO()
    Image.new("1", (20_000, 20_000)).save(bomb, "PNG")  # 400 Mpx, a few kB
    response = s.upload([("bomb.png", bomb.getvalue(), "image/png")])
    assert response.status_code in (413, 422), response.text
    assert response.json()["error"]["code"] == "image_too_large"
    assert _documents(s.db) == 0


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"document_date": (now().date() + timedelta(days=2)).isoformat()}, "document_date"),
        ({"document_date": "yesterday"}, "document_date"),
        ({"doc_type": "selfie"}, "doc_type"),
        ({"title": "a\x00b"}, "title"),
        ({"title": "x" * 5000}, "title"),
        ({"encounter_id": "99999999999"}, "encounter_id"),
    ],
)
def test_bad_fields_name_the_field(s: Setup, fields: dict[str, str], field: str) -> None:
    response = s.upload([("p.jpg", phone_photo(), "image/jpeg")], **fields)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field
    assert _documents(s.db) == 0


def test_no_files_and_a_huge_body_are_refused(s: Setup) -> None:
    none = s.client.post(
        f"/api/v1/patients/{s.patient.id}/documents",
        data={"doc_type": "other", "title": "t", "document_date": "2026-11-20"},
        headers=s.auth,
    )
    assert none.status_code == 422
    assert none.json()["error"]["field"] == "files"
    huge = s.upload([("big.jpg", b"\xff\xd8\xff" + b"0" * (65 * 1024 * 1024), "image/jpeg")])
    assert huge.status_code == 413


def test_a_retry_with_the_same_client_request_id_makes_one_document(s: Setup) -> None:
    first = s.upload([("p.jpg", phone_photo(), "image/jpeg")], client_request_id="cam-1")
    again = s.upload([("p.jpg", phone_photo(), "image/jpeg")], client_request_id="cam-1")
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert _documents(s.db) == 1


def test_another_institution_gets_404_for_everything_until_a_grant(s: Setup) -> None:
    doc = s.upload([("p.jpg", phone_photo(), "image/jpeg")]).json()
    other = s.upload([("q.jpg", phone_photo(), "image/jpeg")]).json()
    urls = [
        f"/api/v1/documents/{doc['id']}",
        doc["pages"][0]["url"],
        doc["pages"][0]["thumbnail_url"],
        f"/api/v1/patients/{s.patient.id}/documents",
    ]
    for url in urls:
        response = s.client.get(url, headers=s.stranger_auth)
        assert response.status_code == 404, url
    absent = s.client.get("/api/v1/documents/999999", headers=s.stranger_auth)
    assert absent.status_code == 404
    assert (
        absent.json()["error"]["code"]
        == s.client.get(urls[0], headers=s.stranger_auth).json()["error"]["code"]
    )
    marked = s.client.post(
        f"/api/v1/documents/{doc['id']}/entered-in-error",
        json={"reason": "wrong patient"},
        headers=s.stranger_auth,
    )
    assert marked.status_code == 404
    denials = s.db.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(AuditEvent.outcome == "denied", AuditEvent.actor_username == s.stranger.username)
    ).scalar_one()
    assert denials >= 6

    create_grant(
        s.db,
        principal_of(s.doctor),
        GrantIn(
            patient_id=s.patient.id,
            grantee_institution_id=s.county.id,
            scope="items",
            items=[{"kind": "document", "id": doc["id"]}],  # type: ignore[list-item]
            purpose="remote consultation",
            expires_at=now() + timedelta(days=1),
        ),
    )
    s.db.commit()
    assert s.client.get(urls[0], headers=s.stranger_auth).status_code == 200
    assert s.client.get(urls[1], headers=s.stranger_auth).status_code == 200
    listed = s.client.get(urls[3], headers=s.stranger_auth).json()
    assert [d["id"] for d in listed] == [doc["id"]]
    hidden = s.client.get(f"/api/v1/documents/{other['id']}", headers=s.stranger_auth)
    assert hidden.status_code == 404


def test_every_read_is_audited(s: Setup) -> None:
    doc = s.upload([("p.jpg", phone_photo(), "image/jpeg")]).json()
    before = s.db.execute(select(func.count()).select_from(AuditEvent)).scalar_one()
    s.client.get(f"/api/v1/documents/{doc['id']}", headers=s.auth)
    s.client.get(doc["pages"][0]["url"], headers=s.auth)
    s.client.get(doc["pages"][0]["thumbnail_url"], headers=s.auth)
    actions = (
        s.db.execute(
            select(AuditEvent.action).where(AuditEvent.seq > before).order_by(AuditEvent.seq)
        )
        .scalars()
        .all()
    )
    assert [a for a in actions if a.startswith("document.")] == [
        "document.read",
        "document.page",
        "document.thumbnail",
    ]


def test_entered_in_error_keeps_the_document_readable(s: Setup) -> None:
    doc = s.upload([("p.jpg", phone_photo(), "image/jpeg")]).json()
    marked = s.client.post(
        f"/api/v1/documents/{doc['id']}/entered-in-error",
        json={"reason": "wrong patient"},
        headers=s.auth,
    )
    assert marked.status_code == 200
    assert marked.json()["status"] == "entered_in_error"
    again = s.client.get(f"/api/v1/documents/{doc['id']}", headers=s.auth).json()
    assert again["error_reason"] == "wrong patient"
    refused = s.client.post(
        f"/api/v1/documents/{doc['id']}/pages",
        files=[("files", ("p.png", _png(), "image/png"))],
        headers=s.auth,
    )
    assert refused.status_code == 409


def test_documents_are_on_the_timeline_with_their_thumbnail(s: Setup) -> None:
    doc = s.upload([("p.jpg", phone_photo(), "image/jpeg")], document_date="2026-11-18").json()
    timeline = s.client.get(
        f"/api/v1/patients/{s.patient.id}/timeline",
        params={"kind": "document"},
        headers={**s.auth, "Accept-Language": "zh-CN"},
    ).json()
    assert timeline["total"] == 1
    item = timeline["items"][0]
    assert (item["kind"], item["id"], item["date"]) == ("document", doc["id"], "2026-11-18")
    assert item["label"] == "出院小结"
    assert item["thumbnail_url"] == doc["thumbnail_url"]
    hidden = s.client.get(f"/api/v1/patients/{s.patient.id}/timeline", headers=s.stranger_auth)
    assert hidden.status_code == 404

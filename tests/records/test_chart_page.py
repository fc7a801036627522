"""The chart page: one timeline of documents and entries, abnormal values marked, filters,
and nothing of another institution's."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.helpers import page_login
from tests.records.conftest import VALID
from tests.records.test_documents import Setup, phone_photo
from xietong.records.kinds import RecordKind


def _chart(s: Setup, **params: str | list[str]) -> str:
    response = s.client.get(f"/patients/{s.patient.id}/chart", params=params)
    assert response.status_code == 200, response.text
    return response.text


def _setup(db: Session, app: FastAPI, client: TestClient) -> tuple[Setup, int, int]:
    s = Setup(db, app, client)
    doc = s.upload([("p.jpg", phone_photo(), "image/jpeg")], title="出院小结（县医院）").json()
    lab = client.post(
        f"/api/v1/patients/{s.patient.id}/labs",
        json=VALID[RecordKind.LAB_RESULT],
        headers=s.auth,
    )
    assert lab.status_code == 201, lab.text
    page_login(client, s.doctor.username)
    return s, doc["id"], lab.json()["id"]


def test_the_timeline_shows_documents_with_thumbnails_and_flags_abnormal_labs(
    db: Session, app: FastAPI, client: TestClient
) -> None:
    s, doc_id, lab_id = _setup(db, app, client)
    html = _chart(s)
    assert "出院小结（县医院）" in html
    assert f'src="/api/v1/documents/{doc_id}/pages/1/thumbnail"' in html
    assert f'href="/documents/{doc_id}"' in html
    assert f'data-kind="lab_result" data-id="{lab_id}"' in html
    assert "空腹血糖" in html
    assert "flag-H" in html  # 7.8 above 3.9–6.1
    assert "4101**********" in html  # the header is masked
    assert "41010219800101123X" not in html


def test_filters_narrow_the_timeline(db: Session, app: FastAPI, client: TestClient) -> None:
    s, doc_id, _lab_id = _setup(db, app, client)
    only_docs = _chart(s, kind="document")
    assert f'data-id="{doc_id}"' in only_docs
    assert 'data-kind="lab_result"' not in only_docs
    abnormal = _chart(s, abnormal_only="1")
    assert 'data-kind="lab_result"' in abnormal
    assert 'data-kind="document"' not in abnormal
    before = _chart(s, date_to="2026-09-30")
    assert "timeline-entry" not in before


def test_bad_filters_name_the_field(db: Session, app: FastAPI, client: TestClient) -> None:
    s, _doc, _lab = _setup(db, app, client)
    for params, field in (
        ({"date_from": "soon"}, "date_from"),
        ({"kind": "selfie"}, "kind"),
        ({"institution_id": "99999999999"}, "institution_id"),
        ({"date_from": "2026-10-02", "date_to": "2026-10-01"}, "date_to"),
    ):
        response = client.get(f"/patients/{s.patient.id}/chart", params=params)
        assert response.status_code == 422, params
        assert f'data-field="{field}"' in response.text


def test_another_institution_gets_404(db: Session, app: FastAPI, client: TestClient) -> None:
    s, _doc, _lab = _setup(db, app, client)
    page_login(client, s.stranger.username)
    assert client.get(f"/patients/{s.patient.id}/chart").status_code == 404

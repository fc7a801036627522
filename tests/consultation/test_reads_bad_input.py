"""Bad input to the imaging read API: each refused with a 4xx naming the field and nothing
written; hostile text is stored as text and shown escaped."""

from __future__ import annotations

from io import BytesIO
from typing import Any

import pytest
from fastapi.testclient import TestClient
from pypdf import PdfReader
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.consultation.conftest import counts
from tests.consultation.reads_world import REPORT, Reads, reach_read
from tests.records.conftest import add
from xietong.consultation.models import ConsultationReadReport
from xietong.records.kinds import RecordKind

API = "/api/v1/reads"
HOSTILE = '<script>alert("x")</script> 肺 & <b>结节</b>'


def _reports(db: Session) -> int:
    return db.execute(select(func.count()).select_from(ConsultationReadReport)).scalar_one()


@pytest.mark.parametrize(
    ("case", "changes", "field"),
    [
        ("no study shared", {"shared_items": "diagnosis"}, "shared_items"),
        ("nothing shared", {"shared_items": []}, "shared_items"),
        ("another institution's study", {"shared_items": "other_study"}, "shared_items[0]"),
        ("a study that does not exist", {"shared_items": "missing"}, "shared_items[0]"),
        ("no radiology at the target", {"target_institution_id": "plain"}, "target_institution_id"),
        ("unknown urgency", {"urgency": "now"}, "urgency"),
        ("control characters", {"questions": "a\x00b"}, "questions"),
        ("oversized summary", {"clinical_summary": "x" * 20_001}, "clinical_summary"),
        ("unknown field", {"specialty": "cardiology"}, "specialty"),
    ],
)
def test_create(
    client: TestClient, db: Session, rw: Reads, case: str, changes: dict[str, Any], field: str
) -> None:
    assert rw.study.patient_id is not None
    diagnosis = add(db, rw.p["applicant"], RecordKind.DIAGNOSIS, rw.study.patient_id)
    db.commit()
    items = {
        "diagnosis": [{"kind": "diagnosis", "id": diagnosis.id}],
        "other_study": [{"kind": "imaging_study", "id": rw.other_study.id}],
        "missing": [{"kind": "imaging_study", "id": 999_999}],
    }
    if isinstance(changes.get("shared_items"), str):
        changes = {**changes, "shared_items": items[changes["shared_items"]]}
    if changes.get("target_institution_id") == "plain":
        plain = factories.institution(db, name="无影像科医院", level="city", region_code="410102")
        factories.link(db, rw.n.village, plain)
        db.commit()
        changes = {**changes, "target_institution_id": plain.id}
    before = counts(db)
    r = client.post(
        API, json={**rw.body(**changes), "submit": True}, headers=rw.tokens["applicant"]
    )
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert counts(db) == before


def _report(**changes: Any) -> dict[str, Any]:
    return {**REPORT.model_dump(), **changes}


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_report(template_key="ct_elbow"), "template_key"),
        (_report(findings="x" * 20_001), "findings"),
        (_report(impression=""), "impression"),
        (_report(impression="   "), "impression"),
        ({k: v for k, v in _report().items() if k != "impression"}, "impression"),
        (_report(findings="a\x00b"), "findings"),
        (_report(technique="x" * 10_001), "technique"),
        (_report(critical_finding="maybe"), "critical_finding"),
        (_report(signed_by="someone"), "signed_by"),
    ],
)
def test_preliminary(
    client: TestClient, db: Session, rw: Reads, body: dict[str, Any], field: str
) -> None:
    rid = reach_read(db, rw, "in_progress").id
    db.commit()
    r = client.post(f"{API}/{rid}/preliminary", json=body, headers=rw.tokens["rad_junior"])
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert _reports(db) == 0


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (_report(impression=""), "impression"),
        (_report(), "reason"),
        (_report(reason="x", template_key="xx"), "template_key"),
    ],
)
def test_amend_final(
    client: TestClient, db: Session, rw: Reads, body: dict[str, Any], field: str
) -> None:
    rid = reach_read(db, rw, "report_signed").id
    db.commit()
    r = client.post(f"{API}/{rid}/amend", json=body, headers=rw.tokens["rad_junior"])
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert _reports(db) == 1


def test_sign_off_note_is_bounded(client: TestClient, db: Session, rw: Reads) -> None:
    rid = reach_read(db, rw, "preliminary").id
    db.commit()
    r = client.post(
        f"{API}/{rid}/finalise", json={"note": "x" * 1001}, headers=rw.tokens["rad_junior"]
    )
    assert (r.status_code, r.json()["error"]["field"]) == (422, "note")


@pytest.mark.parametrize(
    ("query", "field"),
    [("modality=XX", "modality"), ("state=bogus", "state"), ("limit=0", "limit"), ("x=1", "x")],
)
def test_worklist_params(client: TestClient, rw: Reads, query: str, field: str) -> None:
    r = client.get(f"{API}/worklist?{query}", headers=rw.tokens["rad_junior"])
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


@pytest.mark.parametrize("bad", ["abc", "0", "99999999999999"])
def test_path_ids(client: TestClient, rw: Reads, bad: str) -> None:
    assert client.get(f"{API}/{bad}", headers=rw.tokens["applicant"]).status_code == 422


def test_hostile_text_is_escaped_on_the_page_and_printed_as_text(
    client: TestClient, db: Session, rw: Reads
) -> None:
    rid = reach_read(db, rw, "in_progress").id
    db.commit()
    body = _report(findings=HOSTILE, impression=HOSTILE)
    r = client.post(f"{API}/{rid}/preliminary", json=body, headers=rw.tokens["rad_junior"])
    assert r.status_code == 201, r.text
    page = client.get(f"/reads/{rid}", headers=rw.tokens["applicant"]).text
    assert "<script>alert" not in page
    assert "&lt;script&gt;alert" in page
    pdf = client.get(f"{API}/{rid}/reports/1/pdf", headers=rw.tokens["applicant"])
    text = "".join(p.extract_text() for p in PdfReader(BytesIO(pdf.content)).pages)
    assert '<script>alert("x")</script>' in text.replace("\n", "")

"""An imaging read from request to the applicant's chart: the worklist, the preliminary
report from a template, the senior's countersignature, the SR with the study, the PDF."""

from __future__ import annotations

from io import BytesIO

import highdicom as hd
from fastapi.testclient import TestClient
from pydicom import dcmread
from pypdf import PdfReader
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.consultation.conftest import audits
from tests.consultation.reads_world import REPORT, Reads, reach_read
from xietong.consultation.models import ConsultationReadReport
from xietong.consultation.service import reads
from xietong.core.workflow_events import WorkflowEvent
from xietong.imaging.models import ImagingInstance
from xietong.imaging.retrieve import read_bytes
from xietong.notifications.models import Notification


def test_service_lifecycle(db: Session, rw: Reads) -> None:
    c = reach_read(db, rw, "report_signed")
    report = db.execute(select(ConsultationReadReport)).scalar_one()
    assert (report.status, report.version) == ("final", 1)
    assert report.countersigned_by_practitioner_id == rw.radiologists["senior"]
    assert report.sr_study_id == rw.study.id
    sr_row = db.execute(
        select(ImagingInstance).where(
            ImagingInstance.sop_instance_uid == report.sr_sop_instance_uid
        )
    ).scalar_one()
    ds = dcmread(BytesIO(read_bytes(rw.archive.blobs, sr_row)))
    assert ds.StudyInstanceUID == rw.study.study_uid
    assert ds.Modality == "SR"
    sr = hd.sr.srread(BytesIO(read_bytes(rw.archive.blobs, sr_row)))
    texts = [item.TextValue for item in sr.ContentSequence if "TextValue" in item]
    assert REPORT.impression in texts
    assert REPORT.findings in texts
    assert ds.VerificationFlag == "VERIFIED"
    told = db.execute(
        select(Notification).where(Notification.recipient_user_id == rw.n.p["applicant"].user_id)
    ).scalars()
    assert any("read.final" in n.kind for n in told)
    assert audits(db, "read.report.countersign", object_id=str(c.id))


def test_api_lifecycle_to_the_chart(client: TestClient, db: Session, rw: Reads) -> None:
    t = rw.tokens
    created = client.post(
        "/api/v1/reads",
        json={**rw.body(), "submit": True},
        headers={**t["applicant"], "Idempotency-Key": "read-1"},
    )
    assert created.status_code == 201, created.text
    rid = created.json()["id"]
    again = client.post(
        "/api/v1/reads",
        json={**rw.body(), "submit": True},
        headers={**t["applicant"], "Idempotency-Key": "read-1"},
    )
    assert (again.status_code, again.json()["id"]) == (200, rid)
    accept = {"experts": [rw.radiologists["junior"]], "lead": rw.radiologists["junior"]}
    r = client.post(f"/api/v1/consultations/{rid}/accept", json=accept, headers=t["coordinator"])
    assert r.status_code == 200, r.text
    listed = client.get("/api/v1/reads/worklist?modality=CT", headers=t["rad_senior"]).json()
    assert [row["id"] for row in listed["items"]] == [rid]
    assert (
        client.get("/api/v1/reads/worklist?modality=MR", headers=t["rad_junior"]).json()["items"]
        == []
    )
    assert client.post(f"/api/v1/consultations/{rid}/start", headers=t["rad_junior"]).is_success
    templates = client.get("/api/v1/reads/templates", headers=t["rad_junior"]).json()
    chest = next(x for x in templates if x["template_key"] == "ct_chest")
    body = {k: chest[k] for k in ("template_key", "technique", "findings", "impression")}
    body["impression"] = "右肺下叶小结节"
    r = client.post(f"/api/v1/reads/{rid}/preliminary", json=body, headers=t["rad_junior"])
    assert r.status_code == 201, r.text
    assert r.json()["status"] == "preliminary"
    # The author does not countersign; the senior does.
    own = client.post(f"/api/v1/reads/{rid}/countersign", json={}, headers=t["rad_junior"])
    assert own.status_code == 403
    r = client.post(f"/api/v1/reads/{rid}/countersign", json={}, headers=t["rad_senior"])
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "final"
    assert r.json()["sr_sop_instance_uid"]
    # The applicant sees the final report, its PDF, and the read in the patient's chart.
    reports = client.get(f"/api/v1/reads/{rid}/reports", headers=t["applicant"]).json()
    assert reports[0]["impression"] == "右肺下叶小结节"
    pdf = client.get(f"/api/v1/reads/{rid}/reports/1/pdf", headers=t["applicant"])
    assert pdf.headers["content-type"] == "application/pdf"
    text = "".join(page.extract_text() for page in PdfReader(BytesIO(pdf.content)).pages)
    assert "右肺下叶小结节" in text
    chart = client.get(f"/patients/{rw.study.patient_id}/chart", headers=t["applicant"])
    assert chart.status_code == 200
    assert f"/reads/{rid}" in chart.text


def test_supervision_events_name_the_kind(db: Session, rw: Reads) -> None:
    c = reach_read(db, rw, "report_signed")
    events = db.scalars(
        select(WorkflowEvent)
        .where(WorkflowEvent.subject_id == str(c.id))
        .order_by(WorkflowEvent.id)
    ).all()
    assert [e.action for e in events] == [
        "submit",
        "accept",
        "start",
        "sign_preliminary",
        "countersign",
    ]
    assert {e.detail["kind"] for e in events} == {"imaging_read"}
    # The worklist keeps showing the image modality once the SR joined the study.
    assert reads.modalities_of(reads.studies_of(db, c)) == ["CT"]

"""Who sees an imaging read: another institution's users get 404 on every read route
(API and pages), audited; a clinical consultation is not a read; the SR is read with the
study under the study's own rules."""

from __future__ import annotations

from io import BytesIO

import highdicom as hd
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.consultation.conftest import audits, reach
from tests.consultation.reads_world import REPORT, Reads, reach_read
from xietong.web.routes.dicomweb_stow import split_multipart

API = "/api/v1/reads"
UNRELATED = ("other_doctor", "other_coordinator", "rad_other", "county_doctor")


@pytest.mark.parametrize("who", UNRELATED)
def test_other_institutions_get_404_on_every_read_route(
    client: TestClient, db: Session, rw: Reads, who: str
) -> None:
    rid = reach_read(db, rw, "report_signed").id
    db.commit()
    h = rw.tokens[who]
    for path in ("", "/reports", "/reports/1/pdf"):
        r = client.get(f"{API}/{rid}{path}", headers=h)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "consultation_not_found"
    report = REPORT.model_dump()
    for action, body in (
        ("preliminary", report),
        ("finalise", {}),
        ("countersign", {}),
        ("amend", {**report, "reason": "x"}),
    ):
        r = client.post(f"{API}/{rid}/{action}", json=body, headers=h)
        assert r.status_code == 404, (action, r.text)
    for page in (f"/reads/{rid}", f"/reads/{rid}/report.pdf"):
        assert client.get(page, headers=h).status_code == 404, page
    # The same answer as for an id that does not exist.
    assert client.get(f"{API}/999999", headers=h).status_code == 404
    assert audits(db, "read.read", outcome="denied", object_id=str(rid))
    assert audits(db, "read.report_pdf", outcome="denied", object_id=str(rid))
    # Nor does another institution's worklist show it.
    if who == "rad_other":
        listed = client.get(f"{API}/worklist?state=report_signed", headers=h).json()
        assert listed["items"] == []


def test_a_clinical_consultation_is_not_a_read(client: TestClient, db: Session, rw: Reads) -> None:
    c = reach(db, rw.n, "in_progress")
    db.commit()
    h = rw.tokens["applicant"]
    assert client.get(f"{API}/{c.id}", headers=h).status_code == 404
    r = client.post(
        f"{API}/{c.id}/preliminary", json=REPORT.model_dump(), headers=rw.tokens["expert_a"]
    )
    assert r.status_code == 404


def test_worklist_is_for_radiologists(client: TestClient, db: Session, rw: Reads) -> None:
    reach_read(db, rw, "accepted")
    db.commit()
    assert client.get(f"{API}/worklist", headers=rw.tokens["coordinator"]).status_code == 403
    rows = client.get(f"{API}/worklist", headers=rw.tokens["rad_senior"]).json()["items"]
    assert [r["state"] for r in rows] == ["accepted"]
    assert audits(db, "read.worklist")


def test_the_sr_is_retrieved_with_the_study_by_dicomweb(
    client: TestClient, db: Session, rw: Reads
) -> None:
    reach_read(db, rw, "report_signed")
    db.commit()
    uid = rw.study.study_uid
    # The sending institution's staff, and the reading centre through the read's grant.
    for who in ("applicant", "rad_senior"):
        r = client.get(
            f"/dicomweb/studies/{uid}/series?Modality=SR",
            headers={**rw.tokens[who], "Accept": "application/dicom+json"},
        )
        assert r.status_code == 200, (who, r.text)
        assert len(r.json()) == 1
    r = client.get(
        f"/dicomweb/studies/{uid}/series",
        headers={**rw.tokens["rad_other"], "Accept": "application/dicom+json"},
    )
    assert r.status_code == 404


def test_the_sr_is_retrieved_by_wado_rs_and_parses_with_the_report(
    client: TestClient, db: Session, rw: Reads
) -> None:
    rid = reach_read(db, rw, "report_signed").id
    db.commit()
    report = client.get(f"{API}/{rid}/reports", headers=rw.tokens["applicant"]).json()[0]
    uid = rw.study.study_uid
    found = client.get(
        f"/dicomweb/studies/{uid}/instances?Modality=SR&includefield=0020000E",
        headers={**rw.tokens["applicant"], "Accept": "application/dicom+json"},
    ).json()
    assert [i["00080018"]["Value"][0] for i in found] == [report["sr_sop_instance_uid"]]
    series_uid = found[0]["0020000E"]["Value"][0]
    r = client.get(
        f"/dicomweb/studies/{uid}/series/{series_uid}/instances/{report['sr_sop_instance_uid']}",
        headers={
            **rw.tokens["rad_junior"],
            "Accept": 'multipart/related; type="application/dicom"; transfer-syntax=*',
        },
    )
    assert r.status_code == 200, r.text
    [(_type, data)] = split_multipart(r.content, r.headers["content-type"])
    sr = hd.sr.srread(BytesIO(data))
    texts = [item.TextValue for item in sr.ContentSequence if "TextValue" in item]
    assert texts == [REPORT.technique, REPORT.findings, REPORT.impression, REPORT.recommendation]
    assert sr.StudyInstanceUID == uid
    assert str(sr.PatientID) == rw.study.patient_key

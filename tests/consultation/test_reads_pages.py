"""The imaging read pages, driven through their forms: the coordinator assigns a
radiologist, the worklist lists the read, the radiologist fills the report from a
template and signs it preliminary, the senior countersigns; the applicant's chart shows
the final report. A refused form names its field; the consultation page of a read offers
none of the read's own steps."""

from __future__ import annotations

from html import escape

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.consultation.reads_world import Reads, reach_read
from tests.helpers import csrf_from, page_login
from xietong.consultation.models import Consultation, ConsultationReadReport
from xietong.consultation.read_templates import BY_KEY, prefill

ZH = {"Accept-Language": "zh-CN"}


def _as(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app, headers=ZH)
    page_login(client, username)
    return client


def _post(client: TestClient, url: str, page: str, data: dict[str, object]) -> httpx.Response:
    return client.post(url, data={"csrf_token": csrf_from(page), **data}, follow_redirects=False)


def test_the_read_through_its_pages(db: Session, app: FastAPI, rw: Reads) -> None:
    rid = reach_read(db, rw, "submitted").id
    db.commit()
    coordinator = _as(app, "c_coord")
    page = coordinator.get(f"/reads/{rid}").text
    assert 'id="form-accept"' in page
    assert "junior医生" in page  # the centre's radiologists to assign
    junior = rw.radiologists["junior"]
    r = _post(coordinator, f"/reads/{rid}/accept", page, {"experts": junior, "lead": junior})
    assert r.status_code == 303, r.text

    radiologist = _as(app, "r_junior")
    listing = radiologist.get("/reads?modality=CT")
    assert listing.status_code == 200
    assert f'href="/reads/{rid}"' in listing.text
    assert 'href="/reads"' in listing.text  # the menu entry
    page = radiologist.get(f"/reads/{rid}").text
    assert f'href="/imaging/studies/{rw.study.id}/view?read={rid}"' in page
    r = _post(radiologist, f"/reads/{rid}/start", page, {})
    assert r.status_code == 303
    # The template picker fills the form in the user's language.
    page = radiologist.get(f"/reads/{rid}?template=ct_chest").text
    assert escape(prefill(BY_KEY["ct_chest"], "zh_CN")["findings"]) in page
    assert 'name="template_key" value="ct_chest"' in page
    form = {
        "template_key": "ct_chest",
        "technique": "胸部CT平扫",
        "findings": "右肺下叶见小结节。",
        "impression": "",
        "recommendation": "",
    }
    refused = _post(radiologist, f"/reads/{rid}/sign_preliminary", page, form)
    assert refused.status_code == 422
    assert 'name="impression" rows="3" required maxlength="10000" aria-invalid="true"' in (
        refused.text
    )
    form["impression"] = "右肺下叶小结节，建议随访。"
    r = _post(radiologist, f"/reads/{rid}/sign_preliminary", page, form)
    assert r.status_code == 303, r.text
    page = radiologist.get(f"/reads/{rid}").text
    assert 'id="form-finalise"' in page
    assert 'id="form-countersign"' not in page  # not the junior's

    senior = _as(app, "r_senior")
    page = senior.get(f"/reads/{rid}").text
    assert 'id="form-countersign"' in page
    r = _post(senior, f"/reads/{rid}/countersign", page, {"note": "同意"})
    assert r.status_code == 303, r.text
    report = db.execute(select(ConsultationReadReport)).scalar_one()
    assert report.status == "final"
    assert report.countersigned_by_practitioner_id == rw.radiologists["senior"]

    applicant = _as(app, "c_applicant")
    page = applicant.get(f"/reads/{rid}").text
    assert "右肺下叶小结节，建议随访。" in page
    assert "senior医生" in page  # the countersignature
    chart = applicant.get(f"/patients/{rw.study.patient_id}/chart").text
    assert f'href="/reads/{rid}"' in chart
    assert "右肺下叶小结节，建议随访。" in chart
    pdf = applicant.get(f"/reads/{rid}/report.pdf")
    assert pdf.headers["content-type"] == "application/pdf"
    # The consultation page of the read offers messages, not the read's own steps.
    consult = applicant.get(f"/consultations/{rid}")
    assert consult.status_code == 200
    db.expire_all()
    assert db.get(Consultation, rid).state == "report_signed"  # type: ignore[union-attr]


def test_unrelated_radiologist_gets_404_pages(db: Session, app: FastAPI, rw: Reads) -> None:
    rid = reach_read(db, rw, "in_progress").id
    db.commit()
    other = _as(app, "r_other")
    assert other.get(f"/reads/{rid}").status_code == 404
    assert f'href="/reads/{rid}"' not in other.get("/reads").text

"""The issue's lifecycle over the API: a village doctor submits, the county coordinator
assigns two experts, both write opinions, the lead signs, the applicant rates."""

from __future__ import annotations

import hashlib
import json

from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.consultation.conftest import Net, audits
from xietong.core.workflow_events import WorkflowEvent

API = "/api/v1/consultations"


def test_lifecycle(client: TestClient, db: Session, net: Net) -> None:
    t = net.tokens
    r = client.post(API, json={**net.body(), "submit": True}, headers=t["applicant"])
    assert r.status_code == 201, r.text
    c = r.json()
    cid = c["id"]
    assert c["state"] == "submitted"
    assert c["accept_deadline"] == "2026-11-21T04:00:00Z"
    assert c["report_deadline"] == "2026-11-22T04:00:00Z"
    assert len(c["grant_ids"]) == 1

    inbox = client.get(API, params={"view": "inbox"}, headers=t["coordinator"]).json()
    assert [i["id"] for i in inbox["items"]] == [cid]

    ranked = client.get(f"{API}/{cid}/recommendations", headers=t["coordinator"])
    assert ranked.status_code == 200, ranked.text
    order = [e["practitioner_id"] for e in ranked.json()]
    assert order == [net.experts["b"], net.experts["a"], net.experts["c"]]
    assert "specialty_match" in ranked.json()[0]["reasons"]

    r = client.post(
        f"{API}/{cid}/accept",
        json={"experts": [net.experts["a"], net.experts["b"]], "lead": net.experts["a"]},
        headers=t["coordinator"],
    )
    assert r.status_code == 200, r.text
    assert [a["is_lead"] for a in r.json()["assignments"]] == [True, False]

    work = client.get(API, params={"view": "worklist"}, headers=t["expert_b"]).json()
    assert [i["id"] for i in work["items"]] == [cid]

    # The expert reads the shared diagnosis through the records API (the grant opens it).
    shared = client.get(f"/api/v1/records/diagnosis/{net.shared.id}", headers=t["expert_b"])
    assert shared.status_code == 200, shared.text
    hidden = client.get(f"/api/v1/records/diagnosis/{net.unshared.id}", headers=t["expert_b"])
    assert hidden.status_code == 404

    assert client.post(f"{API}/{cid}/start", headers=t["expert_a"]).status_code == 200
    # The lead cannot sign before every opinion is in.
    report = {"impression": "稳定型心绞痛", "recommendations": "冠脉CTA"}
    early = client.post(f"{API}/{cid}/sign", json=report, headers=t["expert_a"])
    assert early.status_code == 409
    for who in ("expert_a", "expert_b"):
        r = client.put(f"{API}/{cid}/opinions/mine", json={"text": f"{who} 意见"}, headers=t[who])
        assert r.status_code == 200, r.text
    # Editable until signed.
    r = client.put(f"{API}/{cid}/opinions/mine", json={"text": "修改后"}, headers=t["expert_b"])
    assert r.json()["version"] == 2
    assert client.post(f"{API}/{cid}/sign", json=report, headers=t["expert_b"]).status_code == 403
    r = client.post(f"{API}/{cid}/sign", json=report, headers=t["expert_a"])
    assert r.status_code == 201, r.text
    signed = r.json()
    content = {
        "consultation_id": cid,
        "version": 1,
        **report,
        "referral_recommended": False,
        "referral_institution_id": None,
    }
    canonical = json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    assert signed["content_sha256"] == hashlib.sha256(canonical.encode()).hexdigest()
    # Signed: opinions are frozen.
    r = client.put(f"{API}/{cid}/opinions/mine", json={"text": "再改"}, headers=t["expert_b"])
    assert r.status_code == 409

    amended = client.post(
        f"{API}/{cid}/amend",
        json={**report, "recommendations": "冠脉造影", "reason": "补充建议"},
        headers=t["expert_a"],
    )
    assert amended.status_code == 201, amended.text
    assert amended.json()["amended_from_id"] == signed["id"]
    versions = client.get(f"{API}/{cid}/reports", headers=t["applicant"]).json()
    assert [v["version"] for v in versions] == [2, 1]
    assert versions[1]["recommendations"] == "冠脉CTA"

    r = client.post(
        f"{API}/{cid}/complete", json={"rating": 5, "comment": "很及时"}, headers=t["applicant"]
    )
    assert r.status_code == 200, r.text
    done = r.json()
    assert done["state"] == "completed"
    assert done["rating"] == 5
    assert [h["action"] for h in done["history"]] == [
        "submit",
        "accept",
        "start",
        "sign",
        "amend",
        "complete",
    ]
    events = db.execute(
        select(WorkflowEvent).where(WorkflowEvent.subject_id == str(cid)).order_by(WorkflowEvent.id)
    ).scalars()
    rows = list(events)
    assert [e.action for e in rows] == [h["action"] for h in done["history"]]
    assert {(e.institution_id, e.region_code, e.target_institution_id) for e in rows} == {
        (net.village.id, "410102", net.county.id)
    }
    seen = client.get(f"{API}/{cid}", headers=net.tokens["coordinator"])
    assert seen.json()["my_roles"] == ["coordinator"]
    assert audits(db, "consultation.read", object_id=str(cid))


def test_idempotent_create(client: TestClient, db: Session, net: Net) -> None:
    headers = {**net.tokens["applicant"], "Idempotency-Key": "req-0001"}
    body = {**net.body(), "submit": True}
    first = client.post(API, json=body, headers=headers)
    again = client.post(API, json=body, headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    listed = client.get(API, headers=net.tokens["applicant"]).json()
    assert listed["total"] == 1
    # A retried submit with the key answers with the consultation as it is.
    cid = first.json()["id"]
    retry = client.post(f"{API}/{cid}/submit", headers=headers)
    assert retry.status_code == 200
    assert retry.json()["state"] == "submitted"

"""Referrals end to end through the API: an up-referral booked into a slot, accepted,
checked in, treated and sent back down with follow-ups; an exam referral with each of the
expert's decisions; the green channel; a referral from a consultation report; the closed
loop; and targets that are not upward (or, going down, not downward) refused by field."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.referral.conftest import (
    NOW,
    SETTINGS,
    Net,
    counts,
    create,
    create_down,
    down_body,
    exam_document,
    reach,
)
from xietong.config import ConsultationSettings
from xietong.consultation import service as consultations
from xietong.consultation.schemas import AcceptIn as ConsultationAccept
from xietong.consultation.schemas import ConsultationIn, OpinionIn, ReportIn
from xietong.core import clock
from xietong.core.workflow_events import WorkflowEvent
from xietong.directory.models import Practitioner
from xietong.notifications.models import Notification
from xietong.referral import service as svc
from xietong.referral.models import Referral
from xietong.referral.schemas import AcceptIn
from xietong.referral.slot_models import Slot, SlotBooking

API = "/api/v1/referrals"


def _post(client: TestClient, n: Net, who: str, path: str, body: Any = None) -> Any:
    r = client.post(f"{API}{path}", json=body if body is not None else {}, headers=n.tokens[who])
    assert r.status_code in (200, 201), (path, r.text)
    return r.json()


def _slot(db: Session, slot_id: int) -> Slot:
    db.expire_all()
    row = db.get(Slot, slot_id)
    assert row is not None
    return row


def test_up_referral_booked_accepted_treated_and_sent_back_down(
    client: TestClient, db: Session, net: Net
) -> None:
    sent = client.post(API, json=net.body(), headers=net.tokens["sender"])
    assert sent.status_code == 201, sent.text
    r = sent.json()
    assert (r["state"], r["booking"]["status"], r["booking"]["channel"]) == (
        "requested",
        "booked",
        "normal",
    )
    assert r["patient_name"] == net.patient.name
    assert r["diagnosis_code"] == "I20.9"
    assert r["diagnosis_text"]
    assert _slot(db, net.slots["outpatient"]).booked_referral == 1
    inbox = client.get(API, params={"view": "inbox"}, headers=net.tokens["desk"]).json()
    assert [row["id"] for row in inbox["items"]] == [r["id"]]
    # The desk sees what was shared, and only that.
    shared = client.get(f"/api/v1/records/diagnosis/{net.shared.id}", headers=net.tokens["desk"])
    assert shared.status_code == 200
    rid = r["id"]
    assert _post(client, net, "desk", f"/{rid}/accept")["state"] == "accepted"
    assert _post(client, net, "desk", f"/{rid}/check-in")["state"] == "arrived"
    assert _post(client, net, "clinician", f"/{rid}/start")["state"] == "in_treatment"
    db.expire_all()
    booking = db.execute(select(SlotBooking).where(SlotBooking.referral_id == rid)).scalar_one()
    assert booking.status == "arrived"
    # Treatment ends: the county doctor sends the patient back to the village clinic.
    down = client.post(f"{API}/down", json=down_body(net, rid), headers=net.tokens["county_doctor"])
    assert down.status_code == 201, down.text
    d = down.json()
    assert (d["kind"], d["target_institution_id"], d["parent_id"]) == ("down", net.village.id, rid)
    assert [f["purpose"] for f in d["follow_ups"]] == ["复查血压", "复查心电图"]
    assert d["discharge"]["medications"][0]["name"] == "阿司匹林"
    assert client.get(f"{API}/{rid}", headers=net.tokens["sender"]).json()["state"] == "completed"
    assert _post(client, net, "village_desk", f"/{d['id']}/accept")["state"] == "accepted"
    first = d["follow_ups"][0]["id"]
    done = _post(
        client,
        net,
        "sender",
        f"/{d['id']}/follow-ups/{first}",
        {"status": "done", "note": "血压正常"},
    )
    assert done["status"] == "done"
    again = client.post(
        f"{API}/{d['id']}/follow-ups/{first}",
        json={"status": "done", "note": "x"},
        headers=net.tokens["sender"],
    )
    assert (again.status_code, again.json()["error"]["code"]) == (409, "follow_up_recorded")
    assert _post(client, net, "sender", f"/{d['id']}/complete")["state"] == "completed"
    # The closed loop, from either end.
    for who, start in (("sender", rid), ("county_doctor", d["id"])):
        loop = client.get(f"{API}/{start}/chain", headers=net.tokens[who]).json()
        assert [(link["kind"], link["id"]) for link in loop["links"]] == [
            ("up", rid),
            ("down", d["id"]),
        ]
    actions = (
        db.execute(
            select(WorkflowEvent.action)
            .where(WorkflowEvent.kind == "referral", WorkflowEvent.subject_id == str(rid))
            # Without an ORDER BY, PostgreSQL may return the rows in any order.
            .order_by(WorkflowEvent.id)
        )
        .scalars()
        .all()
    )
    assert list(actions) == ["request", "accept", "check_in", "start", "complete"]


@pytest.mark.parametrize("decision", ["stay", "refer_up", "admit"])
def test_exam_referral_and_each_decision(
    client: TestClient, db: Session, net: Net, decision: str
) -> None:
    r = reach(db, net, "exam", "arrived")
    assert r.state == "arrived"
    doc = exam_document(db, net)
    db.commit()
    reported = _post(client, net, "radiologist", f"/{r.id}/report", {"document_id": doc})
    assert (reported["state"], reported["report_document_id"]) == ("reported", doc)
    # The report flows back: the sender now reads the county's document.
    assert client.get(f"/api/v1/documents/{doc}", headers=net.tokens["sender"]).status_code == 200
    decided = _post(
        client,
        net,
        "clinician",
        f"/{r.id}/decide",
        {"decision": decision, "note": "CT示腔隙性梗死"},
    )
    assert (decided["state"], decided["decision"]) == ("completed", decision)
    db.expire_all()
    children = db.execute(select(Referral).where(Referral.parent_id == r.id)).scalars().all()
    if decision == "stay":
        assert children == []
        return
    (child,) = children
    assert (child.kind, child.sender_institution_id, child.target_institution_id) == (
        "up",
        net.village.id,
        net.county.id,
    )
    assert child.state == ("in_treatment" if decision == "admit" else "requested")
    loop = client.get(f"{API}/{child.id}/chain", headers=net.tokens["sender"]).json()
    assert [link["kind"] for link in loop["links"]] == ["exam", "up"]
    if decision == "refer_up":
        accepted = _post(
            client, net, "desk", f"/{child.id}/accept", {"slot_id": net.slots["outpatient_later"]}
        )
        assert accepted["booking"]["slot_id"] == net.slots["outpatient_later"]


def test_the_green_channel_uses_its_own_quota_and_alerts_the_department(
    client: TestClient, db: Session, net: Net
) -> None:
    r = client.post(API, json=net.body(priority="green"), headers=net.tokens["sender"]).json()
    assert r["booking"]["channel"] == "green"
    slot = _slot(db, net.slots["outpatient"])
    assert (slot.booked_green, slot.booked_referral) == (1, 0)
    told = set(
        db.execute(
            select(Notification.recipient_user_id).where(
                Notification.kind == "referral.request.green"
            )
        ).scalars()
    )
    assert told == {net.p["desk"].user_id, net.p["clinician"].user_id}
    assert r["accept_deadline"] is not None
    full = client.post(API, json=net.body(priority="green"), headers=net.tokens["sender"])
    assert (full.status_code, full.json()["error"]["code"], full.json()["error"]["field"]) == (
        409,
        "green_quota_full",
        "slot_id",
    )


def test_a_referral_from_a_consultation_that_recommends_it(
    client: TestClient, db: Session, net: Net
) -> None:
    cardiologist = db.get(Practitioner, net.extra["practitioners"]["cardiologist"])
    assert cardiologist is not None
    cardiologist.is_expert = True
    settings = ConsultationSettings()
    data = ConsultationIn(
        patient_id=net.patient.id,
        purpose="明确诊断",
        clinical_summary="胸痛",
        questions="是否转诊？",
        specialty="cardiology",
        target_institution_id=net.county.id,
        submit=True,
    )
    c = consultations.create_consultation(db, net.p["sender"], data, settings).consultation
    consultations.accept(
        db, net.p["desk"], c.id, ConsultationAccept(experts=[cardiologist.id], lead=cardiologist.id)
    )
    consultations.start(db, net.p["clinician"], c.id)
    consultations.write_opinion(db, net.p["clinician"], c.id, OpinionIn(text="需介入"))
    consultations.sign_report(
        db,
        net.p["clinician"],
        c.id,
        ReportIn(
            impression="不稳定型心绞痛",
            recommendations="转上级",
            referral_recommended=True,
            referral_institution_id=net.county.id,
        ),
    )
    db.commit()
    sent = client.post(API, json=net.body(consultation_id=c.id), headers=net.tokens["sender"])
    assert sent.status_code == 201, sent.text
    loop = client.get(f"{API}/{sent.json()['id']}/chain", headers=net.tokens["sender"]).json()
    assert [(link["kind"], link["id"]) for link in loop["links"]] == [
        ("consultation", c.id),
        ("up", sent.json()["id"]),
    ]
    # The receiving desk is not part of the consultation's applicant side but is its
    # centre's coordinator here, so it sees it too; an expert of the city hospital would not.


def test_targets_must_be_upward_and_down_referrals_downward(
    client: TestClient, db: Session, net: Net
) -> None:
    before = counts(db)
    for target in (net.city.id, net.other.id):
        r = client.post(
            API,
            json=net.body(target_institution_id=target, slot_id=None, target_department_id=None),
            headers=net.tokens["sender"],
        )
        assert (r.status_code, r.json()["error"]["field"]) == (422, "target_institution_id")
    up = reach(db, net, "up", "in_treatment")
    db.commit()
    for target in (net.city.id, net.other.id):
        r = client.post(
            f"{API}/down",
            json=down_body(net, up.id, target_institution_id=target),
            headers=net.tokens["county_doctor"],
        )
        assert (r.status_code, r.json()["error"]["code"], r.json()["error"]["field"]) == (
            422,
            "target_not_downward",
            "target_institution_id",
        )
    assert counts(db)["referral"] == before["referral"] + 1


def test_deadlines_expire_mark_no_shows_and_flag_overdue_follow_ups(db: Session, net: Net) -> None:
    waiting = create(db, net)
    booked = reach(db, net, "up", "accepted", slot_id=net.slots["outpatient_later"])
    down = create_down(db, net, reach(db, net, "up", "in_treatment").id)
    svc.accept(db, net.p["village_desk"], down.id, AcceptIn())
    later = NOW + timedelta(days=90)  # past both follow-ups
    clock.set_clock(lambda: later)
    run = svc.run_deadlines(db, SETTINGS)
    assert waiting.id in run.expired
    assert booked.id in run.no_shows
    assert len(run.overdue_follow_ups) == 2
    again = svc.run_deadlines(db, SETTINGS)
    assert (again.expired, again.no_shows, again.overdue_follow_ups) == ([], [], [])
    db.refresh(waiting)
    assert waiting.state == "expired"
    # The expired one gave its place back; the patient in treatment keeps theirs.
    assert _slot(db, net.slots["outpatient"]).booked_referral == 1

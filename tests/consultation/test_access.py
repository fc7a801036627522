"""Who sees a consultation and its shared material; every access audited; the deadline job."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.consultation.conftest import NOW, SETTINGS, Net, accept, audits, create, reach
from tests.directory.conftest import bearer
from xietong.cli import app as cli_app
from xietong.cli import run_migrations
from xietong.config import DatabaseSettings, Settings
from xietong.consultation import service as svc
from xietong.core import clock
from xietong.core.workflow_events import WorkflowEvent
from xietong.identity.models import User
from xietong.patients.models import ChartGrant

API = "/api/v1/consultations"
UNRELATED = ("other_doctor", "other_coordinator", "other_expert", "county_doctor")


@pytest.mark.parametrize("who", UNRELATED)
def test_unrelated_users_get_404_on_everything(
    client: TestClient, db: Session, net: Net, who: str
) -> None:
    c = reach(db, net, "in_progress")
    db.commit()
    h = net.tokens[who]
    paths = ["", "/opinions", "/reports", "/recommendations"]
    for path in paths:
        r = client.get(f"{API}/{c.id}{path}", headers=h)
        assert r.status_code == 404, (path, r.text)
        assert r.json()["error"]["code"] == "consultation_not_found"
    for action in ("submit", "start", "cancel"):
        assert client.post(f"{API}/{c.id}/{action}", json={}, headers=h).status_code == 404
    r = client.put(f"{API}/{c.id}/opinions/mine", json={"text": "x"}, headers=h)
    assert r.status_code == 404
    # The same answer as for an id that does not exist.
    assert client.get(f"{API}/999999", headers=h).json()["error"]["code"] == (
        "consultation_not_found"
    )
    denied = audits(db, "consultation.read", outcome="denied", object_id=str(c.id))
    assert denied, "denials are audited"
    # And the shared material stays closed to other institutions (the grant names the
    # centre, so the centre's own staff read it, as they would a referral's).
    r = client.get(f"/api/v1/records/diagnosis/{net.shared.id}", headers=h)
    assert r.status_code == (200 if who == "county_doctor" else 404)


def test_drafts_are_the_applicants_alone(client: TestClient, db: Session, net: Net) -> None:
    c = create(db, net)
    db.commit()
    assert client.get(f"{API}/{c.id}", headers=net.tokens["coordinator"]).status_code == 404
    r = client.get(f"{API}/{c.id}", headers=net.tokens["viewer"])
    assert r.status_code == 200
    assert r.json()["my_roles"] == ["viewer"]


def test_every_read_is_audited(client: TestClient, db: Session, net: Net) -> None:
    c = reach(db, net, "report_signed")
    db.commit()
    for who in ("applicant", "viewer", "coordinator", "expert_a", "expert_b"):
        for path in ("", "/opinions", "/reports"):
            assert client.get(f"{API}/{c.id}{path}", headers=net.tokens[who]).status_code == 200
    reads = {
        (row.action, row.actor_user_id)
        for row in audits(db, "consultation.read", object_id=str(c.id))
        + audits(db, "consultation.opinions.read", object_id=str(c.id))
        + audits(db, "consultation.reports.read", object_id=str(c.id))
    }
    assert len(reads) == 15
    r = client.get(API, params={"view": "applicant"}, headers=net.tokens["viewer"])
    assert r.json()["total"] == 1
    assert audits(db, "consultation.list")


def test_experts_lose_the_shared_material_when_the_grant_expires(
    client: TestClient, db: Session, net: Net
) -> None:
    c = reach(db, net, "in_progress")
    db.commit()
    path = f"/api/v1/records/diagnosis/{net.shared.id}"
    assert client.get(path, headers=net.tokens["expert_b"]).status_code == 200
    grant = db.get(
        ChartGrant,
        svc.consultation_out(db, svc.get_consultation(db, net.p["applicant"], c.id))["grant_ids"][
            0
        ],
    )
    assert grant is not None
    expected = NOW + timedelta(minutes=SETTINGS.routine_report_minutes, hours=72)
    assert grant.expires_at == expected
    clock.set_clock(lambda: expected - timedelta(seconds=1))
    user = db.get(User, net.p["expert_b"].user_id)
    assert user is not None
    token = bearer(db, user)  # the first token has long lapsed
    db.commit()
    assert client.get(path, headers=token).status_code == 200
    clock.set_clock(lambda: expected + timedelta(seconds=1))
    assert client.get(path, headers=token).status_code == 404
    # The consultation itself stays readable to its expert.
    assert client.get(f"{API}/{c.id}", headers=token).status_code == 200


def test_the_deadline_job_expires_and_records_breaches(db: Session, net: Net) -> None:
    waiting = create(db, net, submit=True, urgency="emergency")
    late = create(db, net, submit=True, urgency="emergency")
    accept(db, net, late)
    fresh = create(db, net, submit=True)
    draft = create(db, net)
    at = NOW + timedelta(minutes=150)  # past both emergency deadlines, not the routine one
    run = svc.expire_overdue(db, at)
    assert run.expired == [waiting.id]
    assert run.accept_breaches == [waiting.id]
    assert run.report_breaches == [late.id]
    for c, state in (
        (waiting, "expired"),
        (late, "accepted"),
        (fresh, "submitted"),
        (draft, "draft"),
    ):
        db.refresh(c)
        assert c.state == state
    again = svc.expire_overdue(db, at + timedelta(minutes=5))
    assert (again.expired, again.accept_breaches, again.report_breaches) == ([], [], [])
    breaches = db.execute(
        select(WorkflowEvent.subject_id, WorkflowEvent.action)
        .where(WorkflowEvent.action.like("breach.%"))
        .order_by(WorkflowEvent.id)
    ).all()
    assert [tuple(b) for b in breaches] == [
        (str(waiting.id), "breach.accept_deadline"),
        (str(late.id), "breach.report_deadline"),
    ]
    assert audits(db, "consultation.expire", object_id=str(waiting.id))


def test_a_late_acceptance_is_a_breach(db: Session, net: Net) -> None:
    c = create(db, net, submit=True, urgency="emergency")
    clock.set_clock(lambda: NOW + timedelta(minutes=31))
    accept(db, net, c)
    events = db.execute(
        select(WorkflowEvent.action).where(WorkflowEvent.subject_id == str(c.id))
    ).scalars()
    assert "breach.accept_deadline" in list(events)


def test_the_cli_job_runs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`xietong jobs deadlines` against a migrated database of its own (the wall clock)."""
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    monkeypatch.setenv("XIETONG_DATABASE_URL", url)
    run_migrations(Settings(data_dir=tmp_path, database=DatabaseSettings(url=url)))
    result = CliRunner().invoke(cli_app, ["jobs", "deadlines"])
    assert result.exit_code == 0, result.output
    assert "consultations expired 0" in result.output
    assert "referrals expired 0; no-shows 0; overdue follow-ups 0" in result.output


def test_the_worklist_is_ordered_by_deadline(client: TestClient, db: Session, net: Net) -> None:
    routine = create(db, net, submit=True)
    emergency = create(db, net, submit=True, urgency="emergency")
    urgent = create(db, net, submit=True, urgency="urgent")
    for c in (routine, emergency, urgent):
        accept(db, net, c)
    db.commit()
    work = client.get(API, params={"view": "worklist"}, headers=net.tokens["expert_b"]).json()
    assert [i["id"] for i in work["items"]] == [emergency.id, urgent.id, routine.id]
    inbox = client.get(
        API, params={"view": "inbox", "state": "accepted"}, headers=net.tokens["coordinator"]
    ).json()
    assert inbox["total"] == 3
    # Other centres' coordinators and experts have nothing.
    for who, view in (("other_coordinator", "inbox"), ("other_expert", "worklist")):
        r = client.get(API, params={"view": view}, headers=net.tokens[who])
        assert r.json()["total"] == 0
    # An expert's worklist is not theirs to read as a coordinator: 403.
    r = client.get(API, params={"view": "inbox"}, headers=net.tokens["expert_b"])
    assert r.status_code == 403


def test_participants_see_who_the_patient_is_and_nothing_encrypted(
    client: TestClient, db: Session, net: Net
) -> None:
    c = reach(db, net, "in_progress")
    db.commit()
    for who in ("coordinator", "expert_b"):
        one = client.get(f"{API}/{c.id}", headers=net.tokens[who])
        assert one.json()["patient_name"] == net.patient.name
        assert "resident" not in one.text
    listing = client.get(API, params={"view": "inbox"}, headers=net.tokens["coordinator"])
    assert [row["patient_name"] for row in listing.json()["items"]] == [net.patient.name]

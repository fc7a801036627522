"""Every transition that needs someone's action reaches them in the notification centre,
once, without the patient's name."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.consultation.conftest import REPORT, Net, accept, create, opinions, reach
from xietong.consultation import service as svc
from xietong.notifications.models import Notification


def _inbox(db: Session, n: Net) -> dict[str, list[str]]:
    users = {p.user_id: name for name, p in n.p.items()}
    rows = db.execute(select(Notification).order_by(Notification.id)).scalars()
    found: dict[str, list[str]] = {}
    for row in rows:
        found.setdefault(users[row.recipient_user_id], []).append(row.kind)
    return found


def test_the_lifecycle_notifies_whoever_must_act(db: Session, net: Net) -> None:
    c = create(db, net, submit=True)
    assert _inbox(db, net) == {
        "coordinator": ["consultation.submit"],
        "coordinator2": ["consultation.submit"],
    }
    accept(db, net, c)
    inbox = _inbox(db, net)
    assert inbox["applicant"] == ["consultation.accept"]
    assert inbox["expert_a"] == ["consultation.assigned_lead"]
    assert inbox["expert_b"] == ["consultation.assigned"]
    svc.start(db, net.p["expert_b"], c.id)
    opinions(db, net, c)
    svc.sign_report(db, net.p["expert_a"], c.id, REPORT)
    assert _inbox(db, net)["applicant"] == ["consultation.accept", "consultation.sign"]
    row = db.execute(
        select(Notification).where(Notification.kind == "consultation.sign")
    ).scalar_one()
    assert row.link == f"/consultations/{c.id}"
    assert net.patient.name not in row.title + str(row.params)
    assert "expert_c" not in _inbox(db, net)  # not assigned, not told


def test_returned_rejected_and_expired_reach_the_applicant(db: Session, net: Net) -> None:
    reach(db, net, "returned")
    reach(db, net, "rejected")
    reach(db, net, "expired")
    kinds = _inbox(db, net)["applicant"]
    assert {"consultation.return", "consultation.reject", "consultation.expire"} <= set(kinds)


def test_cancelling_a_draft_tells_nobody(db: Session, net: Net) -> None:
    reach(db, net, "cancelled")  # submitted, then cancelled: the centre hears of both
    cancelled_after_submit = _inbox(db, net)
    assert cancelled_after_submit["coordinator"] == ["consultation.submit", "consultation.cancel"]
    draft = create(db, net)
    before = len(db.execute(select(Notification)).all())
    svc.simple_action(db, net.p["applicant"], draft.id, "cancel", "")
    assert len(db.execute(select(Notification)).all()) == before

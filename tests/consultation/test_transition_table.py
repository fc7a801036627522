"""Every cell of the transition table: each allowed part succeeds; a visible user without
the part gets 403; users who may not see the consultation get 404; every (state, action)
outside the table gets 409."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy.orm import Session

from tests.consultation.conftest import LATER, REPORT, SETTINGS, Net, opinions, reach
from xietong.consultation import service as svc
from xietong.consultation import workflow as wf
from xietong.consultation.models import STATES, ConsultationHistory
from xietong.consultation.schemas import AcceptIn, AmendIn, RateIn, ResubmitIn, ScheduleIn
from xietong.consultation.service.requests import guard_context
from xietong.core.errors import XietongError
from xietong.core.workflow import Transition

ACTORS = {
    wf.APPLICANT: "applicant",
    wf.COORDINATOR: "coordinator",
    wf.EXPERT: "expert_b",
    wf.LEAD: "expert_a",
}
UNRELATED = ("other_doctor", "other_coordinator", "other_expert", "county_doctor")
# The imaging read's own cells are in test_reads_transitions.py.
CELLS = [
    pytest.param(t, id=f"{t.source}-{t.action}")
    for t in wf.TRANSITIONS
    if t.action not in wf.READ_ACTIONS
]
CLINICAL_STATES = [s for s in STATES if s != "preliminary"]


def _do(db: Session, n: Net, who: str, action: str, cid: int) -> None:
    p = n.p[who]
    calls: dict[str, Callable[[], object]] = {
        "submit": lambda: svc.submit(db, p, cid, SETTINGS),
        "cancel": lambda: svc.simple_action(db, p, cid, "cancel", ""),
        "accept": lambda: svc.accept(
            db, p, cid, AcceptIn(experts=[n.experts["a"], n.experts["b"]], lead=n.experts["a"])
        ),
        "return": lambda: svc.simple_action(db, p, cid, "return", "请补充"),
        "reject": lambda: svc.simple_action(db, p, cid, "reject", "不收"),
        "resubmit": lambda: svc.resubmit(db, p, cid, ResubmitIn(note="补充"), SETTINGS),
        "schedule": lambda: svc.schedule(db, p, cid, ScheduleIn(scheduled_at=LATER)),
        "reschedule": lambda: svc.schedule(
            db, p, cid, ScheduleIn(scheduled_at=LATER), action="reschedule"
        ),
        "start": lambda: svc.start(db, p, cid),
        "sign": lambda: svc.sign_report(db, p, cid, REPORT),
        "amend": lambda: svc.amend_report(
            db, p, cid, AmendIn(impression="改", recommendations="改", reason="补充")
        ),
        "complete": lambda: svc.complete(db, p, cid, RateIn(rating=4)),
    }
    calls[action]()


def _status(db: Session, n: Net, who: str, action: str, cid: int) -> int:
    try:
        _do(db, n, who, action, cid)
    except XietongError as exc:
        return exc.status
    return 200


def _mode(state: str, action: str) -> str:
    return "live" if state == "scheduled" or action in ("schedule", "reschedule") else "async"


def _prepare(db: Session, n: Net, t: Transition) -> int:
    c = reach(db, n, t.source, mode=_mode(t.source, t.action))
    if t.action == "sign":
        opinions(db, n, c)
    return c.id


@pytest.mark.parametrize("t", CELLS)
def test_cell(db: Session, net: Net, t: Transition) -> None:
    if t.action == "expire":
        cid = _prepare(db, net, t)
        run = svc.expire_overdue(db, datetime(2026, 12, 1, tzinfo=UTC))
        assert run.expired == [cid]
        for role in (wf.APPLICANT, wf.COORDINATOR, wf.EXPERT, wf.LEAD):
            with pytest.raises(XietongError) as caught:
                wf.WORKFLOW.apply(t.source, "expire", {role})
            assert caught.value.status == 403
        return
    # Each allowed part succeeds, on a consultation of its own.
    for role in sorted(t.roles):
        cid = _prepare(db, net, t)
        assert _status(db, net, ACTORS[role], t.action, cid) == 200, role
        c = svc.get_consultation(db, net.p["viewer"], cid).consultation
        assert c.state == t.target
        last = db.query(ConsultationHistory).filter_by(consultation_id=cid).all()[-1]
        assert (last.action, last.from_state, last.to_state) == (t.action, t.source, t.target)
    cid = _prepare(db, net, t)
    # Visible users without the part: 403.
    for who in ("viewer", *ACTORS.values()):
        c = svc.get_consultation(db, net.p["viewer"], cid).consultation
        parts, _ = svc.parts_of(db, net.p[who], c)
        if parts and not parts & t.roles:
            assert _status(db, net, who, t.action, cid) == 403, who
    # Users who may not see it: 404.
    for who in UNRELATED:
        assert _status(db, net, who, t.action, cid) == 404, who
    assert svc.get_consultation(db, net.p["viewer"], cid).consultation.state == t.source


def test_a_clinical_consultation_has_no_read_actions(db: Session, net: Net) -> None:
    """The read's cells are guarded by kind: on a clinical consultation in the same state,
    the lead gets 409, and a read route does not even find it (404)."""
    for t in wf.TRANSITIONS:
        if t.action in wf.READ_ACTIONS and t.source != "preliminary":
            c = reach(db, net, t.source)
            with pytest.raises(XietongError) as caught:
                wf.WORKFLOW.apply(t.source, t.action, t.roles, guard_context(db, c))
            assert caught.value.status == 409, t.action


@pytest.mark.parametrize("state", CLINICAL_STATES)
def test_everything_outside_the_table_is_409(db: Session, net: Net, state: str) -> None:
    actions = [a for a in wf.WORKFLOW.actions if a != "expire" and a not in wf.READ_ACTIONS]
    for mode in ("async", "live") if state == "accepted" else (_mode(state, ""),):
        c = reach(db, net, state, mode=mode)
        for action in actions:
            t = wf.WORKFLOW.find(state, action)
            who = "viewer"  # sees every state and holds no part: the state decides first
            if t is not None:
                if t.guard is None or t.guard(guard_context(db, c)) is None:
                    continue
                who = ACTORS[sorted(t.roles)[0]]  # in the table, but its rule refuses
            assert _status(db, net, who, action, c.id) == 409, (state, mode, action)
        db.refresh(c)
        assert c.state == state
    if state not in ("submitted", "resubmitted"):
        with pytest.raises(XietongError) as caught:
            wf.WORKFLOW.apply(state, "expire", {wf.SYSTEM})
        assert caught.value.status == 409

"""Every cell of the three transition tables (up, exam, down): each allowed part succeeds;
a user who sees the referral without the part gets 403; users who may not see it get 404;
every (state, action) outside the table gets 409."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest
from sqlalchemy.orm import Session

from tests.referral.conftest import NOW, SETTINGS, Net, after_start, exam_document, reach
from xietong.core import clock
from xietong.core.errors import XietongError
from xietong.core.workflow import Transition
from xietong.referral import service as svc
from xietong.referral import workflow as wf
from xietong.referral.models import STATES, ReferralHistory
from xietong.referral.schemas import AcceptIn, DecisionIn, ExamReportIn, ResubmitIn

# Who plays each part, per kind (a down-referral's receiving side is the village).
ACTORS = {
    "up": {wf.SENDER: "sender", wf.DESK: "desk", wf.CLINICIAN: "clinician"},
    "exam": {wf.SENDER: "sender", wf.DESK: "desk", wf.CLINICIAN: "radiologist"},
    "down": {wf.SENDER: "county_doctor", wf.DESK: "village_desk", wf.CLINICIAN: "sender"},
}
VIEWERS = ("sender", "village_desk", "desk", "clinician", "radiologist", "county_doctor")
UNRELATED = ("other_doctor", "other_desk", "city_desk", "platform")
CELLS = [
    pytest.param(kind, t, id=f"{kind}:{t.source}-{t.action}")
    for kind, flow in wf.WORKFLOWS.items()
    for t in flow.transitions
]


def _do(db: Session, n: Net, who: str, action: str, rid: int) -> None:
    p = n.p[who]
    calls: dict[str, Callable[[], object]] = {
        "accept": lambda: svc.accept(db, p, rid, AcceptIn()),
        "return": lambda: svc.simple_action(db, p, rid, "return", "请补充"),
        "reject": lambda: svc.simple_action(db, p, rid, "reject", "不收"),
        "cancel": lambda: svc.simple_action(db, p, rid, "cancel", ""),
        "resubmit": lambda: svc.resubmit(db, p, rid, ResubmitIn(note="补充"), SETTINGS),
        "check_in": lambda: svc.check_in(db, p, rid),
        "no_show": lambda: svc.simple_action(db, p, rid, "no_show", ""),
        "start": lambda: svc.simple_action(db, p, rid, "start", ""),
        "complete": lambda: svc.simple_action(db, p, rid, "complete", ""),
        "report": lambda: svc.attach_report(
            db, p, rid, ExamReportIn(document_id=n.extra["document"])
        ),
        "decide": lambda: svc.decide(
            db, p, rid, DecisionIn(decision="stay", note="随访"), SETTINGS
        ),
    }
    calls[action]()


def _status(db: Session, n: Net, who: str, action: str, rid: int) -> int:
    try:
        _do(db, n, who, action, rid)
    except XietongError as exc:
        return exc.status
    return 200


def _prepare(db: Session, n: Net, kind: str, state: str, action: str = "") -> int:
    clock.set_clock(lambda: NOW)
    r = reach(db, n, kind, state)
    if action == "no_show":
        after_start()
    if kind == "exam" and state == "arrived":
        n.extra["document"] = exam_document(db, n)
    return r.id


@pytest.mark.parametrize(("kind", "t"), CELLS)
def test_cell(db: Session, net: Net, kind: str, t: Transition) -> None:
    actors = ACTORS[kind]
    if t.action == "expire":
        rid = _prepare(db, net, kind, t.source)
        run = svc.run_deadlines(db, SETTINGS, NOW + timedelta(days=4))
        assert rid in run.expired
        assert (
            svc.get_referral(
                db, net.p["desk"] if kind != "down" else net.p["sender"], rid
            ).referral.state
            == "expired"
        )
        return
    for role in sorted(t.roles - {wf.SYSTEM}):
        rid = _prepare(db, net, kind, t.source, t.action)
        assert _status(db, net, actors[role], t.action, rid) == 200, role
        r = svc.get_referral(db, net.p[actors[role]], rid).referral
        assert r.state == t.target
        last = db.query(ReferralHistory).filter_by(referral_id=rid).all()[-1]
        assert (last.action, last.from_state, last.to_state) == (t.action, t.source, t.target)
    rid = _prepare(db, net, kind, t.source, t.action)
    # Users who see it without the part: 403.
    for who in VIEWERS:
        referral = svc.get_referral(db, net.p[actors[wf.SENDER]], rid).referral
        parts = svc.parts_of(net.p[who], referral)
        if parts and not parts & t.roles:
            assert _status(db, net, who, t.action, rid) == 403, who
    # Users who may not see it: 404.
    for who in UNRELATED:
        assert _status(db, net, who, t.action, rid) == 404, who
    referral = svc.get_referral(db, net.p[actors[wf.SENDER]], rid).referral
    assert referral.state == t.source


STATE_CASES = [
    pytest.param(kind, state, id=f"{kind}:{state}")
    for kind, states in (
        (
            "up",
            (
                "requested",
                "returned",
                "accepted",
                "arrived",
                "in_treatment",
                "completed",
                "rejected",
                "cancelled",
                "expired",
                "no_show",
            ),
        ),
        (
            "exam",
            (
                "requested",
                "returned",
                "accepted",
                "arrived",
                "reported",
                "completed",
                "rejected",
                "cancelled",
                "expired",
                "no_show",
            ),
        ),
        ("down", ("requested", "accepted", "completed", "rejected", "cancelled", "expired")),
    )
    for state in states
]


@pytest.mark.parametrize(("kind", "state"), STATE_CASES)
def test_everything_outside_the_table_is_409(db: Session, net: Net, kind: str, state: str) -> None:
    flow = wf.WORKFLOWS[kind]
    actors = ACTORS[kind]
    rid = _prepare(db, net, kind, state)
    net.extra.setdefault("document", exam_document(db, net) if kind == "exam" else 0)
    for action in flow.actions:
        if action == "expire":
            continue
        t = flow.find(state, action)
        if t is not None:
            continue
        # The viewer at the sending institution sees every state and the state decides first.
        who = "village_desk" if kind != "down" else "clinician"
        assert _status(db, net, who, action, rid) == 409, (kind, state, action)
        for role, user in actors.items():
            assert _status(db, net, user, action, rid) == 409, (kind, state, action, role)
    referral = svc.get_referral(db, net.p[actors[wf.SENDER]], rid).referral
    assert referral.state == state
    assert state in STATES

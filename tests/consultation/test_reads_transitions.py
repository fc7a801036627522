"""Every cell the imaging read adds to the consultation's transition table: each allowed
part succeeds; a user who sees the read without the part gets 403; users who may not see
it get 404; the action in any other state is a 409."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.consultation.reads_world import REPORT, Reads, reach_read
from xietong.consultation import workflow as wf
from xietong.consultation.models import ConsultationHistory, ConsultationReadReport
from xietong.consultation.read_schemas import ReadAmendIn, SignOffIn
from xietong.consultation.service import read_reports, reads
from xietong.core.errors import XietongError
from xietong.core.workflow import Transition
from xietong.imaging.models import ImagingInstance

ACTORS = {wf.LEAD: "rad_junior", wf.SENIOR: "rad_senior"}
VISIBLE = ("applicant", "viewer", "village_rad", "coordinator", "rad_junior", "rad_senior")
UNRELATED = ("other_doctor", "other_coordinator", "rad_other", "county_doctor")
CELLS = [
    pytest.param(t, id=f"{t.source}-{t.action}")
    for t in wf.TRANSITIONS
    if t.action in wf.READ_ACTIONS
]
REACHABLE = ("draft", "submitted", "accepted", "in_progress", "preliminary", "report_signed")


def _do(db: Session, rw: Reads, who: str, action: str, rid: int) -> None:
    p = rw.p[who]
    amend = ReadAmendIn(**REPORT.model_dump(), reason="补充")
    calls: dict[str, Callable[[], object]] = {
        "sign_preliminary": lambda: read_reports.sign_preliminary(db, p, rid, REPORT),
        "finalise": lambda: read_reports.finalise(db, p, rid, SignOffIn(), rw.archive),
        "countersign": lambda: read_reports.countersign(db, p, rid, SignOffIn(), rw.archive),
        "amend_read": lambda: read_reports.amend_read(db, p, rid, amend, rw.archive),
    }
    calls[action]()


def _status(db: Session, rw: Reads, who: str, action: str, rid: int) -> int:
    try:
        _do(db, rw, who, action, rid)
    except XietongError as exc:
        db.rollback()
        return exc.status
    return 200


@pytest.mark.parametrize("t", CELLS)
def test_cell(db: Session, rw: Reads, t: Transition) -> None:
    for role in sorted(t.roles):
        rid = reach_read(db, rw, t.source).id
        assert _status(db, rw, ACTORS[role], t.action, rid) == 200, role
        c = reads.get_read(db, rw.p["applicant"], rid).consultation
        assert c.state == t.target
        last = db.scalars(
            select(ConsultationHistory)
            .where(ConsultationHistory.consultation_id == rid)
            .order_by(ConsultationHistory.id.desc())
        ).first()
        assert last is not None
        assert (last.action, last.from_state, last.to_state) == (t.action, t.source, t.target)
    rid = reach_read(db, rw, t.source).id
    db.commit()
    for who in VISIBLE:
        c = reads.get_read(db, rw.p["applicant"], rid).consultation
        parts, _ = reads.parts_of(db, rw.p[who], c)
        assert parts, who
        if not parts & t.roles:
            assert _status(db, rw, who, t.action, rid) == 403, who
    for who in UNRELATED:
        assert _status(db, rw, who, t.action, rid) == 404, who
    assert reads.get_read(db, rw.p["applicant"], rid).consultation.state == t.source


@pytest.mark.parametrize("state", REACHABLE)
def test_read_actions_in_other_states_are_409(db: Session, rw: Reads, state: str) -> None:
    rid = reach_read(db, rw, state).id
    db.commit()
    for action in sorted(wf.READ_ACTIONS):
        t = wf.WORKFLOW.find(state, action)
        if t is not None:
            continue
        # The applicant sees every state and holds no read part: the state decides first.
        assert _status(db, rw, "applicant", action, rid) == 409, (state, action)
        if state != "draft":
            who = "rad_senior" if action == "countersign" else "rad_junior"
            assert _status(db, rw, who, action, rid) == 409, (state, action)
    assert reads.get_read(db, rw.p["applicant"], rid).consultation.state == state


def test_the_author_does_not_countersign(db: Session, rw: Reads) -> None:
    """A senior radiologist who signed the preliminary report finalises it; the
    countersignature is another radiologist's (403 ``own_report``)."""
    rid = reach_read(db, rw, "in_progress").id
    read_reports.sign_preliminary(db, rw.p["rad_junior"], rid, REPORT)
    db.commit()
    assert _status(db, rw, "rad_junior", "countersign", rid) == 403


def test_amendment_is_a_new_final_version_with_its_own_sr(db: Session, rw: Reads) -> None:
    rid = reach_read(db, rw, "report_signed").id
    _do(db, rw, "rad_junior", "amend_read", rid)
    rows = db.scalars(
        select(ConsultationReadReport)
        .where(ConsultationReadReport.consultation_id == rid)
        .order_by(ConsultationReadReport.version)
    ).all()
    assert [(r.version, r.status) for r in rows] == [(1, "final"), (2, "amended")]
    assert rows[1].amended_from_id == rows[0].id
    assert rows[0].sr_sop_instance_uid
    assert rows[1].sr_sop_instance_uid not in ("", rows[0].sr_sop_instance_uid)
    assert rows[0].content_sha256 != rows[1].content_sha256


def test_a_lost_study_file_refuses_the_sign_off(db: Session, rw: Reads) -> None:
    """No final report without its SR: the study's first file is gone, the countersign is
    a 409 naming the shared study, and the read stays preliminary."""
    rid = reach_read(db, rw, "preliminary").id
    db.commit()
    first = db.scalars(
        select(ImagingInstance)
        .where(ImagingInstance.study_id == rw.study.id)
        .order_by(ImagingInstance.id)
    ).first()
    assert first is not None
    first.blob_key = "0" * 64
    db.commit()
    with pytest.raises(XietongError) as caught:
        _do(db, rw, "rad_senior", "countersign", rid)
    assert (caught.value.status, caught.value.code) == (409, "sr_not_stored")
    db.rollback()
    assert reads.get_read(db, rw.p["applicant"], rid).consultation.state == "preliminary"

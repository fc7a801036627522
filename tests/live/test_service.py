"""Video session rules through the services: creation, the workflow (allowed, wrong role
403, unrelated 404, wrong state 409), joining, the lobby and links, the mesh cap,
attendance and its audit rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.live.conftest import LIVE, NOW, Net, audits, make_session, subject
from xietong.config import LiveSettings
from xietong.consultation.models import Consultation
from xietong.core import clock
from xietong.core.errors import Conflict, Forbidden, Invalid, NotFound
from xietong.live import jobs, lobby, presence
from xietong.live import service as svc
from xietong.live.models import LiveAdmission, LiveAttendance, LiveLink, LiveSession
from xietong.live.schemas import InstantIn, LinkIn, SessionIn


def join(
    db: Session, net: Net, who: str, session_id: int, peer: str, link: str | None = None
) -> presence.Joined | presence.Waiting:
    return presence.join(db, net.p[who], session_id, peer, LIVE, link)


# Creation --------------------------------------------------------------------------------


def test_instant_session_is_open_and_audited(db: Session, net: Net, consult: Consultation) -> None:
    opened = make_session(db, net, consult)
    live = opened.live
    assert live.state == "open"
    assert live.opened_at == NOW
    assert live.mode == "mesh"
    assert live.host_user_id == net.p["applicant"].uid
    assert live.patient_id == consult.patient_id
    assert opened.is_host
    (row,) = audits(db, "live.create", object_kind="live_session", object_id=str(live.id))
    assert f'"subject": "consultation:{consult.id}"' in row.detail


def test_scheduled_session_waits_and_opens_near_its_start(
    db: Session, net: Net, consult: Consultation
) -> None:
    live = make_session(db, net, consult, "coordinator", scheduled=True).live
    assert live.state == "scheduled"
    # A participant may not open it two hours early; the host may.
    with pytest.raises(Conflict) as error:
        join(db, net, "expert_b", live.id, "p-b")
    assert error.value.code == "guard_failed"
    clock.set_clock(lambda: NOW + timedelta(hours=1, minutes=50))
    joined = join(db, net, "expert_b", live.id, "p-b")
    assert isinstance(joined, presence.Joined)
    assert live.state == "open"
    assert audits(db, "live.open", object_id=str(live.id))


def test_instant_reuses_the_open_session(db: Session, net: Net, consult: Consultation) -> None:
    first, created = svc.instant_session(
        db, net.p["applicant"], InstantIn(**subject(consult)), LIVE
    )
    again, created_again = svc.instant_session(
        db, net.p["expert_b"], InstantIn(**subject(consult)), LIVE
    )
    assert created
    assert not created_again
    assert again.live.id == first.live.id
    assert not again.is_host


def test_creation_refusals(db: Session, net: Net, consult: Consultation) -> None:
    with pytest.raises(NotFound):
        make_session(db, net, consult, "other_doctor")
    assert audits(db, "live.create", outcome="denied")
    with pytest.raises(Forbidden) as error:
        make_session(db, net, consult, "viewer")  # sees it, takes no part
    assert error.value.code == "live_not_participant"
    with pytest.raises(Invalid) as too_large:
        make_session(db, net, consult, size=7)
    assert too_large.value.field == "size"
    janus = LiveSettings(sfu="janus")
    assert make_session(db, net, consult, size=20, settings=janus).live.mode == "janus"
    with pytest.raises(Invalid) as past:
        svc.create_session(
            db,
            net.p["applicant"],
            SessionIn(**subject(consult), scheduled_at=NOW - timedelta(minutes=1)),
            LIVE,
        )
    assert past.value.field == "scheduled_at"
    with pytest.raises(NotFound):
        svc.create_session(
            db, net.p["applicant"], SessionIn(subject_kind="nothing", subject_id="1"), LIVE
        )


# The workflow ------------------------------------------------------------------------------


def test_cancel_and_end_by_the_host(db: Session, net: Net, consult: Consultation) -> None:
    scheduled = make_session(db, net, consult, "applicant", scheduled=True).live
    svc.cancel(db, net.p["coordinator"], scheduled.id)  # a host of the subject
    assert scheduled.state == "cancelled"
    assert scheduled.ended_at == NOW
    live = make_session(db, net, consult).live
    join(db, net, "applicant", live.id, "p-app")
    svc.end(db, net.p["applicant"], live.id)
    assert live.state == "ended"
    row = db.execute(select(LiveAttendance)).scalar_one()
    assert row.left_at == NOW
    assert row.seconds == 0
    assert audits(db, "live.end", object_id=str(live.id))


@pytest.mark.parametrize("action", ["cancel", "end"])
def test_wrong_role_wrong_state_and_unrelated(
    db: Session, net: Net, consult: Consultation, action: str
) -> None:
    state = "scheduled" if action == "cancel" else "open"
    live = make_session(db, net, consult, "applicant", scheduled=state == "scheduled").live
    do = getattr(svc, action)
    with pytest.raises(Forbidden):
        do(db, net.p["expert_b"], live.id)  # a participant, not a host
    assert audits(db, f"live.{action}", outcome="denied")
    with pytest.raises(Forbidden):
        do(db, net.p["viewer"], live.id)
    for who in ("other_doctor", "other_coordinator", "county_doctor"):
        with pytest.raises(NotFound) as error:
            do(db, net.p[who], live.id)
        assert error.value.code == "live_session_not_found"
    with pytest.raises(NotFound):
        do(db, net.p["applicant"], 999_999)
    wrong = "end" if action == "cancel" else "cancel"
    with pytest.raises(Conflict) as conflict:
        getattr(svc, wrong)(db, net.p["applicant"], live.id)
    assert conflict.value.code == "transition_not_allowed"
    do(db, net.p["applicant"], live.id)
    with pytest.raises(Conflict):
        do(db, net.p["applicant"], live.id)


def test_reads_are_for_those_who_see_the_subject(
    db: Session, net: Net, consult: Consultation
) -> None:
    live = make_session(db, net, consult).live
    assert svc.get_session(db, net.p["viewer"], live.id).live.id == live.id
    assert [
        o.live.id for o in svc.list_sessions(db, net.p["expert_b"], *subject(consult).values())
    ] == [live.id]
    for who in ("other_doctor", "county_doctor"):
        with pytest.raises(NotFound):
            svc.get_session(db, net.p[who], live.id)
        with pytest.raises(NotFound):
            svc.list_sessions(db, net.p[who], "consultation", str(consult.id))
    assert audits(db, "live.read", outcome="denied")


# Joining, the lobby, links -----------------------------------------------------------------


def test_participants_join_directly_and_see_each_other(
    db: Session, net: Net, consult: Consultation
) -> None:
    live = make_session(db, net, consult).live
    first = join(db, net, "applicant", live.id, "p-1")
    second = join(db, net, "expert_a", live.id, "p-2")
    assert isinstance(first, presence.Joined)
    assert isinstance(second, presence.Joined)
    assert first.peers == []
    assert first.is_host
    assert [p["peer"] for p in second.peers] == ["p-1"]
    assert second.is_host
    third = join(db, net, "expert_b", live.id, "p-3")
    assert isinstance(third, presence.Joined)
    assert not third.is_host
    assert len(audits(db, "live.join", object_kind="live_session", object_id=str(live.id))) == 3


def test_unrelated_users_get_404_on_join(db: Session, net: Net, consult: Consultation) -> None:
    live = make_session(db, net, consult).live
    for who in ("other_doctor", "other_expert", "county_doctor"):
        with pytest.raises(NotFound) as error:
            join(db, net, who, live.id, "p-x")
        assert error.value.code == "live_session_not_found"
        with pytest.raises(NotFound):
            join(db, net, who, live.id, "p-x", link="A" * 43)  # no such link
    assert db.execute(select(LiveAdmission)).first() is None
    assert audits(db, "live.join", outcome="denied")


def test_guest_link_lobby_admit_and_refuse(db: Session, net: Net, consult: Consultation) -> None:
    live = make_session(db, net, consult).live
    link, token = lobby.create_link(db, net.p["applicant"], live.id, LinkIn(label="外院专家"), LIVE)
    stored = db.get(LiveLink, link.id)
    assert stored is not None
    assert token not in stored.token_sha256
    assert len(stored.token_sha256) == 64
    assert link.expires_at == NOW + timedelta(hours=24)
    waiting = join(db, net, "other_expert", live.id, "p-g", token)
    assert isinstance(waiting, presence.Waiting)
    assert waiting.created
    assert [w["user_id"] for w in waiting.waiting] == [net.p["other_expert"].uid]
    again = join(db, net, "other_expert", live.id, "p-g", token)
    assert isinstance(again, presence.Waiting)
    assert not again.created
    with pytest.raises(Forbidden):
        lobby.decide(db, net.p["expert_b"], live.id, net.p["other_expert"].uid, admit=True)
    with pytest.raises(NotFound):
        lobby.decide(db, net.p["other_doctor"], live.id, net.p["other_expert"].uid, admit=True)
    lobby.decide(db, net.p["expert_a"], live.id, net.p["other_expert"].uid, admit=True)
    joined = join(db, net, "other_expert", live.id, "p-g", token)
    assert isinstance(joined, presence.Joined)
    assert joined.guest
    assert not joined.is_host
    (admit_row,) = audits(
        db, "live.admit", object_kind="live_session", object_id=str(live.id), outcome="success"
    )
    assert str(net.p["other_expert"].uid) in admit_row.detail
    # Another guest is refused, and stays refused.
    assert isinstance(join(db, net, "other_doctor", live.id, "p-h", token), presence.Waiting)
    lobby.decide(db, net.p["applicant"], live.id, net.p["other_doctor"].uid, admit=False)
    with pytest.raises(Forbidden) as refused:
        join(db, net, "other_doctor", live.id, "p-h", token)
    assert refused.value.code == "live_refused"
    assert audits(db, "live.refuse", object_id=str(live.id))
    with pytest.raises(NotFound):  # nobody of that id waits
        lobby.decide(db, net.p["applicant"], live.id, net.p["expert_b"].uid, admit=True)


def test_a_viewer_of_the_subject_waits_without_a_link(
    db: Session, net: Net, consult: Consultation
) -> None:
    live = make_session(db, net, consult).live
    assert isinstance(join(db, net, "viewer", live.id, "p-v"), presence.Waiting)
    assert lobby.withdraw(db, live.id, net.p["viewer"].uid)
    assert lobby.waiting(db, live.id) == []


def test_links_expire_and_are_revoked(db: Session, net: Net, consult: Consultation) -> None:
    live = make_session(db, net, consult).live
    link, token = lobby.create_link(db, net.p["applicant"], live.id, LinkIn(), LIVE)
    with pytest.raises(Forbidden):
        lobby.create_link(db, net.p["expert_b"], live.id, LinkIn(), LIVE)
    with pytest.raises(NotFound):
        lobby.create_link(db, net.p["other_doctor"], live.id, LinkIn(), LIVE)
    assert lobby.session_of_token(db, token) == live.id
    assert lobby.session_of_token(db, "short") is None
    clock.set_clock(lambda: NOW + timedelta(hours=24))
    with pytest.raises(NotFound) as expired:
        join(db, net, "county_doctor", live.id, "p-c", token)
    assert expired.value.code == "live_link_expired"
    clock.set_clock(lambda: NOW)
    lobby.revoke_link(db, net.p["coordinator"], live.id, link.id)
    with pytest.raises(NotFound) as revoked:
        join(db, net, "county_doctor", live.id, "p-c", token)
    assert revoked.value.code == "live_link_revoked"
    other = make_session(db, net, consult).live
    with pytest.raises(NotFound) as elsewhere:  # a link of another session
        join(db, net, "county_doctor", other.id, "p-c", token)
    assert elsewhere.value.code == "live_session_not_found"
    with pytest.raises(NotFound):
        lobby.revoke_link(db, net.p["applicant"], other.id, link.id)
    assert audits(db, "live.link_revoke", object_id=str(live.id))


def test_mesh_cap_and_janus_without(db: Session, net: Net, consult: Consultation) -> None:
    small = LiveSettings(mesh_max_participants=2)
    live = make_session(db, net, consult).live
    presence.join(db, net.p["applicant"], live.id, "p-1", small)
    presence.join(db, net.p["expert_a"], live.id, "p-2", small)
    with pytest.raises(Conflict) as full:
        presence.join(db, net.p["expert_b"], live.id, "p-3", small)
    assert full.value.code == "live_full"
    presence.leave(db, net.p["expert_a"], live.id, "p-2")
    presence.join(db, net.p["expert_b"], live.id, "p-3", small)
    live.mode = "janus"
    presence.join(db, net.p["coordinator"], live.id, "p-4", small)


def test_ended_or_cancelled_sessions_cannot_be_joined(
    db: Session, net: Net, consult: Consultation
) -> None:
    live = make_session(db, net, consult).live
    svc.end(db, net.p["applicant"], live.id)
    with pytest.raises(Conflict) as error:
        join(db, net, "expert_b", live.id, "p-b")
    assert error.value.code in ("live_not_open", "transition_not_allowed")


# Attendance --------------------------------------------------------------------------------


def test_attendance_rows_and_durations(db: Session, net: Net, consult: Consultation) -> None:
    live = make_session(db, net, consult).live
    join(db, net, "applicant", live.id, "p-1")
    clock.set_clock(lambda: NOW + timedelta(minutes=5))
    join(db, net, "expert_b", live.id, "p-2")
    clock.set_clock(lambda: NOW + timedelta(minutes=10))
    assert presence.leave(db, net.p["applicant"], live.id, "p-1") == 600
    assert presence.leave(db, net.p["applicant"], live.id, "p-1") is None
    join(db, net, "applicant", live.id, "p-1")  # a rejoin is a new row
    clock.set_clock(lambda: NOW + timedelta(minutes=12))
    report = presence.attendance(db, net.p["coordinator"], live.id)
    assert len(report["rows"]) == 3
    assert report["totals"][str(net.p["applicant"].uid)] == 600 + 120
    assert report["totals"][str(net.p["expert_b"].uid)] == 420
    assert audits(db, "live.leave", object_id=str(live.id))
    with pytest.raises(Forbidden):
        presence.attendance(db, net.p["expert_b"], live.id)
    with pytest.raises(NotFound):
        presence.attendance(db, net.p["other_doctor"], live.id)


def test_cleanup_closes_stale_rows_and_idle_sessions(
    db: Session, net: Net, consult: Consultation
) -> None:
    live = make_session(db, net, consult).live
    scheduled = make_session(db, net, consult, scheduled=True).live
    join(db, net, "applicant", live.id, "p-1")
    join(db, net, "expert_b", live.id, "p-2")
    clock.set_clock(lambda: NOW + timedelta(minutes=2))
    svc.mark_seen(db, ["p-2"])
    run = jobs.run_cleanup(db, NOW + timedelta(minutes=4))
    assert len(run.closed_rows) == 1  # p-1 stopped beating at NOW; p-2 beat at +2
    row = db.execute(select(LiveAttendance).where(LiveAttendance.peer_id == "p-1")).scalar_one()
    assert row.left_at == NOW
    assert row.seconds == 0
    run = jobs.run_cleanup(db, NOW + timedelta(minutes=40))
    assert run.closed_sessions == [live.id]
    db.refresh(live)
    assert live.state == "ended"
    run = jobs.run_cleanup(db, NOW + timedelta(days=2))
    assert run.expired_sessions == [scheduled.id]
    assert db.get(LiveSession, scheduled.id).state == "cancelled"  # type: ignore[union-attr]
    assert audits(db, "live.close")
    assert audits(db, "live.expire")

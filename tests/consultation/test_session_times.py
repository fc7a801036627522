"""Proposed live-session times: the overlap of every assigned expert's weekly hours (China
time, across the week wrap), less their other live sessions, from the lead time to the
report deadline; the best partial slots when nothing suits everyone; who may ask; the API's
bounds; the schedule form's choices.

The clock is frozen on Friday 2026-11-20, 12:00 China time; a routine request submitted
then is due on Sunday 2026-11-22, 12:00."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import delete
from sqlalchemy.orm import Session

from tests.consultation.conftest import NOW, SETTINGS, Net, audits, create, reach
from tests.consultation.test_pages import _as, _post
from xietong.config import ConsultationSettings
from xietong.consultation import service as svc
from xietong.consultation.models import Consultation
from xietong.consultation.schemas import AcceptIn, ScheduleIn
from xietong.consultation.service.availability import CHINA
from xietong.core import clock
from xietong.core.errors import Invalid
from xietong.core.validation import as_utc
from xietong.directory.models import ExpertAvailability

API = "/api/v1/consultations"
MON, FRI, SAT, SUN = 0, 4, 5, 6


def hours(db: Session, practitioner_id: int, *windows: tuple[int, time, time]) -> None:
    """Replace the expert's weekly windows: (weekday, start, end), China time."""
    db.execute(
        delete(ExpertAvailability).where(ExpertAvailability.practitioner_id == practitioner_id)
    )
    for weekday, start, end in windows:
        db.add(
            ExpertAvailability(
                practitioner_id=practitioner_id, weekday=weekday, start_time=start, end_time=end
            )
        )
    db.flush()


def china(text: str) -> datetime:
    """A China-time ``YYYY-MM-DDTHH:MM`` as UTC."""
    return datetime.fromisoformat(text).replace(tzinfo=CHINA).astimezone(UTC)


def local(moment: datetime) -> str:
    return moment.astimezone(CHINA).strftime("%Y-%m-%dT%H:%M")


def propose(db: Session, n: Net, c: Consultation, who: str = "coordinator", **kw: Any) -> Any:
    return svc.propose_session_times(db, n.p[who], c.id, kw.pop("settings", SETTINGS), **kw)


def starts(result: svc.SessionTimes) -> list[str]:
    return [local(s.start) for s in result.slots]


def live(db: Session, n: Net, experts: tuple[str, ...] = ("a", "b"), lead: str = "a") -> Any:
    """A live consultation accepted with ``experts``."""
    c = create(db, n, submit=True, mode="live")
    body = AcceptIn(experts=[n.experts[e] for e in experts], lead=n.experts[lead])
    svc.accept(db, n.p["coordinator"], c.id, body)
    return c


def test_only_the_overlap_of_every_experts_hours_is_proposed(db: Session, net: Net) -> None:
    c = live(db, net)
    a, b = net.experts["a"], net.experts["b"]
    # Both sit on Saturday morning; each also has hours the other lacks.
    hours(db, a, (FRI, time(14), time(16)), (SAT, time(9), time(12)), (MON, time(8), time(12)))
    hours(db, b, (FRI, time(9), time(12)), (SAT, time(9), time(11)), (SUN, time(9), time(11)))
    result = propose(db, net, c)
    assert starts(result) == ["2026-11-21T09:00", "2026-11-21T09:30", "2026-11-21T10:00"]
    first = result.slots[0]
    assert first.start == china("2026-11-21T09:00") == datetime(2026, 11, 21, 1, 0, tzinfo=UTC)
    assert first.start.utcoffset() == timedelta(0)
    assert first.end - first.start == timedelta(minutes=60)
    assert not first.partial
    assert first.missing == []
    assert [(e.name, e.is_lead) for e in first.free] == [("张主任", True), ("李主任", False)]
    assert result.until == as_utc(c.report_deadline)  # Sunday noon: Monday is past it
    # An assigned expert may ask too; a longer session fits once, a limit cuts the list.
    assert starts(propose(db, net, c, "expert_b")) == starts(result)
    assert starts(propose(db, net, c, duration_minutes=120)) == ["2026-11-21T09:00"]
    assert starts(propose(db, net, c, limit=2)) == ["2026-11-21T09:00", "2026-11-21T09:30"]
    assert audits(db, "consultation.session_times", outcome="success", object_id=str(c.id))


def test_slots_start_on_the_half_hour_after_the_lead_time(db: Session, net: Net) -> None:
    clock.set_clock(lambda: NOW + timedelta(minutes=10))  # Friday 12:10 in China
    c = live(db, net)
    for key in ("a", "b"):
        hours(db, net.experts[key], (FRI, time(12), time(15)))
    result = propose(db, net, c)  # 12:10 + 30 minutes, on to the next half hour
    assert starts(result) == ["2026-11-20T13:00", "2026-11-20T13:30", "2026-11-20T14:00"]
    assert result.earliest == china("2026-11-20T13:00")
    no_lead = propose(db, net, c, settings=ConsultationSettings(session_lead_minutes=0))
    assert starts(no_lead)[0] == "2026-11-20T12:30"


def test_the_week_wraps_in_china_time(db: Session, net: Net) -> None:
    # Sunday 20:00 in China (12:00 UTC): Monday 00:00 in China is still Sunday in UTC.
    clock.set_clock(lambda: datetime(2026, 11, 22, 12, 0, tzinfo=UTC))
    c = live(db, net)
    for key in ("a", "b"):
        hours(db, net.experts[key], (SUN, time(22), time(23, 59)), (MON, time(0), time(2)))
    result = propose(db, net, c, limit=10)
    assert starts(result) == [
        "2026-11-22T22:00",
        "2026-11-22T22:30",
        "2026-11-22T23:00",  # a window ending at 23:59 runs to midnight
        "2026-11-22T23:30",  # and on into Monday's
        "2026-11-23T00:00",
        "2026-11-23T00:30",
        "2026-11-23T01:00",
    ]
    assert result.slots[4].start == datetime(2026, 11, 22, 16, 0, tzinfo=UTC)


def test_another_live_session_of_one_expert_removes_overlapping_slots(
    db: Session, net: Net
) -> None:
    a, b = net.experts["a"], net.experts["b"]
    other = create(db, net, submit=True, mode="live")
    svc.accept(db, net.p["coordinator"], other.id, AcceptIn(experts=[b], lead=b))
    when = china("2026-11-21T10:00")
    svc.schedule(db, net.p["coordinator"], other.id, ScheduleIn(scheduled_at=when))
    c = live(db, net)
    hours(db, a, (SAT, time(9), time(12)))
    hours(db, b, (SAT, time(9), time(11)))
    # b's other session holds 10:00–11:00: only 09:00–10:00 is left (it ends as that begins).
    assert starts(propose(db, net, c)) == ["2026-11-21T09:00"]
    svc.start(db, net.p["expert_b"], other.id)  # going on, it holds the time still
    assert starts(propose(db, net, c)) == ["2026-11-21T09:00"]
    # Two hours suit nobody but the lead: partial slots say why b is missing.
    long = propose(db, net, c, duration_minutes=120)
    assert starts(long) == ["2026-11-21T09:00", "2026-11-21T09:30", "2026-11-21T10:00"]
    assert all(s.partial for s in long.slots)
    assert [(e.name, e.reason) for e in long.slots[0].missing] == [("李主任", "other_session")]
    assert [(e.name, e.reason) for e in long.slots[1].missing] == [("李主任", "outside_hours")]
    # The consultation's own session does not hold its experts.
    own = china("2026-11-21T09:00")
    svc.schedule(db, net.p["coordinator"], c.id, ScheduleIn(scheduled_at=own))
    assert starts(propose(db, net, c)) == ["2026-11-21T09:00"]


def test_without_a_common_window_the_best_partial_slots_name_who_is_missing(
    client: TestClient, db: Session, net: Net
) -> None:
    c = live(db, net, experts=("a", "b", "c"))
    hours(db, net.experts["a"], (SAT, time(9), time(12)))  # the lead
    hours(db, net.experts["b"], (SAT, time(10), time(11)))
    hours(db, net.experts["c"], (SUN, time(9), time(10)))
    db.commit()
    result = propose(db, net, c)
    # Most experts free first (a and b at 10:00), then the earliest; the lead always free.
    assert starts(result) == [
        "2026-11-21T10:00",
        "2026-11-21T09:00",
        "2026-11-21T09:30",
        "2026-11-21T10:30",
        "2026-11-21T11:00",
    ]
    assert all(s.partial and s.free[0].name == "张主任" for s in result.slots)
    assert [e.name for e in result.slots[0].missing] == ["王主任"]
    assert [e.name for e in result.slots[1].missing] == ["李主任", "王主任"]
    r = client.get(f"{API}/{c.id}/session-times", headers=net.tokens["coordinator"])
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["duration_minutes"] == 60
    first = body["slots"][0]
    assert (first["start"], first["end"], first["partial"]) == (
        "2026-11-21T02:00:00Z",
        "2026-11-21T03:00:00Z",
        True,
    )
    assert [e["name"] for e in first["free"]] == ["张主任", "李主任"]
    assert first["missing"] == [
        {
            "practitioner_id": net.experts["c"],
            "name": "王主任",
            "is_lead": False,
            "reason": "outside_hours",
        }
    ]
    # A lead with no hours: nothing to propose.
    hours(db, net.experts["a"])
    assert propose(db, net, c).slots == []


@pytest.mark.parametrize(
    ("mode", "state", "code", "field"),
    [
        ("async", "accepted", "not_live", "mode"),
        ("live", "submitted", "session_times_closed", "state"),
        ("live", "in_progress", "session_times_closed", "state"),
    ],
)
def test_only_a_live_consultation_accepted_or_scheduled(
    client: TestClient, db: Session, net: Net, mode: str, state: str, code: str, field: str
) -> None:
    c = reach(db, net, state, mode=mode)
    db.commit()
    r = client.get(f"{API}/{c.id}/session-times", headers=net.tokens["coordinator"])
    assert r.status_code == 409, r.text
    assert r.json()["error"]["code"] == code
    assert r.json()["error"]["field"] == field


@pytest.mark.parametrize("who", ["other_coordinator", "other_doctor", "other_expert"])
def test_outsiders_get_404_audited(client: TestClient, db: Session, net: Net, who: str) -> None:
    c = live(db, net)
    db.commit()
    r = client.get(f"{API}/{c.id}/session-times", headers=net.tokens[who])
    assert r.status_code == 404, r.text
    assert r.json()["error"]["code"] == "consultation_not_found"
    assert audits(db, "consultation.session_times", outcome="denied", object_id=str(c.id))


@pytest.mark.parametrize("who", ["applicant", "viewer"])
def test_the_requesting_side_gets_403(client: TestClient, db: Session, net: Net, who: str) -> None:
    c = live(db, net)
    db.commit()
    r = client.get(f"{API}/{c.id}/session-times", headers=net.tokens[who])
    assert r.status_code == 403, r.text
    assert r.json()["error"]["code"] == "role_not_allowed"
    assert audits(db, "consultation.session_times", outcome="denied", object_id=str(c.id))


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"duration": 14}, "duration"),
        ({"duration": 241}, "duration"),
        ({"duration": "an hour"}, "duration"),
        ({"limit": 0}, "limit"),
        ({"limit": 21}, "limit"),
        ({"limit": 5, "days": 3}, "days"),
    ],
)
def test_bad_query_parameters_name_the_field(
    client: TestClient, db: Session, net: Net, params: dict[str, Any], field: str
) -> None:
    c = live(db, net)
    db.commit()
    r = client.get(f"{API}/{c.id}/session-times", params=params, headers=net.tokens["coordinator"])
    assert r.status_code == 422, r.text
    assert r.headers["content-type"].startswith("application/json")
    assert r.json()["error"]["field"] == field
    ok = {"duration": 240, "limit": 20}
    good = client.get(f"{API}/{c.id}/session-times", params=ok, headers=net.tokens["coordinator"])
    assert good.status_code == 200, good.text


def test_the_service_checks_its_bounds_too(db: Session, net: Net) -> None:
    c = live(db, net)
    for kw, field in (({"duration_minutes": 241}, "duration"), ({"limit": 0}, "limit")):
        with pytest.raises(Invalid) as caught:
            propose(db, net, c, **kw)
        assert caught.value.field == field


def test_the_schedule_form_offers_the_proposals(db: Session, app: FastAPI, net: Net) -> None:
    c = live(db, net)
    hours(db, net.experts["a"], (SAT, time(9), time(12)))
    hours(db, net.experts["b"], (SAT, time(9), time(11)))
    db.commit()
    url = f"/consultations/{c.id}"
    coordinator = _as(app, "c_coord")
    page = coordinator.get(url).text
    assert 'name="proposed_at" value="2026-11-21T09:00"' in page
    assert "2026-11-21 星期六 09:00–10:00" in page
    assert 'value="2026-11-21T11:00"' not in page  # b leaves at 11:00
    # Choosing a proposal, the time input left empty, schedules it.
    done = _post(
        coordinator,
        f"{url}/schedule",
        page,
        {"proposed_at": "2026-11-21T09:30", "scheduled_at": ""},
    )
    assert done.status_code == 303, done.text
    db.refresh(c)
    assert c.state == "scheduled"
    assert c.scheduled_at is not None
    assert as_utc(c.scheduled_at) == datetime(2026, 11, 21, 1, 30, tzinfo=UTC)
    # The reschedule form offers them again; a typed time wins over a chosen one.
    page = coordinator.get(url).text
    assert f'action="{url}/reschedule"' in page
    assert 'name="proposed_at" value="2026-11-21T10:00"' in page
    typed = {"proposed_at": "2026-11-21T09:00", "scheduled_at": "2026-11-21T15:00"}
    assert _post(coordinator, f"{url}/reschedule", page, typed).status_code == 303
    db.refresh(c)
    assert c.scheduled_at is not None
    assert as_utc(c.scheduled_at) == china("2026-11-21T15:00")
    # Neither: the form again, naming the time input.
    refused = _post(coordinator, f"{url}/reschedule", page, {"scheduled_at": ""})
    assert refused.status_code == 422
    assert 'data-field="scheduled_at"' in refused.text


def test_the_form_says_who_a_partial_proposal_misses(db: Session, app: FastAPI, net: Net) -> None:
    c = live(db, net)
    hours(db, net.experts["a"], (SAT, time(9), time(11)))
    hours(db, net.experts["b"], (SUN, time(9), time(11)))
    db.commit()
    page = _as(app, "c_coord").get(f"/consultations/{c.id}").text
    assert 'name="proposed_at" value="2026-11-21T09:00"' in page
    proposals = page.split('class="session-times"', 1)[1].split("</fieldset>", 1)[0]
    assert "无法参加：李主任（不在其出诊时段）" in proposals
    assert "张主任" not in proposals  # the lead is always free

"""Proposed times for a live consultation's session, from the assigned experts' weekly
availability (docs/consultation.md, "Proposed session times").

A candidate starts on a half hour, no sooner than the lead time from now, and ends by the
report deadline (or within ``DEFAULT_HORIZON`` when there is none, or it has passed). It
suits an expert whose merged hours hold the whole of it and who has no other live session
(scheduled or in progress, taken to last as long) overlapping it. The earliest candidates
that suit every assigned expert are proposed; when none does, the best partial ones (most
experts free, the lead always among them), each naming who is missing and why.
"""

from __future__ import annotations

from bisect import bisect_right
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.config import ConsultationSettings
from xietong.consultation import workflow as wf
from xietong.consultation.models import Consultation, ConsultationAssignment
from xietong.consultation.service.availability import CHINA, Interval, open_hours
from xietong.consultation.service.common import open_consultation
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, Invalid
from xietong.core.validation import as_utc
from xietong.directory.models import ExpertAvailability, Practitioner

ACTION = "consultation.session_times"
STATES = ("accepted", "scheduled")
# Other sessions that hold an expert: live, scheduled or going on.
BUSY_STATES = ("scheduled", "in_progress")
STEP = timedelta(minutes=30)
DEFAULT_HORIZON = timedelta(days=14)
MAX_HORIZON = timedelta(days=31)
DEFAULT_DURATION = 60
MIN_DURATION, MAX_DURATION = 15, 240
DEFAULT_LIMIT = 5
MAX_PROPOSALS = 20
OUTSIDE_HOURS = "outside_hours"
OTHER_SESSION = "other_session"


@dataclass(frozen=True)
class SlotExpert:
    practitioner_id: int
    name: str
    is_lead: bool
    # Why a missing expert cannot come: outside their hours, or another live session.
    reason: str = ""


@dataclass(frozen=True)
class SessionSlot:
    start: datetime  # UTC
    end: datetime  # UTC
    partial: bool  # not every assigned expert is free
    free: list[SlotExpert]
    missing: list[SlotExpert]


@dataclass(frozen=True)
class SessionTimes:
    consultation_id: int
    duration_minutes: int
    earliest: datetime  # the first start considered (UTC)
    until: datetime  # every proposal ends by then (UTC)
    slots: list[SessionSlot]


@dataclass
class _Expert:
    ref: SlotExpert
    hours: list[Interval]
    starts: list[datetime]  # of ``hours``, for bisect
    busy: list[Interval]

    def in_hours(self, start: datetime, end: datetime) -> bool:
        index = bisect_right(self.starts, start) - 1
        return index >= 0 and self.hours[index][1] >= end

    def in_session(self, start: datetime, end: datetime) -> bool:
        return any(b_start < end and start < b_end for b_start, b_end in self.busy)

    def missing(self, start: datetime, end: datetime) -> str:
        """Why the expert cannot take this slot ("" when free)."""
        if not self.in_hours(start, end):
            return OUTSIDE_HOURS
        return OTHER_SESSION if self.in_session(start, end) else ""


def propose_session_times(
    session: Session,
    principal: Principal,
    consultation_id: int,
    settings: ConsultationSettings,
    *,
    duration_minutes: int = DEFAULT_DURATION,
    limit: int = DEFAULT_LIMIT,
) -> SessionTimes:
    """Session times for the coordinator of the receiving centre or an assigned expert
    (others who see the consultation: 403; who may not: 404), for a live consultation
    accepted or scheduled (409 otherwise). Audited."""
    _bounded(duration_minutes, MIN_DURATION, MAX_DURATION, "duration")
    _bounded(limit, 1, MAX_PROPOSALS, "limit")
    opened = open_consultation(
        session, principal, consultation_id, action=ACTION, audit_success=False
    )
    c = opened.consultation
    if not {wf.COORDINATOR, wf.EXPERT} & opened.roles:
        audit.record_denial(session, principal, ACTION, "consultation", c.id, reason="role")
        raise Forbidden(code="role_not_allowed", field=None)
    if c.mode != "live":
        raise Conflict(
            N_("Only a live consultation has a session to schedule."),
            code="not_live",
            field="mode",
        )
    if c.state not in STATES:
        raise Conflict(
            N_("Session times are proposed once the consultation is accepted, until it starts."),
            code="session_times_closed",
            field="state",
        )
    duration = timedelta(minutes=duration_minutes)
    current = as_utc(now())
    earliest = _next_step(current + timedelta(minutes=settings.session_lead_minutes))
    if earliest <= current:  # no lead time, and now is on the half hour
        earliest += STEP
    until = _until(c, earliest, duration)
    experts = _experts(session, c, earliest - duration, until, duration)
    slots = _slots(experts, earliest, until, duration, limit)
    audit.record(
        session,
        principal,
        ACTION,
        object_kind="consultation",
        object_id=c.id,
        detail={
            "duration": duration_minutes,
            "proposed": len(slots),
            "partial": any(s.partial for s in slots),
        },
    )
    return SessionTimes(c.id, duration_minutes, earliest, until, slots)


def _bounded(value: int, low: int, high: int, field: str) -> None:
    if value < low:
        raise Invalid(N_("This value is too small."), code="too_small", field=field)
    if value > high:
        raise Invalid(N_("This value is too large."), code="too_large", field=field)


def _next_step(moment: datetime) -> datetime:
    """The first half hour at or after ``moment`` (the same in UTC and China time)."""
    floor = moment.replace(minute=moment.minute - moment.minute % 30, second=0, microsecond=0)
    return floor if floor == moment else floor + STEP


def _until(c: Consultation, earliest: datetime, duration: timedelta) -> datetime:
    """The report deadline; ``DEFAULT_HORIZON`` from ``earliest`` when there is none or it
    leaves no room for a session (it has passed); never beyond ``MAX_HORIZON``."""
    deadline = as_utc(c.report_deadline) if c.report_deadline is not None else None
    if deadline is None or deadline < earliest + duration:
        deadline = earliest + DEFAULT_HORIZON
    return min(deadline, earliest + MAX_HORIZON)


def _experts(
    session: Session, c: Consultation, start: datetime, end: datetime, duration: timedelta
) -> list[_Expert]:
    """The assigned experts, the lead first, with their hours and other live sessions."""
    rows = session.execute(
        select(
            ConsultationAssignment.practitioner_id,
            ConsultationAssignment.is_lead,
            Practitioner.name,
        )
        .join(Practitioner, Practitioner.id == ConsultationAssignment.practitioner_id)
        .where(ConsultationAssignment.consultation_id == c.id)
        .order_by(ConsultationAssignment.is_lead.desc(), ConsultationAssignment.id)
    ).all()
    ids = [int(pid) for pid, _lead, _name in rows]
    windows: dict[int, list[ExpertAvailability]] = defaultdict(list)
    for row in session.execute(
        select(ExpertAvailability)
        .where(ExpertAvailability.practitioner_id.in_(ids))
        .order_by(ExpertAvailability.weekday, ExpertAvailability.start_time)
    ).scalars():
        windows[row.practitioner_id].append(row)
    busy: dict[int, list[Interval]] = defaultdict(list)
    for pid, at in session.execute(
        select(ConsultationAssignment.practitioner_id, Consultation.scheduled_at)
        .join(Consultation, Consultation.id == ConsultationAssignment.consultation_id)
        .where(
            ConsultationAssignment.practitioner_id.in_(ids),
            Consultation.id != c.id,
            Consultation.mode == "live",
            Consultation.state.in_(BUSY_STATES),
            Consultation.scheduled_at > start,
            Consultation.scheduled_at < end,
        )
    ):
        if at is not None:  # the WHERE leaves none out; for the type
            begins = as_utc(at)
            busy[int(pid)].append((begins, begins + duration))
    experts = []
    for pid, is_lead, name in rows:
        hours = open_hours(windows[int(pid)], start.astimezone(CHINA), end.astimezone(CHINA))
        experts.append(
            _Expert(
                SlotExpert(int(pid), str(name), bool(is_lead)),
                hours,
                [h[0] for h in hours],
                busy[int(pid)],
            )
        )
    return experts


def _slots(
    experts: list[_Expert], earliest: datetime, until: datetime, duration: timedelta, limit: int
) -> list[SessionSlot]:
    """The earliest ``limit`` slots that suit everyone; failing that, the best partial ones
    (most experts free, then earliest), each with the lead free."""
    if not experts:
        return []
    full: list[SessionSlot] = []
    partial: list[SessionSlot] = []
    start = earliest
    while start + duration <= until and len(full) < limit:
        end = start + duration
        reasons = [(e, e.missing(start, end)) for e in experts]
        free = [e.ref for e, why in reasons if not why]
        missing = [_with_reason(e.ref, why) for e, why in reasons if why]
        if not missing:
            full.append(SessionSlot(start, end, False, free, []))
        elif not full and any(f.is_lead for f in free):
            partial.append(SessionSlot(start, end, True, free, missing))
        start += STEP
    if full:
        return full
    partial.sort(key=lambda s: (-len(s.free), s.start))
    return partial[:limit]


def _with_reason(ref: SlotExpert, reason: str) -> SlotExpert:
    return SlotExpert(ref.practitioner_id, ref.name, ref.is_lead, reason)

"""The deadline job and the expert recommendation."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal, system_principal
from xietong.consultation import workflow as wf
from xietong.consultation.models import (
    OPEN_STATES,
    WAITING_STATES,
    Consultation,
    ConsultationAssignment,
)
from xietong.consultation.service.availability import CHINA, weekly_windows
from xietong.consultation.service.common import Opened, open_consultation, record_breach, transition
from xietong.core.clock import now as clock_now
from xietong.core.errors import Forbidden
from xietong.core.validation import as_utc
from xietong.directory.models import ExpertAvailability, Practitioner, PractitionerSpecialty

MAX_WINDOW_DAYS = 31


@dataclass
class DeadlineRun:
    expired: list[int] = field(default_factory=list)
    accept_breaches: list[int] = field(default_factory=list)
    report_breaches: list[int] = field(default_factory=list)


def expire_overdue(session: Session, at: datetime | None = None) -> DeadlineRun:
    """Expire requests not accepted by their deadline; record every breach (accept or
    report deadline passed) once, as a workflow event. Safe to run again."""
    current = as_utc(at) if at is not None else clock_now()
    system = system_principal("deadlines")
    roles = frozenset({wf.SYSTEM})
    run = DeadlineRun()
    waiting = session.execute(
        select(Consultation)
        .where(Consultation.state.in_(WAITING_STATES), Consultation.accept_deadline < current)
        .order_by(Consultation.id)
    ).scalars()
    for c in list(waiting):
        if record_breach(session, c, "accept", None):
            run.accept_breaches.append(c.id)
        transition(
            session,
            system,
            Opened(c, roles),
            "expire",
            values={"closed_at": current},
            roles=roles,
        )
        run.expired.append(c.id)
    late = session.execute(
        select(Consultation)
        .where(Consultation.state.in_(OPEN_STATES), Consultation.report_deadline < current)
        .order_by(Consultation.id)
    ).scalars()
    for c in list(late):
        if record_breach(session, c, "report", None):
            run.report_breaches.append(c.id)
    audit.record(
        session,
        system,
        "consultation.deadlines",
        detail={
            "expired": len(run.expired),
            "accept_breaches": len(run.accept_breaches),
            "report_breaches": len(run.report_breaches),
        },
    )
    return run


# Expert recommendation ------------------------------------------------------------------


@dataclass(frozen=True)
class Recommendation:
    practitioner_id: int
    name: str
    score: int
    specialty_match: bool
    available_windows: int
    open_load: int
    reasons: list[str]


def _windows(rows: list[ExpertAvailability], start: datetime, end: datetime) -> int:
    """Availability windows (weekly, China time) that overlap ``start`` to ``end`` (at
    most ``MAX_WINDOW_DAYS`` from ``start``)."""
    local_start = start.astimezone(CHINA)
    local_end = min(end, start + timedelta(days=MAX_WINDOW_DAYS)).astimezone(CHINA)
    return sum(
        1
        for begins, ends in weekly_windows(rows, local_start, local_end)
        if ends > local_start and begins < local_end
    )


def recommend_experts(
    session: Session, principal: Principal, consultation_id: int
) -> list[Recommendation]:
    """The centre's experts ranked for the coordinator: specialty match (+3), availability
    windows before the report deadline (+2 when any), open load (−1 per open assignment);
    each with the reasons for its place. Ties go by fewer open assignments, then id."""
    opened = open_consultation(session, principal, consultation_id, action="consultation.recommend")
    c = opened.consultation
    if wf.COORDINATOR not in opened.roles:
        audit.record_denial(
            session, principal, "consultation.recommend", "consultation", c.id, reason="role"
        )
        raise Forbidden(code="role_not_allowed", field=None)
    experts = list(
        session.execute(
            select(Practitioner)
            .where(
                Practitioner.institution_id == c.target_institution_id,
                Practitioner.is_expert.is_(True),
                Practitioner.is_active.is_(True),
            )
            .order_by(Practitioner.id)
        )
        .scalars()
        .unique()
    )
    rows = session.execute(
        select(ConsultationAssignment.practitioner_id, func.count())
        .join(Consultation, Consultation.id == ConsultationAssignment.consultation_id)
        .where(Consultation.state.in_(OPEN_STATES))
        .group_by(ConsultationAssignment.practitioner_id)
    ).all()
    loads: dict[int, int] = {int(pid): int(count) for pid, count in rows}
    current = clock_now()
    deadline = as_utc(c.report_deadline) if c.report_deadline else current + timedelta(days=2)
    ranked: list[Recommendation] = []
    for expert in experts:
        if expert.profile is not None and not expert.profile.accepts_requests:
            continue
        specialties = set(
            session.execute(
                select(PractitionerSpecialty.specialty).where(
                    PractitionerSpecialty.practitioner_id == expert.id
                )
            ).scalars()
        )
        if expert.department is not None and expert.department.specialty:
            specialties.add(expert.department.specialty)
        match = c.specialty in specialties
        windows = _windows(list(expert.availability), current, deadline)
        load = int(loads.get(expert.id, 0))
        reasons = [
            "specialty_match" if match else "specialty_other",
            f"available_windows:{windows}" if windows else "no_window_before_deadline",
            f"open_load:{load}",
        ]
        if c.target_practitioner_id == expert.id:
            reasons.insert(0, "named_by_applicant")
        score = (3 if match else 0) + (2 if windows else 0) - load
        score += 5 if c.target_practitioner_id == expert.id else 0
        ranked.append(Recommendation(expert.id, expert.name, score, match, windows, load, reasons))
    ranked.sort(key=lambda r: (-r.score, r.open_load, r.practitioner_id))
    return ranked

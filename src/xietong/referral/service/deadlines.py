"""The referral deadline job (``xietong jobs deadlines``): requests not answered in time
expire, patients who did not come by the end of their slot and the grace become no-shows,
and overdue follow-ups are flagged; every breach recorded once as a workflow event."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import system_principal
from xietong.config import ReferralSettings
from xietong.core.clock import now as clock_now
from xietong.core.validation import as_utc
from xietong.records.rules import local_date
from xietong.referral import slots
from xietong.referral import workflow as wf
from xietong.referral.models import FollowUp, Referral
from xietong.referral.service.common import Opened, record_breach, transition


@dataclass
class ReferralDeadlineRun:
    expired: list[int] = field(default_factory=list)
    no_shows: list[int] = field(default_factory=list)
    overdue_follow_ups: list[int] = field(default_factory=list)


def run_deadlines(
    session: Session, settings: ReferralSettings, at: datetime | None = None
) -> ReferralDeadlineRun:
    """Safe to run again: each referral moves once, each breach is recorded once."""
    current = as_utc(at) if at is not None else clock_now()
    system = system_principal("deadlines")
    roles = frozenset({wf.SYSTEM})
    run = ReferralDeadlineRun()
    waiting = session.execute(
        select(Referral)
        .where(Referral.state == "requested", Referral.accept_deadline < current)
        .order_by(Referral.id)
    ).scalars()
    for r in list(waiting):
        record_breach(session, r, "accept_deadline", None)
        booking = slots.active_booking(session, r.id)
        if booking is not None and booking.status == "booked":
            slots.release_booking(session, booking.id, actor_user_id=None)
        transition(
            session, system, Opened(r, roles), "expire", values={"closed_at": current}, roles=roles
        )
        run.expired.append(r.id)
    grace = timedelta(minutes=settings.no_show_grace_minutes)
    accepted = session.execute(
        select(Referral).where(Referral.state == "accepted").order_by(Referral.id)
    ).scalars()
    for r in list(accepted):
        booking = slots.active_booking(session, r.id)
        slot = slots.slot_of(session, booking.slot_id) if booking is not None else None
        if booking is None or slot is None or as_utc(slot.ends_at) + grace >= current:
            continue
        slots.mark_no_show(session, booking.id)
        transition(
            session, system, Opened(r, roles), "no_show", values={"closed_at": current}, roles=roles
        )
        run.no_shows.append(r.id)
    today = local_date(current)
    late = session.execute(
        select(FollowUp, Referral)
        .join(Referral, Referral.id == FollowUp.referral_id)
        .where(
            FollowUp.status == "planned", FollowUp.due_date < today, Referral.state == "accepted"
        )
        .order_by(FollowUp.id)
    ).all()
    for follow_up, r in late:
        if record_breach(
            session, r, f"follow_up:{follow_up.id}", None, {"due_date": str(follow_up.due_date)}
        ):
            run.overdue_follow_ups.append(follow_up.id)
    audit.record(
        session,
        system,
        "referral.deadlines",
        detail={
            "expired": len(run.expired),
            "no_shows": len(run.no_shows),
            "overdue_follow_ups": len(run.overdue_follow_ups),
        },
    )
    return run

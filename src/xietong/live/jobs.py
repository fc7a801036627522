"""The cleanup job (``xietong jobs live``, every few minutes):

* attendance rows whose socket stopped beating (its process was killed) are closed at
  their last heartbeat;
* an open session nobody has been in for its planned duration is closed (``close``);
* a scheduled session never opened, a day past its planned end, is cancelled (``expire``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xietong.access.principal import system_principal
from xietong.core.clock import now
from xietong.live import workflow as wf
from xietong.live.access import Opened
from xietong.live.models import LiveAttendance, LiveSession
from xietong.live.service import close_row, move

# A live socket beats every HEARTBEAT_SECONDS; three missed beats and its row is stale.
HEARTBEAT_SECONDS = 60
STALE_AFTER = timedelta(seconds=3 * HEARTBEAT_SECONDS)
EXPIRE_AFTER = timedelta(days=1)


@dataclass
class CleanupRun:
    closed_rows: list[int] = field(default_factory=list)
    closed_sessions: list[int] = field(default_factory=list)
    expired_sessions: list[int] = field(default_factory=list)


def close_stale_rows(session: Session, at: datetime) -> list[int]:
    rows = list(
        session.execute(
            select(LiveAttendance).where(
                LiveAttendance.left_at.is_(None), LiveAttendance.seen_at < at - STALE_AFTER
            )
        ).scalars()
    )
    for row in rows:
        close_row(row, row.seen_at)
    session.flush()
    return [r.id for r in rows]


def _last_presence(session: Session, live: LiveSession) -> datetime | None:
    present = session.execute(
        select(func.count())
        .select_from(LiveAttendance)
        .where(LiveAttendance.session_id == live.id, LiveAttendance.left_at.is_(None))
    ).scalar_one()
    if present:
        return None
    last = session.execute(
        select(func.max(LiveAttendance.left_at)).where(LiveAttendance.session_id == live.id)
    ).scalar_one()
    return last or live.opened_at or live.created_at


def run_cleanup(session: Session, at: datetime | None = None) -> CleanupRun:
    at = at or now()
    run = CleanupRun(closed_rows=close_stale_rows(session, at))
    system = system_principal("live-cleanup")
    roles = frozenset({wf.SYSTEM})
    for live in session.execute(select(LiveSession).where(LiveSession.state == "open")).scalars():
        last = _last_presence(session, live)
        if last is not None and last + timedelta(minutes=live.planned_minutes) < at:
            move(session, system, Opened(live, None), "close", roles)
            run.closed_sessions.append(live.id)
    scheduled = session.execute(select(LiveSession).where(LiveSession.state == "scheduled"))
    for live in scheduled.scalars():
        start = live.scheduled_at or live.created_at
        if start + timedelta(minutes=live.planned_minutes) + EXPIRE_AFTER < at:
            move(session, system, Opened(live, None), "expire", roles)
            run.expired_sessions.append(live.id)
    return run

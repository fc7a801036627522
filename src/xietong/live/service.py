"""Video sessions: creating (scheduled or instant) for a subject, listing a subject's
sessions, reading one, and the workflow moves (open, cancel, end). Joining, the lobby,
links and attendance are in :mod:`xietong.live.presence` and :mod:`xietong.live.lobby`.

Every creation, read and move is audited with the session and its subject; a user who may
not see the subject gets 404 (audited) on every one of them.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.access.subjects import participation
from xietong.config import LiveSettings
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, Invalid
from xietong.core.events import publish
from xietong.core.workflow import store_move
from xietong.identity.service import display_names
from xietong.live import workflow as wf
from xietong.live.access import OBJECT_KIND, Opened, open_session, parts_of, record
from xietong.live.models import LiveAttendance, LiveSession
from xietong.live.schemas import InstantIn, SessionIn

LIST_LIMIT = 100
EVENT_OVER = "live.over"


def session_url(session_id: int) -> str:
    return f"/live/{session_id}"


def _mode(settings: LiveSettings, size: int) -> str:
    if size <= settings.mesh_max_participants:
        return "mesh"
    if settings.sfu == "janus":
        return "janus"
    raise Invalid(
        N_("At most {count} people fit in a session without a media server."),
        code="live_too_large",
        field="size",
        params={"count": settings.mesh_max_participants},
    )


def create_session(
    session: Session, principal: Principal, data: SessionIn, settings: LiveSettings
) -> Opened:
    """A session of the subject, hosted by its creator; instant when no start is given."""
    part = participation(
        session, principal, data.subject_kind, data.subject_id, action="live.create"
    )
    if principal.user_id not in part.user_ids and not part.is_host:
        audit.record_denial(
            session, principal, "live.create", data.subject_kind, data.subject_id, reason="role"
        )
        raise Forbidden(
            N_("Only those who take part in it start its video sessions."),
            code="live_not_participant",
            field="subject_id",
        )
    if not part.can_post:
        raise Conflict(
            N_("This subject is closed: no new video session."),
            code="subject_closed",
            field="subject_id",
        )
    at = now()
    if data.scheduled_at is not None and data.scheduled_at < at:
        raise Invalid(N_("The start is in the past."), code="start_in_past", field="scheduled_at")
    instant = data.scheduled_at is None
    live = LiveSession(
        subject_kind=data.subject_kind,
        subject_id=data.subject_id,
        title=data.title or part.title,
        host_user_id=principal.uid,
        patient_id=part.patient_id,
        mode=_mode(settings, data.size),
        state="open" if instant else "scheduled",
        scheduled_at=data.scheduled_at,
        planned_minutes=data.planned_minutes,
        created_at=at,
        opened_at=at if instant else None,
    )
    session.add(live)
    session.flush()
    record(session, principal, "live.create", live, instant=instant, mode=live.mode)
    return Opened(live, part, parts_of(principal, live, part))


def instant_session(
    session: Session, principal: Principal, data: InstantIn, settings: LiveSettings
) -> tuple[Opened, bool]:
    """The subject's open session, or a new instant one (the "join video" button)."""
    part = participation(
        session, principal, data.subject_kind, data.subject_id, action="live.instant"
    )
    found = session.execute(
        select(LiveSession)
        .where(
            LiveSession.subject_kind == data.subject_kind,
            LiveSession.subject_id == data.subject_id,
            LiveSession.state == "open",
        )
        .order_by(LiveSession.id.desc())
        .limit(1)
    ).scalar_one_or_none()
    if found is not None:
        record(session, principal, "live.read", found)
        return Opened(found, part, parts_of(principal, found, part)), False
    body = SessionIn(subject_kind=data.subject_kind, subject_id=data.subject_id)
    return create_session(session, principal, body, settings), True


def list_sessions(
    session: Session, principal: Principal, subject_kind: str, subject_id: str
) -> list[Opened]:
    """The subject's sessions, newest first (audited as one read of the subject)."""
    part = participation(session, principal, subject_kind, subject_id, action="live.list")
    rows = list(
        session.execute(
            select(LiveSession)
            .where(LiveSession.subject_kind == subject_kind, LiveSession.subject_id == subject_id)
            .order_by(LiveSession.id.desc())
            .limit(LIST_LIMIT)
        ).scalars()
    )
    audit.record(
        session,
        principal,
        "live.list",
        object_kind=subject_kind[:32],
        object_id=subject_id,
        detail={"sessions": [r.id for r in rows], "patient_id": part.patient_id},
    )
    return [Opened(r, part, parts_of(principal, r, part)) for r in rows]


def get_session(session: Session, principal: Principal, session_id: int) -> Opened:
    return open_session(session, principal, session_id, action="live.read")


def open_peers(session: Session, session_id: int) -> list[LiveAttendance]:
    return list(
        session.execute(
            select(LiveAttendance)
            .where(LiveAttendance.session_id == session_id, LiveAttendance.left_at.is_(None))
            .order_by(LiveAttendance.id)
        ).scalars()
    )


def peers_out(session: Session, rows: list[LiveAttendance]) -> list[dict[str, Any]]:
    names = display_names(session, [r.user_id for r in rows])
    return [
        {
            "peer": r.peer_id,
            "user_id": r.user_id,
            "name": names.get(r.user_id, ""),
            "muted": r.muted,
            "camera_off": r.camera_off,
        }
        for r in rows
    ]


def session_out(session: Session, opened: Opened) -> dict[str, Any]:
    live = opened.live
    names = display_names(session, [live.host_user_id])
    part = opened.participation
    return {
        "id": live.id,
        "subject_kind": live.subject_kind,
        "subject_id": live.subject_id,
        "subject_title": part.title if part else "",
        "subject_url": part.url if part else "",
        "title": live.title,
        "host_user_id": live.host_user_id,
        "host_name": names.get(live.host_user_id, ""),
        "mode": live.mode,
        "state": live.state,
        "scheduled_at": live.scheduled_at,
        "planned_minutes": live.planned_minutes,
        "created_at": live.created_at,
        "opened_at": live.opened_at,
        "ended_at": live.ended_at,
        "is_host": opened.is_host,
        "url": session_url(live.id),
        "peers": peers_out(session, open_peers(session, live.id)),
    }


# Workflow moves ---------------------------------------------------------------------------


def move(
    session: Session,
    principal: Principal,
    opened: Opened,
    action: str,
    roles: frozenset[str] | None = None,
) -> LiveSession:
    live = opened.live
    at = now()
    ctx = wf.GuardContext(at=at, scheduled_at=live.scheduled_at, is_host=opened.is_host)
    try:
        step = wf.WORKFLOW.apply(live.state, action, roles or opened.parts, ctx)
    except Forbidden:
        audit.record_denial(
            session, principal, f"live.{action}", OBJECT_KIND, live.id, reason="role"
        )
        raise
    values: dict[str, Any] = {}
    if step.target == "open":
        values["opened_at"] = at
    if step.target in ("ended", "cancelled"):
        values["ended_at"] = at
        values["ended_by_user_id"] = principal.user_id
    store_move(session, live, step, values)
    if step.target == "ended":
        close_all(session, live.id, at)
    if step.target in ("ended", "cancelled"):
        # After the commit, the web layer tells the connected peers (live:<id>).
        publish(session, EVENT_OVER, session_id=live.id, state=step.target)
    record(session, principal, f"live.{action}", live, state=step.target)
    return live


def close_all(session: Session, session_id: int, at: Any) -> int:
    """Close every open attendance row of the session (it ended)."""
    rows = open_peers(session, session_id)
    for row in rows:
        close_row(row, at)
    session.flush()
    return len(rows)


def close_row(row: LiveAttendance, at: Any) -> None:
    row.left_at = max(at, row.joined_at)
    row.seconds = int((row.left_at - row.joined_at).total_seconds())


def cancel(session: Session, principal: Principal, session_id: int) -> LiveSession:
    opened = open_session(session, principal, session_id, action="live.cancel", audit_success=False)
    return move(session, principal, opened, "cancel")


def end(session: Session, principal: Principal, session_id: int) -> LiveSession:
    opened = open_session(session, principal, session_id, action="live.end", audit_success=False)
    return move(session, principal, opened, "end")


def mark_seen(session: Session, peer_ids: list[str]) -> None:
    """The heartbeat of live sockets: their open rows are still in use."""
    if peer_ids:
        session.execute(
            update(LiveAttendance)
            .where(LiveAttendance.peer_id.in_(peer_ids), LiveAttendance.left_at.is_(None))
            .values(seen_at=now())
            .execution_options(synchronize_session=False)
        )

"""Joining and leaving a video session, and what is recorded of it (attendance).

Joining asks the subject's participation rule again, every time:

* a participant of the subject joins directly (a scheduled session opens on the first
  join: at any time for a host, from 15 minutes before its start for the others);
* a signed-in user who is not a participant joins only with a valid link of the session
  (or, when they may see the subject without taking part in it, without one), and waits
  in the lobby until a host admits them;
* anyone else gets 404 (audited).

A mesh session holds at most XIETONG_LIVE_MESH_MAX_PARTICIPANTS (409 ``live_full``
beyond); a Janus session has no such cap. Each join is one attendance row, closed on leave
or when the socket closes; a heartbeat keeps ``seen_at`` fresh so that the cleanup job
(:mod:`xietong.live.jobs`) closes the rows a killed process left open.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.config import LiveSettings
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict
from xietong.identity.service import display_names
from xietong.live import lobby
from xietong.live import workflow as wf
from xietong.live.access import (
    Opened,
    not_found,
    open_session,
    parts_of,
    record,
    require_host,
    try_open,
)
from xietong.live.models import LiveAdmission, LiveAttendance, LiveSession
from xietong.live.service import close_row, move, open_peers, peers_out

PEER = 64


@dataclass
class Joined:
    live: LiveSession
    attendance: LiveAttendance
    # The others already in the session.
    peers: list[dict[str, Any]]
    is_host: bool
    guest: bool
    name: str
    waiting: list[dict[str, Any]] = field(default_factory=list)


@dataclass
class Waiting:
    live: LiveSession
    admission: LiveAdmission
    # The lobby as the hosts should now see it.
    waiting: list[dict[str, Any]]
    created: bool


def _check_open(live: LiveSession) -> None:
    if live.state != "open":
        raise Conflict(
            N_("This session is not open."),
            code="live_not_open",
            field="session_id",
            params={"state": live.state},
        )


def _check_room(session: Session, live: LiveSession, settings: LiveSettings) -> None:
    if live.mode != "mesh":
        return
    present = session.execute(
        select(func.count())
        .select_from(LiveAttendance)
        .where(LiveAttendance.session_id == live.id, LiveAttendance.left_at.is_(None))
    ).scalar_one()
    if present >= settings.mesh_max_participants:
        raise Conflict(
            N_("The session is full ({count} people)."),
            code="live_full",
            field="session_id",
            params={"count": settings.mesh_max_participants},
        )


def join(
    session: Session,
    principal: Principal,
    session_id: int,
    peer_id: str,
    settings: LiveSettings,
    link: str | None = None,
) -> Joined | Waiting:
    live, part = try_open(session, principal, session_id, action="live.join", lock=True)
    if live is None:
        raise not_found(session, principal, "live.join", session_id)
    opened = Opened(live, part, parts_of(principal, live, part) if part else frozenset())
    guest = not opened.parts
    if guest:
        found = None
        if part is None or link is not None:
            # Not a viewer of the subject: only a valid link of the session lets them ask.
            if link is None:
                raise not_found(session, principal, "live.join", session_id)
            found = lobby.check_link(session, principal, live, link, "live.join")
        if live.state in lobby.FINAL_STATES:
            _check_open(live)
        before = lobby.admission_of(session, live.id, principal.uid)
        admission = lobby.enter_lobby(session, principal, live, found)
        if admission.state == "waiting":
            return Waiting(live, admission, lobby.waiting(session, live.id), before is None)
    elif live.state == "scheduled":
        move(session, principal, opened, "open")
    _check_open(live)
    _check_room(session, live, settings)
    at = now()
    row = LiveAttendance(
        session_id=live.id,
        user_id=principal.uid,
        peer_id=peer_id[:PEER],
        guest=guest,
        joined_at=at,
        seen_at=at,
    )
    session.add(row)
    session.flush()
    record(session, principal, "live.join", live, peer=row.peer_id, guest=guest)
    others = [r for r in open_peers(session, live.id) if r.id != row.id]
    is_host = wf.HOST in opened.parts
    name = display_names(session, [principal.uid]).get(principal.uid, principal.username)
    return Joined(
        live,
        row,
        peers_out(session, others),
        is_host,
        guest,
        name,
        lobby.waiting(session, live.id) if is_host else [],
    )


def leave(session: Session, principal: Principal, session_id: int, peer_id: str) -> int | None:
    """Close the peer's open row (leave, or the socket closed); its seconds, or None when
    it was not in the session."""
    row = session.execute(
        select(LiveAttendance).where(
            LiveAttendance.session_id == session_id,
            LiveAttendance.peer_id == peer_id,
            LiveAttendance.left_at.is_(None),
        )
    ).scalar_one_or_none()
    if row is None:
        return None
    close_row(row, now())
    session.flush()
    live = session.get(LiveSession, session_id)
    if live is not None:
        record(session, principal, "live.leave", live, peer=peer_id, seconds=row.seconds)
    return row.seconds


def set_state(
    session: Session, session_id: int, peer_id: str, muted: bool, camera_off: bool
) -> None:
    row = session.execute(
        select(LiveAttendance).where(
            LiveAttendance.session_id == session_id,
            LiveAttendance.peer_id == peer_id,
            LiveAttendance.left_at.is_(None),
        )
    ).scalar_one_or_none()
    if row is not None:
        row.muted = muted
        row.camera_off = camera_off
        session.flush()


def attendance(session: Session, principal: Principal, session_id: int) -> dict[str, Any]:
    """Who joined, when, for how long (hosts only; audited)."""
    opened = open_session(
        session, principal, session_id, action="live.attendance", audit_success=False
    )

    require_host(session, principal, opened, "live.attendance")
    record(session, principal, "live.attendance", opened.live)
    rows = list(
        session.execute(
            select(LiveAttendance)
            .where(LiveAttendance.session_id == session_id)
            .order_by(LiveAttendance.id)
        ).scalars()
    )
    names = display_names(session, [r.user_id for r in rows])
    at = now()
    totals: dict[str, int] = {}
    for r in rows:
        seconds = r.seconds if r.seconds is not None else int((at - r.joined_at).total_seconds())
        totals[str(r.user_id)] = totals.get(str(r.user_id), 0) + max(seconds, 0)
    return {
        "session_id": session_id,
        "rows": [
            {
                "user_id": r.user_id,
                "name": names.get(r.user_id, ""),
                "guest": r.guest,
                "joined_at": r.joined_at,
                "left_at": r.left_at,
                "seconds": r.seconds,
            }
            for r in rows
        ],
        "totals": totals,
    }

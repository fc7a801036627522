"""The media server's room of a ``janus`` session: created when its first peer publishes
(and again when Janus lost it, e.g. after a restart), destroyed when its last peer has
left. Both take the session's row lock, as a join does, so a join and the last leave do
not cross: the leaver sees the newcomer's attendance row and keeps the room."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xietong.core.errors import N_, Conflict
from xietong.live.media import ROOM_PUBLISHERS, MediaError, MediaRouter
from xietong.live.models import LiveAttendance, LiveSession


def _locked(session: Session, session_id: int) -> LiveSession | None:
    return session.get(LiveSession, session_id, with_for_update=True)


def media_room(session: Session, session_id: int, router: MediaRouter) -> int:
    """The room to publish in; MediaError when the media server cannot make one."""
    live = _locked(session, session_id)
    if live is None or live.mode != "janus" or router.mode != "janus":
        raise Conflict(N_("This session has no media server."), code="live_no_sfu", field="to")
    if live.janus_room is not None and router.room_exists(live.janus_room):
        return live.janus_room
    room = router.create_room(live.id, ROOM_PUBLISHERS)
    if room is None:
        raise Conflict(N_("This session has no media server."), code="live_no_sfu", field="to")
    live.janus_room = room
    session.flush()
    return room


def release_room(session: Session, session_id: int, router: MediaRouter) -> bool:
    """Destroy the room once nobody is in the session; whether it was destroyed."""
    live = _locked(session, session_id)
    if live is None or live.janus_room is None or router.mode != "janus":
        return False
    present = session.execute(
        select(func.count())
        .select_from(LiveAttendance)
        .where(LiveAttendance.session_id == session_id, LiveAttendance.left_at.is_(None))
    ).scalar_one()
    if present:
        return False
    room, live.janus_room = live.janus_room, None
    session.flush()
    try:
        router.destroy_room(room)
    except MediaError:
        return False  # already gone (Janus restarted), or Janus is down: a join makes a new one
    return True

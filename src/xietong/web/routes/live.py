"""Video sessions under /api/v1/live: create (scheduled or instant) for a subject, a
subject's sessions, one session, cancel and end, guest links, attendance. Who may do what
is decided in :mod:`xietong.live`; joining happens over the WebSocket (docs/live.md).
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from xietong.core.validation import MAX_ID
from xietong.live import lobby, presence
from xietong.live import service as svc
from xietong.live.models import LiveLink
from xietong.live.schemas import (
    SUBJECT_ID,
    SUBJECT_KIND,
    AttendanceOut,
    InstantIn,
    LinkIn,
    LinkOut,
    SessionIn,
    SessionOut,
)
from xietong.web.context import AppServices
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services

router = APIRouter(prefix="/api/v1/live", tags=["live"], dependencies=[Depends(current_principal)])

SessionId = Annotated[int, Path(ge=1, le=MAX_ID)]
LinkId = Annotated[int, Path(ge=1, le=MAX_ID)]
App = Annotated[AppServices, Depends(services)]


def link_out(link: LiveLink, token: str | None = None) -> dict[str, Any]:
    return {
        "id": link.id,
        "session_id": link.session_id,
        "label": link.label,
        "created_at": link.created_at,
        "expires_at": link.expires_at,
        "revoked_at": link.revoked_at,
        "token": token,
        "url": lobby.link_url(token) if token else None,
    }


@router.post("/sessions", response_model=SessionOut, status_code=201)
def create_session(
    body: SessionIn, session: DbSession, principal: CurrentPrincipal, app: App
) -> dict[str, Any]:
    """A scheduled session (``scheduled_at``) or an instant one (open at once)."""
    opened = svc.create_session(session, principal, body, app.settings.live)
    return svc.session_out(session, opened)


@router.post("/instant", response_model=SessionOut)
def instant_session(
    body: InstantIn, session: DbSession, principal: CurrentPrincipal, app: App, response: Response
) -> dict[str, Any]:
    """The subject's open session, or a new instant one (201)."""
    opened, created = svc.instant_session(session, principal, body, app.settings.live)
    response.status_code = 201 if created else 200
    return svc.session_out(session, opened)


@router.get("/sessions", response_model=list[SessionOut])
def list_sessions(
    session: DbSession,
    principal: CurrentPrincipal,
    subject_kind: Annotated[str, Query(pattern=SUBJECT_KIND)],
    subject_id: Annotated[str, Query(pattern=SUBJECT_ID)],
) -> list[dict[str, Any]]:
    """The subject's sessions, newest first."""
    rows = svc.list_sessions(session, principal, subject_kind, subject_id)
    return [svc.session_out(session, opened) for opened in rows]


@router.get("/sessions/{session_id}", response_model=SessionOut)
def get_session(
    session_id: SessionId, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    return svc.session_out(session, svc.get_session(session, principal, session_id))


@router.post("/sessions/{session_id}/cancel", response_model=SessionOut)
def cancel(
    session_id: SessionId, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    """A scheduled session is called off (hosts)."""
    svc.cancel(session, principal, session_id)
    return svc.session_out(session, svc.get_session(session, principal, session_id))


@router.post("/sessions/{session_id}/end", response_model=SessionOut)
def end(session_id: SessionId, session: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    """An open session ends for everyone (hosts); connected peers are told."""
    svc.end(session, principal, session_id)
    return svc.session_out(session, svc.get_session(session, principal, session_id))


@router.post("/sessions/{session_id}/links", response_model=LinkOut, status_code=201)
def create_link(
    session_id: SessionId, body: LinkIn, session: DbSession, principal: CurrentPrincipal, app: App
) -> dict[str, Any]:
    """A guest join link (hosts); the token is in this answer only."""
    link, token = lobby.create_link(session, principal, session_id, body, app.settings.live)
    return link_out(link, token)


@router.get("/sessions/{session_id}/links", response_model=list[LinkOut])
def list_links(
    session_id: SessionId, session: DbSession, principal: CurrentPrincipal
) -> list[dict[str, Any]]:
    return [link_out(link) for link in lobby.list_links(session, principal, session_id)]


@router.post("/sessions/{session_id}/links/{link_id}/revoke", response_model=LinkOut)
def revoke_link(
    session_id: SessionId, link_id: LinkId, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    return link_out(lobby.revoke_link(session, principal, session_id, link_id))


@router.get("/sessions/{session_id}/attendance", response_model=AttendanceOut)
def attendance(
    session_id: SessionId, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Who joined, when and for how long (hosts)."""
    return presence.attendance(session, principal, session_id)

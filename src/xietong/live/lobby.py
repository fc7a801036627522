"""Guest join links and the lobby.

A link is an unguessable token (32 random bytes) shown once to the host; only its SHA-256
is stored. It expires after XIETONG_LIVE_JOIN_LINK_HOURS and the host may revoke it. A
signed-in user who is not a participant of the subject joins only with a valid link, and
then waits in the lobby until a host admits or refuses them (each decision audited).
Nobody joins without signing in: the WebSocket refuses anonymous handshakes.
"""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.config import LiveSettings
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, NotFound
from xietong.core.security import new_token, token_digest
from xietong.identity.service import display_names
from xietong.live.access import OBJECT_KIND, not_found, open_session, record, require_host
from xietong.live.models import LiveAdmission, LiveLink, LiveSession
from xietong.live.schemas import LinkIn

TOKEN = re.compile(r"[A-Za-z0-9_-]{20,128}")
FINAL_STATES = ("ended", "cancelled")


def link_url(token: str) -> str:
    return f"/live/join/{token}"


def create_link(
    session: Session, principal: Principal, session_id: int, data: LinkIn, settings: LiveSettings
) -> tuple[LiveLink, str]:
    """A new guest link of the session (host only); the token is returned once."""
    opened = open_session(session, principal, session_id, action="live.link", audit_success=False)
    require_host(session, principal, opened, "live.link")
    if opened.live.state in FINAL_STATES:
        raise Conflict(N_("This session is over."), code="live_over", field="session_id")
    token = new_token(32)
    at = now()
    link = LiveLink(
        session_id=opened.live.id,
        token_sha256=token_digest(token),
        label=data.label,
        created_by_user_id=principal.uid,
        created_at=at,
        expires_at=at + timedelta(hours=settings.join_link_hours),
    )
    session.add(link)
    session.flush()
    record(session, principal, "live.link", opened.live, link_id=link.id)
    return link, token


def list_links(session: Session, principal: Principal, session_id: int) -> list[LiveLink]:
    opened = open_session(session, principal, session_id, action="live.links", audit_success=False)
    require_host(session, principal, opened, "live.links")
    record(session, principal, "live.links", opened.live)
    return list(
        session.execute(
            select(LiveLink).where(LiveLink.session_id == session_id).order_by(LiveLink.id)
        ).scalars()
    )


def revoke_link(session: Session, principal: Principal, session_id: int, link_id: int) -> LiveLink:
    opened = open_session(
        session, principal, session_id, action="live.link_revoke", audit_success=False
    )
    require_host(session, principal, opened, "live.link_revoke")
    link = session.get(LiveLink, link_id)
    if link is None or link.session_id != session_id:
        raise NotFound(code="live_link_not_found", field="link_id")
    if link.revoked_at is None:
        link.revoked_at = now()
        session.flush()
    record(session, principal, "live.link_revoke", opened.live, link_id=link.id)
    return link


def session_of_token(session: Session, token: str) -> int | None:
    """The session a link token opens, if it is one of ours (valid or not): the guest
    page then asks through the WebSocket, where the link is checked."""
    if not TOKEN.fullmatch(token):
        return None
    return session.execute(
        select(LiveLink.session_id).where(LiveLink.token_sha256 == token_digest(token))
    ).scalar_one_or_none()


def check_link(
    session: Session, principal: Principal, live: LiveSession, token: str, action: str
) -> LiveLink:
    """The session's valid link with this token. A token of another session, or none of
    ours, is the same 404 as an unknown session; the holder of a real but expired or
    revoked link is told so."""
    link = None
    if TOKEN.fullmatch(token):
        link = session.execute(
            select(LiveLink).where(LiveLink.token_sha256 == token_digest(token))
        ).scalar_one_or_none()
    if link is None or link.session_id != live.id:
        raise not_found(session, principal, action, live.id)
    problem = None
    if link.revoked_at is not None:
        problem = "link_revoked"
    elif link.expires_at <= now():
        problem = "link_expired"
    if problem is not None:
        audit.record_denial(session, principal, action, OBJECT_KIND, live.id, reason=problem)
        raise NotFound(
            N_("This join link has expired or was revoked."), code=f"live_{problem}", field="link"
        )
    return link


# The lobby --------------------------------------------------------------------------------


def admission_of(session: Session, session_id: int, user_id: int) -> LiveAdmission | None:
    return session.execute(
        select(LiveAdmission).where(
            LiveAdmission.session_id == session_id, LiveAdmission.user_id == user_id
        )
    ).scalar_one_or_none()


def enter_lobby(
    session: Session, principal: Principal, live: LiveSession, link: LiveLink | None
) -> LiveAdmission:
    """The guest's admission: waiting (new, audited), admitted, or refused (403)."""
    row = admission_of(session, live.id, principal.uid)
    if row is None:
        row = LiveAdmission(
            session_id=live.id,
            user_id=principal.uid,
            link_id=link.id if link else None,
            requested_at=now(),
        )
        session.add(row)
        session.flush()
        record(session, principal, "live.lobby", live, link_id=row.link_id)
    if row.state == "refused":
        audit.record_denial(session, principal, "live.join", OBJECT_KIND, live.id, reason="refused")
        raise Forbidden(
            N_("The host did not admit you to this session."), code="live_refused", field=None
        )
    return row


def withdraw(session: Session, session_id: int, user_id: int) -> bool:
    """A waiting guest went away: out of the lobby (a later join waits again)."""
    row = admission_of(session, session_id, user_id)
    if row is None or row.state != "waiting":
        return False
    session.delete(row)
    session.flush()
    return True


def waiting(session: Session, session_id: int) -> list[dict[str, Any]]:
    rows = list(
        session.execute(
            select(LiveAdmission)
            .where(LiveAdmission.session_id == session_id, LiveAdmission.state == "waiting")
            .order_by(LiveAdmission.id)
        ).scalars()
    )
    names = display_names(session, [r.user_id for r in rows])
    return [
        {"user_id": r.user_id, "name": names.get(r.user_id, ""), "requested_at": r.requested_at}
        for r in rows
    ]


def decide(
    session: Session, principal: Principal, session_id: int, user_id: int, *, admit: bool
) -> LiveAdmission:
    """A host admits or refuses a waiting guest (audited either way)."""
    action = "live.admit" if admit else "live.refuse"
    opened = open_session(session, principal, session_id, action=action, audit_success=False)
    require_host(session, principal, opened, action)
    row = admission_of(session, session_id, user_id)
    allowed = ("waiting", "refused") if admit else ("waiting", "admitted")
    if row is None or row.state not in allowed:
        raise NotFound(
            N_("Nobody of that id waits in the lobby."), code="live_not_waiting", field="user"
        )
    row.state = "admitted" if admit else "refused"
    row.decided_at = now()
    row.decided_by_user_id = principal.uid
    session.flush()
    record(session, principal, action, opened.live, user_id=user_id)
    return row

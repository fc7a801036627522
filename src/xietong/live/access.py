"""Opening one video session: who may see it, and in which part.

The subject's participation rule (:mod:`xietong.access.subjects`) is asked every time:
nothing about access is kept in a connection. A user who may not see the subject gets the
same 404 as for a session that does not exist (both audited); guests reach a session only
through a join link (:mod:`xietong.live.lobby`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import deny_not_found
from xietong.access.principal import Principal
from xietong.access.subjects import Participation, participation
from xietong.core.errors import Forbidden, NotFound
from xietong.live import workflow as wf
from xietong.live.models import LiveSession

OBJECT_KIND = "live_session"


@dataclass
class Opened:
    live: LiveSession
    participation: Participation | None
    parts: frozenset[str] = field(default_factory=frozenset)

    @property
    def is_host(self) -> bool:
        return wf.HOST in self.parts


def parts_of(principal: Principal, live: LiveSession, part: Participation) -> frozenset[str]:
    """``participant`` for who takes part in the subject (``Participation.user_ids``),
    ``host`` too for the session's creator and whom the subject lets host. Someone who may
    see the subject without taking part in it holds neither: they see its sessions and
    join through the lobby."""
    if live.host_user_id == principal.user_id or part.is_host:
        return frozenset({wf.HOST, wf.PARTICIPANT})
    if principal.user_id in part.user_ids:
        return frozenset({wf.PARTICIPANT})
    return frozenset()


def audit_detail(live: LiveSession, **extra: Any) -> dict[str, Any]:
    """What every audit row of a session names: its subject and patient."""
    return {
        "subject": f"{live.subject_kind}:{live.subject_id}",
        "patient_id": live.patient_id,
        **extra,
    }


def record(
    session: Session, principal: Principal, action: str, live: LiveSession, **extra: Any
) -> None:
    audit.record(
        session,
        principal,
        action,
        object_kind=OBJECT_KIND,
        object_id=live.id,
        detail=audit_detail(live, **extra),
    )


def find(session: Session, session_id: int, *, lock: bool = False) -> LiveSession | None:
    query = select(LiveSession).where(LiveSession.id == session_id)
    if lock:
        query = query.with_for_update()
    return session.execute(query).scalar_one_or_none()


def not_found(session: Session, principal: Principal, action: str, session_id: int) -> NotFound:
    return deny_not_found(session, principal, action, OBJECT_KIND, session_id, field="session_id")


def try_open(
    session: Session, principal: Principal, session_id: int, *, action: str, lock: bool = False
) -> tuple[LiveSession | None, Participation | None]:
    """The session and the principal's participation in its subject (None when they take
    no part: the subject's rule has audited that denial)."""
    live = find(session, session_id, lock=lock)
    if live is None:
        return None, None
    try:
        part = participation(session, principal, live.subject_kind, live.subject_id, action=action)
    except NotFound:
        return live, None
    return live, part


def open_session(
    session: Session,
    principal: Principal,
    session_id: int,
    *,
    action: str,
    lock: bool = False,
    audit_success: bool = True,
) -> Opened:
    """The session, for a participant of its subject; 404 (audited) for anyone else."""
    live, part = try_open(session, principal, session_id, action=action, lock=lock)
    if live is None or part is None:
        raise not_found(session, principal, action, session_id)
    opened = Opened(live, part, parts_of(principal, live, part))
    if audit_success:
        record(session, principal, action, live)
    return opened


def require_host(session: Session, principal: Principal, opened: Opened, action: str) -> None:
    if opened.is_host:
        return
    audit.record_denial(session, principal, action, OBJECT_KIND, opened.live.id, reason="role")
    raise Forbidden(code="live_host_only", field="session_id")

"""Who takes part in a subject (a consultation, a referral, a live session): the registry
through which live delivery (messaging's WebSocket, video sessions) asks a subject's own
domain, without importing it.

A domain above registers, once at start-up, a function that answers for one subject kind:
``participation(session, principal, subject_id, action=...)`` returns a
:class:`Participation`, or raises :class:`~xietong.core.errors.NotFound` (having audited
the denial) when the principal may not see the subject at all. It is asked again on every
subscribe and every join: access is never cached in a connection.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.core.errors import NotFound


@dataclass(frozen=True)
class Participation:
    kind: str
    subject_id: str
    # Shown in lists and the session page ("会诊 #12").
    title: str
    # The subject's page, where its conversation and its video sessions are offered.
    url: str
    # May write in the subject's conversation now (its state allows it).
    can_post: bool
    # May start or end a video session and admit others from its lobby.
    is_host: bool
    # Who takes part: they may join the subject's video sessions without waiting.
    user_ids: frozenset[int] = field(default_factory=frozenset)
    # The subject's patient, if any: what an audit row of a read names.
    patient_id: int | None = None


ParticipationRule = Callable[..., Participation]
_RULES: dict[str, ParticipationRule] = {}


def register_subject(kind: str, rule: ParticipationRule) -> None:
    """``rule(session, principal, subject_id, *, action) -> Participation``."""
    _RULES[kind] = rule


def registered_kinds() -> frozenset[str]:
    return frozenset(_RULES)


def participation(
    session: Session, principal: Principal, kind: str, subject_id: str, *, action: str
) -> Participation:
    """The principal's part in the subject; 404 (audited) for an unknown kind or a subject
    the principal may not see."""
    rule = _RULES.get(kind)
    if rule is None:
        audit.record_denial(
            session, principal, action, kind[:32], subject_id[:64], reason="unknown_kind"
        )
        raise NotFound(code="subject_not_found", field="subject")
    return rule(session, principal, subject_id, action=action)

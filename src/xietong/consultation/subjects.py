"""The consultation as a subject of live collaboration: who takes part (for the WebSocket
and video sessions, :mod:`xietong.access.subjects`) and how its conversation is written to
(:mod:`xietong.messaging.subjects`). Imaging reads are consultations (ADR 0017) and come
with them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from xietong.access.policies import deny_not_found
from xietong.access.principal import Principal
from xietong.access.subjects import Participation, register_subject
from xietong.consultation import workflow as wf
from xietong.consultation.service.common import CONVERSATION_KIND, open_consultation
from xietong.consultation.service.messages import can_post, participants, post_message
from xietong.identity.roles import Role
from xietong.messaging.service import Posted
from xietong.messaging.subjects import ConversationSubject, register_conversation
from xietong.notifications.service import role_holders

# Who conducts its video sessions: the centre's coordinators and the lead expert.
HOST_PARTS = frozenset({wf.COORDINATOR, wf.LEAD})
READ_ACTION = "consultation.messages"


def _consultation_id(session: Session, principal: Principal, subject_id: str, action: str) -> int:
    if not subject_id.isdigit() or len(subject_id) > 12:
        raise deny_not_found(
            session, principal, action, CONVERSATION_KIND, subject_id[:64], field="subject"
        )
    return int(subject_id)


def participation(
    session: Session, principal: Principal, subject_id: str, *, action: str
) -> Participation:
    """404 (audited) for who does not see the consultation; its parts otherwise."""
    consultation_id = _consultation_id(session, principal, subject_id, action)
    opened = open_consultation(
        session, principal, consultation_id, action=action, audit_success=False
    )
    c = opened.consultation
    return Participation(
        kind=CONVERSATION_KIND,
        subject_id=str(c.id),
        title=f"#{c.id}",
        url=f"/consultations/{c.id}",
        can_post=can_post(opened),
        is_host=bool(opened.roles & HOST_PARTS),
        user_ids=frozenset(
            participants(session, c)
            | set(role_holders(session, c.target_institution_id, Role.COORDINATOR))
        ),
        patient_id=c.patient_id,
    )


def post(
    session: Session, principal: Principal, subject_id: str, *, text: str, client_id: str | None
) -> Posted:
    consultation_id = _consultation_id(session, principal, subject_id, "consultation.message")
    return post_message(session, principal, consultation_id, text=text, client_id=client_id)


def message_path(subject_id: str, seq: int) -> str:
    return f"/api/v1/consultations/{subject_id}/messages/{seq}"


def register() -> None:
    register_subject(CONVERSATION_KIND, participation)
    register_conversation(ConversationSubject(CONVERSATION_KIND, post, message_path, READ_ACTION))

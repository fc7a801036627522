"""The referral as a subject of live collaboration: who takes part (video sessions between
the sending and the receiving institution, and its conversation over the WebSocket:
:mod:`xietong.access.subjects`) and how its conversation is written to
(:mod:`xietong.messaging.subjects`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from xietong.access.policies import deny_not_found
from xietong.access.principal import Principal
from xietong.access.subjects import Participation, register_subject
from xietong.messaging.service import Posted
from xietong.messaging.subjects import ConversationSubject, register_conversation
from xietong.referral import workflow as wf
from xietong.referral.service.common import open_referral
from xietong.referral.service.messages import (
    POST_ACTION,
    READ_ACTION,
    can_post,
    message_path,
    participants,
    post_message,
)

KIND = "referral"
HOST_PARTS = frozenset({wf.SENDER, wf.DESK, wf.CLINICIAN})


def _referral_id(session: Session, principal: Principal, subject_id: str, action: str) -> int:
    if not subject_id.isdigit() or len(subject_id) > 12:
        raise deny_not_found(session, principal, action, KIND, subject_id[:64], field="subject")
    return int(subject_id)


def participation(
    session: Session, principal: Principal, subject_id: str, *, action: str
) -> Participation:
    """404 (audited) for who does not see the referral; its parts otherwise."""
    referral_id = _referral_id(session, principal, subject_id, action)
    opened = open_referral(session, principal, referral_id, action=action, audit_success=False)
    r = opened.referral
    return Participation(
        kind=KIND,
        subject_id=str(r.id),
        title=f"#{r.id}",
        url=f"/referrals/{r.id}",
        can_post=can_post(opened),
        is_host=bool(opened.roles & HOST_PARTS),
        user_ids=frozenset(participants(session, r)),
        patient_id=r.patient_id,
    )


def post(
    session: Session, principal: Principal, subject_id: str, *, text: str, client_id: str | None
) -> Posted:
    referral_id = _referral_id(session, principal, subject_id, POST_ACTION)
    return post_message(session, principal, referral_id, text=text, client_id=client_id)


def register() -> None:
    register_subject(KIND, participation)
    register_conversation(ConversationSubject(KIND, post, message_path, READ_ACTION))

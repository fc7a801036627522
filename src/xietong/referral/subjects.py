"""The referral as a subject of live collaboration: who takes part, for video sessions
between the sending and the receiving institution (:mod:`xietong.access.subjects`)."""

from __future__ import annotations

from sqlalchemy.orm import Session

from xietong.access.policies import deny_not_found
from xietong.access.principal import Principal
from xietong.access.subjects import Participation, register_subject
from xietong.referral import workflow as wf
from xietong.referral.service.common import open_referral

KIND = "referral"
HOST_PARTS = frozenset({wf.SENDER, wf.DESK, wf.CLINICIAN})


def participation(
    session: Session, principal: Principal, subject_id: str, *, action: str
) -> Participation:
    """404 (audited) for who does not see the referral; its parts otherwise."""
    if not subject_id.isdigit() or len(subject_id) > 12:
        raise deny_not_found(session, principal, action, KIND, subject_id[:64], field="subject")
    opened = open_referral(session, principal, int(subject_id), action=action, audit_success=False)
    r = opened.referral
    return Participation(
        kind=KIND,
        subject_id=str(r.id),
        title=f"#{r.id}",
        url=f"/referrals/{r.id}",
        can_post=bool(opened.roles & HOST_PARTS),
        is_host=bool(opened.roles & HOST_PARTS),
        user_ids=frozenset({r.sender_user_id}),
        patient_id=r.patient_id,
    )


def register() -> None:
    register_subject(KIND, participation)

"""A stand-in for the consultation's participation rule while the lead's registration has
not landed on this branch (remove once ``xietong.consultation`` registers "consultation"):
registered only when nobody registered the kind."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.access.subjects import Participation, register_subject, registered_kinds
from xietong.consultation import workflow as wf
from xietong.consultation.models import ConsultationAssignment
from xietong.consultation.service.common import open_consultation
from xietong.consultation.service.messages import can_post
from xietong.core.errors import NotFound
from xietong.identity.models import User, UserRole
from xietong.identity.roles import Role

KIND = "consultation"


def consultation_participation(
    session: Session, principal: Principal, subject_id: str, *, action: str
) -> Participation:
    if not subject_id.isdigit() or len(subject_id) > 9:
        raise NotFound(code="subject_not_found", field="subject")
    opened = open_consultation(session, principal, int(subject_id), action=action)
    c = opened.consultation
    experts = set(
        session.execute(
            select(ConsultationAssignment.user_id).where(
                ConsultationAssignment.consultation_id == c.id
            )
        ).scalars()
    )
    coordinators = set(
        session.execute(
            select(User.id)
            .join(UserRole, UserRole.user_id == User.id)
            .where(User.institution_id == c.target_institution_id)
            .where(UserRole.role == str(Role.COORDINATOR))
        ).scalars()
    )
    return Participation(
        kind=KIND,
        subject_id=subject_id,
        title=f"会诊 #{c.id}",
        url=f"/consultations/{c.id}",
        can_post=can_post(opened),
        is_host=bool(opened.roles & {wf.COORDINATOR, wf.LEAD}),
        user_ids=frozenset({c.applicant_user_id, *experts, *coordinators}),
        patient_id=c.patient_id,
    )


def ensure_registered() -> None:
    if KIND not in registered_kinds():
        register_subject(KIND, consultation_participation)

"""Reading consultations: one opened for its participants (audited), lists by view, and
the JSON shapes the API and pages show."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import require_roles
from xietong.access.principal import Principal
from xietong.consultation.models import (
    OPEN_STATES,
    Consultation,
    ConsultationAssignment,
    ConsultationHistory,
)
from xietong.consultation.service.common import (
    CLINICAL_ROLES,
    Opened,
    grant_ids,
    open_consultation,
    parts_of,
)
from xietong.directory.models import Institution, Practitioner
from xietong.identity.roles import Role
from xietong.patients.workflow_view import patient_card, patient_cards

MAX_LIMIT = 200


def get_consultation(session: Session, principal: Principal, consultation_id: int) -> Opened:
    return open_consultation(session, principal, consultation_id, action="consultation.read")


def linked_consultation(
    session: Session, principal: Principal, consultation_id: int
) -> Consultation | None:
    """The consultation when the principal takes part in it, else None: for a workflow
    that links to it (a referral's closed loop), which audits its own read."""
    c = session.get(Consultation, consultation_id)
    if c is None or not parts_of(session, principal, c)[0]:
        return None
    return c


def consultation_out(session: Session, opened: Opened) -> dict[str, Any]:
    c = opened.consultation
    rows = session.execute(
        select(ConsultationAssignment, Practitioner.name)
        .join(Practitioner, Practitioner.id == ConsultationAssignment.practitioner_id)
        .where(ConsultationAssignment.consultation_id == c.id)
        .order_by(ConsultationAssignment.is_lead.desc(), ConsultationAssignment.id)
    ).all()
    history = session.execute(
        select(ConsultationHistory)
        .where(ConsultationHistory.consultation_id == c.id)
        .order_by(ConsultationHistory.id)
    ).scalars()
    patient = patient_card(session, c.patient_id)
    return {
        **{col: getattr(c, col) for col in _COLUMNS},
        "patient_name": patient.name if patient else "",
        "grant_ids": grant_ids(session, c.id),
        "assignments": [
            {
                "practitioner_id": a.practitioner_id,
                "name": name,
                "user_id": a.user_id,
                "is_lead": a.is_lead,
            }
            for a, name in rows
        ],
        "history": [
            {
                "action": h.action,
                "from_state": h.from_state,
                "to_state": h.to_state,
                "actor_user_id": h.actor_user_id,
                "at": h.at,
                "note": h.note,
            }
            for h in history
        ],
        "my_roles": sorted(opened.roles),
    }


_COLUMNS = (
    "id",
    "patient_id",
    "applicant_user_id",
    "applicant_institution_id",
    "purpose",
    "clinical_summary",
    "questions",
    "specialty",
    "urgency",
    "mode",
    "target_institution_id",
    "target_practitioner_id",
    "shared_items",
    "state",
    "scheduled_at",
    "created_at",
    "submitted_at",
    "accepted_at",
    "report_signed_at",
    "closed_at",
    "accept_deadline",
    "report_deadline",
    "last_note",
    "rating",
    "rating_comment",
)

View = Literal["applicant", "inbox", "worklist"]


def list_consultations(
    session: Session,
    principal: Principal,
    view: View,
    *,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Consultation], int]:
    """``applicant``: the institution's requests; ``inbox``: the coordinator's centre
    (drafts never); ``worklist``: the expert's open assignments, nearest deadline first."""
    needed = {
        "applicant": {Role(r) for r in CLINICAL_ROLES},
        "inbox": {Role.COORDINATOR},
        "worklist": {Role.EXPERT},
    }[view]
    require_roles(
        session, principal, needed, action="consultation.list", object_kind="consultation"
    )
    stmt = select(Consultation)
    if view == "applicant":
        stmt = stmt.where(Consultation.applicant_institution_id == principal.institution_id)
        order: Any = (Consultation.created_at.desc(), Consultation.id.desc())
    elif view == "inbox":
        stmt = stmt.where(
            Consultation.target_institution_id == principal.institution_id,
            Consultation.state != "draft",
        )
        order = (Consultation.accept_deadline, Consultation.id)
    else:
        stmt = stmt.join(
            ConsultationAssignment, ConsultationAssignment.consultation_id == Consultation.id
        ).where(
            ConsultationAssignment.user_id == principal.user_id,
            Consultation.state.in_(OPEN_STATES),
        )
        order = (Consultation.report_deadline, Consultation.id)
    if principal.institution_id is None:
        return [], 0
    if state:
        stmt = stmt.where(Consultation.state == state)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = list(session.execute(stmt.order_by(*order).limit(limit).offset(offset)).scalars())
    audit.record(
        session,
        principal,
        "consultation.list",
        object_kind="consultation",
        detail={"view": view, "count": len(rows)},
    )
    return rows, total


def summaries_out(session: Session, rows: list[Consultation]) -> list[dict[str, Any]]:
    """The list's rows, each with the patient's name (the list read is audited)."""
    cards = patient_cards(session, [c.patient_id for c in rows])
    return [
        {
            **summary_out(c),
            "patient_name": cards[c.patient_id].name if c.patient_id in cards else "",
        }
        for c in rows
    ]


def summary_out(c: Consultation) -> dict[str, Any]:
    return {
        col: getattr(c, col)
        for col in (
            "id",
            "patient_id",
            "applicant_institution_id",
            "target_institution_id",
            "specialty",
            "urgency",
            "mode",
            "state",
            "accept_deadline",
            "report_deadline",
            "created_at",
        )
    }


def institution_exists(session: Session, institution_id: int) -> bool:
    inst = session.get(Institution, institution_id)
    return inst is not None and inst.is_active

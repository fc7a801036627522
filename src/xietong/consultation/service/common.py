"""What every consultation use case shares: opening one consultation (who sees it, and in
which part), applying a transition with a conditional UPDATE, and its history, workflow
event and audit rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import deny_not_found
from xietong.access.principal import Principal
from xietong.consultation import workflow as wf
from xietong.consultation.models import (
    Consultation,
    ConsultationAssignment,
    ConsultationGrant,
    ConsultationHistory,
)
from xietong.consultation.service.notices import notify_transition
from xietong.core.clock import now
from xietong.core.workflow import Move, store_move
from xietong.core.workflow_events import has_event, record_event
from xietong.directory.models import Institution, Practitioner
from xietong.directory.titles import SENIOR_TITLES
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.messaging import service as messaging
from xietong.patients.access import CHART_ROLES

EVENT_KIND = "consultation"
CONVERSATION_KIND = "consultation"
# Staff of the requesting institution who see its consultations (not the platform admin).
CLINICAL_ROLES = frozenset(str(r) for r in CHART_ROLES - {Role.PLATFORM_ADMIN})
VIEWER = "viewer"
# A radiologist of the reading centre: sees its reads (no workflow action of its own).
READER = "reader"


@dataclass
class Opened:
    consultation: Consultation
    roles: frozenset[str] = field(default_factory=frozenset)
    assignment: ConsultationAssignment | None = None


def parts_of(
    session: Session, principal: Principal, c: Consultation
) -> tuple[frozenset[str], ConsultationAssignment | None]:
    """The principal's parts in the consultation (workflow roles, or ``viewer``)."""
    parts: set[str] = set()
    if principal.user_id is None:
        return frozenset(), None
    held = principal.roles
    if principal.institution_id == c.applicant_institution_id and held & CLINICAL_ROLES:
        parts.add(VIEWER)
        if Role.APPLICANT_DOCTOR in held:
            parts.add(wf.APPLICANT)
    read = c.kind == wf.IMAGING_READ
    if c.state != "draft" and principal.institution_id == c.target_institution_id:
        if Role.COORDINATOR in held:
            parts.add(wf.COORDINATOR)
        if read and Role.RADIOLOGIST in held:
            # The reading centre's radiologists share one worklist (ADR 0017).
            parts.add(READER)
            if senior_practitioner(session, principal.user_id) is not None:
                parts.add(wf.SENIOR)
    assignment = session.execute(
        select(ConsultationAssignment).where(
            ConsultationAssignment.consultation_id == c.id,
            ConsultationAssignment.user_id == principal.user_id,
        )
    ).scalar_one_or_none()
    if assignment is not None and (Role.RADIOLOGIST if read else Role.EXPERT) in held:
        parts.add(wf.EXPERT)
        if assignment.is_lead:
            parts.add(wf.LEAD)
    return frozenset(parts), assignment


def senior_practitioner(session: Session, user_id: int) -> Practitioner | None:
    """The user's practitioner when they hold a senior title (rank 3 or 4: 副主任/主任)."""
    practitioner = session.execute(
        select(Practitioner)
        .join(User, User.practitioner_id == Practitioner.id)
        .where(User.id == user_id)
    ).scalar_one_or_none()
    if practitioner is None or not practitioner.is_active:
        return None
    return practitioner if practitioner.title in SENIOR_TITLES else None


def open_consultation(
    session: Session,
    principal: Principal,
    consultation_id: int,
    *,
    action: str,
    audit_success: bool = True,
) -> Opened:
    """The consultation and the principal's parts in it; hidden and absent give the same
    404 (audited). A successful open is audited as ``action`` unless the caller audits."""
    c = session.get(Consultation, consultation_id)
    parts, assignment = (frozenset(), None) if c is None else parts_of(session, principal, c)
    if c is None or not parts:
        raise deny_not_found(
            session, principal, action, "consultation", consultation_id, field="consultation_id"
        )
    if audit_success:
        audit.record(session, principal, action, object_kind="consultation", object_id=c.id)
    return Opened(c, parts, assignment)


def grant_ids(session: Session, consultation_id: int) -> list[int]:
    return list(
        session.execute(
            select(ConsultationGrant.grant_id)
            .where(ConsultationGrant.consultation_id == consultation_id)
            .order_by(ConsultationGrant.grant_id)
        ).scalars()
    )


def _region(session: Session, institution_id: int) -> str:
    inst = session.get(Institution, institution_id)
    return inst.region_code if inst is not None else ""


def event(
    session: Session,
    c: Consultation,
    *,
    action: str,
    from_state: str,
    to_state: str,
    actor_user_id: int | None,
    detail: dict[str, Any] | None = None,
) -> None:
    record_event(
        session,
        kind=EVENT_KIND,
        subject_id=c.id,
        action=action,
        from_state=from_state,
        to_state=to_state,
        actor_user_id=actor_user_id,
        institution_id=c.applicant_institution_id,
        region_code=_region(session, c.applicant_institution_id),
        target_institution_id=c.target_institution_id,
        detail={
            "kind": c.kind,
            "urgency": c.urgency,
            "mode": c.mode,
            "specialty": c.specialty,
            **(detail or {}),
        },
    )


def record_breach(session: Session, c: Consultation, deadline: str, actor: int | None) -> bool:
    """Record that ``deadline`` (``accept`` or ``report``) passed, once per consultation."""
    action = f"breach.{deadline}_deadline"
    if has_event(session, kind=EVENT_KIND, subject_id=c.id, action=action):
        return False
    event(
        session,
        c,
        action=action,
        from_state=c.state,
        to_state=c.state,
        actor_user_id=actor,
        detail={"deadline": deadline},
    )
    return True


def transition(
    session: Session,
    principal: Principal,
    opened: Opened,
    action: str,
    *,
    note: str = "",
    values: dict[str, Any] | None = None,
    guard_subject: object = None,
    roles: frozenset[str] | None = None,
) -> Move:
    """Apply ``action``: 409 outside the table, 403 for the part, 409 when someone else
    moved the consultation first (the UPDATE is conditional on the state read)."""
    c = opened.consultation
    move = wf.WORKFLOW.apply(c.state, action, roles or opened.roles, guard_subject)
    store_move(session, c, move, {"last_note": note or "", **(values or {})})
    session.add(
        ConsultationHistory(
            consultation_id=c.id,
            action=action,
            from_state=move.source,
            to_state=move.target,
            actor_user_id=principal.user_id,
            at=now(),
            note=note,
        )
    )
    event(
        session,
        c,
        action=action,
        from_state=move.source,
        to_state=move.target,
        actor_user_id=principal.user_id,
    )
    audit.record(
        session,
        principal,
        f"consultation.{action}",
        object_kind="consultation",
        object_id=c.id,
        detail={"from": move.source, "to": move.target},
    )
    record_status(session, c, action, move.source, move.target, note, principal.user_id)
    if action != "accept":  # accept notifies once its experts are assigned
        notify_transition(session, c, action, move.source, principal.user_id)
    return move


def record_status(
    session: Session,
    c: Consultation,
    action: str,
    from_state: str,
    to_state: str,
    note: str,
    actor_user_id: int | None,
) -> None:
    """The transition as a status event in the consultation's conversation, once the
    centre can see the consultation (a draft's own steps are not shown)."""
    if from_state == "draft" and action != "submit":
        return
    conversation = messaging.conversation_for(session, CONVERSATION_KIND, str(c.id))
    messaging.post_system(
        session,
        conversation,
        f"consultation.{action}",
        {"from": from_state, "to": to_state, "note": note[:1000] or None},
        actor_user_id=actor_user_id,
    )

"""What every referral use case shares: who takes which part in a referral, opening one
(404 for whoever may not see it, audited), applying a transition with a conditional UPDATE,
and its history, workflow event and audit rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import deny_not_found
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.workflow import Move, store_move
from xietong.core.workflow_events import has_event, record_event
from xietong.directory.models import Institution
from xietong.identity.roles import Role
from xietong.messaging import service as messaging
from xietong.patients.access import CHART_ROLES
from xietong.referral import workflow as wf
from xietong.referral.models import Referral, ReferralGrant, ReferralHistory
from xietong.referral.service.notices import notify_transition

EVENT_KIND = "referral"
CONVERSATION_KIND = "referral"
VIEWER = "viewer"
# Staff who see the referrals of their institution (not the platform admin).
CLINICAL_ROLES = frozenset(str(r) for r in CHART_ROLES - {Role.PLATFORM_ADMIN})
CLINICIAN_ROLES = frozenset({str(Role.APPLICANT_DOCTOR), str(Role.EXPERT), str(Role.RADIOLOGIST)})
DOWN_SENDER_ROLES = frozenset({str(Role.APPLICANT_DOCTOR), str(Role.EXPERT)})


@dataclass
class Opened:
    referral: Referral
    roles: frozenset[str] = field(default_factory=frozenset)


def parts_of(principal: Principal, r: Referral) -> frozenset[str]:
    """The principal's parts in the referral (workflow roles, or ``viewer``)."""
    if principal.user_id is None or principal.institution_id is None:
        return frozenset()
    held = {str(role) for role in principal.roles}
    parts: set[str] = set()
    if principal.institution_id == r.sender_institution_id and held & CLINICAL_ROLES:
        parts.add(VIEWER)
        senders = DOWN_SENDER_ROLES if r.kind == "down" else {str(Role.APPLICANT_DOCTOR)}
        if held & senders:
            parts.add(wf.SENDER)
    if principal.institution_id == r.target_institution_id and held & CLINICAL_ROLES:
        parts.add(VIEWER)
        if str(Role.COORDINATOR) in held:
            parts.add(wf.DESK)
        if held & CLINICIAN_ROLES:
            parts.add(wf.CLINICIAN)
    return frozenset(parts)


def open_referral(
    session: Session,
    principal: Principal,
    referral_id: int,
    *,
    action: str,
    audit_success: bool = True,
) -> Opened:
    """The referral and the principal's parts in it; hidden and absent give the same 404
    (audited). A successful open is audited as ``action`` unless the caller audits."""
    r = session.get(Referral, referral_id)
    parts = frozenset() if r is None else parts_of(principal, r)
    if r is None or not parts:
        raise deny_not_found(
            session, principal, action, "referral", referral_id, field="referral_id"
        )
    if audit_success:
        audit.record(session, principal, action, object_kind="referral", object_id=r.id)
    return Opened(r, parts)


def grant_ids(session: Session, referral_id: int) -> list[int]:
    return list(
        session.execute(
            select(ReferralGrant.grant_id)
            .where(ReferralGrant.referral_id == referral_id)
            .order_by(ReferralGrant.grant_id)
        ).scalars()
    )


def _region(session: Session, institution_id: int) -> str:
    inst = session.get(Institution, institution_id)
    return inst.region_code if inst is not None else ""


def event(
    session: Session,
    r: Referral,
    *,
    action: str,
    from_state: str,
    to_state: str,
    actor_user_id: int | None,
    detail: dict[str, Any] | None = None,
) -> None:
    """One workflow event (supervision counts referrals sent, up/down, closed loops…)."""
    record_event(
        session,
        kind=EVENT_KIND,
        subject_id=r.id,
        action=action,
        from_state=from_state,
        to_state=to_state,
        actor_user_id=actor_user_id,
        institution_id=r.sender_institution_id,
        region_code=_region(session, r.sender_institution_id),
        target_institution_id=r.target_institution_id,
        detail={"kind": r.kind, "priority": r.priority, **(detail or {})},
    )


def record_breach(
    session: Session,
    r: Referral,
    what: str,
    actor: int | None,
    detail: dict[str, Any] | None = None,
) -> bool:
    """Record that a deadline passed (``accept_deadline``, ``follow_up:<id>``), once."""
    action = f"breach.{what}"
    if has_event(session, kind=EVENT_KIND, subject_id=r.id, action=action):
        return False
    event(
        session,
        r,
        action=action,
        from_state=r.state,
        to_state=r.state,
        actor_user_id=actor,
        detail={"deadline": what, **(detail or {})},
    )
    return True


def record_created(
    session: Session, principal: Principal, r: Referral, *, action: str = "request", note: str = ""
) -> None:
    """The first history row, event and audit of a new referral (sent, or made by a
    decision on an exam referral)."""
    session.add(
        ReferralHistory(
            referral_id=r.id,
            action=action,
            from_state="",
            to_state=r.state,
            actor_user_id=principal.user_id,
            at=now(),
            note=note,
        )
    )
    event(
        session,
        r,
        action=action,
        from_state="",
        to_state=r.state,
        actor_user_id=principal.user_id,
        detail={"parent_id": r.parent_id, "consultation_id": r.consultation_id},
    )
    audit.record(
        session,
        principal,
        f"referral.{action}",
        object_kind="referral",
        object_id=r.id,
        detail={"kind": r.kind, "patient_id": r.patient_id, "target": r.target_institution_id},
    )
    record_status(session, r, action, "", r.state, note, principal.user_id)
    notify_transition(session, r, action, "", principal.user_id)


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
    moved the referral first (the UPDATE is conditional on the state read)."""
    r = opened.referral
    move = wf.WORKFLOWS[r.kind].apply(r.state, action, roles or opened.roles, guard_subject)
    store_move(session, r, move, {"last_note": note or "", **(values or {})})
    session.add(
        ReferralHistory(
            referral_id=r.id,
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
        r,
        action=action,
        from_state=move.source,
        to_state=move.target,
        actor_user_id=principal.user_id,
    )
    audit.record(
        session,
        principal,
        f"referral.{action}",
        object_kind="referral",
        object_id=r.id,
        detail={"from": move.source, "to": move.target},
    )
    record_status(session, r, action, move.source, move.target, note, principal.user_id)
    notify_transition(session, r, action, move.source, principal.user_id)
    return move


def record_status(
    session: Session,
    r: Referral,
    action: str,
    from_state: str,
    to_state: str,
    note: str,
    actor_user_id: int | None,
) -> None:
    """The step (a transition, or the sending: ``request``, ``admit``) as a status event in
    the referral's conversation, shown in each reader's language."""
    conversation = messaging.conversation_for(session, CONVERSATION_KIND, str(r.id))
    messaging.post_system(
        session,
        conversation,
        f"referral.{action}",
        {"from": from_state or None, "to": to_state, "note": note[:1000] or None},
        actor_user_id=actor_user_id,
    )

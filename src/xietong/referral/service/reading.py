"""Reading referrals: one (with its place, follow-ups and history), the lists of each
party, a patient's referrals for the chart, and the closed loop (consultation → up-referral
→ exam → down-referral → follow-ups)."""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import require_roles
from xietong.access.principal import Principal
from xietong.consultation import service as consultations
from xietong.identity.roles import Role
from xietong.patients.access import access_patient
from xietong.patients.workflow_view import patient_card, patient_cards
from xietong.referral import slots
from xietong.referral.models import Referral, ReferralHistory
from xietong.referral.service.common import (
    CLINICAL_ROLES,
    Opened,
    grant_ids,
    open_referral,
    parts_of,
)
from xietong.referral.service.down import follow_ups, is_overdue

MAX_LIMIT = 200
MAX_CHAIN = 50
View = Literal["sent", "inbox", "worklist"]
# What the receiving clinicians work on.
WORKLIST_STATES = ("accepted", "arrived", "in_treatment", "reported")
# A patient sent back down: to take back, then to follow up.
DOWN_WORKLIST_STATES = ("requested", "accepted")


def get_referral(session: Session, principal: Principal, referral_id: int) -> Opened:
    return open_referral(session, principal, referral_id, action="referral.read")


def _follow_up_out(session: Session, referral_id: int) -> list[dict[str, Any]]:
    return [
        {
            "id": f.id,
            "due_date": f.due_date,
            "purpose": f.purpose,
            "status": f.status,
            "overdue": is_overdue(f),
            "done_at": f.done_at,
            "note": f.note,
        }
        for f in follow_ups(session, referral_id)
    ]


def _booking_out(session: Session, referral_id: int) -> dict[str, Any] | None:
    booking = slots.active_booking(session, referral_id)
    slot = slots.slot_of(session, booking.slot_id) if booking is not None else None
    if booking is None or slot is None:
        return None
    return {
        "id": booking.id,
        "slot_id": slot.id,
        "channel": booking.channel,
        "status": booking.status,
        "starts_at": slot.starts_at,
        "ends_at": slot.ends_at,
        "department_id": slot.department_id,
        "practitioner_id": slot.practitioner_id,
    }


_COLUMNS = (
    "id",
    "kind",
    "patient_id",
    "sender_user_id",
    "sender_institution_id",
    "target_institution_id",
    "target_department_id",
    "target_practitioner_id",
    "priority",
    "reason",
    "diagnosis_code",
    "diagnosis_text",
    "summary",
    "exam_type",
    "consultation_id",
    "parent_id",
    "shared_items",
    "state",
    "created_at",
    "accept_deadline",
    "accepted_at",
    "arrived_at",
    "closed_at",
    "last_note",
    "report_document_id",
    "decision",
    "decision_note",
    "discharge",
    "rehab_plan",
)


def referral_out(session: Session, opened: Opened) -> dict[str, Any]:
    r = opened.referral
    history = session.execute(
        select(ReferralHistory)
        .where(ReferralHistory.referral_id == r.id)
        .order_by(ReferralHistory.id)
    ).scalars()
    card = patient_card(session, r.patient_id)
    return {
        **{col: getattr(r, col) for col in _COLUMNS},
        "patient_name": card.name if card else "",
        "booking": _booking_out(session, r.id),
        "grant_ids": grant_ids(session, r.id),
        "follow_ups": _follow_up_out(session, r.id),
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


def summaries_out(session: Session, rows: list[Referral]) -> list[dict[str, Any]]:
    cards = patient_cards(session, [r.patient_id for r in rows])
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "patient_id": r.patient_id,
            "patient_name": cards[r.patient_id].name if r.patient_id in cards else "",
            "sender_institution_id": r.sender_institution_id,
            "target_institution_id": r.target_institution_id,
            "priority": r.priority,
            "state": r.state,
            "created_at": r.created_at,
            "accept_deadline": r.accept_deadline,
        }
        for r in rows
    ]


def list_referrals(
    session: Session,
    principal: Principal,
    view: View,
    *,
    kind: str | None = None,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[Referral], int]:
    """``sent``: what the institution sent; ``inbox``: what the desk receives (green first,
    then by deadline); ``worklist``: what the receiving clinicians work on."""
    needed = {
        "sent": {Role(r) for r in CLINICAL_ROLES},
        "inbox": {Role.COORDINATOR},
        "worklist": {Role.APPLICANT_DOCTOR, Role.EXPERT, Role.RADIOLOGIST},
    }[view]
    require_roles(session, principal, needed, action="referral.list", object_kind="referral")
    if principal.institution_id is None:
        return [], 0
    stmt = select(Referral)
    if view == "sent":
        stmt = stmt.where(Referral.sender_institution_id == principal.institution_id)
        order: Any = (Referral.created_at.desc(), Referral.id.desc())
    elif view == "inbox":
        stmt = stmt.where(Referral.target_institution_id == principal.institution_id)
        order = (
            (Referral.priority != "green"),
            Referral.state != "requested",
            Referral.accept_deadline,
            Referral.id,
        )
    else:
        stmt = stmt.where(
            Referral.target_institution_id == principal.institution_id,
            or_(
                and_(Referral.kind != "down", Referral.state.in_(WORKLIST_STATES)),
                and_(Referral.kind == "down", Referral.state.in_(DOWN_WORKLIST_STATES)),
            ),
        )
        order = (Referral.created_at.desc(), Referral.id.desc())
    if kind:
        stmt = stmt.where(Referral.kind == kind)
    if state:
        stmt = stmt.where(Referral.state == state)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = list(session.execute(stmt.order_by(*order).limit(limit).offset(offset)).scalars())
    audit.record(
        session,
        principal,
        "referral.list",
        object_kind="referral",
        detail={"view": view, "count": len(rows)},
    )
    return rows, total


def referrals_of_patient(session: Session, principal: Principal, patient_id: int) -> list[Referral]:
    """The patient's referrals the principal takes part in, newest first (for the chart;
    the chart read itself is audited by the caller's access_patient)."""
    _patient, chart = access_patient(session, principal, patient_id, action="referral.list")
    rows = session.execute(
        select(Referral)
        .where(Referral.patient_id.in_(chart.member_ids))
        .order_by(Referral.created_at.desc(), Referral.id.desc())
        .limit(MAX_LIMIT)
    ).scalars()
    return [r for r in rows if parts_of(principal, r)]


# The closed loop ------------------------------------------------------------------------------


def _root(session: Session, r: Referral) -> Referral:
    current = r
    for _ in range(MAX_CHAIN):
        if current.parent_id is None:
            return current
        parent = session.get(Referral, current.parent_id)
        if parent is None:
            return current
        current = parent
    return current


def _descendants(session: Session, root: Referral) -> list[Referral]:
    found = [root]
    frontier = [root.id]
    for _ in range(MAX_CHAIN):
        children = list(
            session.execute(
                select(Referral).where(Referral.parent_id.in_(frontier)).order_by(Referral.id)
            ).scalars()
        )
        if not children:
            break
        found.extend(children)
        frontier = [c.id for c in children]
    return found


def chain(session: Session, principal: Principal, referral_id: int) -> dict[str, Any]:
    """The whole loop the referral belongs to, as far as the principal may see it: the
    consultation it came from, each referral (up, exam, down) in order, and the
    follow-ups. Links the principal takes no part in are left out, not revealed."""
    opened = open_referral(session, principal, referral_id, action="referral.chain")
    root = _root(session, opened.referral)
    members = [r for r in _descendants(session, root) if parts_of(principal, r)]
    links: list[dict[str, Any]] = []
    if root.consultation_id is not None:
        c = consultations.linked_consultation(session, principal, root.consultation_id)
        if c is not None:
            links.append(
                {
                    "kind": "consultation",
                    "id": c.id,
                    "state": c.state,
                    "at": c.submitted_at or c.created_at,
                    "institution_from": c.applicant_institution_id,
                    "institution_to": c.target_institution_id,
                    "follow_ups": [],
                }
            )
    for r in sorted(members, key=lambda m: (m.created_at, m.id)):
        links.append(
            {
                "kind": r.kind,
                "id": r.id,
                "state": r.state,
                "at": r.created_at,
                "institution_from": r.sender_institution_id,
                "institution_to": r.target_institution_id,
                "follow_ups": _follow_up_out(session, r.id) if r.kind == "down" else [],
            }
        )
    return {"patient_id": opened.referral.patient_id, "links": links}

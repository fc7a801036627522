"""Down-referral: when treatment ends the upper institution sends the patient back — to
the institution that referred them by default, or to another lower institution — with a
structured discharge summary, a rehabilitation plan and follow-up dates; the lower
institution accepts and records the follow-ups."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import require_roles
from xietong.access.principal import Principal
from xietong.config import ReferralSettings
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, Invalid, NotFound
from xietong.directory.service.links import is_upward
from xietong.identity.roles import Role
from xietong.patients.access import access_patient
from xietong.records import icd10
from xietong.records.rules import local_date
from xietong.referral import workflow as wf
from xietong.referral.models import FollowUp, Referral
from xietong.referral.schemas import DownReferralIn, FollowUpIn
from xietong.referral.service.common import (
    Opened,
    open_referral,
    parts_of,
    record_created,
    transition,
)
from xietong.referral.service.requests import Created, check_items, share

# The up-referral a down-referral ends: its patient is (or was) treated upstairs.
ENDABLE_STATES = frozenset({"arrived", "in_treatment", "completed"})


def _parent(session: Session, principal: Principal, parent_id: int, patient_id: int) -> Referral:
    """The up-referral to the principal's institution that this one answers."""
    opened = open_referral(session, principal, parent_id, action="referral.read")
    parent = opened.referral
    if (
        parent.kind != "up"
        or parent.target_institution_id != principal.institution_id
        or parent.patient_id != patient_id
        or parent.state not in ENDABLE_STATES
    ):
        raise Invalid(
            N_("This is not an up-referral of this patient treated at your institution."),
            code="parent_not_endable",
            field="parent_id",
        )
    return parent


def may_send_down(principal: Principal, opened: Opened) -> bool:
    """A doctor or expert of the receiving institution, while the up-referral's patient is
    (or was) treated there, may send the patient back down from it."""
    r = opened.referral
    return (
        r.kind == "up"
        and r.state in ENDABLE_STATES
        and wf.CLINICIAN in opened.roles
        and principal.has(Role.APPLICANT_DOCTOR, Role.EXPERT)
    )


def open_for_down(session: Session, principal: Principal, referral_id: int) -> Referral:
    """The up-referral a down-referral form starts from: 404 when hidden, 403 (audited) for
    who may not send the patient back, 409 when the patient is not treated there."""
    opened = open_referral(session, principal, referral_id, action="referral.read")
    r = opened.referral
    if wf.CLINICIAN not in opened.roles or not principal.has(Role.APPLICANT_DOCTOR, Role.EXPERT):
        audit.record_denial(
            session, principal, "referral.down_form", "referral", r.id, reason="role"
        )
        raise Forbidden(code="role_not_allowed", field=None)
    if not may_send_down(principal, opened):
        raise Conflict(
            code="transition_not_allowed",
            field="action",
            params={"state": r.state, "action": "down"},
        )
    return r


def _check_discharge(data: DownReferralIn) -> dict[str, object]:
    diagnoses = []
    for index, line in enumerate(data.discharge.diagnoses):
        code = ""
        if line.code:
            code = icd10.lookup(line.code, field=f"discharge.diagnoses[{index}].code").code
        diagnoses.append({"code": code, "text": line.text})
    return {
        "diagnoses": diagnoses,
        "procedures": list(data.discharge.procedures),
        "medications": [m.model_dump() for m in data.discharge.medications],
        "follow_up_plan": data.discharge.follow_up_plan,
    }


def _check_follow_ups(data: DownReferralIn) -> None:
    today = local_date(now())
    for index, plan in enumerate(data.follow_ups):
        if plan.due_date < today:
            raise Invalid(
                N_("A follow-up is due today or later."),
                code="follow_up_past",
                field=f"follow_ups[{index}].due_date",
            )


def create_down(
    session: Session,
    principal: Principal,
    data: DownReferralIn,
    settings: ReferralSettings,
    *,
    idempotency_key: str | None = None,
) -> Created:
    """Send the patient back down. The target must refer up to the principal's institution
    (422 ``target_not_downward``); the up-referral it ends, if still in treatment, is
    completed in the same transaction."""
    require_roles(
        session,
        principal,
        {Role.APPLICANT_DOCTOR, Role.EXPERT},
        action="referral.create",
        object_kind="referral",
    )
    if principal.institution_id is None:
        raise Forbidden(code="no_institution", field=None)
    if idempotency_key:
        first = session.execute(
            select(Referral).where(
                Referral.sender_institution_id == principal.institution_id,
                Referral.idempotency_key == idempotency_key,
            )
        ).scalar_one_or_none()
        if first is not None:
            open_referral(session, principal, first.id, action="referral.read")
            return Created(first, False)
    _patient, chart = access_patient(
        session, principal, data.patient_id, action="referral.create", field="patient_id"
    )
    parent = (
        _parent(session, principal, data.parent_id, chart.patient_id) if data.parent_id else None
    )
    target = data.target_institution_id or (parent.sender_institution_id if parent else None)
    if target is None:
        raise Invalid(
            N_("Name the institution the patient goes back to."),
            code="missing",
            field="target_institution_id",
        )
    if not is_upward(session, target, principal.institution_id):
        raise Invalid(
            N_("A down-referral goes to an institution that refers patients to yours."),
            code="target_not_downward",
            field="target_institution_id",
        )
    discharge = _check_discharge(data)
    _check_follow_ups(data)
    items = check_items(session, chart, data.shared_items)
    r = Referral(
        kind="down",
        patient_id=chart.patient_id,
        sender_user_id=principal.uid,
        sender_institution_id=principal.institution_id,
        target_institution_id=target,
        priority="normal",
        reason=data.reason,
        diagnosis_code=str(discharge["diagnoses"][0]["code"]),  # type: ignore[index]
        diagnosis_text=str(discharge["diagnoses"][0]["text"]),  # type: ignore[index]
        parent_id=parent.id if parent else None,
        consultation_id=parent.consultation_id if parent else None,
        shared_items=[{"kind": i.kind, "id": i.id} for i in data.shared_items],
        state="requested",
        created_at=now(),
        accept_deadline=now() + timedelta(minutes=settings.down_accept_minutes),
        discharge=discharge,
        rehab_plan=data.rehab_plan,
        idempotency_key=idempotency_key or None,
    )
    session.add(r)
    session.flush()
    for plan in sorted(data.follow_ups, key=lambda p: p.due_date):
        session.add(FollowUp(referral_id=r.id, due_date=plan.due_date, purpose=plan.purpose))
    share(session, principal, chart, r, items, now() + timedelta(days=settings.grant_days))
    record_created(session, principal, r)
    if parent is not None and parent.state == "in_treatment":
        transition(
            session,
            principal,
            Opened(parent, parts_of(principal, parent)),
            "complete",
            note=f"→ #{r.id}",
            values={"closed_at": now()},
        )
    return Created(r, True)


def follow_ups(session: Session, referral_id: int) -> list[FollowUp]:
    return list(
        session.execute(
            select(FollowUp)
            .where(FollowUp.referral_id == referral_id)
            .order_by(FollowUp.due_date, FollowUp.id)
        ).scalars()
    )


def is_overdue(follow_up: FollowUp) -> bool:
    return follow_up.status == "planned" and follow_up.due_date < local_date(now())


def record_follow_up(
    session: Session,
    principal: Principal,
    referral_id: int,
    follow_up_id: int,
    data: FollowUpIn,
) -> FollowUp:
    """The lower institution records a planned follow-up as done or missed, once."""
    opened = open_referral(
        session, principal, referral_id, action="referral.follow_up", audit_success=False
    )
    r = opened.referral
    if not opened.roles & {wf.DESK, wf.CLINICIAN} or r.kind != "down":
        audit.record_denial(
            session, principal, "referral.follow_up", "referral", r.id, reason="role"
        )
        raise Forbidden(code="role_not_allowed", field=None)
    if r.state != "accepted":
        raise Conflict(
            N_("Follow-ups are recorded once the patient is taken back."),
            code="follow_up_closed",
            field="state",
            params={"state": r.state},
        )
    row = session.get(FollowUp, follow_up_id)
    if row is None or row.referral_id != r.id:
        raise NotFound(
            N_("This referral has no such follow-up."),
            code="follow_up_not_found",
            field="follow_up_id",
        )
    if row.status != "planned":
        raise Conflict(
            N_("This follow-up is already recorded."),
            code="follow_up_recorded",
            field="follow_up_id",
        )
    row.status = data.status
    row.note = data.note
    row.done_at = now()
    row.done_by_user_id = principal.user_id
    session.flush()
    audit.record(
        session,
        principal,
        "referral.follow_up",
        object_kind="referral",
        object_id=r.id,
        detail={"follow_up_id": row.id, "status": row.status},
    )
    return row

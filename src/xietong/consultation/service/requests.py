"""The request's life before the report: create, submit (grants), triage, schedule, start,
cancel, resubmit. Reading one consultation or a list is in ``reading``."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import require_roles
from xietong.access.principal import Principal
from xietong.config import ConsultationSettings
from xietong.consultation import workflow as wf
from xietong.consultation.models import (
    Consultation,
    ConsultationAssignment,
    ConsultationGrant,
    ConsultationOpinion,
)
from xietong.consultation.schemas import AcceptIn, ConsultationIn, ResubmitIn, ScheduleIn
from xietong.consultation.service.common import (
    grant_ids,
    open_consultation,
    record_breach,
    transition,
)
from xietong.consultation.service.notices import notify_transition
from xietong.core.clock import now
from xietong.core.errors import N_, Forbidden, Invalid
from xietong.core.validation import as_utc
from xietong.directory.models import Department, Practitioner
from xietong.directory.service.links import is_upward
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.imaging.service import ITEM_KIND as IMAGING_STUDY
from xietong.patients.access import access_patient, resolve_item
from xietong.patients.grants import GrantItem, extend_grants, grant_for_workflow


@dataclass(frozen=True)
class Created:
    consultation: Consultation
    created: bool


# Creating and submitting ------------------------------------------------------------------


def _target(session: Session, principal: Principal, data: ConsultationIn) -> tuple[int, str]:
    """The receiving institution, or 422 naming the target field."""
    if (data.target_institution_id is None) == (data.target_practitioner_id is None):
        raise Invalid(
            N_("Name a service centre or an expert, one of the two."),
            code="target_required",
            field="target_institution_id",
        )
    if data.target_practitioner_id is not None:
        expert = session.get(Practitioner, data.target_practitioner_id)
        if expert is None or not expert.is_active or not expert.is_expert:
            raise Invalid(
                N_("No expert has this id."),
                code="expert_not_found",
                field="target_practitioner_id",
            )
        centre_id, field_name = expert.institution_id, "target_practitioner_id"
    else:
        # The schema requires one target.
        centre_id, field_name = data.target_institution_id or 0, "target_institution_id"
    if principal.institution_id is None or not is_upward(
        session, principal.institution_id, centre_id
    ):
        raise Invalid(
            N_("A consultation goes to a service centre of your institution."),
            code="target_not_upward",
            field=field_name,
        )
    return centre_id, field_name


def create_consultation(
    session: Session,
    principal: Principal,
    data: ConsultationIn,
    settings: ConsultationSettings,
    *,
    idempotency_key: str | None = None,
    kind: str = wf.CLINICAL,
) -> Created:
    """A draft (submitted at once when ``data.submit``); the same Idempotency-Key from the
    same institution returns the first consultation. ``kind`` ``imaging_read`` is a read
    (ADR 0017): it shares at least one imaging study and goes to a radiology department."""
    require_roles(
        session,
        principal,
        {Role.APPLICANT_DOCTOR},
        action="consultation.create",
        object_kind="consultation",
    )
    if principal.institution_id is None:
        raise Forbidden(
            N_("Only staff of an institution request a consultation."),
            code="no_institution",
            field=None,
        )
    if idempotency_key:
        first = _by_key(session, principal.institution_id, idempotency_key)
        if first is not None:
            open_consultation(session, principal, first.id, action="consultation.read")
            return Created(first, False)
    _patient, chart = access_patient(
        session, principal, data.patient_id, action="consultation.create", field="patient_id"
    )
    centre_id, _field = _target(session, principal, data)
    for index, item in enumerate(data.shared_items):
        found = resolve_item(session, item.kind, item.id)
        if (
            found is None
            or found[0] not in chart.member_ids
            or not chart.can_see(item.kind, item.id, found[1])
        ):
            raise Invalid(
                N_("This item is not one of the patient's records you can share."),
                code="shared_item_not_found",
                field=f"shared_items[{index}]",
            )
    if kind == wf.IMAGING_READ:
        _check_read(session, data, centre_id)
    c = Consultation(
        kind=kind,
        patient_id=chart.patient_id,
        applicant_user_id=principal.uid,
        applicant_institution_id=principal.institution_id,
        purpose=data.purpose,
        clinical_summary=data.clinical_summary,
        questions=data.questions,
        specialty=data.specialty,
        urgency=data.urgency,
        mode=data.mode,
        target_institution_id=centre_id,
        target_practitioner_id=data.target_practitioner_id,
        shared_items=[{"kind": i.kind, "id": i.id} for i in data.shared_items],
        state="draft",
        created_at=now(),
        idempotency_key=idempotency_key or None,
    )
    try:
        with session.begin_nested():
            session.add(c)
            session.flush()
    except IntegrityError:
        # A concurrent retry with the same key won: answer with its consultation.
        first = _by_key(session, principal.institution_id, idempotency_key or "")
        if first is None:
            raise
        open_consultation(session, principal, first.id, action="consultation.read")
        return Created(first, False)
    audit.record(
        session,
        principal,
        "consultation.create",
        object_kind="consultation",
        object_id=c.id,
        detail={"patient_id": c.patient_id, "target_institution_id": centre_id},
    )
    if data.submit:
        submit(session, principal, c.id, settings)
    return Created(c, True)


def _check_read(session: Session, data: ConsultationIn, centre_id: int) -> None:
    if not any(item.kind == IMAGING_STUDY for item in data.shared_items):
        raise Invalid(
            N_("An imaging read shares at least one imaging study."),
            code="study_required",
            field="shared_items",
        )
    radiology = session.execute(
        select(Department.id).where(
            Department.institution_id == centre_id,
            Department.specialty == "radiology",
            Department.is_active.is_(True),
        )
    ).first()
    if radiology is None:
        raise Invalid(
            N_("This institution has no radiology department to read the study."),
            code="no_radiology",
            field="target_institution_id",
        )


def _by_key(session: Session, institution_id: int, key: str) -> Consultation | None:
    return session.execute(
        select(Consultation).where(
            Consultation.applicant_institution_id == institution_id,
            Consultation.idempotency_key == key,
        )
    ).scalar_one_or_none()


def _deadlines(c: Consultation, settings: ConsultationSettings) -> tuple[datetime, datetime]:
    accept, report = settings.deadlines(c.urgency)
    start = now()
    return start + timedelta(minutes=accept), start + timedelta(minutes=report)


def submit(
    session: Session,
    principal: Principal,
    consultation_id: int,
    settings: ConsultationSettings,
    *,
    idempotency_key: str | None = None,
) -> Consultation:
    """Submit a draft: the target must still be upward; deadlines start; the chosen items
    are granted to the centre until the report deadline and the margin."""
    opened = open_consultation(
        session, principal, consultation_id, action="consultation.submit", audit_success=False
    )
    c = opened.consultation
    if idempotency_key and c.idempotency_key == idempotency_key and c.state != "draft":
        # A retry of a submit that went through: answer with the consultation as it is.
        audit.record(
            session,
            principal,
            "consultation.read",
            object_kind="consultation",
            object_id=c.id,
            detail={"retry": "submit"},
        )
        return c
    wf.WORKFLOW.apply(c.state, "submit", opened.roles)
    if not is_upward(session, c.applicant_institution_id, c.target_institution_id):
        raise Invalid(
            N_("A consultation goes to a service centre of your institution."),
            code="target_not_upward",
            field="target_practitioner_id" if c.target_practitioner_id else "target_institution_id",
        )
    accept_deadline, report_deadline = _deadlines(c, settings)
    if c.shared_items:
        _patient, chart = access_patient(
            session, principal, c.patient_id, action="consultation.share", field="patient_id"
        )
        items = [GrantItem(str(i["kind"]), int(str(i["id"]))) for i in c.shared_items]
        try:
            grant = grant_for_workflow(
                session,
                principal,
                chart,
                grantee_institution_id=c.target_institution_id,
                items=items,
                purpose="consultation",
                expires_at=report_deadline + timedelta(hours=settings.grant_margin_hours),
                subject=("consultation", str(c.id)),
            )
        except Invalid as exc:
            raise Invalid(
                exc.message,
                code=exc.code,
                field=(exc.field or "").replace("items", "shared_items", 1) or "shared_items",
            ) from None
        session.add(ConsultationGrant(consultation_id=c.id, grant_id=grant.id))
    transition(
        session,
        principal,
        opened,
        "submit",
        values={
            "submitted_at": now(),
            "accept_deadline": accept_deadline,
            "report_deadline": report_deadline,
        },
    )
    return c


def resubmit(
    session: Session,
    principal: Principal,
    consultation_id: int,
    data: ResubmitIn,
    settings: ConsultationSettings,
) -> Consultation:
    """Answer a return: the text may change; the deadlines restart and the grants follow."""
    opened = open_consultation(
        session, principal, consultation_id, action="consultation.resubmit", audit_success=False
    )
    c = opened.consultation
    wf.WORKFLOW.apply(c.state, "resubmit", opened.roles)
    accept_deadline, report_deadline = _deadlines(c, settings)
    values: dict[str, Any] = {
        "accept_deadline": accept_deadline,
        "report_deadline": report_deadline,
    }
    if data.clinical_summary is not None:
        values["clinical_summary"] = data.clinical_summary
    if data.questions is not None:
        values["questions"] = data.questions
    transition(session, principal, opened, "resubmit", note=data.note, values=values)
    expiry = report_deadline + timedelta(hours=settings.grant_margin_hours)
    extend_grants(session, grant_ids(session, c.id), expiry)
    return c


# Triage ---------------------------------------------------------------------------------


def _expert_user(session: Session, practitioner_id: int, role: Role) -> User | None:
    user = session.execute(
        select(User).where(User.practitioner_id == practitioner_id)
    ).scalar_one_or_none()
    if user is None or not user.is_active or role not in user.role_names:
        return None
    return user


def accept(
    session: Session, principal: Principal, consultation_id: int, data: AcceptIn
) -> Consultation:
    """Accept and assign experts of the centre, one of them the lead. Two coordinators at
    once: the conditional UPDATE lets exactly one through; the other gets 409."""
    opened = open_consultation(
        session, principal, consultation_id, action="consultation.accept", audit_success=False
    )
    c = opened.consultation
    wf.WORKFLOW.apply(c.state, "accept", opened.roles)
    if len(set(data.experts)) != len(data.experts):
        raise Invalid(N_("An expert is listed twice."), code="duplicate", field="experts")
    if data.lead not in data.experts:
        raise Invalid(
            N_("The lead is one of the assigned experts."), code="lead_not_assigned", field="lead"
        )
    users: dict[int, User] = {}
    # An imaging read is assigned to radiologists of the reading centre (ADR 0017).
    read = c.kind == wf.IMAGING_READ
    for index, pid in enumerate(data.experts):
        expert = session.get(Practitioner, pid)
        role = Role.RADIOLOGIST if read else Role.EXPERT
        user = _expert_user(session, pid, role) if expert is not None else None
        if (
            expert is None
            or user is None
            or not expert.is_active
            or not (expert.is_expert or read)
            or expert.institution_id != c.target_institution_id
        ):
            raise Invalid(
                N_("This is not an expert of the receiving centre with an account."),
                code="expert_not_found",
                field=f"experts[{index}]",
            )
        users[pid] = user
    late = c.accept_deadline is not None and now() > as_utc(c.accept_deadline)
    transition(session, principal, opened, "accept", note=data.note, values={"accepted_at": now()})
    for pid in data.experts:
        session.add(
            ConsultationAssignment(
                consultation_id=c.id,
                practitioner_id=pid,
                user_id=users[pid].id,
                is_lead=pid == data.lead,
                assigned_at=now(),
                assigned_by_user_id=principal.user_id,
            )
        )
    session.flush()
    notify_transition(session, c, "accept", "submitted", principal.user_id)
    if late:
        record_breach(session, c, "accept", principal.user_id)
    return c


def simple_action(
    session: Session,
    principal: Principal,
    consultation_id: int,
    action: Literal["return", "reject", "cancel"],
    note: str = "",
) -> Consultation:
    """Return (note required), reject (reason required), cancel (the applicant)."""
    opened = open_consultation(
        session, principal, consultation_id, action=f"consultation.{action}", audit_success=False
    )
    values: dict[str, Any] = {}
    if action in ("reject", "cancel"):
        values["closed_at"] = now()
    transition(session, principal, opened, action, note=note, values=values)
    return opened.consultation


def schedule(
    session: Session,
    principal: Principal,
    consultation_id: int,
    data: ScheduleIn,
    *,
    action: Literal["schedule", "reschedule"] = "schedule",
) -> Consultation:
    opened = open_consultation(
        session, principal, consultation_id, action=f"consultation.{action}", audit_success=False
    )
    c = opened.consultation
    wf.WORKFLOW.apply(c.state, action, opened.roles, _guard(session, c))
    if as_utc(data.scheduled_at) <= now():
        raise Invalid(
            N_("The session time must be in the future."),
            code="time_past",
            field="scheduled_at",
        )
    transition(
        session,
        principal,
        opened,
        action,
        note=data.note,
        values={"scheduled_at": as_utc(data.scheduled_at)},
        guard_subject=_guard(session, c),
    )
    return c


def start(session: Session, principal: Principal, consultation_id: int) -> Consultation:
    opened = open_consultation(
        session, principal, consultation_id, action="consultation.start", audit_success=False
    )
    c = opened.consultation
    transition(
        session,
        principal,
        opened,
        "start",
        values={"started_at": now()},
        guard_subject=_guard(session, c),
    )
    return c


def _guard(session: Session, c: Consultation) -> wf.GuardContext:
    experts = session.execute(
        select(func.count()).where(ConsultationAssignment.consultation_id == c.id)
    ).scalar_one()
    opinions = session.execute(
        select(func.count())
        .select_from(ConsultationOpinion)
        .join(
            ConsultationAssignment,
            (ConsultationAssignment.consultation_id == ConsultationOpinion.consultation_id)
            & (ConsultationAssignment.practitioner_id == ConsultationOpinion.practitioner_id),
        )
        .where(ConsultationOpinion.consultation_id == c.id)
    ).scalar_one()
    return wf.GuardContext(mode=c.mode, experts=experts, opinions=opinions, kind=c.kind)


guard_context = _guard

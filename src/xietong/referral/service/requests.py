"""Up and exam referrals: sending (from the chart or from a consultation report that
recommends it), the receiving desk's answer, the patient's arrival, treatment, and the
examination report and decision of an exam referral."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xietong.access.policies import require_roles
from xietong.access.principal import Principal
from xietong.config import ReferralSettings
from xietong.consultation import service as consultations
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, Invalid
from xietong.core.validation import as_utc
from xietong.directory.models import Department, Practitioner
from xietong.directory.service.links import is_upward
from xietong.identity.roles import Role
from xietong.patients.access import ChartAccess, access_patient, resolve_item
from xietong.patients.grants import MAX_GRANT_DAYS, GrantItem, grant_for_workflow
from xietong.patients.registration import link_institution
from xietong.records import icd10
from xietong.referral import slots
from xietong.referral import workflow as wf
from xietong.referral.models import Referral, ReferralGrant
from xietong.referral.schemas import (
    AcceptIn,
    DecisionIn,
    ExamReportIn,
    ReferralIn,
    ResubmitIn,
    SharedItemIn,
)
from xietong.referral.service.common import (
    open_referral,
    record_created,
    transition,
)

# What kind of slot each referral books.
SLOT_KINDS: dict[str, tuple[str, ...]] = {"up": ("outpatient", "admission"), "exam": ("exam",)}


@dataclass(frozen=True)
class Created:
    referral: Referral
    created: bool


# Checking what is sent ------------------------------------------------------------------------


def check_target(
    session: Session,
    institution_id: int,
    department_id: int | None,
    practitioner_id: int | None,
) -> None:
    """The department and the named doctor belong to the receiving institution."""
    if department_id is not None:
        dept = session.get(Department, department_id)
        if dept is None or dept.institution_id != institution_id or not dept.is_active:
            raise Invalid(
                N_("This department is not one of the receiving institution's."),
                code="department_not_found",
                field="target_department_id",
            )
    if practitioner_id is not None:
        doctor = session.get(Practitioner, practitioner_id)
        if doctor is None or doctor.institution_id != institution_id or not doctor.is_active:
            raise Invalid(
                N_("This doctor does not work at the receiving institution."),
                code="practitioner_not_found",
                field="target_practitioner_id",
            )


def check_items(
    session: Session, chart: ChartAccess, items: list[SharedItemIn], field: str = "shared_items"
) -> list[GrantItem]:
    """The items are records of this patient that the sender may see (and so share)."""
    for index, item in enumerate(items):
        found = resolve_item(session, item.kind, item.id)
        if (
            found is None
            or found[0] not in chart.member_ids
            or not chart.can_see(item.kind, item.id, found[1])
        ):
            raise Invalid(
                N_("This item is not one of the patient's records you can share."),
                code="shared_item_not_found",
                field=f"{field}[{index}]",
            )
    return [GrantItem(i.kind, i.id) for i in items]


def share(
    session: Session,
    principal: Principal,
    chart: ChartAccess,
    r: Referral,
    items: list[GrantItem],
    expires_at: datetime,
) -> None:
    """Grant the items to the receiving institution for the referral."""
    if not items:
        return
    grant = grant_for_workflow(
        session,
        principal,
        chart,
        grantee_institution_id=r.target_institution_id,
        items=items,
        purpose="referral",
        expires_at=expires_at,
        subject=("referral", str(r.id)),
    )
    session.add(ReferralGrant(referral_id=r.id, grant_id=grant.id))
    session.flush()


def _consultation(
    session: Session, principal: Principal, consultation_id: int, patient_id: int
) -> None:
    """A referral from a consultation: the applicant's own, for this patient, with a
    signed report that recommends referral."""
    opened = consultations.get_consultation(session, principal, consultation_id)
    c = opened.consultation
    latest = consultations.reports(session, principal, consultation_id)
    if (
        c.patient_id != patient_id
        or c.applicant_institution_id != principal.institution_id
        or not latest
        or not latest[0].referral_recommended
    ):
        raise Invalid(
            N_("This consultation's signed report does not recommend referring this patient."),
            code="consultation_not_recommending",
            field="consultation_id",
        )


def _deadline(settings: ReferralSettings, kind: str, priority: str) -> datetime:
    return now() + timedelta(minutes=settings.accept_minutes_for(kind, priority))


def _by_key(session: Session, institution_id: int, key: str) -> Referral | None:
    return session.execute(
        select(Referral).where(
            Referral.sender_institution_id == institution_id, Referral.idempotency_key == key
        )
    ).scalar_one_or_none()


def book(session: Session, r: Referral, slot_id: int, actor: int | None, field: str) -> None:
    """Book a place for the referral in one of the receiving institution's slots (of the
    right kind; for an exam, of the right examination)."""
    slot = slots.slot_of(session, slot_id)
    if r.kind == "exam" and slot is not None and slot.exam_type != r.exam_type:
        raise Invalid(
            N_("This slot is for another examination."), code="slot_wrong_exam", field=field
        )
    slots.book_for_referral(
        session,
        slot_id,
        patient_id=r.patient_id,
        referral_id=r.id,
        channel="green" if r.priority == "green" else "normal",
        booked_by_user_id=actor,
        institution_id=r.target_institution_id,
        kinds=SLOT_KINDS[r.kind],
        field=field,
    )


def release(session: Session, r: Referral, actor: int | None) -> None:
    booking = slots.active_booking(session, r.id)
    if booking is not None and booking.status == "booked":
        slots.release_booking(session, booking.id, actor_user_id=actor)


# Sending --------------------------------------------------------------------------------------


def create_referral(
    session: Session,
    principal: Principal,
    data: ReferralIn,
    settings: ReferralSettings,
    *,
    idempotency_key: str | None = None,
) -> Created:
    """Send an up or exam referral: to an institution upward of the sender's, with the
    chosen records shared until ``grant_days`` from now, and a place booked when a slot is
    named. The same Idempotency-Key from the same institution returns the first one."""
    require_roles(
        session,
        principal,
        {Role.APPLICANT_DOCTOR},
        action="referral.create",
        object_kind="referral",
    )
    if principal.institution_id is None:
        raise Forbidden(code="no_institution", field=None)
    if idempotency_key:
        first = _by_key(session, principal.institution_id, idempotency_key)
        if first is not None:
            open_referral(session, principal, first.id, action="referral.read")
            return Created(first, False)
    _patient, chart = access_patient(
        session, principal, data.patient_id, action="referral.create", field="patient_id"
    )
    if not is_upward(session, principal.institution_id, data.target_institution_id):
        raise Invalid(
            N_("A referral goes up to an institution your institution refers to."),
            code="target_not_upward",
            field="target_institution_id",
        )
    check_target(
        session, data.target_institution_id, data.target_department_id, data.target_practitioner_id
    )
    diagnosis_code, diagnosis_text = "", data.diagnosis_text
    if data.diagnosis_code:
        code = icd10.lookup(data.diagnosis_code, field="diagnosis_code")
        diagnosis_code, diagnosis_text = code.code, diagnosis_text or code.name()
    if data.consultation_id is not None:
        _consultation(session, principal, data.consultation_id, chart.patient_id)
    items = check_items(session, chart, data.shared_items)
    r = Referral(
        kind=data.kind,
        patient_id=chart.patient_id,
        sender_user_id=principal.uid,
        sender_institution_id=principal.institution_id,
        target_institution_id=data.target_institution_id,
        target_department_id=data.target_department_id,
        target_practitioner_id=data.target_practitioner_id,
        priority=data.priority,
        reason=data.reason,
        diagnosis_code=diagnosis_code,
        diagnosis_text=diagnosis_text,
        summary=data.summary,
        exam_type=data.exam_type,
        consultation_id=data.consultation_id,
        shared_items=[{"kind": i.kind, "id": i.id} for i in data.shared_items],
        state="requested",
        created_at=now(),
        accept_deadline=_deadline(settings, data.kind, data.priority),
        idempotency_key=idempotency_key or None,
    )
    try:
        with session.begin_nested():
            session.add(r)
            session.flush()
    except IntegrityError:
        first = _by_key(session, principal.institution_id, idempotency_key or "")
        if first is None:
            raise
        open_referral(session, principal, first.id, action="referral.read")
        return Created(first, False)
    share(session, principal, chart, r, items, now() + timedelta(days=settings.grant_days))
    if data.slot_id is not None:
        book(session, r, data.slot_id, principal.user_id, "slot_id")
    record_created(session, principal, r)
    return Created(r, True)


def resubmit(
    session: Session,
    principal: Principal,
    referral_id: int,
    data: ResubmitIn,
    settings: ReferralSettings,
) -> Referral:
    """Answer a return: the summary may change, the place may move; the deadline restarts."""
    opened = open_referral(
        session, principal, referral_id, action="referral.resubmit", audit_success=False
    )
    r = opened.referral
    wf.WORKFLOWS[r.kind].apply(r.state, "resubmit", opened.roles)
    values: dict[str, Any] = {"accept_deadline": _deadline(settings, r.kind, r.priority)}
    if data.summary is not None:
        values["summary"] = data.summary
    if data.slot_id is not None:
        release(session, r, principal.user_id)
        book(session, r, data.slot_id, principal.user_id, "slot_id")
    transition(session, principal, opened, "resubmit", note=data.note, values=values)
    return r


# The receiving desk ---------------------------------------------------------------------------


def accept(session: Session, principal: Principal, referral_id: int, data: AcceptIn) -> Referral:
    """The receiving desk accepts an up or exam referral, booking the named slot when the
    sender booked none (or moving the place there). A down-referral is accepted by the lower
    institution, which from then on treats the patient (no slot)."""
    opened = open_referral(
        session, principal, referral_id, action="referral.accept", audit_success=False
    )
    r = opened.referral
    if r.kind == "down":
        wf.DOWN.apply(r.state, "accept", opened.roles)
        link_institution(session, r.patient_id, r.target_institution_id, "treated")
        transition(
            session, principal, opened, "accept", note=data.note, values={"accepted_at": now()}
        )
        return r
    wf.WORKFLOWS[r.kind].apply(r.state, "accept", opened.roles, wf.GuardContext(booked=True))
    current = slots.active_booking(session, r.id)
    if data.slot_id is not None and (current is None or current.slot_id != data.slot_id):
        if current is not None:
            slots.release_booking(session, current.id, actor_user_id=principal.user_id)
        book(session, r, data.slot_id, principal.user_id, "slot_id")
    booked = slots.active_booking(session, r.id) is not None
    transition(
        session,
        principal,
        opened,
        "accept",
        note=data.note,
        values={"accepted_at": now()},
        guard_subject=wf.GuardContext(booked=booked),
    )
    return r


def simple_action(
    session: Session,
    principal: Principal,
    referral_id: int,
    action: Literal["return", "reject", "cancel", "start", "complete", "no_show"],
    note: str = "",
) -> Referral:
    """Return (note required), reject (reason required), cancel (the sender; the place is
    released), start and complete treatment, no-show (the place stays counted)."""
    opened = open_referral(
        session, principal, referral_id, action=f"referral.{action}", audit_success=False
    )
    r = opened.referral
    wf.WORKFLOWS[r.kind].apply(r.state, action, opened.roles)
    values: dict[str, Any] = {}
    if action in ("reject", "cancel", "complete", "no_show"):
        values["closed_at"] = now()
    if action in ("reject", "cancel"):
        release(session, r, principal.user_id)
    if action == "no_show":
        booking = slots.active_booking(session, r.id)
        slot = slots.slot_of(session, booking.slot_id) if booking is not None else None
        if slot is not None and as_utc(slot.starts_at) > now():
            raise Conflict(
                N_("A patient is marked absent once the appointment has begun."),
                code="slot_not_started",
                field="action",
            )
        if booking is not None:
            slots.mark_no_show(session, booking.id)
    transition(session, principal, opened, action, note=note, values=values)
    return r


def check_in(session: Session, principal: Principal, referral_id: int, note: str = "") -> Referral:
    """The patient came: the booking is marked arrived and the receiving institution now
    treats the patient (their own records of the patient open to their staff)."""
    opened = open_referral(
        session, principal, referral_id, action="referral.check_in", audit_success=False
    )
    r = opened.referral
    wf.WORKFLOWS[r.kind].apply(r.state, "check_in", opened.roles)
    booking = slots.active_booking(session, r.id)
    if booking is not None:
        slots.mark_arrived(session, booking.id, actor_user_id=principal.user_id)
    link_institution(session, r.patient_id, r.target_institution_id, "treated")
    transition(session, principal, opened, "check_in", note=note, values={"arrived_at": now()})
    return r


# Exam referral --------------------------------------------------------------------------------


def attach_report(
    session: Session, principal: Principal, referral_id: int, data: ExamReportIn
) -> Referral:
    """The examination report (a clinical document of this patient held by the receiving
    institution) goes back to the sender: granted to the sending institution for a year."""
    opened = open_referral(
        session, principal, referral_id, action="referral.report", audit_success=False
    )
    r = opened.referral
    wf.WORKFLOWS[r.kind].apply(r.state, "report", opened.roles, wf.GuardContext(True, True))
    _patient, chart = access_patient(
        session, principal, r.patient_id, action="referral.report", field="document_id"
    )
    found = resolve_item(session, "document", data.document_id)
    if found is None or found[0] not in chart.member_ids or found[1] != r.target_institution_id:
        raise Invalid(
            N_("This document is not one of this patient's at your institution."),
            code="document_not_found",
            field="document_id",
        )
    grant = grant_for_workflow(
        session,
        principal,
        chart,
        grantee_institution_id=r.sender_institution_id,
        items=[GrantItem("document", data.document_id)],
        purpose="referral",
        expires_at=now() + timedelta(days=MAX_GRANT_DAYS) - timedelta(minutes=1),
        subject=("referral", str(r.id)),
    )
    session.add(ReferralGrant(referral_id=r.id, grant_id=grant.id))
    transition(
        session,
        principal,
        opened,
        "report",
        note=data.note,
        values={"report_document_id": data.document_id},
        guard_subject=wf.GuardContext(booked=True, has_report=True),
    )
    return r


def decide(
    session: Session,
    principal: Principal,
    referral_id: int,
    data: DecisionIn,
    settings: ReferralSettings,
) -> Referral:
    """The expert's decision on an exam referral: stay at the lower institution with
    advice; refer up for treatment (a new up-referral to this institution, waiting for the
    desk to book it); or admit (a new up-referral, the patient already in treatment)."""
    opened = open_referral(
        session, principal, referral_id, action="referral.decide", audit_success=False
    )
    r = opened.referral
    wf.WORKFLOWS[r.kind].apply(r.state, "decide", opened.roles)
    department = data.target_department_id or r.target_department_id
    if data.target_department_id is not None:
        check_target(session, r.target_institution_id, data.target_department_id, None)
    transition(
        session,
        principal,
        opened,
        "decide",
        note=data.note,
        values={"decision": data.decision, "decision_note": data.note, "closed_at": now()},
    )
    if data.decision == "stay":
        return r
    admitted = data.decision == "admit"
    child = Referral(
        kind="up",
        patient_id=r.patient_id,
        sender_user_id=r.sender_user_id,
        sender_institution_id=r.sender_institution_id,
        target_institution_id=r.target_institution_id,
        target_department_id=department,
        priority="normal",
        reason=data.note,
        diagnosis_code=r.diagnosis_code,
        diagnosis_text=r.diagnosis_text,
        summary=r.summary,
        parent_id=r.id,
        consultation_id=r.consultation_id,
        shared_items=list(r.shared_items),
        state="in_treatment" if admitted else "requested",
        created_at=now(),
        accept_deadline=None if admitted else _deadline(settings, "up", "normal"),
        accepted_at=now() if admitted else None,
        arrived_at=now() if admitted else None,
    )
    session.add(child)
    session.flush()
    # The records shared with the exam referral stay shared with its continuation.
    for row in (
        session.execute(select(ReferralGrant).where(ReferralGrant.referral_id == r.id))
        .scalars()
        .all()
    ):
        session.add(ReferralGrant(referral_id=child.id, grant_id=row.grant_id))
    record_created(
        session, principal, child, action="admit" if admitted else "request", note=data.note
    )
    return r

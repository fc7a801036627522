"""Publishing slots: the weekly templates of an institution's desk, one-off slots, and
closing, reopening or cancelling a slot (generating slots from the templates:
generation.py).

Only coordinators and institution admins of the institution publish (403 for other roles,
404 for other institutions' templates and slots; both audited). Every change is audited.
"""

from __future__ import annotations

from datetime import time, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Invalid
from xietong.directory.models import Department, Practitioner
from xietong.referral.slot_models import Slot, SlotTemplate
from xietong.referral.slot_schemas import OneOffSlotIn, TemplateIn, TemplateUpdateIn
from xietong.referral.slot_service.common import (
    china_instant,
    china_today,
    open_institution,
    open_slot,
    open_template,
)

# A one-off slot is published at most this far ahead.
ONE_OFF_MAX_DAYS = 366
_NULLABLE = frozenset({"practitioner_id", "valid_until"})


# The rules of a template or slot ------------------------------------------------------------


def check_place(
    session: Session, institution_id: int, department_id: int, practitioner_id: int | None
) -> None:
    """The department is an active one of the institution; the practitioner, if any, works
    there (in that department, or in none in particular)."""
    department = session.get(Department, department_id)
    if (
        department is None
        or department.institution_id != institution_id
        or not department.is_active
    ):
        raise Invalid(
            N_("This department is not one of the institution's."),
            code="department_not_found",
            field="department_id",
        )
    if practitioner_id is None:
        return
    practitioner = session.get(Practitioner, practitioner_id)
    if (
        practitioner is None
        or practitioner.institution_id != institution_id
        or not practitioner.is_active
        or practitioner.department_id not in (None, department_id)
    ):
        raise Invalid(
            N_("This practitioner does not work in the department."),
            code="practitioner_not_found",
            field="practitioner_id",
        )


def check_shape(
    *,
    kind: str,
    exam_type: str,
    start_time: time,
    end_time: time,
    capacity: int,
    referral_reserved: int,
) -> None:
    if kind == "exam" and not exam_type:
        raise Invalid(
            N_("An examination slot names its examination."),
            code="exam_type_required",
            field="exam_type",
        )
    if kind != "exam" and exam_type:
        raise Invalid(
            N_("Only examination slots name an examination."),
            code="exam_type_not_allowed",
            field="exam_type",
        )
    if start_time >= end_time:
        raise Invalid(
            N_("The end comes after the start, on the same day."),
            code="times_reversed",
            field="end_time",
        )
    if referral_reserved > capacity:
        raise Invalid(
            N_("The referral reserve cannot exceed the capacity."),
            code="reserve_exceeds_capacity",
            field="referral_reserved",
        )


def _check_template(session: Session, institution_id: int, values: dict[str, Any]) -> None:
    check_place(session, institution_id, values["department_id"], values["practitioner_id"])
    check_shape(
        kind=values["kind"],
        exam_type=values["exam_type"],
        start_time=values["start_time"],
        end_time=values["end_time"],
        capacity=values["capacity"],
        referral_reserved=values["referral_reserved"],
    )
    until = values["valid_until"]
    if until is not None and until < values["valid_from"]:
        raise Invalid(
            N_("The last day comes after the first."),
            code="valid_until_before_from",
            field="valid_until",
        )


def _template_detail(t: SlotTemplate) -> dict[str, Any]:
    return {
        "department_id": t.department_id,
        "practitioner_id": t.practitioner_id,
        "kind": t.kind,
        "exam_type": t.exam_type,
        "weekday": t.weekday,
        "start_time": t.start_time.isoformat(timespec="minutes"),
        "end_time": t.end_time.isoformat(timespec="minutes"),
        "capacity": t.capacity,
        "referral_reserved": t.referral_reserved,
        "green_quota": t.green_quota,
        "valid_from": t.valid_from.isoformat(),
        "valid_until": t.valid_until.isoformat() if t.valid_until else None,
        "is_active": t.is_active,
    }


# Templates ----------------------------------------------------------------------------------


def list_templates(
    session: Session, principal: Principal, institution_id: int, *, include_inactive: bool = True
) -> list[SlotTemplate]:
    """The institution's templates by weekday and time (active ones first)."""
    open_institution(session, principal, institution_id, action="slot.template.list")
    stmt = select(SlotTemplate).where(SlotTemplate.institution_id == institution_id)
    if not include_inactive:
        stmt = stmt.where(SlotTemplate.is_active.is_(True))
    stmt = stmt.order_by(
        SlotTemplate.is_active.desc(),
        SlotTemplate.weekday,
        SlotTemplate.start_time,
        SlotTemplate.department_id,
        SlotTemplate.id,
    )
    return list(session.execute(stmt).scalars())


def get_template(session: Session, principal: Principal, template_id: int) -> SlotTemplate:
    return open_template(session, principal, template_id, action="slot.template.read")


def create_template(
    session: Session, principal: Principal, institution_id: int, data: TemplateIn
) -> SlotTemplate:
    open_institution(session, principal, institution_id, action="slot.template.create")
    values = data.model_dump()
    values["valid_from"] = data.valid_from or china_today()
    _check_template(session, institution_id, values)
    template = SlotTemplate(
        institution_id=institution_id,
        is_active=True,
        created_by_user_id=principal.user_id,
        created_at=now(),
        **values,
    )
    session.add(template)
    session.flush()
    audit.record(
        session,
        principal,
        "slot.template.create",
        object_kind="slot_template",
        object_id=template.id,
        detail=_template_detail(template),
    )
    return template


def update_template(
    session: Session, principal: Principal, template_id: int, data: TemplateUpdateIn
) -> SlotTemplate:
    """Change the fields sent. Slots generated already keep their times and places, and a
    day that has a slot of the template keeps it; the days generated next follow the new
    pattern."""
    template = open_template(session, principal, template_id, action="slot.template.update")
    changes = data.model_dump(exclude_unset=True)
    for name, value in changes.items():
        if value is None and name not in _NULLABLE:
            raise Invalid(N_("This field is required."), code="missing", field=name)
    values = {name: getattr(template, name) for name in TemplateUpdateIn.model_fields}
    values.update(changes)
    _check_template(session, template.institution_id, values)
    before = _template_detail(template)
    for name, value in changes.items():
        setattr(template, name, value)
    session.flush()
    after = _template_detail(template)
    audit.record(
        session,
        principal,
        "slot.template.update",
        object_kind="slot_template",
        object_id=template.id,
        detail={k: after[k] for k in after if after[k] != before[k]},
    )
    return template


def deactivate_template(session: Session, principal: Principal, template_id: int) -> SlotTemplate:
    """No more slots are generated from it; those generated already stay (close or cancel
    them on the calendar). Deactivating twice changes nothing."""
    template = open_template(session, principal, template_id, action="slot.template.deactivate")
    if template.is_active:
        template.is_active = False
        session.flush()
        audit.record(
            session,
            principal,
            "slot.template.deactivate",
            object_kind="slot_template",
            object_id=template.id,
        )
    return template


# One-off slots, closing and cancelling ------------------------------------------------------


def create_slot(
    session: Session, principal: Principal, institution_id: int, data: OneOffSlotIn
) -> Slot:
    """A slot outside the templates (an extra clinic, a bed that became free)."""
    open_institution(session, principal, institution_id, action="slot.create")
    check_place(session, institution_id, data.department_id, data.practitioner_id)
    check_shape(
        kind=data.kind,
        exam_type=data.exam_type,
        start_time=data.start_time,
        end_time=data.end_time,
        capacity=data.capacity,
        referral_reserved=data.referral_reserved,
    )
    moment = now()
    today = china_today(moment)
    if data.day < today or data.day > today + timedelta(days=ONE_OFF_MAX_DAYS):
        raise Invalid(
            N_("Choose a day from today to a year ahead."), code="day_out_of_range", field="day"
        )
    starts = china_instant(data.day, data.start_time)
    if starts <= moment:
        raise Invalid(N_("This slot has started already."), code="slot_past", field="start_time")
    slot = Slot(
        institution_id=institution_id,
        department_id=data.department_id,
        practitioner_id=data.practitioner_id,
        kind=data.kind,
        exam_type=data.exam_type,
        starts_at=starts,
        ends_at=china_instant(data.day, data.end_time),
        capacity=data.capacity,
        referral_reserved=data.referral_reserved,
        green_quota=data.green_quota,
        booked_referral=0,
        booked_local=0,
        booked_green=0,
        status="open",
        template_id=None,
        created_by_user_id=principal.user_id,
        created_at=moment,
    )
    session.add(slot)
    session.flush()
    audit.record(
        session,
        principal,
        "slot.create",
        object_kind="slot",
        object_id=slot.id,
        detail={
            "department_id": slot.department_id,
            "kind": slot.kind,
            "starts_at": slot.starts_at.isoformat(),
            "capacity": slot.capacity,
        },
    )
    return slot


def get_slot(session: Session, principal: Principal, slot_id: int) -> Slot:
    return open_slot(session, principal, slot_id, action="slot.read")


def _set_status(
    session: Session, slot: Slot, target: str, sources: tuple[str, ...], *extra: Any
) -> bool:
    """``UPDATE slot SET status = target WHERE status IN sources [AND extra]``: whether
    this call changed it (a concurrent booking or change is decided by the row lock)."""
    session.flush()
    result = session.execute(
        update(Slot)
        .where(Slot.id == slot.id, Slot.status.in_(sources), *extra)
        .values(status=target)
        .execution_options(synchronize_session=False)
    )
    session.refresh(slot)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def close_slot(session: Session, principal: Principal, slot_id: int) -> Slot:
    """No more bookings; those made stay. Closing a closed slot changes nothing."""
    slot = open_slot(session, principal, slot_id, action="slot.close")
    if _set_status(session, slot, "closed", ("open",)):
        audit.record(session, principal, "slot.close", object_kind="slot", object_id=slot.id)
    elif slot.status == "cancelled":
        raise Conflict(N_("This slot is cancelled."), code="slot_cancelled", field="slot_id")
    return slot


def reopen_slot(session: Session, principal: Principal, slot_id: int) -> Slot:
    """A closed slot takes bookings again, if it has not started."""
    slot = open_slot(session, principal, slot_id, action="slot.reopen")
    if slot.status == "cancelled":
        raise Conflict(N_("This slot is cancelled."), code="slot_cancelled", field="slot_id")
    if slot.status == "closed" and slot.starts_at <= now():
        raise Invalid(N_("This slot has started already."), code="slot_past", field="slot_id")
    if _set_status(session, slot, "open", ("closed",), Slot.starts_at > now()):
        audit.record(session, principal, "slot.reopen", object_kind="slot", object_id=slot.id)
    return slot


def cancel_slot(session: Session, principal: Principal, slot_id: int) -> Slot:
    """Withdraw an empty slot. One that holds a booking (booked, arrived or a no-show)
    answers 409 ``slot_has_bookings``: release or move them first. The condition is part of
    the UPDATE, so a booking made at the same moment either lands first (and the cancel is
    refused) or finds the slot cancelled."""
    slot = open_slot(session, principal, slot_id, action="slot.cancel")
    empty = (Slot.booked_referral == 0) & (Slot.booked_local == 0) & (Slot.booked_green == 0)
    if _set_status(session, slot, "cancelled", ("open", "closed"), empty):
        audit.record(session, principal, "slot.cancel", object_kind="slot", object_id=slot.id)
    elif slot.status != "cancelled":
        raise Conflict(
            N_("This slot holds bookings; release them before cancelling it."),
            code="slot_has_bookings",
            field="slot_id",
        )
    return slot

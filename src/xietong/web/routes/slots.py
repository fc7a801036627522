"""The slot (号源) JSON API under /api/v1: an institution's weekly templates, generating
its slots, one-off slots, closing, reopening and cancelling them, the places a sender may
book, the desk's week calendar and its own patients' bookings. Who may do what is decided
in :mod:`xietong.referral.slots`; these routes parse, call one use case and answer.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field

from xietong.config import ReferralSettings
from xietong.core.validation import MAX_ID, Id, StrictModel
from xietong.referral import slots as svc
from xietong.referral.slot_schemas import (
    EARLIEST,
    LATEST,
    MAX_DAYS,
    AvailabilityPage,
    BookingOut,
    CalendarOut,
    Channel,
    ExamType,
    GenerationOut,
    Kind,
    LocalBookingIn,
    OneOffSlotIn,
    SlotOut,
    TemplateIn,
    TemplateOut,
    TemplateUpdateIn,
)
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services

router = APIRouter(prefix="/api/v1", tags=["slots"], dependencies=[Depends(current_principal)])

InstitutionId = Annotated[int, Path(ge=1, le=MAX_ID)]
TemplateId = Annotated[int, Path(ge=1, le=MAX_ID)]
SlotId = Annotated[int, Path(ge=1, le=MAX_ID)]
BookingId = Annotated[int, Path(ge=1, le=MAX_ID)]


def _settings(request: Request) -> ReferralSettings:
    return services(request).settings.referral


Settings = Annotated[ReferralSettings, Depends(_settings)]


class TemplateListParams(StrictModel):
    include_inactive: bool = True


def _outpatient() -> list[Kind]:
    return ["outpatient"]


class AvailabilityParams(StrictModel):
    start: date | None = Field(default=None, alias="from", ge=EARLIEST, le=LATEST)
    days: int = Field(default=14, ge=1, le=MAX_DAYS)
    department_id: Id | None = None
    practitioner_id: Id | None = None
    kind: list[Kind] = Field(default_factory=_outpatient, min_length=1, max_length=3)
    exam_type: ExamType | None = None
    channel: Channel = "normal"


class CalendarParams(StrictModel):
    week: date | None = Field(default=None, ge=EARLIEST, le=LATEST)
    department_id: Id | None = None


# Templates ----------------------------------------------------------------------------------


@router.get("/institutions/{institution_id}/slot-templates", response_model=list[TemplateOut])
def list_templates(
    institution_id: InstitutionId,
    params: Annotated[TemplateListParams, Query()],
    session: DbSession,
    principal: CurrentPrincipal,
) -> list[dict[str, Any]]:
    rows = svc.list_templates(
        session, principal, institution_id, include_inactive=params.include_inactive
    )
    return svc.template_out(session, rows)


@router.post(
    "/institutions/{institution_id}/slot-templates", response_model=TemplateOut, status_code=201
)
def create_template(
    institution_id: InstitutionId,
    body: TemplateIn,
    session: DbSession,
    principal: CurrentPrincipal,
    response: Response,
) -> dict[str, Any]:
    template = svc.create_template(session, principal, institution_id, body)
    response.headers["Location"] = f"/api/v1/slot-templates/{template.id}"
    return svc.template_out(session, [template])[0]


@router.get("/slot-templates/{template_id}", response_model=TemplateOut)
def get_template(
    template_id: TemplateId, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    return svc.template_out(session, [svc.get_template(session, principal, template_id)])[0]


@router.patch("/slot-templates/{template_id}", response_model=TemplateOut)
def update_template(
    template_id: TemplateId, body: TemplateUpdateIn, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    template = svc.update_template(session, principal, template_id, body)
    return svc.template_out(session, [template])[0]


@router.post("/slot-templates/{template_id}/deactivate", response_model=TemplateOut)
def deactivate_template(
    template_id: TemplateId, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    template = svc.deactivate_template(session, principal, template_id)
    return svc.template_out(session, [template])[0]


# Slots --------------------------------------------------------------------------------------


@router.post("/institutions/{institution_id}/slots/generate", response_model=GenerationOut)
def generate_slots(
    institution_id: InstitutionId,
    session: DbSession,
    principal: CurrentPrincipal,
    settings: Settings,
) -> dict[str, Any]:
    run = svc.generate_slots(session, principal, institution_id, settings)
    return {"institution_id": institution_id, "created": run.created, "through": run.through}


@router.post("/institutions/{institution_id}/slots", response_model=SlotOut, status_code=201)
def create_slot(
    institution_id: InstitutionId,
    body: OneOffSlotIn,
    session: DbSession,
    principal: CurrentPrincipal,
    response: Response,
) -> dict[str, Any]:
    slot = svc.create_slot(session, principal, institution_id, body)
    response.headers["Location"] = f"/api/v1/slots/{slot.id}"
    return svc.slot_out(session, [slot])[0]


@router.get("/institutions/{institution_id}/slots", response_model=AvailabilityPage)
def available_slots(
    institution_id: InstitutionId,
    params: Annotated[AvailabilityParams, Query()],
    session: DbSession,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """Places left for a referral (the sender's slot picker): open slots from ``from``
    (China date, today by default) for ``days`` days, after now."""
    start = params.start or svc.china_today()
    rows = svc.slots_for_sender(
        session,
        principal,
        institution_id,
        department_id=params.department_id,
        practitioner_id=params.practitioner_id,
        kinds=params.kind,
        exam_type=params.exam_type,
        start=start,
        days=params.days,
        channel=params.channel,
    )
    return {
        "institution_id": institution_id,
        "channel": params.channel,
        "start": start,
        "days": params.days,
        "items": svc.availability_out(rows),
    }


@router.get("/institutions/{institution_id}/slot-calendar", response_model=CalendarOut)
def slot_calendar(
    institution_id: InstitutionId,
    params: Annotated[CalendarParams, Query()],
    session: DbSession,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    calendar = svc.slot_calendar(
        session,
        principal,
        institution_id,
        week=params.week or svc.china_today(),
        department_id=params.department_id,
    )
    return svc.calendar_out(calendar)


@router.get("/slots/{slot_id}", response_model=SlotOut)
def get_slot(slot_id: SlotId, session: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    return svc.slot_out(session, [svc.get_slot(session, principal, slot_id)])[0]


@router.post("/slots/{slot_id}/close", response_model=SlotOut)
def close_slot(slot_id: SlotId, session: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    return svc.slot_out(session, [svc.close_slot(session, principal, slot_id)])[0]


@router.post("/slots/{slot_id}/reopen", response_model=SlotOut)
def reopen_slot(slot_id: SlotId, session: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    return svc.slot_out(session, [svc.reopen_slot(session, principal, slot_id)])[0]


@router.post("/slots/{slot_id}/cancel", response_model=SlotOut)
def cancel_slot(slot_id: SlotId, session: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    return svc.slot_out(session, [svc.cancel_slot(session, principal, slot_id)])[0]


# The desk's own bookings ---------------------------------------------------------------------


@router.post("/slots/{slot_id}/bookings", response_model=BookingOut, status_code=201)
def book_local(
    slot_id: SlotId,
    body: LocalBookingIn,
    session: DbSession,
    principal: CurrentPrincipal,
    response: Response,
) -> dict[str, Any]:
    """201 for a new booking; 200 with the first one for a retry of ``client_request_id``."""
    result = svc.book_local(
        session,
        principal,
        slot_id,
        patient_id=body.patient_id,
        client_request_id=body.client_request_id,
    )
    response.status_code = 201 if result.created else 200
    return svc.booking_out(result.booking)


@router.post("/slot-bookings/{booking_id}/cancel", response_model=BookingOut)
def cancel_local_booking(
    booking_id: BookingId, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    return svc.booking_out(svc.cancel_local_booking(session, principal, booking_id))

"""The referral desk's slot pages (号源): the week calendar of the user's institution
(department filter, previous and next week, each slot's places, reserve and green quota,
its bookings with the patient and status, close / reopen / cancel), the weekly templates
(list, new, deactivate), "generate now" and the one-off slot form.

Who may see or do what is decided by :mod:`xietong.referral.slots`; the forms post
``csrf_token`` and redirect (303); a refused form renders its page again naming the field;
403 and 404 render the error page.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, XietongError
from xietong.core.i18n import translate
from xietong.core.validation import MAX_ID, as_utc
from xietong.identity.roles import Role
from xietong.records.rules import CHINA_TZ
from xietong.referral import slots as svc
from xietong.referral.slot_labels import (
    BOOKING_STATUS_LABELS,
    CHANNEL_LABELS,
    EXAM_LABELS,
    KIND_LABELS,
    PURPOSE_LABELS,
    SLOT_STATUS_LABELS,
)
from xietong.referral.slot_schemas import EARLIEST, LATEST, OneOffSlotIn, TemplateIn
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.navigation import NavItem, register
from xietong.web.pages.directory_common import WEEKDAYS
from xietong.web.pages.forms import form_error, locale_of, parse
from xietong.web.pages.patients_common import render_private

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
Week = Annotated[date | None, Query(ge=EARLIEST, le=LATEST)]
DepartmentFilter = Annotated[int | None, Query(ge=1, le=MAX_ID)]
SlotAction = Literal["close", "reopen", "cancel"]

register(
    NavItem(
        "slots",
        N_("Slots"),
        "/slots",
        roles=frozenset({str(Role.COORDINATOR), str(Role.INSTITUTION_ADMIN)}),
        order=35,
    )
)

TEMPLATE_FIELDS = tuple(TemplateIn.model_fields)
ONE_OFF_FIELDS = tuple(OneOffSlotIn.model_fields)


def _hm(moment: datetime) -> str:
    return as_utc(moment).astimezone(CHINA_TZ).strftime("%H:%M")


def labels(locale: str) -> dict[str, Any]:
    def tr(table: dict[str, str]) -> dict[str, str]:
        return {k: translate(locale, v) for k, v in table.items()}

    return {
        "kind_labels": tr(KIND_LABELS),
        "exam_labels": tr(EXAM_LABELS),
        "slot_status_labels": tr(SLOT_STATUS_LABELS),
        "booking_status_labels": tr(BOOKING_STATUS_LABELS),
        "purpose_labels": tr(PURPOSE_LABELS),
        "channel_labels": tr(CHANNEL_LABELS),
        "weekday_names": [translate(locale, w) for w in WEEKDAYS],
        "hm": _hm,
    }


def _institution(principal: Principal) -> int:
    """The desk's institution; 0 (no such institution, so the service answers 404) for a
    user without one."""
    return principal.institution_id or 0


def form_values(form: FormData) -> dict[str, str]:
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def _calendar_url(week: date | None, department_id: int | None, **extra: Any) -> str:
    query: dict[str, Any] = {}
    if week is not None:
        query["week"] = week.isoformat()
    if department_id is not None:
        query["department_id"] = department_id
    query.update({k: v for k, v in extra.items() if v is not None})
    return "/slots" + (f"?{urlencode(query)}" if query else "")


def _choices(session: Session, institution_id: int, locale: str) -> dict[str, Any]:
    departments = svc.departments_of(session, institution_id)
    names = {d.id: d.name for d in departments}
    practitioners = [
        (p.id, f"{p.name} · {names[p.department_id]}" if p.department_id in names else p.name)
        for p in svc.practitioners_of(session, institution_id)
    ]
    return {
        "department_choices": [(d.id, d.name) for d in departments],
        "practitioner_choices": practitioners,
        "kind_choices": [(k, translate(locale, v)) for k, v in KIND_LABELS.items()],
        "exam_choices": [(k, translate(locale, v)) for k, v in EXAM_LABELS.items()],
        "weekday_choices": [(n, translate(locale, w)) for n, w in enumerate(WEEKDAYS)],
    }


# The calendar ------------------------------------------------------------------------------


def calendar_context(
    request: Request,
    session: Session,
    principal: Principal,
    week: date | None,
    department_id: int | None,
) -> dict[str, Any]:
    locale = locale_of(request)
    institution_id = _institution(principal)
    today = svc.china_today()
    calendar = svc.slot_calendar(
        session, principal, institution_id, week=week or today, department_id=department_id
    )
    monday = calendar.week_start
    return {
        **labels(locale),
        "calendar": calendar,
        "today": today,
        "moment": now(),
        "department_id": department_id,
        "departments": [(d.id, d.name) for d in svc.departments_of(session, institution_id)],
        "week_value": monday.isoformat(),
        "prev_url": _calendar_url(monday - timedelta(days=7), department_id),
        "next_url": _calendar_url(monday + timedelta(days=7), department_id),
        "this_week_url": _calendar_url(None, department_id),
        "is_this_week": monday == svc.week_start(today),
        "generated": None,
        "values": {},
    }


@router.get("/slots", response_class=HTMLResponse)
def slot_calendar_page(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    week: Week = None,
    department_id: DepartmentFilter = None,
    generated: Annotated[int | None, Query(ge=0, le=1_000_000)] = None,
) -> Response:
    context = calendar_context(request, session, principal, week, department_id)
    context["generated"] = generated
    return render_private(request, "slots/calendar.html", context)


@router.post("/slots/generate", response_class=HTMLResponse)
async def generate_now(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    form = await request.form()
    values = form_values(form)
    week, department_id = _back(values)
    settings = services(request).settings.referral
    run = svc.generate_slots(session, principal, _institution(principal), settings)
    return RedirectResponse(_calendar_url(week, department_id, generated=run.created), 303)


def _back(values: dict[str, str]) -> tuple[date | None, int | None]:
    """The week and department the calendar showed (hidden fields), to return to."""
    try:
        week = date.fromisoformat(values.get("week", ""))
    except ValueError:
        week = None
    raw = values.get("department_id", "")
    department_id = int(raw) if raw.isdigit() and 0 < int(raw) <= MAX_ID else None
    if week is not None and not EARLIEST <= week <= LATEST:
        week = None
    return week, department_id


@router.post("/slots/{slot_id}/{action}", response_class=HTMLResponse)
async def slot_action(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    slot_id: Id,
    action: SlotAction,
) -> Response:
    form = await request.form()
    values = form_values(form)
    week, department_id = _back(values)
    act = {"close": svc.close_slot, "reopen": svc.reopen_slot, "cancel": svc.cancel_slot}[action]
    try:
        act(session, principal, slot_id)
    except XietongError as exc:
        failure = form_error(request, session, exc)
        context = calendar_context(request, session, principal, week, department_id)
        context.update(failure)
        context["failed_slot"] = slot_id
        return render_private(
            request, "slots/calendar.html", context, status_code=int(failure["status"])
        )
    return RedirectResponse(_calendar_url(week, department_id), status_code=303)


# Templates ---------------------------------------------------------------------------------


def templates_context(request: Request, session: Session, principal: Principal) -> dict[str, Any]:
    locale = locale_of(request)
    institution_id = _institution(principal)
    rows = svc.list_templates(session, principal, institution_id)
    return {
        **labels(locale),
        **_choices(session, institution_id, locale),
        "templates": svc.template_out(session, rows),
        "values": {
            "kind": "outpatient",
            "capacity": "20",
            "referral_reserved": "0",
            "green_quota": "0",
        },
    }


@router.get("/slots/templates", response_class=HTMLResponse)
def templates_page(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    return render_private(
        request, "slots/templates.html", templates_context(request, session, principal)
    )


@router.post("/slots/templates", response_class=HTMLResponse)
async def create_template(
    request: Request, session: DbSession, principal: PagePrincipal
) -> Response:
    form = await request.form()
    values = form_values(form)
    try:
        data = parse(TemplateIn, {k: values.get(k, "") for k in TEMPLATE_FIELDS})
        svc.create_template(session, principal, _institution(principal), data)
    except XietongError as exc:
        failure = form_error(request, session, exc)
        context = templates_context(request, session, principal)
        context.update({**failure, "values": values})
        return render_private(
            request, "slots/templates.html", context, status_code=int(failure["status"])
        )
    return RedirectResponse("/slots/templates", status_code=303)


@router.post("/slots/templates/{template_id}/deactivate", response_class=HTMLResponse)
def deactivate_template(session: DbSession, principal: PagePrincipal, template_id: Id) -> Response:
    svc.deactivate_template(session, principal, template_id)
    return RedirectResponse("/slots/templates", status_code=303)


# One-off slots -----------------------------------------------------------------------------


def one_off_context(request: Request, session: Session, principal: Principal) -> dict[str, Any]:
    locale = locale_of(request)
    institution_id = _institution(principal)
    # The form is the desk's: the same access as publishing (403 / 404 otherwise).
    svc.list_templates(session, principal, institution_id, include_inactive=False)
    return {
        **labels(locale),
        **_choices(session, institution_id, locale),
        "values": {
            "kind": "outpatient",
            "day": svc.china_today().isoformat(),
            "capacity": "10",
            "referral_reserved": "0",
            "green_quota": "0",
        },
    }


@router.get("/slots/new", response_class=HTMLResponse)
def one_off_page(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    return render_private(request, "slots/new.html", one_off_context(request, session, principal))


@router.post("/slots/new", response_class=HTMLResponse)
async def create_one_off(
    request: Request, session: DbSession, principal: PagePrincipal
) -> Response:
    form = await request.form()
    values = form_values(form)
    try:
        data = parse(OneOffSlotIn, {k: values.get(k, "") for k in ONE_OFF_FIELDS})
        slot = svc.create_slot(session, principal, _institution(principal), data)
    except XietongError as exc:
        failure = form_error(request, session, exc)
        context = one_off_context(request, session, principal)
        context.update({**failure, "values": values})
        return render_private(
            request, "slots/new.html", context, status_code=int(failure["status"])
        )
    day = as_utc(slot.starts_at).astimezone(CHINA_TZ).date()
    return RedirectResponse(_calendar_url(day, None), status_code=303)

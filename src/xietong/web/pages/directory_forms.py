"""Directory admin forms: institutions, service centres, departments, practitioners and
expert profiles. Each POST carries ``csrf_token``; refusals (403/404) render the error
page, bad input re-renders the form naming the field."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.policies import access_institution_for_admin, require_platform_admin
from xietong.access.principal import Principal
from xietong.core.db import rollback_keep_durable
from xietong.core.errors import Conflict, Invalid, XietongError
from xietong.core.i18n import translate
from xietong.directory import service as svc
from xietong.directory.levels import LEVEL_BY_CODE
from xietong.directory.models import Department, Institution
from xietong.directory.schemas import (
    AvailabilityIn,
    DepartmentCreateIn,
    DepartmentUpdateIn,
    ExpertProfileIn,
    InstitutionCreateIn,
    InstitutionUpdateIn,
    PractitionerCreateIn,
    PractitionerUpdateIn,
)
from xietong.web import directory_admin as admin
from xietong.web.deps import CurrentPrincipal, DbSession
from xietong.web.pages.directory_common import code_labels, form_data, page_locale, parse_form
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)
Form = Annotated[FormData, Depends(form_data)]
FORM_ERRORS = (Invalid, Conflict)


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _failure(request: Request, session: Session, error: XietongError) -> dict[str, Any]:
    """Undo the refused change (keeping durable audit rows) and describe it for the form."""
    rollback_keep_durable(session)
    return {
        "error": translate(page_locale(request), error.message, **error.params),
        "error_field": error.field,
        "error_code": error.code,
        "status": error.status,
    }


def _form_page(
    request: Request,
    template: str,
    context: dict[str, Any],
    failure: dict[str, Any] | None = None,
) -> Response:
    extra = failure or {}
    full = {**context, **extra, **code_labels(request)}
    return render(request, template, full, status_code=int(extra.get("status", 200)))


# Institutions -----------------------------------------------------------------------------

INSTITUTION_NONE = ("grade", "code")


@router.get("/institutions/new", response_class=HTMLResponse)
def new_institution(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    require_platform_admin(
        session, principal, action="institution.create", object_kind="institution"
    )
    return _form_page(request, "directory/institution_form.html", {"values": {}})


@router.post("/institutions/new", response_class=HTMLResponse)
def create_institution(
    request: Request, session: DbSession, principal: CurrentPrincipal, form: Form
) -> Response:
    try:
        data = parse_form(InstitutionCreateIn, form, empty_is_none=INSTITUTION_NONE)
        institution = admin.create_institution(session, principal, data)
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        context = {"values": dict(form)}
        return _form_page(request, "directory/institution_form.html", context, failure)
    return _redirect(f"/institutions/{institution.id}")


@router.get("/institutions/{institution_id}/edit", response_class=HTMLResponse)
def edit_institution(
    request: Request, session: DbSession, principal: CurrentPrincipal, institution_id: int
) -> Response:
    institution = access_institution_for_admin(
        session, principal, institution_id, action="institution.update"
    )
    values = {c: getattr(institution, c) for c in InstitutionUpdateIn.model_fields}
    context = {"institution": institution, "values": values}
    return _form_page(request, "directory/institution_form.html", context)


@router.post("/institutions/{institution_id}/edit", response_class=HTMLResponse)
def update_institution(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    institution_id: int,
    form: Form,
) -> Response:
    try:
        data = parse_form(InstitutionUpdateIn, form, empty_is_none=INSTITUTION_NONE)
        admin.update_institution(session, principal, institution_id, data)
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        institution = svc.get_institution(session, institution_id)
        context = {"institution": institution, "values": dict(form)}
        return _form_page(request, "directory/institution_form.html", context, failure)
    return _redirect(f"/institutions/{institution_id}")


# Service centres --------------------------------------------------------------------------


def _centre_candidates(session: Session, institution: Institution) -> list[Institution]:
    """Higher-level institutions: provincial and city everywhere, county ones nearby."""
    rank = LEVEL_BY_CODE[institution.level].rank
    higher = [code for code, lv in LEVEL_BY_CODE.items() if lv.rank > rank]
    city_prefix = institution.region_code[:4]
    stmt = (
        select(Institution)
        .where(Institution.level.in_(higher), Institution.is_active.is_(True))
        .where(
            Institution.level.in_(("provincial", "city"))
            | Institution.region_code.startswith(city_prefix)
        )
        .order_by(Institution.region_code, Institution.id)
        .limit(300)
    )
    return list(session.execute(stmt).scalars())


def _centres_page(
    request: Request,
    session: Session,
    principal: Principal,
    institution_id: int,
    error: XietongError | None = None,
) -> Response:
    failure = _failure(request, session, error) if error is not None else None
    institution = access_institution_for_admin(
        session, principal, institution_id, action="service_link.view"
    )
    context = {
        "institution": institution,
        "centres": svc.upward_centres(session, institution),
        "candidates": _centre_candidates(session, institution),
    }
    return _form_page(request, "directory/service_centres.html", context, failure)


@router.get("/institutions/{institution_id}/service-centres", response_class=HTMLResponse)
def service_centres_page(
    request: Request, session: DbSession, principal: CurrentPrincipal, institution_id: int
) -> Response:
    return _centres_page(request, session, principal, institution_id)


@router.post("/institutions/{institution_id}/service-centres", response_class=HTMLResponse)
def add_service_centre(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    institution_id: int,
    form: Form,
) -> Response:
    raw = form.get("centre_id")
    try:
        if not isinstance(raw, str) or not raw.isdigit():
            raise Invalid(field="centre_id")
        admin.add_service_centre(session, principal, institution_id, int(raw))
    except FORM_ERRORS as exc:
        return _centres_page(request, session, principal, institution_id, exc)
    return _redirect(f"/institutions/{institution_id}/service-centres")


@router.post(
    "/institutions/{institution_id}/service-centres/{centre_id}/delete",
    response_class=HTMLResponse,
)
def remove_service_centre(
    session: DbSession, principal: CurrentPrincipal, institution_id: int, centre_id: int
) -> Response:
    admin.remove_service_centre(session, principal, institution_id, centre_id)
    return _redirect(f"/institutions/{institution_id}/service-centres")


# Departments ------------------------------------------------------------------------------


@router.post("/institutions/{institution_id}/departments", response_class=HTMLResponse)
def create_department(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    institution_id: int,
    form: Form,
) -> Response:
    try:
        data = parse_form(DepartmentCreateIn, form, empty_is_none=("specialty",))
        admin.create_department(session, principal, institution_id, data)
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        institution = svc.get_institution(session, institution_id)
        context = {"institution": institution, "department": None, "values": dict(form)}
        return _form_page(request, "directory/department_form.html", context, failure)
    return _redirect(f"/institutions/{institution_id}#departments")


@router.get("/departments/{department_id}/edit", response_class=HTMLResponse)
def edit_department(
    request: Request, session: DbSession, principal: CurrentPrincipal, department_id: int
) -> Response:
    department = admin.department_for_admin(
        session, principal, department_id, action="department.update"
    )
    context = _department_context(session, department)
    return _form_page(request, "directory/department_form.html", context)


@router.post("/departments/{department_id}/edit", response_class=HTMLResponse)
def update_department(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    department_id: int,
    form: Form,
) -> Response:
    try:
        data = parse_form(DepartmentUpdateIn, form, empty_is_none=("specialty",))
        department = admin.update_department(session, principal, department_id, data)
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        context = _department_context(session, svc.get_department(session, department_id))
        context["values"] = dict(form)
        return _form_page(request, "directory/department_form.html", context, failure)
    return _redirect(f"/institutions/{department.institution_id}#departments")


def _department_context(session: Session, department: Department) -> dict[str, Any]:
    return {
        "institution": svc.get_institution(session, department.institution_id),
        "department": department,
        "values": {
            "name": department.name,
            "specialty": department.specialty or "",
            "is_active": department.is_active,
        },
    }


# Practitioners ----------------------------------------------------------------------------

PRACTITIONER_LISTS = ("specialties",)
PRACTITIONER_NONE = ("department_id",)


def _practitioner_context(
    session: Session, institution: Institution, values: dict[str, Any], practitioner: Any = None
) -> dict[str, Any]:
    return {
        "institution": institution,
        "practitioner": practitioner,
        "departments": svc.list_departments(session, institution.id),
        "values": values,
    }


def _form_values(form: FormData) -> dict[str, Any]:
    values: dict[str, Any] = dict(form)
    values["specialties"] = form.getlist("specialties")
    return values


@router.get("/institutions/{institution_id}/practitioners/new", response_class=HTMLResponse)
def new_practitioner(
    request: Request, session: DbSession, principal: CurrentPrincipal, institution_id: int
) -> Response:
    institution = access_institution_for_admin(
        session, principal, institution_id, action="practitioner.create"
    )
    context = _practitioner_context(session, institution, {"specialties": []})
    return _form_page(request, "directory/practitioner_form.html", context)


@router.post("/institutions/{institution_id}/practitioners/new", response_class=HTMLResponse)
def create_practitioner(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    institution_id: int,
    form: Form,
) -> Response:
    try:
        data = parse_form(
            PractitionerCreateIn,
            form,
            lists=PRACTITIONER_LISTS,
            empty_is_none=PRACTITIONER_NONE,
        )
        practitioner = admin.create_practitioner(session, principal, institution_id, data)
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        institution = svc.get_institution(session, institution_id)
        context = _practitioner_context(session, institution, _form_values(form))
        return _form_page(request, "directory/practitioner_form.html", context, failure)
    return _redirect(f"/practitioners/{practitioner.id}")


@router.get("/practitioners/{practitioner_id}/edit", response_class=HTMLResponse)
def edit_practitioner(
    request: Request, session: DbSession, principal: CurrentPrincipal, practitioner_id: int
) -> Response:
    p = admin.practitioner_for_admin(
        session, principal, practitioner_id, action="practitioner.update"
    )
    values = {c: getattr(p, c) for c in PractitionerUpdateIn.model_fields}
    context = _practitioner_context(session, p.institution, values, p)
    return _form_page(request, "directory/practitioner_form.html", context)


@router.post("/practitioners/{practitioner_id}/edit", response_class=HTMLResponse)
def update_practitioner(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    practitioner_id: int,
    form: Form,
) -> Response:
    try:
        data = parse_form(
            PractitionerUpdateIn, form, lists=PRACTITIONER_LISTS, empty_is_none=PRACTITIONER_NONE
        )
        admin.update_practitioner(session, principal, practitioner_id, data)
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        p = svc.get_practitioner(session, practitioner_id)
        context = _practitioner_context(session, p.institution, _form_values(form), p)
        return _form_page(request, "directory/practitioner_form.html", context, failure)
    return _redirect(f"/practitioners/{practitioner_id}")


# Expert profile and availability ----------------------------------------------------------

EMPTY_ROWS = 3


def _expert_page(
    request: Request,
    session: Session,
    principal: Principal,
    practitioner_id: int,
    failure: dict[str, Any] | None = None,
    submitted: dict[str, Any] | None = None,
) -> Response:
    p = admin.practitioner_for_admin(
        session, principal, practitioner_id, action="expert_profile.update"
    )
    profile = p.profile
    rows = [
        {
            "weekday": a.weekday,
            "start": a.start_time.strftime("%H:%M"),
            "end": a.end_time.strftime("%H:%M"),
        }
        for a in p.availability
    ]
    context = {
        "p": p,
        "profile": {
            "summary": profile.summary if profile else "",
            "expertise": profile.expertise if profile else "",
            "accepts_requests": profile.accepts_requests if profile else True,
        },
        "rows": rows + [{"weekday": "", "start": "", "end": ""}] * EMPTY_ROWS,
        **(submitted or {}),
    }
    return _form_page(request, "directory/expert_form.html", context, failure)


@router.get("/practitioners/{practitioner_id}/expert", response_class=HTMLResponse)
def expert_forms(
    request: Request, session: DbSession, principal: CurrentPrincipal, practitioner_id: int
) -> Response:
    return _expert_page(request, session, principal, practitioner_id)


@router.post("/practitioners/{practitioner_id}/expert-profile", response_class=HTMLResponse)
def save_expert_profile(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    practitioner_id: int,
    form: Form,
) -> Response:
    try:
        data = parse_form(ExpertProfileIn, form)
        admin.set_expert_profile(session, principal, practitioner_id, data)
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        submitted = {"profile": dict(form)}
        return _expert_page(request, session, principal, practitioner_id, failure, submitted)
    return _redirect(f"/practitioners/{practitioner_id}")


def _window_rows(form: FormData) -> list[dict[str, str]]:
    weekdays, starts, ends = (form.getlist(k) for k in ("weekday", "start", "end"))
    rows = []
    for weekday, start, end in zip(weekdays, starts, ends, strict=False):
        if not (isinstance(start, str) and isinstance(end, str) and isinstance(weekday, str)):
            continue
        if start.strip() or end.strip():
            rows.append({"weekday": weekday, "start": start.strip(), "end": end.strip()})
    return rows


@router.post("/practitioners/{practitioner_id}/availability", response_class=HTMLResponse)
def save_availability(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    practitioner_id: int,
    form: Form,
) -> Response:
    rows = _window_rows(form)
    try:
        data = parse_availability(rows)
        admin.set_availability(session, principal, practitioner_id, data.windows)
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        submitted = {"rows": rows + [{"weekday": "", "start": "", "end": ""}] * EMPTY_ROWS}
        return _expert_page(request, session, principal, practitioner_id, failure, submitted)
    return _redirect(f"/practitioners/{practitioner_id}")


def parse_availability(rows: list[dict[str, str]]) -> AvailabilityIn:
    try:
        return AvailabilityIn.model_validate({"windows": rows})
    except ValidationError as exc:
        first = exc.errors()[0]
        field = ".".join(str(p) for p in first.get("loc", ()))
        raise Invalid(field=field or "windows", code=str(first.get("type"))) from exc

"""Patient forms: registration (with masked near matches to confirm or dismiss), the edit
form, and the merge page (possible duplicates, history, undo). Every POST carries
``csrf_token``; bad input shows the form again naming the field, refusals are error pages.
"""

from __future__ import annotations

import secrets
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.policies import require_roles
from xietong.access.principal import Principal
from xietong.core.errors import N_, Forbidden, Invalid, XietongError
from xietong.core.i18n import translate
from xietong.core.validation import MAX_ID
from xietong.patients import merge as merge_service
from xietong.patients import registration, service
from xietong.patients.schemas import MergeIn, PatientIn, PatientUpdateIn, UndoMergeIn
from xietong.patients.views import near_match_out, patient_summaries
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.errors import validation_message
from xietong.web.pages.directory_common import form_data
from xietong.web.pages.forms import form_error, locale_of
from xietong.web.pages.patients import NOTICES, detail_page
from xietong.web.pages.patients_common import (
    break_glass_page,
    form_reason,
    form_text,
    needs_break_glass,
    render_private,
)

router = APIRouter(include_in_schema=False)

PatientId = Annotated[int, Path(ge=1, le=MAX_ID)]
MergeId = Annotated[int, Path(ge=1, le=MAX_ID)]
Form = Annotated[FormData, Depends(form_data)]

REGISTRATION_FIELDS = (
    "name",
    "sex",
    "birth_date",
    "resident_id",
    "phone",
    "address_region_code",
    "address_detail",
    "mrn",
    "passport",
    "passport_country",
    "health_card",
    "health_card_issuer",
    "emergency_name",
    "emergency_relation",
    "emergency_phone",
    "client_request_id",
)
# Form fields of the numbers other than the resident ID: (kind, value field, issuer field).
OTHER_NUMBERS = (
    ("mrn", "mrn", ""),
    ("passport", "passport", "passport_country"),
    ("health_card", "health_card", "health_card_issuer"),
)
EMERGENCY = ("emergency_name", "emergency_relation", "emergency_phone")


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _validate(model: type[BaseModel], data: dict[str, Any], fields: dict[str, str]) -> Any:
    """Validate, naming the *form* field at fault (``fields`` maps model paths to it)."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ".".join(str(p) for p in first.get("loc", ()))
        kind = str(first.get("type", "invalid"))
        raise Invalid(validation_message(kind), code=kind, field=fields.get(path, path)) from None


def _form_field(error: XietongError, fields: dict[str, str]) -> XietongError:
    """A service error names a model path (``identifiers[0].value``): name the input."""
    if error.field:
        error.field = fields.get(error.field.replace("[", ".").replace("]", ""), error.field)
    return error


# Registration ------------------------------------------------------------------------------


def _registration_input(form: FormData) -> tuple[dict[str, Any], dict[str, str], dict[str, str]]:
    """The PatientIn values of the form, the map of model paths to inputs, the raw values."""
    raw = {name: form_text(form, name, 200) for name in REGISTRATION_FIELDS}
    data: dict[str, Any] = {
        k: raw[k]
        for k in (
            "name",
            "sex",
            "birth_date",
            "resident_id",
            "phone",
            "address_region_code",
            "address_detail",
            "client_request_id",
        )
        if raw[k]
    }
    fields: dict[str, str] = {}
    identifiers: list[dict[str, str]] = []
    for kind, value_field, issuer_field in OTHER_NUMBERS:
        if raw[value_field]:
            index = len(identifiers)
            identifiers.append(
                {"kind": kind, "value": raw[value_field], "issuer": raw.get(issuer_field, "")}
            )
            fields[f"identifiers.{index}.value"] = value_field
            fields[f"identifiers.{index}.issuer"] = issuer_field or value_field
    data["identifiers"] = identifiers
    if any(raw[f] for f in EMERGENCY):
        data["emergency_contact"] = {
            "name": raw["emergency_name"],
            "relation": raw["emergency_relation"],
            "phone": raw["emergency_phone"],
        }
        fields |= {f"emergency_contact.{f.split('_', 1)[1]}": f for f in EMERGENCY}
    return data, fields, raw


def _new_form(request: Request, values: dict[str, str], **extra: Any) -> Response:
    values = {**values}
    if not values.get("client_request_id"):
        values["client_request_id"] = secrets.token_hex(16)
    status = int(extra.pop("status", 200))
    return render_private(
        request, "patients/new.html", {"values": values, **extra}, status_code=status
    )


@router.get("/patients/new", response_class=HTMLResponse)
def new_patient(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    require_roles(
        session,
        principal,
        registration.REGISTER_ROLES,
        action="patient.register",
        object_kind="patient",
    )
    return _new_form(request, {})


@router.post("/patients/new", response_class=HTMLResponse)
def register_patient(
    request: Request, session: DbSession, principal: PagePrincipal, form: Form
) -> Response:
    """First submit: show near matches if there are any. Then "the same person" (with
    ``same_as_patient_id``) or "register anyway" (``decision=new``) registers."""
    pii = services(request).pii
    decision = "same" if form.get("same_as_patient_id") else form_text(form, "decision", 8)
    raw: dict[str, str] = {}
    fields: dict[str, str] = {}
    try:
        data, fields, raw = _registration_input(form)
        if decision == "same":
            data["same_as_patient_id"] = form_text(form, "same_as_patient_id", 12) or None
            fields["same_as_patient_id"] = "same_as_patient_id"
        body: PatientIn = _validate(PatientIn, data, fields)
        if decision not in ("same", "new"):
            near = registration.preview_registration(session, principal, pii, body)
            if near:
                return _new_form(request, raw, near_matches=near_match_out(session, near))
        result = registration.register_patient(session, principal, pii, body)
    except XietongError as exc:
        context = form_error(request, session, _form_field(exc, fields))
        return _new_form(request, raw or _raw_values(form), **context)
    done = "registered" if result.created else "existing"
    return _redirect(f"/patients/{result.patient.id}?done={done}")


def _chosen_id(form: FormData, name: str) -> str | None:
    """The first non-empty value of a field sent twice (a radio choice or a typed number)."""
    for value in form.getlist(name):
        if isinstance(value, str) and value.strip():
            text = value.strip()[:12]
            if not text.isdigit():
                raise Invalid(validation_message("int_parsing"), code="int_parsing", field=name)
            return text
    return None


def _raw_values(form: FormData) -> dict[str, str]:
    return {n: v[:200] for n in REGISTRATION_FIELDS if isinstance(v := form.get(n), str)}


# Edit ---------------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/edit", response_class=HTMLResponse)
def edit_patient(
    request: Request, session: DbSession, principal: PagePrincipal, patient_id: PatientId
) -> Response:
    detail = service.get_patient(session, principal, services(request).pii, patient_id)
    if not detail.can_edit:
        raise Forbidden(
            N_("Only the patient's own institutions change the patient's details."),
            code="update_not_allowed",
        )
    values = {
        "name": detail.name,
        "sex": detail.sex,
        "birth_date": detail.birth_date.isoformat(),
        "address_region_code": detail.address_region_code or "",
        "address_detail": detail.address_detail,
        "emergency_name": detail.emergency_name,
        "emergency_relation": detail.emergency_relation,
    }
    context = {"p": detail, "values": values}
    return render_private(request, "patients/edit.html", context)


def _update_input(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    raw = {
        name: form_text(form, name, 200)
        for name in (
            "name",
            "sex",
            "birth_date",
            "phone",
            "address_region_code",
            "address_detail",
            *EMERGENCY,
        )
    }
    data: dict[str, Any] = {
        "name": raw["name"] or None,
        "sex": raw["sex"] or None,
        "birth_date": raw["birth_date"] or None,
        "address_region_code": raw["address_region_code"] or None,
        "address_detail": raw["address_detail"],
    }
    if form.get("clear_phone"):
        data["phone"] = None
    elif raw["phone"]:
        data["phone"] = raw["phone"]
    if form.get("clear_emergency"):
        data["emergency_contact"] = None
    elif raw["emergency_phone"]:
        data["emergency_contact"] = {
            "name": raw["emergency_name"],
            "relation": raw["emergency_relation"],
            "phone": raw["emergency_phone"],
        }
    fields = {f"emergency_contact.{f.split('_', 1)[1]}": f for f in EMERGENCY}
    return data, fields | {"emergency_contact": "emergency_phone"}


@router.post("/patients/{patient_id}/edit", response_class=HTMLResponse)
def update_patient(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    patient_id: PatientId,
    form: Form,
) -> Response:
    pii = services(request).pii
    fields: dict[str, str] = {}
    try:
        data, fields = _update_input(form)
        body: PatientUpdateIn = _validate(PatientUpdateIn, data, fields)
        done = service.update_patient(session, principal, pii, patient_id, body)
    except XietongError as exc:
        context = form_error(request, session, _form_field(exc, fields))
        detail = service.get_patient(session, principal, pii, patient_id)
        values = {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}
        return render_private(
            request,
            "patients/edit.html",
            {"p": detail, "values": values, **context},
            status_code=int(context["status"]),
        )
    return _redirect(f"/patients/{done.patient.id}?done=saved")


# Merges --------------------------------------------------------------------------------------


def merge_page(
    request: Request,
    session: Session,
    principal: Principal,
    patient_id: int,
    *,
    reason: str | None = None,
    notice: str | None = None,
    failure: dict[str, Any] | None = None,
) -> Response:
    if needs_break_glass(principal) and reason is None:
        return break_glass_page(request, patient_id, "merge")
    try:
        overview = merge_service.merge_overview(session, principal, patient_id, reason=reason)
    except Forbidden as exc:
        if exc.code != "break_glass_reason_required":
            raise
        message = translate(locale_of(request), exc.message)
        return break_glass_page(request, patient_id, "merge", error=message)
    extra = failure or {}
    context = {
        "p": patient_summaries(session, [overview.patient])[0],
        "requested_id": patient_id,
        "merges": overview.merges,
        "undoable": overview.undoable,
        "candidates": patient_summaries(session, overview.candidates),
        "may_merge": bool(principal.roles & {str(r) for r in merge_service.MERGE_ROLES}),
        "reason": reason or "",
        "notice": translate(locale_of(request), NOTICES[notice]) if notice in NOTICES else None,
        **extra,
    }
    status = int(extra.get("status", 200))
    return render_private(request, "patients/merge.html", context, status_code=status)


@router.get("/patients/{patient_id}/merge", response_class=HTMLResponse)
def merge_get(
    request: Request, session: DbSession, principal: PagePrincipal, patient_id: PatientId
) -> Response:
    done = request.query_params.get("done")
    return merge_page(request, session, principal, patient_id, notice=done)


@router.post("/patients/{patient_id}/merge", response_class=HTMLResponse)
def merge_post(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    patient_id: PatientId,
    form: Form,
) -> Response:
    """Merge the chosen record into this one (this one survives)."""
    reason = form_reason(form)
    try:
        data = {
            "survivor_id": patient_id,
            "merged_id": _chosen_id(form, "merged_id"),
            "reason": form_text(form, "merge_reason"),
        }
        body: MergeIn = _validate(MergeIn, data, {"reason": "merge_reason"})
        merge_service.merge_patients(session, principal, body)
    except XietongError as exc:
        failure = form_error(request, session, _form_field(exc, {"reason": "merge_reason"}))
        return merge_page(request, session, principal, patient_id, reason=reason, failure=failure)
    if needs_break_glass(principal):
        return merge_page(request, session, principal, patient_id, reason=reason, notice="merged")
    return _redirect(f"/patients/{patient_id}/merge?done=merged")


@router.post("/patients/merges/{merge_id}/undo", response_class=HTMLResponse)
def undo_post(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    merge_id: MergeId,
    form: Form,
) -> Response:
    reason = form_reason(form)
    back = form_text(form, "patient_id", 12)
    try:
        body: UndoMergeIn = _validate(
            UndoMergeIn, {"reason": form_text(form, "undo_reason")}, {"reason": "undo_reason"}
        )
        merge = merge_service.undo_merge(session, principal, merge_id, body)
    except XietongError as exc:
        if not back.isdigit() or not 0 < int(back) <= MAX_ID:
            raise
        failure = form_error(request, session, _form_field(exc, {"reason": "undo_reason"}))
        return merge_page(request, session, principal, int(back), reason=reason, failure=failure)
    target = int(back) if back.isdigit() and 0 < int(back) <= MAX_ID else merge.survivor_id
    if needs_break_glass(principal):
        return merge_page(request, session, principal, target, reason=reason, notice="undone")
    return _redirect(f"/patients/{target}/merge?done=undone")


@router.post("/patients/{patient_id}/open", response_class=HTMLResponse)
def break_glass_open(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    patient_id: PatientId,
    form: Form,
) -> Response:
    """A platform admin states the reason, then sees the page they asked for."""
    reason = form_reason(form) or ""  # empty: refused with a message, not a blank form
    if form_text(form, "next", 16) == "merge":
        return merge_page(request, session, principal, patient_id, reason=reason)
    return detail_page(request, session, principal, patient_id, reason=reason)

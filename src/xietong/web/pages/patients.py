"""Patient pages: the search (masked results), the patient's header page with the audited
"show full numbers" button, and the break-glass form of platform admins.

Forms (registration, edit, merge) live in ``patient_forms``. Every decision is taken by the
services in :mod:`xietong.patients`; these routes parse and render.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.principal import Principal
from xietong.core.errors import N_, Forbidden, XietongError
from xietong.core.i18n import translate
from xietong.core.validation import MAX_ID, has_control_characters
from xietong.patients import search, service
from xietong.patients.schemas import PatientSearchIn
from xietong.patients.views import patient_summaries
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.navigation import NavItem, register
from xietong.web.pages.directory_common import form_data
from xietong.web.pages.forms import form_error, locale_of, parse
from xietong.web.pages.patients_common import (
    CLINICAL_ROLES,
    break_glass_page,
    form_reason,
    needs_break_glass,
    render_private,
)

router = APIRouter(include_in_schema=False)
register(NavItem("patients", N_("Patients"), "/patients", roles=CLINICAL_ROLES, order=10))

PatientId = Annotated[int, Path(ge=1, le=MAX_ID)]
Form = Annotated[FormData, Depends(form_data)]
SEARCH_FIELDS = ("resident_id", "name", "birth_date", "phone", "mrn", "offset")
PAGE_SIZE = 20
NOTICES = {
    "registered": N_("The patient was registered."),
    "existing": N_("This patient was registered already; your institution is now linked."),
    "saved": N_("Saved."),
    "merged": N_("The records were merged."),
    "undone": N_("The merge was undone."),
}


# Search ------------------------------------------------------------------------------------


@router.get("/patients", response_class=HTMLResponse)
def patients_page(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    raw = {k: request.query_params.get(k, "")[:100] for k in SEARCH_FIELDS}
    reason = request.query_params.get("reason", "").strip()[:500] or None
    if reason and has_control_characters(reason):
        reason = "\ufffd"  # shown as refused: too short to be a reason
    context: dict[str, Any] = {
        "filters": raw,
        "reason": reason or "",
        "break_glass": needs_break_glass(principal),
        "patients": [],
        "pager": None,
    }
    status = 200
    if not (needs_break_glass(principal) and reason is None):
        try:
            query = parse(PatientSearchIn, {**raw, "limit": PAGE_SIZE})
            found = search.search_patients(
                session, principal, services(request).pii, query, reason=reason
            )
            context["patients"] = patient_summaries(session, found.patients)
            context["pager"] = _pager(raw, reason, query.offset, found.total)
        except XietongError as exc:
            if exc.status == 403 and not needs_break_glass(principal):
                raise
            context |= form_error(request, session, exc)
            status = exc.status
    if request.headers.get("hx-target") == "patient-results":
        # htmx swaps only 2xx answers: the fragment carries the error message itself.
        return render_private(request, "patients/_results.html", context)
    return render_private(request, "patients/search.html", context, status_code=status)


def _pager(raw: dict[str, str], reason: str | None, offset: int, total: int) -> dict[str, Any]:
    keep = {k: v for k, v in raw.items() if v and k != "offset"}
    if reason:
        keep["reason"] = reason

    def link(at: int) -> str:
        return "/patients?" + urlencode({**keep, "offset": at})

    return {
        "total": total,
        "shown_from": offset + 1 if total else 0,
        "shown_to": min(offset + PAGE_SIZE, total),
        "prev": link(max(offset - PAGE_SIZE, 0)) if offset > 0 else None,
        "next": link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
    }


# The patient's page ------------------------------------------------------------------------


def detail_page(
    request: Request,
    session: Session,
    principal: Principal,
    patient_id: int,
    *,
    reveal: bool = False,
    reason: str | None = None,
    notice: str | None = None,
) -> Response:
    try:
        detail = service.get_patient(
            session, principal, services(request).pii, patient_id, reveal=reveal, reason=reason
        )
    except Forbidden as exc:
        if exc.code != "break_glass_reason_required":
            raise
        message = translate(locale_of(request), exc.message) if reason is not None else None
        return break_glass_page(request, patient_id, "detail", error=message)
    context = {
        "p": detail,
        "requested_id": patient_id,
        "reason": reason or "",
        "notice": translate(locale_of(request), NOTICES[notice]) if notice in NOTICES else None,
    }
    return render_private(request, "patients/detail.html", context)


@router.get("/patients/{patient_id}", response_class=HTMLResponse)
def patient_page(
    request: Request, session: DbSession, principal: PagePrincipal, patient_id: PatientId
) -> Response:
    done = request.query_params.get("done")
    return detail_page(request, session, principal, patient_id, notice=done)


@router.post("/patients/{patient_id}/reveal", response_class=HTMLResponse)
def reveal_page(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    patient_id: PatientId,
    form: Form,
) -> Response:
    """The "show full numbers" button: the same page, with full numbers, audited."""
    reason = form_reason(form)
    return detail_page(request, session, principal, patient_id, reveal=True, reason=reason)

"""Document pages: upload a document (a phone photo of a paper record, a scan, a PDF) for a
patient, view it page by page, add pages, mark it entered in error.

The forms post multipart bodies with ``csrf_token``; a refused file re-renders the form with
the error naming the file; 403/404 render the error page.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.db import rollback_keep_durable
from xietong.core.errors import (
    N_,
    Conflict,
    Forbidden,
    Invalid,
    PayloadTooLarge,
    UnsupportedMediaType,
    XietongError,
)
from xietong.core.i18n import translate
from xietong.core.security import new_token
from xietong.core.validation import MAX_ID, has_control_characters
from xietong.directory.lookup import find_institution
from xietong.patients.access import access_patient
from xietong.records import documents as svc
from xietong.records.document_models import DOC_TYPE_LABELS, DOCUMENT_TYPES
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.pages.patients_common import render_private

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
FORM_ERRORS = (Invalid, Conflict, PayloadTooLarge, UnsupportedMediaType, Forbidden)
MAX_TITLE = 200


def _locale(request: Request) -> str:
    return str(getattr(request.state, "locale", None) or "zh_CN")


def _failure(request: Request, session: Session, error: XietongError) -> dict[str, Any]:
    rollback_keep_durable(session)
    return {
        "error": translate(_locale(request), error.message, **error.params),
        "error_field": error.field,
        "error_code": error.code,
        "status": error.status,
    }


def _doc_types(request: Request) -> list[tuple[str, str]]:
    locale = _locale(request)
    return [(code, translate(locale, DOC_TYPE_LABELS[code])) for code in DOCUMENT_TYPES]


def _files(form: FormData) -> list[svc.UploadedFile]:
    """The chosen files (a form with no file chosen sends one empty, nameless part)."""
    found = [
        value
        for value in form.getlist("files")
        if isinstance(value, UploadFile) and (value.filename or value.size)
    ]
    return [svc.UploadedFile(f.filename or "", f.content_type, f.file.read()) for f in found]


def _text(form: FormData, name: str, max_length: int, required: bool = True) -> str:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if required and not text:
        raise Invalid(N_("This field is required."), code="missing", field=name)
    if len(text) > max_length:
        raise Invalid(N_("This value is too long."), code="too_long", field=name)
    if has_control_characters(text):
        raise Invalid(
            N_("Control characters are not allowed."), code="control_characters", field=name
        )
    return text


def _meta(form: FormData) -> svc.DocumentMeta:
    doc_type = _text(form, "doc_type", 24)
    if doc_type not in DOCUMENT_TYPES:
        raise Invalid(N_("Choose a document type."), code="invalid_choice", field="doc_type")
    try:
        document_date = date.fromisoformat(_text(form, "document_date", 10))
    except ValueError:
        raise Invalid(
            N_("Give a date as YYYY-MM-DD."), code="invalid_date", field="document_date"
        ) from None
    capture = _text(form, "capture", 8, required=False) or "analogue"
    if capture not in ("analogue", "digital"):
        raise Invalid(N_("Choose a value from the list."), code="invalid_choice", field="capture")
    request_id = _text(form, "client_request_id", 64, required=False) or None
    return svc.DocumentMeta(
        doc_type=doc_type,
        title=_text(form, "title", MAX_TITLE),
        document_date=document_date,
        capture=capture,
        client_request_id=request_id,
    )


def _form_context(
    request: Request, session: Session, principal: Principal, patient_id: Id
) -> dict[str, Any]:
    patient, _chart = access_patient(
        session, principal, patient_id, action="document.form", field="patient_id"
    )
    return {"patient": patient, "doc_types": _doc_types(request), "today": now().date()}


@router.get("/patients/{patient_id}/documents/new", response_class=HTMLResponse)
def new_document(
    request: Request, session: DbSession, principal: PagePrincipal, patient_id: Id
) -> Response:
    context = _form_context(request, session, principal, patient_id)
    context["values"] = {"document_date": now().date().isoformat(), "doc_type": "other"}
    context["request_id"] = new_token(12)  # a resubmitted form makes one document
    return render_private(request, "records/document_form.html", context)


@router.post("/patients/{patient_id}/documents/new", response_class=HTMLResponse)
async def create_document(
    request: Request, session: DbSession, principal: PagePrincipal, patient_id: Id
) -> Response:
    form = await request.form(max_files=svc.MAX_PAGES_PER_DOCUMENT + 1)
    app = services(request)
    try:
        meta = _meta(form)
        document, _created = svc.upload_document(
            session, principal, app.blobs, app.settings.upload, patient_id, meta, _files(form)
        )
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        context = _form_context(request, session, principal, patient_id)
        values = {k: v for k, v in form.items() if isinstance(v, str)}
        return render_private(
            request,
            "records/document_form.html",
            {**context, **failure, "values": values},
            status_code=int(failure["status"]),
        )
    return RedirectResponse(f"/documents/{document.id}", status_code=303)


def _viewer_context(
    request: Request, session: Session, principal: Principal, document_id: Id
) -> dict[str, Any]:
    opened = svc.open_document(session, principal, document_id)
    document = opened.document
    institution = find_institution(session, document.institution_id)
    patient, _chart = access_patient(
        session, principal, document.patient_id, action="document.read"
    )
    return {
        "document": document,
        "pages": opened.pages,
        "patient": patient,
        "institution": institution,
        "doc_type_label": translate(_locale(request), DOC_TYPE_LABELS[document.doc_type]),
        "is_holder": principal.institution_id == document.institution_id,
    }


@router.get("/documents/{document_id}", response_class=HTMLResponse)
def view_document(
    request: Request, session: DbSession, principal: PagePrincipal, document_id: Id
) -> Response:
    return render_private(
        request, "records/document.html", _viewer_context(request, session, principal, document_id)
    )


@router.post("/documents/{document_id}/pages/new", response_class=HTMLResponse)
async def add_pages(
    request: Request, session: DbSession, principal: PagePrincipal, document_id: Id
) -> Response:
    form = await request.form(max_files=svc.MAX_PAGES_PER_DOCUMENT + 1)
    app = services(request)
    try:
        svc.add_pages(session, principal, app.blobs, app.settings.upload, document_id, _files(form))
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        context = _viewer_context(request, session, principal, document_id)
        return render_private(
            request,
            "records/document.html",
            {**context, **failure},
            status_code=int(failure["status"]),
        )
    return RedirectResponse(f"/documents/{document_id}", status_code=303)


@router.post("/documents/{document_id}/entered-in-error", response_class=HTMLResponse)
async def entered_in_error(
    request: Request, session: DbSession, principal: PagePrincipal, document_id: Id
) -> Response:
    form = await request.form()
    try:
        reason = _text(form, "reason", 500)
        svc.mark_entered_in_error(session, principal, document_id, reason)
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        context = _viewer_context(request, session, principal, document_id)
        return render_private(
            request,
            "records/document.html",
            {**context, **failure},
            status_code=int(failure["status"]),
        )
    return RedirectResponse(f"/documents/{document_id}", status_code=303)

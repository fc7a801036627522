"""Admin page of an institution's DICOM nodes: list, add, edit, deactivate. Each POST
carries ``csrf_token``; bad input re-renders the form naming the field."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.principal import Principal
from xietong.core.db import rollback_keep_durable
from xietong.core.errors import Conflict, Invalid, XietongError
from xietong.core.i18n import translate
from xietong.directory import service as svc
from xietong.directory.peer_schemas import DicomPeerCreateIn, DicomPeerUpdateIn
from xietong.web import dicom_peer_admin as admin
from xietong.web.deps import CurrentPrincipal, DbSession
from xietong.web.pages.directory_common import form_data, page_locale, parse_form
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)
Form = Annotated[FormData, Depends(form_data)]
FORM_ERRORS = (Invalid, Conflict)


def _failure(request: Request, session: Session, error: XietongError) -> dict[str, Any]:
    rollback_keep_durable(session)
    return {
        "error": translate(page_locale(request), error.message, **error.params),
        "error_field": error.field,
        "error_code": error.code,
        "status": error.status,
    }


def _list_page(
    request: Request,
    session: Session,
    principal: Principal,
    institution_id: int,
    failure: dict[str, Any] | None = None,
    values: dict[str, Any] | None = None,
) -> Response:
    institution, peers = admin.list_peers(session, principal, institution_id, include_inactive=True)
    extra = failure or {}
    context = {
        "institution": institution,
        "peers": peers,
        "values": values or {"may_query": "true", "may_retrieve": "true"},
        **extra,
    }
    return render(
        request, "directory/dicom_peers.html", context, status_code=int(extra.get("status", 200))
    )


@router.get("/institutions/{institution_id}/dicom-peers", response_class=HTMLResponse)
def peers_page(
    request: Request, session: DbSession, principal: CurrentPrincipal, institution_id: int
) -> Response:
    return _list_page(request, session, principal, institution_id)


@router.post("/institutions/{institution_id}/dicom-peers", response_class=HTMLResponse)
def add_peer(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    institution_id: int,
    form: Form,
) -> Response:
    values = dict(form)
    try:
        data = parse_form(DicomPeerCreateIn, form)
        admin.create_peer(session, principal, institution_id, data)
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        return _list_page(request, session, principal, institution_id, failure, values)
    return RedirectResponse(f"/institutions/{institution_id}/dicom-peers", status_code=303)


@router.get("/dicom-peers/{peer_id}/edit", response_class=HTMLResponse)
def edit_peer(
    request: Request, session: DbSession, principal: CurrentPrincipal, peer_id: int
) -> Response:
    peer = admin.peer_for_admin(session, principal, peer_id, action="dicom_peer.update")
    values = {name: getattr(peer, name) for name in DicomPeerUpdateIn.model_fields}
    return _form(request, session, peer_id, values)


def _form(
    request: Request,
    session: Session,
    peer_id: int,
    values: dict[str, Any],
    failure: dict[str, Any] | None = None,
) -> Response:
    peer = svc.get_peer(session, peer_id)
    institution = svc.get_institution(session, peer.institution_id)
    extra = failure or {}
    context = {"peer": peer, "institution": institution, "values": values, **extra}
    return render(
        request,
        "directory/dicom_peer_form.html",
        context,
        status_code=int(extra.get("status", 200)),
    )


@router.post("/dicom-peers/{peer_id}/edit", response_class=HTMLResponse)
def update_peer(
    request: Request, session: DbSession, principal: CurrentPrincipal, peer_id: int, form: Form
) -> Response:
    values = dict(form)
    try:
        data = parse_form(DicomPeerUpdateIn, form)
        peer = admin.update_peer(session, principal, peer_id, data)
    except FORM_ERRORS as exc:
        failure = _failure(request, session, exc)
        admin.peer_for_admin(session, principal, peer_id, action="dicom_peer.update")
        return _form(request, session, peer_id, values, failure)
    return RedirectResponse(f"/institutions/{peer.institution_id}/dicom-peers", status_code=303)

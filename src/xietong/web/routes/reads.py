"""The imaging read JSON API under /api/v1/reads (ADR 0017). A read is a consultation of
kind ``imaging_read``: triage, start, cancel, return, messages and history are the
consultation routes (``/api/v1/consultations/{id}/...``); these add creating a read, the
radiologists' worklist, the report templates and the structured report's sign-off. The
rules are in :mod:`xietong.consultation.service.reads` and ``read_reports``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.consultation import service as svc
from xietong.consultation.models import STATES, Consultation
from xietong.consultation.read_schemas import (
    ReadAmendIn,
    ReadIn,
    ReadReportIn,
    ReadReportOut,
    ReadTemplateOut,
    SignOffIn,
    WorklistOut,
)
from xietong.consultation.read_templates import MODALITIES, TEMPLATES, prefill
from xietong.consultation.schemas import ConsultationOut
from xietong.consultation.service import read_reports, reads
from xietong.consultation.service.read_reports import Archive
from xietong.core.validation import MAX_ID, StrictModel
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services
from xietong.web.report_pdf import read_pdf_response, response_locale
from xietong.web.routes.consultations import IdempotencyKey, Settings

router = APIRouter(
    prefix="/api/v1/reads", tags=["reads"], dependencies=[Depends(current_principal)]
)

ReadId = Annotated[int, Path(ge=1, le=MAX_ID)]
State = Literal[STATES]  # type: ignore[valid-type]
Modality = Literal[MODALITIES]  # type: ignore[valid-type]


class WorklistParams(StrictModel):
    modality: Modality | None = None
    state: State | None = None
    limit: int = Field(default=50, ge=1, le=svc.MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=1_000_000)


def _archive(request: Request) -> Archive:
    app = services(request)
    return Archive(app.blobs, app.pii)


ArchiveDep = Annotated[Archive, Depends(_archive)]


def _out(session: Session, principal: Principal, c: Consultation) -> dict[str, Any]:
    return svc.consultation_out(session, svc.Opened(c, *svc.parts_of(session, principal, c)))


@router.post("", response_model=ConsultationOut, status_code=201)
def create_read(
    body: ReadIn,
    session: DbSession,
    principal: CurrentPrincipal,
    settings: Settings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """201 for a new read; 200 with the first one for a retry of the same key."""
    created = reads.create_read(session, principal, body, settings, idempotency_key=idempotency_key)
    response.status_code = 201 if created.created else 200
    response.headers["Location"] = f"/api/v1/reads/{created.consultation.id}"
    return _out(session, principal, created.consultation)


@router.get("/worklist", response_model=WorklistOut)
def worklist(
    session: DbSession, principal: CurrentPrincipal, params: Annotated[WorklistParams, Query()]
) -> dict[str, Any]:
    rows, total = reads.worklist(
        session,
        principal,
        modality=params.modality,
        state=params.state,
        limit=params.limit,
        offset=params.offset,
    )
    return {
        "items": [row.out() for row in rows],
        "total": total,
        "limit": params.limit,
        "offset": params.offset,
    }


@router.get("/templates", response_model=list[ReadTemplateOut])
def templates(request: Request) -> list[dict[str, str]]:
    """The report templates, pre-filled in the user's language."""
    locale = response_locale(request)
    return [prefill(t, locale) for t in TEMPLATES]


@router.get("/{read_id}", response_model=ConsultationOut)
def get_read(read_id: ReadId, session: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    return svc.consultation_out(session, reads.get_read(session, principal, read_id))


@router.post("/{read_id}/preliminary", response_model=ReadReportOut, status_code=201)
def sign_preliminary(
    read_id: ReadId, body: ReadReportIn, session: DbSession, principal: CurrentPrincipal
) -> Any:
    return read_reports.sign_preliminary(session, principal, read_id, body)


@router.post("/{read_id}/finalise", response_model=ReadReportOut)
def finalise(
    read_id: ReadId,
    body: SignOffIn,
    session: DbSession,
    principal: CurrentPrincipal,
    archive: ArchiveDep,
) -> Any:
    return read_reports.finalise(session, principal, read_id, body, archive)


@router.post("/{read_id}/countersign", response_model=ReadReportOut)
def countersign(
    read_id: ReadId,
    body: SignOffIn,
    session: DbSession,
    principal: CurrentPrincipal,
    archive: ArchiveDep,
) -> Any:
    return read_reports.countersign(session, principal, read_id, body, archive)


@router.post("/{read_id}/amend", response_model=ReadReportOut, status_code=201)
def amend(
    read_id: ReadId,
    body: ReadAmendIn,
    session: DbSession,
    principal: CurrentPrincipal,
    archive: ArchiveDep,
) -> Any:
    return read_reports.amend_read(session, principal, read_id, body, archive)


@router.get("/{read_id}/reports", response_model=list[ReadReportOut])
def list_reports(read_id: ReadId, session: DbSession, principal: CurrentPrincipal) -> Any:
    return read_reports.read_reports(session, principal, read_id)


@router.get(
    "/{read_id}/reports/{version}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The signed version"}},
)
def report_pdf(
    read_id: ReadId,
    version: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    return read_pdf_response(
        request, read_reports.printable_read(session, principal, read_id, version)
    )

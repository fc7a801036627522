"""Clinical documents over HTTP: upload (multipart, several files = several pages), list,
read, add pages, mark entered in error, and the stored files and thumbnails themselves.

Upload paths get the larger body limit (XIETONG_HTTP_MAX_UPLOAD_BYTES, see main.py); each
file is then held to XIETONG_UPLOAD_MAX_DOCUMENT_BYTES by the service.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Depends, File, Form, Header, Path, Response, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from xietong.core.errors import N_, Invalid
from xietong.core.storage import BlobStore
from xietong.core.validation import MAX_ID, StrictModel, has_control_characters
from xietong.records import documents as svc
from xietong.records.document_models import ClinicalDocument, DocumentPage
from xietong.web.context import AppServices
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services
from xietong.web.files import blob_response

router = APIRouter(prefix="/api/v1", tags=["documents"], dependencies=[Depends(current_principal)])

DocType = Literal[
    "admission_note", "discharge_summary", "lab_report", "exam_report", "prescription", "other"
]
PathId = Annotated[int, Path(ge=1, le=MAX_ID)]
PageNo = Annotated[int, Path(ge=1, le=10_000)]
Reason = Annotated[str | None, Header(alias="X-Access-Reason", max_length=200)]
UPLOAD_PATHS = (
    r"^/api/v1/patients/\d+/documents$",
    r"^/api/v1/documents/\d+/pages$",
    r"^/patients/\d+/documents/new$",
    r"^/documents/\d+/pages/new$",
)


class PageOut(BaseModel):
    page_no: int
    media_type: str
    size: int
    sha256: str
    width: int | None
    height: int | None
    pdf_pages: int | None
    original_media_type: str
    url: str
    thumbnail_url: str | None


class DocumentOut(BaseModel):
    id: int
    patient_id: int
    institution_id: int
    encounter_id: int | None
    doc_type: str
    title: str
    document_date: date
    capture: str
    source: str
    source_ref: str
    page_count: int
    status: str
    error_reason: str
    recorded_by_user_id: int | None
    recorded_at: datetime
    thumbnail_url: str | None = None
    pages: list[PageOut] = Field(default_factory=list)


class DocumentCreatedOut(DocumentOut):
    created: bool


class EnteredInErrorIn(StrictModel):
    reason: str = Field(min_length=2, max_length=500)


def page_out(page: DocumentPage) -> PageOut:
    base = f"/api/v1/documents/{page.document_id}/pages/{page.page_no}"
    return PageOut(
        page_no=page.page_no,
        media_type=page.media_type,
        size=page.size,
        sha256=page.sha256,
        width=page.width,
        height=page.height,
        pdf_pages=page.pdf_pages,
        original_media_type=page.original_media_type,
        url=base,
        thumbnail_url=f"{base}/thumbnail" if page.thumb_blob_key else None,
    )


def document_out(
    document: ClinicalDocument,
    pages: list[DocumentPage] | None = None,
    first: DocumentPage | None = None,
) -> DocumentOut:
    shown = pages or []
    head = first or (shown[0] if shown else None)
    thumb = (
        f"/api/v1/documents/{document.id}/pages/1/thumbnail"
        if head is not None and head.thumb_blob_key
        else None
    )
    return DocumentOut(
        id=document.id,
        patient_id=document.patient_id,
        institution_id=document.institution_id,
        encounter_id=document.encounter_id,
        doc_type=document.doc_type,
        title=document.title,
        document_date=document.document_date,
        capture=document.capture,
        source=document.source,
        source_ref=document.source_ref,
        page_count=document.page_count,
        status=document.status,
        error_reason=document.error_reason,
        recorded_by_user_id=document.recorded_by_user_id,
        recorded_at=document.recorded_at,
        thumbnail_url=thumb,
        pages=[page_out(p) for p in shown],
    )


def read_uploads(files: list[UploadFile], limit: int) -> list[svc.UploadedFile]:
    """The files' bytes, each read at most one byte past the per-file limit (the service
    answers 413 for that one, naming it)."""
    return [
        svc.UploadedFile(
            filename=f.filename or "",
            declared_type=f.content_type,
            data=f.file.read(limit + 1),
        )
        for f in files
    ]


@router.post("/patients/{patient_id}/documents", status_code=201)
def upload_document(
    session: DbSession,
    principal: CurrentPrincipal,
    app: Annotated[AppServices, Depends(services)],
    response: Response,
    patient_id: PathId,
    doc_type: Annotated[DocType, Form()],
    title: Annotated[str, Form(min_length=1, max_length=200)],
    document_date: Annotated[date, Form()],
    files: Annotated[list[UploadFile], File(description="One file per page")],
    capture: Annotated[Literal["analogue", "digital"], Form()] = "analogue",
    source: Annotated[Literal["entered", "interface"], Form()] = "entered",
    source_ref: Annotated[str, Form(max_length=64)] = "",
    encounter_id: Annotated[int | None, Form(ge=1, le=MAX_ID)] = None,
    client_request_id: Annotated[str | None, Form(max_length=64)] = None,
) -> DocumentCreatedOut:
    """Upload a document of one or more pages (JPEG, PNG, HEIC photos; PDF files)."""
    limits = app.settings.upload
    meta = svc.DocumentMeta(
        doc_type=doc_type,
        title=_clean(title, "title"),
        document_date=document_date,
        capture=capture,
        encounter_id=encounter_id,
        source=source,
        source_ref=_clean(source_ref, "source_ref"),
        client_request_id=_clean(client_request_id, "client_request_id")
        if client_request_id
        else None,
    )
    uploads = read_uploads(files, limits.max_document_bytes)
    document, created = svc.upload_document(
        session, principal, app.blobs, limits, patient_id, meta, uploads
    )
    if not created:
        response.status_code = 200
    opened = svc.open_document(session, principal, document.id)
    return DocumentCreatedOut(
        **document_out(opened.document, list(opened.pages)).model_dump(), created=created
    )


def _clean(value: str, field: str) -> str:
    """Form fields get the same refusal of control characters as JSON bodies."""
    if has_control_characters(value):
        raise Invalid(
            N_("Control characters are not allowed."), code="control_characters", field=field
        )
    return value.strip()


@router.get("/patients/{patient_id}/documents")
def list_documents(
    session: DbSession, principal: CurrentPrincipal, patient_id: PathId, reason: Reason = None
) -> list[DocumentOut]:
    rows = svc.list_documents(session, principal, patient_id, reason=reason)
    return [document_out(d, first=p) for d, p in rows]


@router.get("/documents/{document_id}")
def get_document(
    session: DbSession, principal: CurrentPrincipal, document_id: PathId, reason: Reason = None
) -> DocumentOut:
    opened = svc.open_document(session, principal, document_id, reason=reason)
    return document_out(opened.document, list(opened.pages))


@router.post("/documents/{document_id}/pages")
def add_pages(
    session: DbSession,
    principal: CurrentPrincipal,
    app: Annotated[AppServices, Depends(services)],
    document_id: PathId,
    files: Annotated[list[UploadFile], File(description="One file per page")],
) -> DocumentOut:
    limits = app.settings.upload
    uploads = read_uploads(files, limits.max_document_bytes)
    svc.add_pages(session, principal, app.blobs, limits, document_id, uploads)
    opened = svc.open_document(session, principal, document_id)
    return document_out(opened.document, list(opened.pages))


@router.post("/documents/{document_id}/entered-in-error")
def entered_in_error(
    session: DbSession, principal: CurrentPrincipal, document_id: PathId, body: EnteredInErrorIn
) -> DocumentOut:
    document = svc.mark_entered_in_error(session, principal, document_id, body.reason)
    return document_out(document)


def _file_response(blobs: BlobStore, content: svc.PageContent) -> StreamingResponse:
    return blob_response(
        blobs,
        content.blob_key,
        content.media_type,
        filename=content.filename,
        sha256=content.sha256,
    )


@router.get("/documents/{document_id}/pages/{page_no}")
def page_file(
    session: DbSession,
    principal: CurrentPrincipal,
    app: Annotated[AppServices, Depends(services)],
    document_id: PathId,
    page_no: PageNo,
    reason: Reason = None,
) -> StreamingResponse:
    content = svc.open_page(session, principal, document_id, page_no, reason=reason)
    return _file_response(app.blobs, content)


@router.get("/documents/{document_id}/pages/{page_no}/thumbnail")
def page_thumbnail(
    session: DbSession,
    principal: CurrentPrincipal,
    app: Annotated[AppServices, Depends(services)],
    document_id: PathId,
    page_no: PageNo,
    reason: Reason = None,
) -> StreamingResponse:
    content = svc.open_page(session, principal, document_id, page_no, thumbnail=True, reason=reason)
    return _file_response(app.blobs, content)

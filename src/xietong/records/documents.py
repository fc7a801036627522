"""Clinical documents: photos and scans of paper records (analogue capture) and files other
systems produce (digital capture), several pages each.

Every file is vetted before anything is written (core/uploads.py: the content decides the
type, bombs and corrupt files are refused, EXIF orientation applied and metadata stripped),
so a bad page refuses the whole upload and leaves no row. Blobs are content-addressed and
never overwritten. Reads go through the patient's chart access and are audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import deny_not_found
from xietong.access.principal import Principal
from xietong.config import UploadSettings
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, Invalid
from xietong.core.storage import BlobStore
from xietong.core.uploads import VettedFile, vet
from xietong.core.validation import strip_control_characters
from xietong.patients.access import (
    ChartAccess,
    access_patient,
    register_item_kind,
    resolve_access,
)
from xietong.patients.registration import link_institution
from xietong.records import rules
from xietong.records.document_models import ClinicalDocument, DocumentPage
from xietong.records.service.common import own_encounter

ITEM_KIND = "document"
MAX_PAGES_PER_DOCUMENT = 50


@dataclass(frozen=True)
class UploadedFile:
    filename: str
    declared_type: str | None
    data: bytes


@dataclass(frozen=True)
class DocumentMeta:
    doc_type: str
    title: str
    document_date: date
    capture: str = "analogue"
    encounter_id: int | None = None
    source: str = "entered"
    source_ref: str = ""
    client_request_id: str | None = None


@dataclass(frozen=True)
class OpenedDocument:
    document: ClinicalDocument
    pages: Sequence[DocumentPage]
    chart: ChartAccess


def _resolve(session: Session, item_id: int) -> tuple[int, int | None] | None:
    row = session.execute(
        select(ClinicalDocument.patient_id, ClinicalDocument.institution_id).where(
            ClinicalDocument.id == item_id
        )
    ).first()
    return (row[0], row[1]) if row else None


register_item_kind(ITEM_KIND, _resolve)


# Writing ---------------------------------------------------------------------------------


def _vet_all(files: Sequence[UploadedFile], limits: UploadSettings) -> list[VettedFile]:
    if not files:
        raise Invalid(N_("Attach at least one file."), code="missing", field="files")
    if len(files) > MAX_PAGES_PER_DOCUMENT:
        raise Invalid(
            N_("A document has at most {limit} pages."),
            code="too_many_files",
            field="files",
            params={"limit": MAX_PAGES_PER_DOCUMENT},
        )
    return [
        vet(
            f.data,
            declared_type=f.declared_type,
            field=f"files[{index}]",
            max_bytes=limits.max_document_bytes,
            max_image_pixels=limits.max_image_pixels,
            max_pdf_pages=limits.max_pdf_pages,
            thumbnail_size=limits.thumbnail_size,
        )
        for index, f in enumerate(files)
    ]


def _check_meta(
    session: Session, principal: Principal, chart: ChartAccess, meta: DocumentMeta
) -> None:
    if meta.document_date > rules.local_date(now()):
        raise Invalid(
            N_("The document date is in the future."),
            code="document_date_future",
            field="document_date",
        )
    if meta.encounter_id is not None and not own_encounter(
        session, meta.encounter_id, chart.member_ids, principal.institution_id or 0
    ):
        raise Invalid(
            N_("This encounter is not one of this patient's at your institution."),
            code="encounter_not_found",
            field="encounter_id",
        )


def _store_pages(
    session: Session,
    blobs: BlobStore,
    principal: Principal,
    document: ClinicalDocument,
    files: Sequence[UploadedFile],
    vetted: Sequence[VettedFile],
) -> None:
    first = (
        session.execute(
            select(func.coalesce(func.max(DocumentPage.page_no), 0)).where(
                DocumentPage.document_id == document.id
            )
        ).scalar_one()
        + 1
    )
    for offset, (upload, page) in enumerate(zip(files, vetted, strict=True)):
        stored = blobs.put_bytes(page.data)
        thumb = blobs.put_bytes(page.thumbnail) if page.thumbnail else None
        session.add(
            DocumentPage(
                document_id=document.id,
                page_no=first + offset,
                media_type=page.media_type,
                blob_key=stored.key,
                sha256=stored.sha256,
                size=stored.size,
                width=page.width,
                height=page.height,
                pdf_pages=page.page_count,
                thumb_blob_key=thumb.key if thumb else None,
                original_media_type=page.original_media_type,
                original_sha256=page.original_sha256,
                original_filename=_safe_filename(upload.filename),
                created_by_user_id=principal.user_id,
            )
        )
    document.page_count = first - 1 + len(vetted)
    session.flush()


def _safe_filename(name: str) -> str:
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    return strip_control_characters(base, "")[:200]


def upload_document(
    session: Session,
    principal: Principal,
    blobs: BlobStore,
    limits: UploadSettings,
    patient_id: int,
    meta: DocumentMeta,
    files: Sequence[UploadedFile],
) -> tuple[ClinicalDocument, bool]:
    """A new document of one or more pages; (document, created). A retry with the same
    ``client_request_id`` returns the first document."""
    patient, chart = access_patient(
        session, principal, patient_id, action="document.create", field="patient_id"
    )
    institution_id = _recording_institution(principal)
    earlier = _by_request(session, institution_id, meta.client_request_id)
    if earlier is not None:
        return earlier, False
    _check_meta(session, principal, chart, meta)
    vetted = _vet_all(files, limits)
    document = ClinicalDocument(
        patient_id=patient.id,
        institution_id=institution_id,
        encounter_id=meta.encounter_id,
        doc_type=meta.doc_type,
        title=meta.title,
        document_date=meta.document_date,
        effective_at=rules.start_of_day(meta.document_date),
        capture=meta.capture,
        source=meta.source,
        source_ref=meta.source_ref,
        recorded_by_user_id=principal.user_id,
        client_request_id=meta.client_request_id,
    )
    try:
        with session.begin_nested():
            session.add(document)
            session.flush()
    except IntegrityError:
        # A concurrent retry of the same request inserted first: answer with its document.
        winner = _by_request(session, institution_id, meta.client_request_id)
        if winner is None:
            raise
        return winner, False
    _store_pages(session, blobs, principal, document, files, vetted)
    link_institution(session, patient.id, institution_id, "treated")
    audit.record(
        session,
        principal,
        "document.create",
        object_kind=ITEM_KIND,
        object_id=document.id,
        detail={
            "patient_id": patient.id,
            "pages": len(vetted),
            "types": sorted({v.media_type for v in vetted}),
            "basis": list(chart.basis),
        },
    )
    return document, True


def add_pages(
    session: Session,
    principal: Principal,
    blobs: BlobStore,
    limits: UploadSettings,
    document_id: int,
    files: Sequence[UploadedFile],
) -> ClinicalDocument:
    """More pages for a document of the principal's own institution."""
    opened = open_document(session, principal, document_id, action="document.add_pages")
    document = opened.document
    if document.institution_id != principal.institution_id:
        raise Forbidden(
            N_("Only the institution that holds a document adds pages to it."),
            code="not_holder",
            field="document_id",
        )
    if document.status != "current":
        raise Conflict(N_("This document was marked entered in error."), code="document_in_error")
    vetted = _vet_all(files, limits)
    if document.page_count + len(vetted) > MAX_PAGES_PER_DOCUMENT:
        raise Invalid(
            N_("A document has at most {limit} pages."),
            code="too_many_files",
            field="files",
            params={"limit": MAX_PAGES_PER_DOCUMENT},
        )
    _store_pages(session, blobs, principal, document, files, vetted)
    audit.record(
        session,
        principal,
        "document.add_pages",
        object_kind=ITEM_KIND,
        object_id=document.id,
        detail={"pages": len(vetted)},
    )
    return document


def mark_entered_in_error(
    session: Session, principal: Principal, document_id: int, reason: str
) -> ClinicalDocument:
    opened = open_document(session, principal, document_id, action="document.entered_in_error")
    document = opened.document
    if document.institution_id != principal.institution_id:
        raise Forbidden(
            N_("Only the institution that holds a document corrects it."),
            code="not_holder",
            field="document_id",
        )
    if document.status == "current":
        document.status = "entered_in_error"
        document.error_reason = reason
        document.error_at = now()
        document.error_by_user_id = principal.user_id
        session.flush()
        audit.record(
            session,
            principal,
            "document.entered_in_error",
            object_kind=ITEM_KIND,
            object_id=document.id,
            purpose=reason[:200],
        )
    return document


def _by_request(
    session: Session, institution_id: int, client_request_id: str | None
) -> ClinicalDocument | None:
    if not client_request_id:
        return None
    return session.execute(
        select(ClinicalDocument).where(
            ClinicalDocument.institution_id == institution_id,
            ClinicalDocument.client_request_id == client_request_id,
        )
    ).scalar_one_or_none()


def _recording_institution(principal: Principal) -> int:
    if principal.institution_id is None:
        raise Forbidden(
            N_("Only staff of an institution record documents."), code="institution_required"
        )
    return principal.institution_id


# Reading ---------------------------------------------------------------------------------


def open_document(
    session: Session,
    principal: Principal,
    document_id: int,
    *,
    action: str = "document.read",
    reason: str | None = None,
) -> OpenedDocument:
    """The document and its pages, if the principal may see it; 404 otherwise. Audited."""
    document = session.get(ClinicalDocument, document_id)
    chart = (
        resolve_access(session, principal, document.patient_id, reason=reason)
        if document is not None
        else None
    )
    if (
        document is None
        or chart is None
        or not chart.can_see(ITEM_KIND, document.id, document.institution_id)
    ):
        raise deny_not_found(session, principal, action, ITEM_KIND, document_id)
    pages = (
        session.execute(
            select(DocumentPage)
            .where(DocumentPage.document_id == document.id)
            .order_by(DocumentPage.page_no)
        )
        .scalars()
        .all()
    )
    audit.record(
        session,
        principal,
        "document.break_glass" if "break_glass" in chart.basis else action,
        object_kind=ITEM_KIND,
        object_id=document.id,
        purpose=reason or "",
        detail={"patient_id": document.patient_id, "basis": list(chart.basis)},
    )
    return OpenedDocument(document, pages, chart)


@dataclass(frozen=True)
class PageContent:
    blob_key: str
    media_type: str
    sha256: str
    filename: str


def open_page(
    session: Session,
    principal: Principal,
    document_id: int,
    page_no: int,
    *,
    thumbnail: bool = False,
    reason: str | None = None,
) -> PageContent:
    """One page's stored file (or its thumbnail), audited as a read of the document."""
    action = "document.thumbnail" if thumbnail else "document.page"
    opened = open_document(session, principal, document_id, action=action, reason=reason)
    for page in opened.pages:
        if page.page_no != page_no:
            continue
        if thumbnail:
            if page.thumb_blob_key is None:
                break
            return PageContent(page.thumb_blob_key, "image/jpeg", "", "")
        extension = {"image/jpeg": "jpg", "image/png": "png", "application/pdf": "pdf"}
        name = f"document-{document_id}-{page_no}.{extension.get(page.media_type, 'bin')}"
        return PageContent(page.blob_key, page.media_type, page.sha256, name)
    raise deny_not_found(session, principal, action, "document_page", f"{document_id}/{page_no}")


def documents_of_patient(
    session: Session, chart: ChartAccess, *, include_in_error: bool = True
) -> list[tuple[ClinicalDocument, DocumentPage | None]]:
    """The documents of an opened chart the principal may see, newest first, each with its
    first page (for the thumbnail). The caller audited the chart read."""
    stmt = select(ClinicalDocument).where(ClinicalDocument.patient_id.in_(chart.member_ids))
    if not include_in_error:
        stmt = stmt.where(ClinicalDocument.status == "current")
    documents = [
        d
        for d in session.execute(
            stmt.order_by(ClinicalDocument.effective_at.desc(), ClinicalDocument.id.desc())
        ).scalars()
        if chart.can_see(ITEM_KIND, d.id, d.institution_id)
    ]
    if not documents:
        return []
    firsts = {
        p.document_id: p
        for p in session.execute(
            select(DocumentPage).where(
                DocumentPage.document_id.in_([d.id for d in documents]),
                DocumentPage.page_no == 1,
            )
        ).scalars()
    }
    return [(d, firsts.get(d.id)) for d in documents]


def list_documents(
    session: Session, principal: Principal, patient_id: int, *, reason: str | None = None
) -> list[tuple[ClinicalDocument, DocumentPage | None]]:
    _patient, chart = access_patient(
        session, principal, patient_id, action="document.list", reason=reason
    )
    return documents_of_patient(session, chart)

"""Tables of clinical documents: a document (type, date, title, who and where) and its pages
(each one vetted file in the blob store, with its thumbnail).

Blobs are content-addressed and never overwritten; a page row records the SHA-256 of the
stored bytes and of the upload as it arrived, so both can be verified later.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from xietong.core.clock import now
from xietong.core.db import Base, UTCDateTime
from xietong.core.errors import N_

DOCUMENT_TYPES = (
    "admission_note",
    "discharge_summary",
    "lab_report",
    "exam_report",
    "prescription",
    "other",
)

DOC_TYPE_LABELS: dict[str, str] = {
    "admission_note": N_("Admission note"),
    "discharge_summary": N_("Discharge summary"),
    "lab_report": N_("Lab report"),
    "exam_report": N_("Examination report"),
    "prescription": N_("Prescription"),
    "other": N_("Other document"),
}


class ClinicalDocument(Base):
    __tablename__ = "clinical_document"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    # The holding institution: the recorder's. Its staff see the document; others by grant.
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    # The encounter it belongs to, if any (of the same patient: checked by the service).
    encounter_id: Mapped[int | None] = mapped_column(ForeignKey("encounter.id"), index=True)
    doc_type: Mapped[str] = mapped_column(String(24))
    title: Mapped[str] = mapped_column(String(200))
    document_date: Mapped[date] = mapped_column(Date)
    # Midnight China time of the document date: where the document sits on the timeline.
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime)
    # analogue: a photo or scan of paper; digital: a file another system produced.
    capture: Mapped[str] = mapped_column(String(8))
    source: Mapped[str] = mapped_column(String(12), default="entered")  # entered | interface
    source_ref: Mapped[str] = mapped_column(String(64), default="")
    page_count: Mapped[int] = mapped_column(SmallInteger, default=0)
    status: Mapped[str] = mapped_column(String(16), default="current")
    error_reason: Mapped[str] = mapped_column(String(500), default="")
    error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)
    client_request_id: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        CheckConstraint(
            "doc_type IN ('admission_note','discharge_summary','lab_report','exam_report',"
            "'prescription','other')",
            name="doc_type",
        ),
        CheckConstraint("capture IN ('analogue','digital')", name="capture"),
        CheckConstraint("source IN ('entered','interface')", name="source"),
        CheckConstraint("status IN ('current','entered_in_error')", name="status"),
        UniqueConstraint(
            "institution_id", "client_request_id", name="uq_clinical_document_client_request"
        ),
        Index("ix_clinical_document_patient_effective", "patient_id", "effective_at"),
    )


class DocumentPage(Base):
    __tablename__ = "document_page"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    document_id: Mapped[int] = mapped_column(
        ForeignKey("clinical_document.id", ondelete="CASCADE"), index=True
    )
    page_no: Mapped[int] = mapped_column(SmallInteger)
    media_type: Mapped[str] = mapped_column(String(32))
    blob_key: Mapped[str] = mapped_column(String(80))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    width: Mapped[int | None] = mapped_column(Integer)
    height: Mapped[int | None] = mapped_column(Integer)
    pdf_pages: Mapped[int | None] = mapped_column(SmallInteger)
    thumb_blob_key: Mapped[str | None] = mapped_column(String(80))
    original_media_type: Mapped[str] = mapped_column(String(32))
    original_sha256: Mapped[str] = mapped_column(String(64))
    original_filename: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))

    __table_args__ = (UniqueConstraint("document_id", "page_no", name="uq_document_page_no"),)

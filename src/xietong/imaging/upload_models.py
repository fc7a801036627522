"""Tables of resumable web uploads of DICOM files and zips (imaging/uploads.py).

An upload belongs to the user who created it and is named in URLs by a random public id,
never by its row number. Its bytes live in a partial file under the data folder whose name
(``storage_name``) the server chose; the client's file name is only shown. Each file found
in a completed upload gets an item row, written in the same transaction as its ingest, so
a completion that stops half-way resumes where it stopped and never ingests twice.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from xietong.core.clock import now
from xietong.core.db import Base, UTCDateTime


class ImagingUpload(Base):
    __tablename__ = "imaging_upload"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    public_id: Mapped[str] = mapped_column(String(32), unique=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    # The client's retry key: the same key from the same user returns the same upload.
    client_request_id: Mapped[str | None] = mapped_column(String(64))
    file_name: Mapped[str] = mapped_column(String(255))
    kind: Mapped[str] = mapped_column(String(8))  # dicom | zip
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str | None] = mapped_column(String(64))
    received: Mapped[int] = mapped_column(BigInteger, default=0)
    storage_name: Mapped[str] = mapped_column(String(64), unique=True)
    # receiving → ingesting → completed | failed; receiving → expired | cancelled
    status: Mapped[str] = mapped_column(String(16), default="receiving")
    error_code: Mapped[str | None] = mapped_column(String(64))
    error_message: Mapped[str | None] = mapped_column(String(255))
    error_params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = (
        UniqueConstraint("user_id", "client_request_id", name="uq_imaging_upload_user_request"),
        Index("ix_imaging_upload_user_status", "user_id", "status"),
        Index("ix_imaging_upload_status_expires", "status", "expires_at"),
    )


class ImagingUploadItem(Base):
    """One file of a completed upload and what became of it."""

    __tablename__ = "imaging_upload_item"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    upload_id: Mapped[int] = mapped_column(ForeignKey("imaging_upload.id"))
    # Position in the upload (the zip's central directory order; 0 for a single file).
    position: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(String(255))
    # stored | already_stored | refused | skipped
    outcome: Mapped[str] = mapped_column(String(16))
    code: Mapped[str | None] = mapped_column(String(64))
    message: Mapped[str | None] = mapped_column(String(255))
    params: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    study_id: Mapped[int | None] = mapped_column(ForeignKey("imaging_study.id"))
    sop_instance_uid: Mapped[str | None] = mapped_column(String(64))

    __table_args__ = (
        UniqueConstraint("upload_id", "position", name="uq_imaging_upload_item_position"),
    )

"""Tables of the imaging archive: study, series, instance, as DICOM defines them.

A study is indexed once per sending institution (the same Study Instance UID sent by two
institutions is two rows, each visible to its sender). Patient attributes are kept as they
arrived; ``patient_id`` links the study to the master patient index when it could be
matched. Instances point to content-addressed blobs: the stored path is the SHA-256 of the
bytes, never a UID.
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import BigInteger, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from xietong.core.clock import now
from xietong.core.db import Base, UTCDateTime

UID_LENGTH = 64


class ImagingStudy(Base):
    __tablename__ = "imaging_study"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sender_institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    study_uid: Mapped[str] = mapped_column(String(UID_LENGTH), index=True)
    patient_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), index=True)
    accession_number: Mapped[str] = mapped_column(String(16), default="")
    study_date: Mapped[date | None] = mapped_column(Date, index=True)
    study_time: Mapped[str] = mapped_column(String(16), default="")
    study_id: Mapped[str] = mapped_column(String(16), default="")
    description: Mapped[str] = mapped_column(String(64), default="")
    # Backslash-separated, sorted: the modalities of the study's series.
    modalities: Mapped[str] = mapped_column(String(128), default="")
    referring_physician: Mapped[str] = mapped_column(String(324), default="")
    # As received (DICOM PN, LO, DA, CS): not the patient index's values.
    patient_name: Mapped[str] = mapped_column(String(324), default="")
    patient_key: Mapped[str] = mapped_column(String(64), default="")
    patient_birth_date: Mapped[str] = mapped_column(String(8), default="")
    patient_sex: Mapped[str] = mapped_column(String(16), default="")
    series_count: Mapped[int] = mapped_column(Integer, default=0)
    instance_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    __table_args__ = (
        UniqueConstraint("sender_institution_id", "study_uid", name="uq_imaging_study_sender_uid"),
    )


class ImagingSeries(Base):
    __tablename__ = "imaging_series"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("imaging_study.id"), index=True)
    series_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    modality: Mapped[str] = mapped_column(String(16), default="")
    series_number: Mapped[int | None] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(64), default="")
    body_part: Mapped[str] = mapped_column(String(16), default="")
    instance_count: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    __table_args__ = (
        UniqueConstraint("study_id", "series_uid", name="uq_imaging_series_study_uid"),
    )


class ImagingInstance(Base):
    __tablename__ = "imaging_instance"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    series_id: Mapped[int] = mapped_column(ForeignKey("imaging_series.id"), index=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("imaging_study.id"), index=True)
    # The key of idempotency: one SOP instance per sending institution.
    sender_institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"))
    sop_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    sop_class_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    instance_number: Mapped[int | None] = mapped_column(Integer)
    rows: Mapped[int | None] = mapped_column(Integer)
    columns: Mapped[int | None] = mapped_column(Integer)
    frames: Mapped[int | None] = mapped_column(Integer)
    blob_key: Mapped[str] = mapped_column(String(80))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(BigInteger)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    received_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))

    __table_args__ = (
        UniqueConstraint(
            "sender_institution_id", "sop_instance_uid", name="uq_imaging_instance_sender_uid"
        ),
        Index("ix_imaging_instance_sop_instance_uid", "sop_instance_uid"),
    )

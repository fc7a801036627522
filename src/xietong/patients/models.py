"""Tables of the master patient index: patients, identifiers, institution links, merges and
the grants through which workflows share charts.

Identifiers and phone numbers are never stored in clear: each has a ciphertext, a keyed
blind index for exact lookup and the masked form that lists show (core/pii.py).
"""

from __future__ import annotations

from datetime import date, datetime

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from xietong.core.clock import now
from xietong.core.db import Base, UTCDateTime


class Patient(Base):
    __tablename__ = "patient"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    # GB/T 2261.1-2003: 0 unknown, 1 male, 2 female, 9 not stated.
    sex: Mapped[str] = mapped_column(String(1))
    birth_date: Mapped[date] = mapped_column(Date, index=True)
    phone_enc: Mapped[str | None] = mapped_column(Text)
    phone_bidx: Mapped[str | None] = mapped_column(String(64), index=True)
    phone_masked: Mapped[str] = mapped_column(String(32), default="")
    address_region_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"), index=True)
    address_detail: Mapped[str] = mapped_column(String(200), default="")
    emergency_name: Mapped[str] = mapped_column(String(64), default="")
    emergency_relation: Mapped[str] = mapped_column(String(32), default="")
    emergency_phone_enc: Mapped[str | None] = mapped_column(Text)
    emergency_phone_masked: Mapped[str] = mapped_column(String(32), default="")
    registered_institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    registered_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    # The registering client's request id: a retried registration finds its first result.
    client_request_id: Mapped[str | None] = mapped_column(String(64))
    # Set while this record is merged into another (the survivor); cleared by an undo.
    merged_into_id: Mapped[int | None] = mapped_column(ForeignKey("patient.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)

    __table_args__ = (
        CheckConstraint("sex IN ('0','1','2','9')", name="sex"),
        CheckConstraint("merged_into_id IS NULL OR merged_into_id <> id", name="not_self_merged"),
        UniqueConstraint(
            "registered_institution_id", "client_request_id", name="uq_patient_client_request"
        ),
    )


class PatientIdentifier(Base):
    """An identifier of a patient. ``issuer`` tells whose number it is: the institution id
    for a medical record number, the country (ISO 3166 alpha-3) for a passport, the issuing
    region or institution for a health card, empty for a resident ID (one national space)."""

    __tablename__ = "patient_identifier"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patient.id", ondelete="CASCADE"), index=True
    )
    kind: Mapped[str] = mapped_column(String(16))
    issuer: Mapped[str] = mapped_column(String(32), default="")
    value_enc: Mapped[str] = mapped_column(Text)
    value_bidx: Mapped[str] = mapped_column(String(64))
    value_masked: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))

    __table_args__ = (
        # The same number names one patient: registration races end here (ADR 11).
        UniqueConstraint("kind", "issuer", "value_bidx", name="uq_patient_identifier_value"),
        UniqueConstraint("patient_id", "kind", "issuer", name="uq_patient_identifier_kind"),
        CheckConstraint(
            "kind IN ('resident_id','passport','mrn','health_card')", name="identifier_kind"
        ),
    )


class PatientInstitution(Base):
    """An institution that registered or treated the patient: its staff may open the
    patient and the records that institution holds."""

    __tablename__ = "patient_institution"

    patient_id: Mapped[int] = mapped_column(
        ForeignKey("patient.id", ondelete="CASCADE"), primary_key=True
    )
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id"), primary_key=True, index=True
    )
    relation: Mapped[str] = mapped_column(String(16))  # registered | treated
    first_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    last_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    __table_args__ = (CheckConstraint("relation IN ('registered','treated')", name="relation"),)


class PatientMerge(Base):
    """One merge of ``merged_id`` into ``survivor_id``, and its undo. Nothing is moved or
    deleted by a merge: the merged record points at its survivor, so an undo restores it."""

    __tablename__ = "patient_merge"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    survivor_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    merged_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    reason: Mapped[str] = mapped_column(String(500))
    merged_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    merged_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    merged_by_institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    undone_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    undo_reason: Mapped[str] = mapped_column(String(500), default="")


class ChartGrant(Base):
    """A workflow shares a patient's chart, or chosen items of it, with an institution or a
    user, for a purpose, until an expiry. Consultations, referrals and imaging reads create
    them; revoking or expiry closes them."""

    __tablename__ = "chart_grant"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), index=True)
    grantee_institution_id: Mapped[int | None] = mapped_column(
        ForeignKey("institution.id"), index=True
    )
    grantee_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"), index=True)
    scope: Mapped[str] = mapped_column(String(8))  # chart | items
    purpose: Mapped[str] = mapped_column(String(200))
    subject_kind: Mapped[str] = mapped_column(String(32), default="")
    subject_id: Mapped[str] = mapped_column(String(64), default="")
    granted_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    granted_by_institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    revoked_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))

    __table_args__ = (
        CheckConstraint("scope IN ('chart','items')", name="scope"),
        CheckConstraint(
            "(grantee_institution_id IS NULL) <> (grantee_user_id IS NULL)", name="one_grantee"
        ),
        Index("ix_chart_grant_subject", "subject_kind", "subject_id"),
    )


class ChartGrantItem(Base):
    """One record item opened by an ``items`` grant (kind as the records domain names it)."""

    __tablename__ = "chart_grant_item"

    grant_id: Mapped[int] = mapped_column(
        ForeignKey("chart_grant.id", ondelete="CASCADE"), primary_key=True
    )
    item_kind: Mapped[str] = mapped_column(String(32), primary_key=True)
    item_id: Mapped[int] = mapped_column(Integer, primary_key=True)

    __table_args__ = (Index("ix_chart_grant_item_item", "item_kind", "item_id"),)

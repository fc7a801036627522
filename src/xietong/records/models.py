"""Tables of the clinical record: encounters, diagnoses, lab results, orders and medications,
vital signs, allergies, and the revisions that keep every correction.

Every entry carries the same bookkeeping (:class:`EntryColumns`): the patient, the holding
institution (the recorder's), where it came from, who recorded it and when, the client's
request id (unique per institution and kind: a retried POST finds its first result), its
version, and its entry status. Entries are never deleted: a correction changes the entry in
place and keeps the previous values as a :class:`RecordRevision`; a mistake is marked
``entered_in_error`` with who, when and why (docs/records.md).

``effective_at`` is the entry's clinical moment as a UTC timestamp (a date-only field counts
from midnight China time): the timeline orders and filters every kind by it.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    CheckConstraint,
    Date,
    Float,
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

SOURCES = ("entered", "document", "interface")
ENTRY_STATUSES = ("current", "entered_in_error")
ABNORMAL_FLAGS = ("H", "L", "HH", "LL", "A", "N")


def _in(column: str, values: tuple[str, ...]) -> str:
    quoted = ",".join(f"'{v}'" for v in values)
    return f"{column} IN ({quoted})"


def _entry_args(table: str, *extra: Any) -> tuple[Any, ...]:
    return (
        CheckConstraint(_in("source", SOURCES), name="source"),
        CheckConstraint(_in("entry_status", ENTRY_STATUSES), name="entry_status"),
        UniqueConstraint("institution_id", "client_request_id", name=f"uq_{table}_client_request"),
        Index(f"ix_{table}_patient_effective", "patient_id", "effective_at"),
        *extra,
    )


class EntryColumns:
    """The bookkeeping every clinical entry carries."""

    # Negative sort orders put the keys first in the table, before the kind's own columns.
    id: Mapped[int] = mapped_column(Integer, primary_key=True, sort_order=-4)
    # Indexed by (patient_id, effective_at), see _entry_args.
    patient_id: Mapped[int] = mapped_column(ForeignKey("patient.id"), sort_order=-3)
    # The holding institution: the recorder's. Its staff see the entry (patients.access).
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id"), index=True, sort_order=-2
    )
    effective_at: Mapped[datetime] = mapped_column(UTCDateTime, sort_order=-1)
    source: Mapped[str] = mapped_column(String(16), default="entered")
    # The document id or the interface message id the entry came from.
    source_ref: Mapped[str] = mapped_column(String(128), default="")
    recorded_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    recorded_by_practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    recorded_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    client_request_id: Mapped[str | None] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer, default=1)
    entry_status: Mapped[str] = mapped_column(String(16), default="current")
    corrected_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    corrected_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    error_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    error_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    error_reason: Mapped[str] = mapped_column(String(500), default="")


class Encounter(EntryColumns, Base):
    __tablename__ = "encounter"

    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"))
    kind: Mapped[str] = mapped_column(String(16))
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    attending_practitioner_id: Mapped[int | None] = mapped_column(ForeignKey("practitioner.id"))
    chief_complaint: Mapped[str] = mapped_column(String(500), default="")
    summary: Mapped[str] = mapped_column(Text, default="")

    __table_args__ = _entry_args(
        "encounter",
        CheckConstraint(_in("kind", ("outpatient", "inpatient", "emergency", "exam")), name="kind"),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates"),
    )


class Diagnosis(EntryColumns, Base):
    __tablename__ = "diagnosis"

    encounter_id: Mapped[int | None] = mapped_column(ForeignKey("encounter.id"), index=True)
    code: Mapped[str] = mapped_column(String(8), index=True)  # ICD-10, with the dot
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(String(16))
    status: Mapped[str] = mapped_column(String(16))
    diagnosed_on: Mapped[date] = mapped_column(Date)

    __table_args__ = _entry_args(
        "diagnosis",
        CheckConstraint(_in("kind", ("primary", "secondary")), name="kind"),
        CheckConstraint(
            _in("status", ("provisional", "confirmed", "refuted", "resolved")), name="status"
        ),
    )


class LabResult(EntryColumns, Base):
    __tablename__ = "lab_result"

    encounter_id: Mapped[int | None] = mapped_column(ForeignKey("encounter.id"), index=True)
    item_name: Mapped[str] = mapped_column(String(128))
    loinc_code: Mapped[str | None] = mapped_column(String(10))
    local_code: Mapped[str | None] = mapped_column(String(32))
    value_text: Mapped[str] = mapped_column(String(64))
    value_numeric: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(32), default="")
    ref_low: Mapped[float | None] = mapped_column(Float)
    ref_high: Mapped[float | None] = mapped_column(Float)
    ref_text: Mapped[str] = mapped_column(String(64), default="")
    abnormal_flag: Mapped[str | None] = mapped_column(String(2))
    # True when the flag was computed here from the range, False when the source gave it.
    flag_computed: Mapped[bool] = mapped_column(Boolean, default=False)
    collected_at: Mapped[datetime] = mapped_column(UTCDateTime)
    reported_at: Mapped[datetime | None] = mapped_column(UTCDateTime)

    __table_args__ = _entry_args(
        "lab_result",
        CheckConstraint(
            "abnormal_flag IS NULL OR " + _in("abnormal_flag", ABNORMAL_FLAGS), name="flag"
        ),
    )


class Medication(EntryColumns, Base):
    """An order: a medication, or an exam, procedure or nursing order."""

    __tablename__ = "medication"

    encounter_id: Mapped[int | None] = mapped_column(ForeignKey("encounter.id"), index=True)
    order_kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200))  # the drug, or what is ordered
    dose: Mapped[float | None] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16), default="")
    route: Mapped[str] = mapped_column(String(16), default="")
    frequency: Mapped[str] = mapped_column(String(32), default="")
    start_date: Mapped[date] = mapped_column(Date)
    end_date: Mapped[date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(16))

    __table_args__ = _entry_args(
        "medication",
        CheckConstraint(
            _in("order_kind", ("medication", "exam", "procedure", "nursing")), name="order_kind"
        ),
        CheckConstraint(
            _in("status", ("active", "completed", "stopped", "cancelled")), name="status"
        ),
        CheckConstraint("end_date IS NULL OR end_date >= start_date", name="dates"),
    )


class VitalSign(EntryColumns, Base):
    __tablename__ = "vital_sign"

    encounter_id: Mapped[int | None] = mapped_column(ForeignKey("encounter.id"), index=True)
    measured_at: Mapped[datetime] = mapped_column(UTCDateTime)
    kind: Mapped[str] = mapped_column(String(24))
    value: Mapped[float] = mapped_column(Float)
    unit: Mapped[str] = mapped_column(String(16))
    abnormal_flag: Mapped[str | None] = mapped_column(String(2))

    __table_args__ = _entry_args(
        "vital_sign",
        CheckConstraint(
            "abnormal_flag IS NULL OR " + _in("abnormal_flag", ABNORMAL_FLAGS), name="flag"
        ),
    )


class Allergy(EntryColumns, Base):
    __tablename__ = "allergy"

    substance: Mapped[str] = mapped_column(String(128))
    reaction: Mapped[str] = mapped_column(String(200), default="")
    severity: Mapped[str] = mapped_column(String(16), default="unknown")
    status: Mapped[str] = mapped_column(String(16), default="active")
    noted_on: Mapped[date] = mapped_column(Date)

    __table_args__ = _entry_args(
        "allergy",
        CheckConstraint(
            _in("severity", ("mild", "moderate", "severe", "unknown")), name="severity"
        ),
        CheckConstraint(_in("status", ("active", "inactive", "refuted")), name="status"),
    )


class RecordRevision(Base):
    """The values an entry had before a correction or before it was marked entered in
    error: one row per version, never changed."""

    __tablename__ = "record_revision"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    item_kind: Mapped[str] = mapped_column(String(32))
    item_id: Mapped[int] = mapped_column(Integer)
    version: Mapped[int] = mapped_column(Integer)  # the version these values were
    change: Mapped[str] = mapped_column(String(16))  # correct | entered_in_error
    previous: Mapped[dict[str, Any]] = mapped_column(JSON)
    reason: Mapped[str] = mapped_column(String(500))
    changed_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    changed_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    changed_by_institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))

    __table_args__ = (
        # Two corrections racing from the same version: the second one fails here (409).
        UniqueConstraint("item_kind", "item_id", "version", name="uq_record_revision_version"),
        CheckConstraint(_in("change", ("correct", "entered_in_error")), name="change"),
    )

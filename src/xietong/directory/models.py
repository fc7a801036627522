"""Tables of the directory: regions, institutions, service-centre links, departments,
practitioners and the expert library."""

from __future__ import annotations

from datetime import datetime, time

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    ForeignKey,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    Time,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column, relationship

from xietong.core.clock import now
from xietong.core.db import Base, UTCDateTime


class Region(Base):
    """An administrative division (GB/T 2260 code down to county; statistical codes below)."""

    __tablename__ = "region"

    code: Mapped[str] = mapped_column(String(12), primary_key=True)
    name: Mapped[str] = mapped_column(String(64))
    level: Mapped[str] = mapped_column(String(16))  # province/city/county/township/village
    parent_code: Mapped[str | None] = mapped_column(ForeignKey("region.code"), index=True)
    # The code prefix shared by this region and everything below it ("41", "4101",
    # "410102", "410102001"); jurisdiction scopes are `code LIKE prefix || '%'`.
    prefix: Mapped[str] = mapped_column(String(12), index=True)
    depth: Mapped[int] = mapped_column(SmallInteger)

    __table_args__ = (
        CheckConstraint("level IN ('province','city','county','township','village')", name="level"),
    )


class Institution(Base):
    __tablename__ = "institution"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    code: Mapped[str] = mapped_column(String(32), unique=True)
    name: Mapped[str] = mapped_column(String(128), index=True)
    name_en: Mapped[str] = mapped_column(String(200), default="")
    level: Mapped[str] = mapped_column(String(16), index=True)
    grade: Mapped[str | None] = mapped_column(String(16))
    region_code: Mapped[str] = mapped_column(ForeignKey("region.code"), index=True)
    address: Mapped[str] = mapped_column(String(256), default="")
    phone: Mapped[str] = mapped_column(String(32), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    region: Mapped[Region] = relationship(lazy="joined")

    __table_args__ = (
        CheckConstraint(
            "level IN ('provincial','city','county','township','village')", name="level"
        ),
    )


class ServiceLink(Base):
    """``applicant`` may send work (consultations, reads, referrals) up to ``centre``."""

    __tablename__ = "service_link"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    applicant_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id", ondelete="CASCADE"), index=True
    )
    centre_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    __table_args__ = (
        UniqueConstraint("applicant_id", "centre_id"),
        CheckConstraint("applicant_id <> centre_id", name="not_self"),
    )


class Department(Base):
    __tablename__ = "department"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(
        ForeignKey("institution.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(64))
    specialty: Mapped[str | None] = mapped_column(String(32))
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)

    __table_args__ = (UniqueConstraint("institution_id", "name"),)


class Practitioner(Base):
    __tablename__ = "practitioner"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    department_id: Mapped[int | None] = mapped_column(ForeignKey("department.id"), index=True)
    name: Mapped[str] = mapped_column(String(64), index=True)
    sex: Mapped[str] = mapped_column(String(1), default="0")  # GB/T 2261.1: 0,1,2,9
    title: Mapped[str] = mapped_column(String(32))
    is_expert: Mapped[bool] = mapped_column(Boolean, default=False, index=True)
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    institution: Mapped[Institution] = relationship(lazy="joined")
    department: Mapped[Department | None] = relationship(lazy="joined")
    specialty_rows: Mapped[list[PractitionerSpecialty]] = relationship(
        lazy="selectin",
        cascade="all, delete-orphan",
        order_by="PractitionerSpecialty.specialty",
        passive_deletes=True,
    )
    profile: Mapped[ExpertProfile | None] = relationship(
        lazy="select", cascade="all, delete-orphan", passive_deletes=True
    )
    availability: Mapped[list[ExpertAvailability]] = relationship(
        lazy="select",
        cascade="all, delete-orphan",
        order_by="[ExpertAvailability.weekday, ExpertAvailability.start_time]",
        passive_deletes=True,
    )

    @property
    def specialties(self) -> list[str]:
        return [row.specialty for row in self.specialty_rows]


class PractitionerSpecialty(Base):
    __tablename__ = "practitioner_specialty"

    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("practitioner.id", ondelete="CASCADE"), primary_key=True
    )
    specialty: Mapped[str] = mapped_column(String(32), primary_key=True)

    __table_args__ = (Index("ix_practitioner_specialty_specialty", "specialty"),)


class ExpertProfile(Base):
    """The public part of an expert in the expert library (专家库)."""

    __tablename__ = "expert_profile"

    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("practitioner.id", ondelete="CASCADE"), primary_key=True
    )
    summary: Mapped[str] = mapped_column(Text, default="")
    expertise: Mapped[str] = mapped_column(Text, default="")
    accepts_requests: Mapped[bool] = mapped_column(Boolean, default=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, onupdate=now)


class ExpertAvailability(Base):
    """A weekly window in which the expert takes consultations (local time of the region)."""

    __tablename__ = "expert_availability"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    practitioner_id: Mapped[int] = mapped_column(
        ForeignKey("practitioner.id", ondelete="CASCADE"), index=True
    )
    weekday: Mapped[int] = mapped_column(SmallInteger)  # 0 = Monday
    start_time: Mapped[time] = mapped_column(Time)
    end_time: Mapped[time] = mapped_column(Time)

    __table_args__ = (
        CheckConstraint("weekday BETWEEN 0 AND 6", name="weekday"),
        CheckConstraint("start_time < end_time", name="window"),
    )

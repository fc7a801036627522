"""Known DICOM nodes (modalities, PACS, workstations) of the institutions.

The DICOM service accepts associations from these AEs only (by AE title, from their
host), stores what they send for their institution, and sends C-MOVE results to them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, CheckConstraint, ForeignKey, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from xietong.core.clock import now
from xietong.core.db import Base, UTCDateTime

AE_TITLE_LENGTH = 16


class DicomPeer(Base):
    __tablename__ = "dicom_peer"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    institution_id: Mapped[int] = mapped_column(ForeignKey("institution.id"), index=True)
    # Unique over the whole platform: the title alone names the caller of an association.
    ae_title: Mapped[str] = mapped_column(String(AE_TITLE_LENGTH), unique=True)
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    description: Mapped[str] = mapped_column(String(128), default="")
    is_active: Mapped[bool] = mapped_column(Boolean, default=True)
    may_query: Mapped[bool] = mapped_column(Boolean, default=True)
    may_retrieve: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime, default=now)

    __table_args__ = (CheckConstraint("port BETWEEN 1 AND 65535", name="port_range"),)

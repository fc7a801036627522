"""One row per workflow transition, for supervision (docs/consultation.md, indicators).

Every workflow (consultation now; referral and imaging later) writes here through
:func:`record_event`, so the dashboards to come read one table: the kind of workflow, the
subject's id, the action, the states before and after, the actor, the requesting
institution with its region code, the receiving institution, and the time. Deadline
breaches are events too (``from_state == to_state``, ``action`` names the deadline).

The table lives in the kernel so that no domain has to import another to write it; it
names the institution and user tables only by their table names.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import JSON, ForeignKey, Index, Integer, String, select
from sqlalchemy.orm import Mapped, Session, mapped_column

from xietong.core.clock import now
from xietong.core.db import Base, UTCDateTime


class WorkflowEvent(Base):
    __tablename__ = "workflow_event"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    subject_id: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(48))
    from_state: Mapped[str] = mapped_column(String(32), default="")
    to_state: Mapped[str] = mapped_column(String(32), default="")
    actor_user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    region_code: Mapped[str] = mapped_column(String(12), default="")
    target_institution_id: Mapped[int | None] = mapped_column(ForeignKey("institution.id"))
    at: Mapped[datetime] = mapped_column(UTCDateTime, default=now, index=True)
    detail: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)

    __table_args__ = (
        Index("ix_workflow_event_subject", "kind", "subject_id"),
        Index("ix_workflow_event_region_at", "region_code", "at"),
    )


def record_event(
    session: Session,
    *,
    kind: str,
    subject_id: str | int,
    action: str,
    from_state: str,
    to_state: str,
    actor_user_id: int | None,
    institution_id: int | None,
    region_code: str,
    target_institution_id: int | None = None,
    at: datetime | None = None,
    detail: dict[str, Any] | None = None,
) -> WorkflowEvent:
    row = WorkflowEvent(
        kind=kind,
        subject_id=str(subject_id),
        action=action,
        from_state=from_state,
        to_state=to_state,
        actor_user_id=actor_user_id,
        institution_id=institution_id,
        region_code=region_code,
        target_institution_id=target_institution_id,
        at=at or now(),
        detail=detail or {},
    )
    session.add(row)
    session.flush()
    return row


def has_event(session: Session, *, kind: str, subject_id: str | int, action: str) -> bool:
    found = session.execute(
        select(WorkflowEvent.id).where(
            WorkflowEvent.kind == kind,
            WorkflowEvent.subject_id == str(subject_id),
            WorkflowEvent.action == action,
        )
    ).first()
    return found is not None

"""Generating slots from the weekly templates up to the horizon (China time): for one
institution from its desk (access-checked, audited), or for every institution from the
job ``xietong jobs slots``. Idempotent: a day a template already has a slot on is kept.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Select, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal, system_principal
from xietong.config import ReferralSettings
from xietong.core.clock import now
from xietong.directory.models import Department, Practitioner
from xietong.referral.slot_models import Slot, SlotTemplate
from xietong.referral.slot_service.common import (
    china_instant,
    china_today,
    open_institution,
)

_CHUNK = 500  # rows per INSERT: well under SQLite's and PostgreSQL's parameter limits


@dataclass(frozen=True)
class Generation:
    """What one generation run made: slots created (per institution) and the last day."""

    created: int
    through: date
    by_institution: dict[int, int]


def _active_templates(institution_id: int | None) -> Select[SlotTemplate]:
    stmt = (
        select(SlotTemplate)
        .join(Department, Department.id == SlotTemplate.department_id)
        .outerjoin(Practitioner, Practitioner.id == SlotTemplate.practitioner_id)
        .where(
            SlotTemplate.is_active.is_(True),
            Department.is_active.is_(True),
            (SlotTemplate.practitioner_id.is_(None)) | (Practitioner.is_active.is_(True)),
        )
        .order_by(SlotTemplate.id)
    )
    if institution_id is not None:
        stmt = stmt.where(SlotTemplate.institution_id == institution_id)
    return stmt


def slot_rows(
    templates: Iterable[SlotTemplate],
    *,
    today: date,
    horizon_days: int,
    moment: datetime,
    created_by: int | None,
) -> list[dict[str, Any]]:
    """The slots of the templates on the days ``[today, today + horizon_days)`` (China
    time) within each template's validity, that start after ``moment``."""
    end = today + timedelta(days=horizon_days - 1)
    rows: list[dict[str, Any]] = []
    for t in templates:
        first = max(today, t.valid_from)
        last = end if t.valid_until is None else min(end, t.valid_until)
        day = first + timedelta(days=(t.weekday - first.weekday()) % 7)
        while day <= last:
            starts = china_instant(day, t.start_time)
            if starts > moment:
                rows.append(
                    {
                        "institution_id": t.institution_id,
                        "department_id": t.department_id,
                        "practitioner_id": t.practitioner_id,
                        "kind": t.kind,
                        "exam_type": t.exam_type,
                        "starts_at": starts,
                        "ends_at": china_instant(day, t.end_time),
                        "capacity": t.capacity,
                        "referral_reserved": t.referral_reserved,
                        "green_quota": t.green_quota,
                        "booked_referral": 0,
                        "booked_local": 0,
                        "booked_green": 0,
                        "status": "open",
                        "template_id": t.id,
                        "created_by_user_id": created_by,
                        "created_at": moment,
                    }
                )
            day += timedelta(days=7)
    return rows


def _days_generated(
    session: Session, template_ids: Sequence[int], since: datetime
) -> set[tuple[int, date]]:
    """(template, China day) of the slots made already: a day keeps the slot it has, even
    when the template's times changed since."""
    taken: set[tuple[int, date]] = set()
    for start in range(0, len(template_ids), _CHUNK):
        rows = session.execute(
            select(Slot.template_id, Slot.starts_at).where(
                Slot.template_id.in_(template_ids[start : start + _CHUNK]),
                Slot.starts_at >= since,
            )
        )
        taken.update((int(t), china_today(at)) for t, at in rows if t is not None)
    return taken


def insert_slots(session: Session, rows: Sequence[dict[str, Any]]) -> Counter[int]:
    """Insert the generated slots, skipping those that exist (same template and start):
    ``INSERT … ON CONFLICT DO NOTHING``, so two runs, even at once, make each slot once.
    Returns how many were created per institution."""
    created: Counter[int] = Counter()
    if not rows:
        return created
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    statement = (
        insert(Slot)
        .on_conflict_do_nothing(index_elements=["template_id", "starts_at"])
        .returning(Slot.institution_id)
    )
    # One statement with many parameter sets: SQLAlchemy batches it ("insertmanyvalues").
    created.update(int(row[0]) for row in session.execute(statement, list(rows)))
    return created


def _generate(
    session: Session,
    institution_id: int | None,
    settings: ReferralSettings,
    created_by: int | None,
) -> Generation:
    moment = now()
    today = china_today(moment)
    session.flush()
    templates = list(session.execute(_active_templates(institution_id)).scalars())
    rows = slot_rows(
        templates,
        today=today,
        horizon_days=settings.slot_horizon_days,
        moment=moment,
        created_by=created_by,
    )
    taken = _days_generated(session, [t.id for t in templates], china_instant(today, time(0)))
    created = insert_slots(
        session,
        [r for r in rows if (r["template_id"], china_today(r["starts_at"])) not in taken],
    )
    through = today + timedelta(days=settings.slot_horizon_days - 1)
    return Generation(sum(created.values()), through, dict(created))


def generate_slots(
    session: Session, principal: Principal, institution_id: int, settings: ReferralSettings
) -> Generation:
    """Make the institution's slots from its active templates up to the horizon
    (``XIETONG_REFERRAL_SLOT_HORIZON_DAYS``); running it again creates nothing new."""
    open_institution(session, principal, institution_id, action="slot.generate")
    run = _generate(session, institution_id, settings, principal.user_id)
    audit.record(
        session,
        principal,
        "slot.generate",
        object_kind="institution",
        object_id=institution_id,
        detail={"created": run.created, "through": run.through.isoformat()},
    )
    return run


def generate_all_slots(session: Session, settings: ReferralSettings) -> Generation:
    """The job (``xietong jobs slots``): every institution's templates, one audit row."""
    run = _generate(session, None, settings, None)
    audit.record(
        session,
        system_principal("slots"),
        "slot.generate",
        detail={
            "created": run.created,
            "through": run.through.isoformat(),
            "institutions": len(run.by_institution),
        },
    )
    return run

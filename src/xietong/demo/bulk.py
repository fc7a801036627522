"""Bulk inserts for the demo network: Core ``insert()`` with many parameter sets, in
batches, never one ORM object per row (the province has some 300,000 rows)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, Protocol, TypeVar

from sqlalchemy import insert, select
from sqlalchemy.orm import Session

from xietong.demo.plan import Spec
from xietong.directory.models import Department, Institution, ServiceLink

BATCH = 5000
T = TypeVar("T")


class Progress(Protocol):
    def start(self, label: str, total: int) -> None: ...

    def advance(self, amount: int) -> None: ...


class NoProgress:
    def start(self, label: str, total: int) -> None:
        return None

    def advance(self, amount: int) -> None:
        return None


def chunks(rows: Sequence[T], size: int = BATCH) -> Iterator[Sequence[T]]:
    for start in range(0, len(rows), size):
        yield rows[start : start + size]


def insert_returning_ids(
    session: Session, model: Any, rows: Sequence[dict[str, Any]], progress: Progress
) -> list[int]:
    """Insert ``rows`` in batches; the new primary keys, in the order of ``rows``."""
    ids: list[int] = []
    stmt = insert(model).returning(model.id, sort_by_parameter_order=True)
    for batch in chunks(rows):
        ids.extend(session.execute(stmt, list(batch)).scalars().all())
        progress.advance(len(batch))
    return ids


def insert_plain(
    session: Session, model: Any, rows: Sequence[dict[str, Any]], progress: Progress
) -> None:
    for batch in chunks(rows):
        session.execute(insert(model), list(batch))
        progress.advance(len(batch))


def insert_institutions(
    session: Session, specs: Sequence[Spec], progress: Progress
) -> tuple[dict[str, int], list[Spec]]:
    """Insert the institutions whose code is not taken; returns code → id for every spec,
    and the specs inserted now."""
    ids = _all_codes(session)
    new = [s for s in specs if s.code not in ids]
    rows = [
        {
            "code": s.code,
            "name": s.name,
            "name_en": s.name_en,
            "level": s.level,
            "grade": s.grade,
            "region_code": s.region_code,
            "address": "",
            "phone": "",
            "is_active": True,
        }
        for s in new
    ]
    progress.start("institutions", len(rows))
    for spec, new_id in zip(
        new, insert_returning_ids(session, Institution, rows, progress), strict=True
    ):
        ids[spec.code] = new_id
    return ids, new


def _all_codes(session: Session) -> dict[str, int]:
    rows = session.execute(select(Institution.code, Institution.id)).all()
    return {row.code: row.id for row in rows}


def insert_links(
    session: Session, specs: Sequence[Spec], ids: dict[str, int], progress: Progress
) -> int:
    wanted = {(ids[s.code], ids[c]) for s in specs for c in s.centres if c in ids}
    applicants = sorted({a for a, _ in wanted})
    existing: set[tuple[int, int]] = set()
    for batch in chunks(applicants, 1000):
        existing.update(
            (applicant, centre)
            for applicant, centre in session.execute(
                select(ServiceLink.applicant_id, ServiceLink.centre_id).where(
                    ServiceLink.applicant_id.in_(batch)
                )
            )
        )
    rows = [{"applicant_id": a, "centre_id": c} for a, c in sorted(wanted - existing)]
    progress.start("service links", len(rows))
    insert_plain(session, ServiceLink, rows, progress)
    return len(rows)


def insert_departments(
    session: Session, new: Sequence[Spec], ids: dict[str, int], progress: Progress
) -> dict[int, list[tuple[int, str | None]]]:
    """Departments of the institutions inserted now: institution id → [(id, specialty)]."""
    rows: list[dict[str, Any]] = [
        {"institution_id": ids[s.code], "name": name, "specialty": specialty, "is_active": True}
        for s in new
        for name, specialty in s.departments
    ]
    progress.start("departments", len(rows))
    new_ids = insert_returning_ids(session, Department, rows, progress)
    by_institution: dict[int, list[tuple[int, str | None]]] = {}
    for row, dept_id in zip(rows, new_ids, strict=True):
        institution_id: int = row["institution_id"]
        specialty: str | None = row["specialty"]
        by_institution.setdefault(institution_id, []).append((dept_id, specialty))
    return by_institution

"""Small lookups other domains need: a region, its prefix, an institution, and the names
shown next to institution and department ids."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.directory.models import Department, Institution, Region


def find_region(session: Session, code: str) -> Region | None:
    if not code.isdigit() or len(code) > 12:
        return None
    return session.get(Region, code)


def find_institution(session: Session, institution_id: int) -> Institution | None:
    return session.get(Institution, institution_id)


def region_prefix(session: Session, code: str | None) -> str | None:
    if not code:
        return None
    return session.execute(select(Region.prefix).where(Region.code == code)).scalar_one_or_none()


def institution_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """The names of the institutions by id (absent ids are left out)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(Institution.id, Institution.name).where(Institution.id.in_(wanted))
    )
    return {int(i): str(n) for i, n in rows}


def department_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    """The names of the departments by id (absent ids are left out)."""
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(Department.id, Department.name).where(Department.id.in_(wanted)))
    return {int(i): str(n) for i, n in rows}

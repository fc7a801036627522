"""Small lookups other domains need: a region, its prefix, an institution."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.directory.models import Institution, Region


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

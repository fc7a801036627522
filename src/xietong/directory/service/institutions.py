"""Institutions: create, update, find and search (by name, level and region subtree)."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xietong.core.errors import N_, Conflict, Invalid, NotFound
from xietong.directory.levels import LEVEL_BY_CODE, validate_grade, validate_level
from xietong.directory.models import Department, Institution, Practitioner, Region
from xietong.directory.regions import get_region
from xietong.directory.schemas import InstitutionCreateIn, InstitutionUpdateIn
from xietong.directory.service.common import Paging, apply_changes, flush_unique, sent_fields
from xietong.directory.service.links import check_links_after_level_change

# Fields only a platform admin may change: they move the institution in the tiers.
PLATFORM_FIELDS = frozenset({"code", "level", "region_code", "is_active"})
# Fields a PATCH may leave out but not set to null (``grade`` may be cleared).
NOT_NULL = ("code", "name", "name_en", "level", "region_code", "address", "phone", "is_active")


@dataclass(frozen=True)
class InstitutionQuery:
    q: str | None = None
    level: str | None = None
    region_code: str | None = None  # the subtree of this region
    include_inactive: bool = False
    paging: Paging = field(default_factory=Paging)


def get_institution(session: Session, institution_id: int, field: str = "id") -> Institution:
    institution = session.get(Institution, institution_id)
    if institution is None:
        raise NotFound(N_("Not found."), code="institution_not_found", field=field)
    return institution


def region_fits_level(session: Session, region_code: str, level: str, field: str) -> Region:
    """An institution sits in a region at or below its own tier (a county hospital in a
    county, or a town of it; never in a province-level region)."""
    region = get_region(session, region_code, field=field)
    if region.depth < LEVEL_BY_CODE[level].region_depth:
        raise Invalid(
            N_("This region is above the level of the institution."),
            code="region_above_level",
            field=field,
        )
    return region


def search_institutions(
    session: Session, query: InstitutionQuery
) -> tuple[Sequence[Institution], int]:
    stmt = select(Institution)
    if not query.include_inactive:
        stmt = stmt.where(Institution.is_active.is_(True))
    if query.q:
        stmt = stmt.where(Institution.name.contains(query.q, autoescape=True))
    if query.level:
        stmt = stmt.where(Institution.level == validate_level(query.level))
    if query.region_code:
        region = get_region(session, query.region_code, field="region")
        stmt = stmt.where(Institution.region_code.startswith(region.prefix, autoescape=True))
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = (
        session.execute(
            stmt.order_by(Institution.region_code, Institution.level, Institution.id)
            .limit(query.paging.limit)
            .offset(query.paging.offset)
        )
        .scalars()
        .all()
    )
    return rows, total


def create_institution(session: Session, data: InstitutionCreateIn) -> Institution:
    region_fits_level(session, data.region_code, data.level, "region_code")
    code = data.code or f"XT{secrets.token_hex(5).upper()}"
    _ensure_code_free(session, code)
    institution = Institution(
        code=code,
        name=data.name,
        name_en=data.name_en,
        level=data.level,
        grade=data.grade,
        region_code=data.region_code,
        address=data.address,
        phone=data.phone,
        is_active=True,
    )
    session.add(institution)
    flush_unique(session, "code")
    return institution


def update_institution(
    session: Session, institution: Institution, data: InstitutionUpdateIn
) -> dict[str, list[Any]]:
    """Apply a PATCH; returns the changes. Callers check who may change which fields."""
    values = sent_fields(data, required=NOT_NULL)
    level = values.get("level", institution.level)
    validate_level(level)
    validate_grade(values.get("grade"))
    if "region_code" in values or "level" in values:
        region_fits_level(
            session, values.get("region_code", institution.region_code), level, "region_code"
        )
    if "code" in values and values["code"] != institution.code:
        _ensure_code_free(session, values["code"])
    if level != institution.level:
        check_links_after_level_change(session, institution, level)
    changes = apply_changes(institution, values)
    flush_unique(session, "code")
    return changes


def institution_counts(session: Session, institution_id: int) -> dict[str, int]:
    departments = session.execute(
        select(func.count())
        .select_from(Department)
        .where(Department.institution_id == institution_id, Department.is_active.is_(True))
    ).scalar_one()
    practitioners = session.execute(
        select(func.count(), func.count().filter(Practitioner.is_expert.is_(True)))
        .select_from(Practitioner)
        .where(Practitioner.institution_id == institution_id, Practitioner.is_active.is_(True))
    ).one()
    return {
        "department_count": departments,
        "practitioner_count": practitioners[0],
        "expert_count": practitioners[1],
    }


def _ensure_code_free(session: Session, code: str) -> None:
    taken = session.execute(select(Institution.id).where(Institution.code == code)).first()
    if taken is not None:
        raise Conflict(
            N_("Another institution has this code."), code="institution_code_taken", field="code"
        )

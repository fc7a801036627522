"""The expert library (专家库): profiles, weekly availability and the expert search."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from itertools import pairwise
from typing import Any

from sqlalchemy import Select, case, exists, func, select
from sqlalchemy.orm import Session, selectinload

from xietong.core.clock import now
from xietong.core.errors import N_, Invalid
from xietong.directory.levels import LEVELS
from xietong.directory.models import (
    ExpertAvailability,
    ExpertProfile,
    Institution,
    Practitioner,
    PractitionerSpecialty,
)
from xietong.directory.regions import get_region
from xietong.directory.schemas import AvailabilityWindow, ExpertProfileIn
from xietong.directory.service.common import Paging
from xietong.directory.specialties import validate_specialty

MAX_NAME_QUERY = 64


@dataclass(frozen=True)
class ExpertQuery:
    specialty: str | None = None
    institution_id: int | None = None
    region_code: str | None = None  # the subtree of this region
    q: str | None = None  # a part of the name
    accepting_only: bool = False
    paging: Paging = field(default_factory=Paging)


def set_expert_profile(
    session: Session, practitioner: Practitioner, data: ExpertProfileIn
) -> tuple[ExpertProfile, dict[str, Any]]:
    """Create or replace the public profile; the practitioner joins the expert library."""
    profile = session.get(ExpertProfile, practitioner.id)
    created = profile is None
    if profile is None:
        profile = ExpertProfile(practitioner_id=practitioner.id)
        session.add(profile)
    profile.summary = data.summary
    profile.expertise = data.expertise
    profile.accepts_requests = data.accepts_requests
    profile.updated_at = now()
    joined = not practitioner.is_expert
    practitioner.is_expert = True
    session.flush()
    return profile, {
        "created": created,
        "joined_library": joined,
        "accepts_requests": data.accepts_requests,
    }


def validate_windows(windows: Sequence[AvailabilityWindow]) -> list[AvailabilityWindow]:
    """Each window starts before it ends; windows of the same weekday do not overlap."""
    for index, window in enumerate(windows):
        if window.start >= window.end:
            raise Invalid(
                N_("The end must be later than the start."),
                code="window_empty",
                field=f"windows.{index}.end",
            )
    ordered = sorted(enumerate(windows), key=lambda p: (p[1].weekday, p[1].start))
    for (_, before), (index, after) in pairwise(ordered):
        if before.weekday == after.weekday and after.start < before.end:
            raise Invalid(
                N_("This window overlaps another one on the same day."),
                code="window_overlap",
                field=f"windows.{index}.start",
            )
    return [w for _, w in ordered]


def set_availability(
    session: Session, practitioner: Practitioner, windows: Sequence[AvailabilityWindow]
) -> list[ExpertAvailability]:
    """Replace the expert's weekly windows."""
    ordered = validate_windows(windows)
    practitioner.availability = [
        ExpertAvailability(weekday=w.weekday, start_time=w.start, end_time=w.end) for w in ordered
    ]
    session.flush()
    return list(practitioner.availability)


def _expert_filter(session: Session, query: ExpertQuery) -> Select[Practitioner]:
    stmt = (
        select(Practitioner)
        .join(Institution, Institution.id == Practitioner.institution_id)
        .where(
            Practitioner.is_expert.is_(True),
            Practitioner.is_active.is_(True),
            Institution.is_active.is_(True),
        )
    )
    if query.specialty:
        validate_specialty(query.specialty, field="specialty")
        stmt = stmt.where(
            exists().where(
                PractitionerSpecialty.practitioner_id == Practitioner.id,
                PractitionerSpecialty.specialty == query.specialty,
            )
        )
    if query.institution_id is not None:
        stmt = stmt.where(Practitioner.institution_id == query.institution_id)
    if query.region_code:
        region = get_region(session, query.region_code, field="region")
        stmt = stmt.where(Institution.region_code.startswith(region.prefix, autoescape=True))
    if query.q:
        if len(query.q) > MAX_NAME_QUERY:
            raise Invalid(N_("This value is too long."), code="string_too_long", field="q")
        stmt = stmt.where(Practitioner.name.contains(query.q, autoescape=True))
    if query.accepting_only:
        stmt = stmt.where(
            exists().where(
                ExpertProfile.practitioner_id == Practitioner.id,
                ExpertProfile.accepts_requests.is_(True),
            )
        )
    return stmt


def search_experts(session: Session, query: ExpertQuery) -> tuple[Sequence[Practitioner], int]:
    """Active experts of active institutions; provincial first, then by name. The
    practitioners come with their specialties, profile and availability loaded."""
    stmt = _expert_filter(session, query)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    level_order = case({lv.code: -lv.rank for lv in LEVELS}, value=Institution.level, else_=0)
    rows = (
        session.execute(
            stmt.options(
                selectinload(Practitioner.profile), selectinload(Practitioner.availability)
            )
            .order_by(level_order, Practitioner.name, Practitioner.id)
            .limit(query.paging.limit)
            .offset(query.paging.offset)
        )
        .scalars()
        .all()
    )
    return rows, total

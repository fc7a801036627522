"""Service-centre links (分级协同): who may send work up to whom.

Invariant: the centre of a link sits on a strictly higher level than the applicant
(provincial > city > county > township > village). Checked here on every change, and
again when an institution's level changes.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import and_, func, select
from sqlalchemy.orm import Session, aliased

from xietong.core.errors import N_, Conflict, Invalid, NotFound
from xietong.directory.levels import LEVEL_BY_CODE, is_upward_level
from xietong.directory.models import Institution, ServiceLink
from xietong.directory.service.common import Paging, flush_unique

LEVEL_ORDER = {code: -lv.rank for code, lv in LEVEL_BY_CODE.items()}


def upward_centres(session: Session, institution: Institution) -> list[Institution]:
    """The active institutions this one may send work to, highest level first."""
    rows = (
        session.execute(
            select(Institution)
            .join(ServiceLink, ServiceLink.centre_id == Institution.id)
            .where(ServiceLink.applicant_id == institution.id, Institution.is_active.is_(True))
            .order_by(Institution.id)
        )
        .scalars()
        .all()
    )
    return sorted(rows, key=lambda i: (LEVEL_ORDER.get(i.level, 0), i.id))


def served_institutions(
    session: Session, institution: Institution, paging: Paging | None = None
) -> tuple[Sequence[Institution], int]:
    """The active institutions that send work to this one (a page of them, and how many)."""
    paging = paging or Paging(limit=100)
    stmt = (
        select(Institution)
        .join(ServiceLink, ServiceLink.applicant_id == Institution.id)
        .where(ServiceLink.centre_id == institution.id, Institution.is_active.is_(True))
    )
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = (
        session.execute(
            stmt.order_by(Institution.region_code, Institution.id)
            .limit(paging.limit)
            .offset(paging.offset)
        )
        .scalars()
        .all()
    )
    return rows, total


def is_upward(session: Session, applicant_id: int, centre_id: int) -> bool:
    """May ``applicant_id`` send work to ``centre_id``? (an active link between two active
    institutions; later workflows ask this before accepting a request)."""
    centre = aliased(Institution)
    applicant = aliased(Institution)
    found = session.execute(
        select(ServiceLink.id)
        .join(applicant, applicant.id == ServiceLink.applicant_id)
        .join(centre, centre.id == ServiceLink.centre_id)
        .where(
            and_(
                ServiceLink.applicant_id == applicant_id,
                ServiceLink.centre_id == centre_id,
                applicant.is_active.is_(True),
                centre.is_active.is_(True),
            )
        )
    ).first()
    return found is not None


def add_service_centre(session: Session, applicant: Institution, centre_id: int) -> ServiceLink:
    centre = session.get(Institution, centre_id)
    if centre is None or not centre.is_active:
        raise NotFound(
            N_("No institution has this id."), code="centre_not_found", field="centre_id"
        )
    if not is_upward_level(applicant.level, centre.level):
        raise Invalid(
            N_("A service centre must be on a higher level than the institution it serves."),
            code="centre_not_higher",
            field="centre_id",
        )
    existing = session.execute(
        select(ServiceLink.id).where(
            ServiceLink.applicant_id == applicant.id, ServiceLink.centre_id == centre.id
        )
    ).first()
    if existing is not None:
        raise Conflict(
            N_("This service centre is already linked."), code="link_exists", field="centre_id"
        )
    link = ServiceLink(applicant_id=applicant.id, centre_id=centre.id)
    session.add(link)
    flush_unique(session, "centre_id", code="link_exists")
    return link


def remove_service_centre(session: Session, applicant: Institution, centre_id: int) -> None:
    link = session.execute(
        select(ServiceLink).where(
            ServiceLink.applicant_id == applicant.id, ServiceLink.centre_id == centre_id
        )
    ).scalar_one_or_none()
    if link is None:
        raise NotFound(
            N_("This service centre is not linked."), code="link_not_found", field="centre_id"
        )
    session.delete(link)
    session.flush()


def check_links_after_level_change(
    session: Session, institution: Institution, new_level: str
) -> None:
    """Refuse a level change that would turn an existing link sideways or downwards."""
    centre_levels = session.execute(
        select(Institution.level)
        .join(ServiceLink, ServiceLink.centre_id == Institution.id)
        .where(ServiceLink.applicant_id == institution.id)
    ).scalars()
    applicant_levels = session.execute(
        select(Institution.level)
        .join(ServiceLink, ServiceLink.applicant_id == Institution.id)
        .where(ServiceLink.centre_id == institution.id)
    ).scalars()
    broken = any(not is_upward_level(new_level, lv) for lv in centre_levels) or any(
        not is_upward_level(lv, new_level) for lv in applicant_levels
    )
    if broken:
        raise Invalid(
            N_("Remove the service-centre links that this level would break first."),
            code="level_breaks_links",
            field="level",
        )

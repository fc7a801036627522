"""What the slot use cases share: China-time arithmetic, who works the referral desk of an
institution, opening a template or a slot for the desk (403 for the role, 404 outside the
institution, both audited), and the names shown next to department and practitioner ids.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access.policies import deny_not_found, require_roles
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.directory.lookup import find_institution
from xietong.directory.models import Department, Institution, Practitioner
from xietong.identity.roles import Role
from xietong.records.rules import CHINA_TZ
from xietong.referral.slot_models import Slot, SlotTemplate

# Who publishes an institution's slots: its referral desk (转诊办) and its administrators.
PUBLISHER_ROLES = frozenset({Role.COORDINATOR, Role.INSTITUTION_ADMIN})
# Who books the institution's own patients and sees their names on the calendar.
DESK_ROLES = frozenset({Role.COORDINATOR})


def china_today(moment: datetime | None = None) -> date:
    return (moment or now()).astimezone(CHINA_TZ).date()


def china_instant(day: date, at: time) -> datetime:
    """``at`` on ``day`` in China time, as a UTC instant."""
    return datetime.combine(day, at, tzinfo=CHINA_TZ).astimezone(UTC)


def week_start(day: date) -> date:
    """The Monday of ``day``'s week."""
    return day - timedelta(days=day.weekday())


def kind_set(kinds: Collection[str]) -> frozenset[str]:
    """The slot kinds asked for (a lone string is one kind, not its letters)."""
    return frozenset([kinds] if isinstance(kinds, str) else kinds)


def open_institution(
    session: Session,
    principal: Principal,
    institution_id: int,
    *,
    action: str,
    roles: frozenset[Role] = PUBLISHER_ROLES,
) -> Institution:
    """The principal's own institution, for its desk: 403 without one of ``roles``, 404
    (as if absent) for any other institution."""
    require_roles(
        session,
        principal,
        set(roles),
        action=action,
        object_kind="institution",
        object_id=institution_id,
    )
    institution = find_institution(session, institution_id)
    if institution is None or principal.institution_id != institution.id:
        raise deny_not_found(
            session, principal, action, "institution", institution_id, field="institution_id"
        )
    return institution


def open_template(
    session: Session, principal: Principal, template_id: int, *, action: str
) -> SlotTemplate:
    require_roles(
        session,
        principal,
        set(PUBLISHER_ROLES),
        action=action,
        object_kind="slot_template",
        object_id=template_id,
    )
    template = session.get(SlotTemplate, template_id)
    if template is None or template.institution_id != principal.institution_id:
        raise deny_not_found(
            session, principal, action, "slot_template", template_id, field="template_id"
        )
    return template


def open_slot(
    session: Session,
    principal: Principal,
    slot_id: int,
    *,
    action: str,
    roles: frozenset[Role] = PUBLISHER_ROLES,
) -> Slot:
    require_roles(
        session, principal, set(roles), action=action, object_kind="slot", object_id=slot_id
    )
    slot = session.get(Slot, slot_id, populate_existing=True)
    if slot is None or slot.institution_id != principal.institution_id:
        raise deny_not_found(session, principal, action, "slot", slot_id, field="slot_id")
    return slot


def department_names(session: Session, ids: Iterable[int]) -> dict[int, str]:
    wanted = set(ids)
    if not wanted:
        return {}
    rows = session.execute(select(Department.id, Department.name).where(Department.id.in_(wanted)))
    return {int(i): str(n) for i, n in rows}


def practitioner_names(session: Session, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = {i for i in ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(
        select(Practitioner.id, Practitioner.name).where(Practitioner.id.in_(wanted))
    )
    return {int(i): str(n) for i, n in rows}


def departments_of(session: Session, institution_id: int) -> list[Department]:
    """The institution's active departments, by name (the forms' and filter's choices)."""
    return list(
        session.execute(
            select(Department)
            .where(Department.institution_id == institution_id, Department.is_active.is_(True))
            .order_by(Department.name, Department.id)
        ).scalars()
    )


def practitioners_of(session: Session, institution_id: int) -> list[Practitioner]:
    """The institution's active practitioners, experts first, then by name."""
    return list(
        session.execute(
            select(Practitioner)
            .where(
                Practitioner.institution_id == institution_id,
                Practitioner.is_active.is_(True),
            )
            .order_by(Practitioner.is_expert.desc(), Practitioner.name, Practitioner.id)
        ).scalars()
    )

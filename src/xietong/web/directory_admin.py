"""Directory changes as the edge performs them: authorise, change, audit — one call each.

The JSON API and the pages both call these, so that a change is refused, made and
recorded the same way whichever door it comes through. Refusals go through
:mod:`xietong.access.policies` (403 without an admin role, 404 for another institution,
each audited durably); every change writes its audit row in the same transaction.
"""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import (
    access_institution_for_admin,
    can_administer_institution,
    deny_not_found,
    require_platform_admin,
    require_roles,
)
from xietong.access.principal import Principal
from xietong.core.errors import N_, Forbidden
from xietong.directory import service as svc
from xietong.directory.models import (
    Department,
    ExpertProfile,
    Institution,
    Practitioner,
    ServiceLink,
)
from xietong.directory.schemas import (
    AvailabilityWindow,
    DepartmentCreateIn,
    DepartmentUpdateIn,
    ExpertProfileIn,
    InstitutionCreateIn,
    InstitutionUpdateIn,
    PractitionerCreateIn,
    PractitionerUpdateIn,
)
from xietong.identity.roles import Role

ADMINS = {Role.PLATFORM_ADMIN, Role.INSTITUTION_ADMIN}


def may_administer(principal: Principal, institution: Institution) -> bool:
    """For pages: whether to show the admin forms (the actions check again)."""
    return can_administer_institution(principal, institution)


# Institutions -----------------------------------------------------------------------------


def create_institution(
    session: Session, principal: Principal, data: InstitutionCreateIn
) -> Institution:
    require_platform_admin(
        session, principal, action="institution.create", object_kind="institution"
    )
    institution = svc.create_institution(session, data)
    audit.record(
        session,
        principal,
        "institution.create",
        object_kind="institution",
        object_id=institution.id,
        detail=data.model_dump(),
    )
    return institution


def update_institution(
    session: Session, principal: Principal, institution_id: int, data: InstitutionUpdateIn
) -> Institution:
    action = "institution.update"
    institution = access_institution_for_admin(session, principal, institution_id, action=action)
    restricted = sorted(svc.PLATFORM_FIELDS & data.model_fields_set)
    if restricted and not principal.is_platform_admin:
        audit.record_denial(
            session, principal, action, "institution", institution_id, reason="field"
        )
        raise Forbidden(
            N_("Only a platform admin may change this field."),
            code="platform_admin_field",
            field=restricted[0],
        )
    changes = svc.update_institution(session, institution, data)
    _record_change(session, principal, action, "institution", institution.id, changes)
    return institution


def add_service_centre(
    session: Session, principal: Principal, institution_id: int, centre_id: int
) -> ServiceLink:
    action = "service_link.create"
    applicant = access_institution_for_admin(session, principal, institution_id, action=action)
    link = svc.add_service_centre(session, applicant, centre_id)
    audit.record(
        session,
        principal,
        action,
        object_kind="institution",
        object_id=applicant.id,
        detail={"centre_id": centre_id},
    )
    return link


def remove_service_centre(
    session: Session, principal: Principal, institution_id: int, centre_id: int
) -> None:
    action = "service_link.delete"
    applicant = access_institution_for_admin(session, principal, institution_id, action=action)
    svc.remove_service_centre(session, applicant, centre_id)
    audit.record(
        session,
        principal,
        action,
        object_kind="institution",
        object_id=applicant.id,
        detail={"centre_id": centre_id},
    )


# Departments ------------------------------------------------------------------------------


def create_department(
    session: Session, principal: Principal, institution_id: int, data: DepartmentCreateIn
) -> Department:
    action = "department.create"
    institution = access_institution_for_admin(session, principal, institution_id, action=action)
    department = svc.create_department(session, institution, data)
    audit.record(
        session,
        principal,
        action,
        object_kind="department",
        object_id=department.id,
        detail={"institution_id": institution.id, **data.model_dump()},
    )
    return department


def update_department(
    session: Session, principal: Principal, department_id: int, data: DepartmentUpdateIn
) -> Department:
    action = "department.update"
    department = department_for_admin(session, principal, department_id, action=action)
    changes = svc.update_department(session, department, data)
    _record_change(session, principal, action, "department", department.id, changes)
    return department


def department_for_admin(
    session: Session, principal: Principal, department_id: int, *, action: str
) -> Department:
    return _staff_object_for_admin(
        session, principal, Department, "department", department_id, action=action
    )


# Practitioners and the expert library -----------------------------------------------------


def create_practitioner(
    session: Session, principal: Principal, institution_id: int, data: PractitionerCreateIn
) -> Practitioner:
    action = "practitioner.create"
    institution = access_institution_for_admin(session, principal, institution_id, action=action)
    practitioner = svc.create_practitioner(session, institution, data)
    audit.record(
        session,
        principal,
        action,
        object_kind="practitioner",
        object_id=practitioner.id,
        detail={"institution_id": institution.id, **data.model_dump()},
    )
    return practitioner


def update_practitioner(
    session: Session, principal: Principal, practitioner_id: int, data: PractitionerUpdateIn
) -> Practitioner:
    action = "practitioner.update"
    practitioner = practitioner_for_admin(session, principal, practitioner_id, action=action)
    changes = svc.update_practitioner(session, practitioner, data)
    _record_change(session, principal, action, "practitioner", practitioner.id, changes)
    return practitioner


def set_expert_profile(
    session: Session, principal: Principal, practitioner_id: int, data: ExpertProfileIn
) -> ExpertProfile:
    action = "expert_profile.update"
    practitioner = practitioner_for_admin(session, principal, practitioner_id, action=action)
    profile, facts = svc.set_expert_profile(session, practitioner, data)
    audit.record(
        session,
        principal,
        action,
        object_kind="practitioner",
        object_id=practitioner.id,
        detail=facts,
    )
    return profile


def set_availability(
    session: Session,
    principal: Principal,
    practitioner_id: int,
    windows: list[AvailabilityWindow],
) -> Practitioner:
    action = "expert_availability.update"
    practitioner = practitioner_for_admin(session, principal, practitioner_id, action=action)
    svc.set_availability(session, practitioner, windows)
    audit.record(
        session,
        principal,
        action,
        object_kind="practitioner",
        object_id=practitioner.id,
        detail={"windows": [w.model_dump(mode="json") for w in windows]},
    )
    return practitioner


def practitioner_for_admin(
    session: Session, principal: Principal, practitioner_id: int, *, action: str
) -> Practitioner:
    return _staff_object_for_admin(
        session, principal, Practitioner, "practitioner", practitioner_id, action=action
    )


_Staff = TypeVar("_Staff", Department, Practitioner)


def _staff_object_for_admin(
    session: Session,
    principal: Principal,
    model: type[_Staff],
    kind: str,
    object_id: int,
    *,
    action: str,
) -> _Staff:
    """A department or practitioner of an institution the principal administers:
    403 without an admin role, 404 (audited) for another institution's or an absent one."""
    require_roles(session, principal, ADMINS, action=action, object_kind=kind, object_id=object_id)
    found = session.get(model, object_id)
    institution = session.get(Institution, found.institution_id) if found is not None else None
    if (
        found is None
        or institution is None
        or not can_administer_institution(principal, institution)
    ):
        raise deny_not_found(session, principal, action, kind, object_id)
    return found


def _record_change(
    session: Session,
    principal: Principal,
    action: str,
    kind: str,
    object_id: int,
    changes: dict[str, list[Any]],
) -> None:
    audit.record(session, principal, action, object_kind=kind, object_id=object_id, detail=changes)

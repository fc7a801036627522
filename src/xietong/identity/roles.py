"""The roles of the platform and what they are called."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum

from xietong.core.errors import N_, Invalid


class Role(StrEnum):
    APPLICANT_DOCTOR = "applicant_doctor"
    EXPERT = "expert"
    RADIOLOGIST = "radiologist"
    COORDINATOR = "coordinator"
    INSTITUTION_ADMIN = "institution_admin"
    AUTHORITY = "authority"
    LEARNER = "learner"
    TEACHER = "teacher"
    PLATFORM_ADMIN = "platform_admin"
    AUDIT_ADMIN = "audit_admin"


ROLE_LABELS: dict[Role, str] = {
    Role.APPLICANT_DOCTOR: N_("Applicant doctor"),
    Role.EXPERT: N_("Expert"),
    Role.RADIOLOGIST: N_("Radiologist"),
    Role.COORDINATOR: N_("Coordinator"),
    Role.INSTITUTION_ADMIN: N_("Institution admin"),
    Role.AUTHORITY: N_("Health authority"),
    Role.LEARNER: N_("Learner"),
    Role.TEACHER: N_("Teacher"),
    Role.PLATFORM_ADMIN: N_("Platform admin"),
    Role.AUDIT_ADMIN: N_("Audit admin"),
}

ADMIN_ROLES = frozenset({Role.INSTITUTION_ADMIN, Role.PLATFORM_ADMIN, Role.AUDIT_ADMIN})
# Roles that act for an institution and therefore need one.
INSTITUTION_ROLES = frozenset(
    {
        Role.APPLICANT_DOCTOR,
        Role.EXPERT,
        Role.RADIOLOGIST,
        Role.COORDINATOR,
        Role.INSTITUTION_ADMIN,
    }
)

# Separation of duties (三员分立): the audit admin is nobody's system or security admin.
EXCLUSIVE_WITH_AUDIT_ADMIN = frozenset({Role.PLATFORM_ADMIN, Role.INSTITUTION_ADMIN})


def check_role_combination(roles: Iterable[Role | str]) -> None:
    """Raise :class:`Invalid` naming ``roles`` when one account would hold both the audit
    admin role and a role that administers accounts."""
    held = {str(r) for r in roles}
    if Role.AUDIT_ADMIN in held and held & EXCLUSIVE_WITH_AUDIT_ADMIN:
        raise Invalid(
            N_("The audit admin role cannot be combined with an administrator role."),
            code="roles_conflict",
            field="roles",
        )

"""Who may act on what: role checks and institution / jurisdiction scopes.

Every refusal is audited (durably: it survives the rollback of the refused request).
Rule: a user who lacks the *role* gets 403; an admin whose *scope* does not cover the
object gets 404, exactly as if it did not exist, so that ids of other tenants leak nothing.
"""

from __future__ import annotations

from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.core.errors import Forbidden, NotFound
from xietong.directory.lookup import find_institution
from xietong.directory.models import Institution
from xietong.identity.models import User
from xietong.identity.roles import Role


def require_roles(
    session: Session,
    principal: Principal,
    roles: set[Role],
    *,
    action: str,
    object_kind: str = "",
    object_id: str | int = "",
) -> None:
    if principal.roles.intersection(str(r) for r in roles):
        return
    audit.record_denial(session, principal, action, object_kind, object_id, reason="role")
    raise Forbidden(field=None)


def deny_not_found(
    session: Session,
    principal: Principal,
    action: str,
    object_kind: str,
    object_id: str | int,
    *,
    field: str | None = None,
) -> NotFound:
    audit.record_denial(session, principal, action, object_kind, object_id, reason="scope")
    return NotFound(code=f"{object_kind}_not_found", field=field)


def in_jurisdiction(principal: Principal, region_code: str) -> bool:
    prefix = principal.jurisdiction_prefix
    return prefix is not None and region_code.startswith(prefix)


def can_administer_institution(principal: Principal, institution: Institution) -> bool:
    if principal.is_platform_admin:
        return True
    return principal.has(Role.INSTITUTION_ADMIN) and principal.institution_id == institution.id


def access_institution_for_admin(
    session: Session,
    principal: Principal,
    institution_id: int,
    *,
    action: str,
    field: str | None = None,
) -> Institution:
    """The institution, if the principal administers it: 403 without an admin role,
    404 for another institution (or none)."""
    require_roles(
        session,
        principal,
        {Role.PLATFORM_ADMIN, Role.INSTITUTION_ADMIN},
        action=action,
        object_kind="institution",
        object_id=institution_id,
    )
    institution = find_institution(session, institution_id)
    if institution is None or not can_administer_institution(principal, institution):
        raise deny_not_found(session, principal, action, "institution", institution_id, field=field)
    return institution


def access_user_for_admin(
    session: Session, principal: Principal, user_id: int, *, action: str
) -> User:
    require_roles(
        session,
        principal,
        {Role.PLATFORM_ADMIN, Role.INSTITUTION_ADMIN},
        action=action,
        object_kind="user",
        object_id=user_id,
    )
    user = session.get(User, user_id)
    allowed = user is not None and (
        principal.is_platform_admin
        or (user.institution_id is not None and user.institution_id == principal.institution_id)
    )
    if user is None or not allowed:
        raise deny_not_found(session, principal, action, "user", user_id)
    return user


def require_platform_admin(
    session: Session,
    principal: Principal,
    *,
    action: str,
    object_kind: str = "",
    object_id: str | int = "",
) -> None:
    require_roles(
        session,
        principal,
        {Role.PLATFORM_ADMIN},
        action=action,
        object_kind=object_kind,
        object_id=object_id,
    )


def require_audit_reader(session: Session, principal: Principal, *, action: str) -> None:
    """The audit log is read by the audit admin (三员分立) and the platform admin."""
    require_roles(
        session,
        principal,
        {Role.AUDIT_ADMIN, Role.PLATFORM_ADMIN},
        action=action,
        object_kind="audit",
    )

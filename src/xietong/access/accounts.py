"""Account administration: who may list, create, change, unlock and reset which accounts.

- The platform admin administers every account; an institution admin only the accounts of
  their own institution (others: 404, as if absent), and may neither grant nor touch the
  platform-wide roles (platform admin, audit admin, health authority): 403.
- The audit admin reads the audit log and administers nothing (三员分立): 403 here.
- Nobody locks themselves out: an admin cannot deactivate their own account, drop their own
  admin role, or reset their own password or second factor here (the account pages do that).
- Every change is audited in the same transaction with what changed before and after; a
  password never appears in the log. Every refusal is audited durably.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import false, func, or_, select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import (
    access_institution_for_admin,
    access_user_for_admin,
    require_roles,
)
from xietong.access.principal import Principal
from xietong.config import SecuritySettings
from xietong.core.errors import N_, Conflict, Forbidden, Invalid
from xietong.directory.lookup import find_region
from xietong.directory.models import Institution, Practitioner
from xietong.identity import service as identity
from xietong.identity.models import User, UserRole
from xietong.identity.roles import INSTITUTION_ROLES, Role, check_role_combination
from xietong.identity.schemas import UserCreateIn, UserUpdateIn

USER_ADMINS = {Role.PLATFORM_ADMIN, Role.INSTITUTION_ADMIN}
# Roles an institution admin may not grant, remove, or administer the holders of.
PLATFORM_WIDE_ROLES = frozenset({Role.PLATFORM_ADMIN, Role.AUDIT_ADMIN, Role.AUTHORITY})
GRANTABLE_BY_INSTITUTION_ADMIN = frozenset(Role) - PLATFORM_WIDE_ROLES
SNAPSHOT_FIELDS = (
    "username",
    "display_name",
    "roles",
    "institution_id",
    "practitioner_id",
    "jurisdiction_code",
    "is_active",
)


def grantable_roles(principal: Principal) -> list[Role]:
    """The roles this admin may give (what the create and edit forms offer)."""
    if principal.is_platform_admin:
        return list(Role)
    if principal.has(Role.INSTITUTION_ADMIN):
        return [r for r in Role if r in GRANTABLE_BY_INSTITUTION_ADMIN]
    return []


def snapshot(user: User) -> dict[str, Any]:
    """What the audit log records of an account (never its password or second factor)."""
    return {
        "username": user.username,
        "display_name": user.display_name,
        "roles": user.role_names,
        "institution_id": user.institution_id,
        "practitioner_id": user.practitioner_id,
        "jurisdiction_code": user.jurisdiction_code,
        "is_active": user.is_active,
    }


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, dict[str, Any]]:
    changed = [k for k in SNAPSHOT_FIELDS if before.get(k) != after.get(k)]
    return {
        "before": {k: before.get(k) for k in changed},
        "after": {k: after.get(k) for k in changed},
    }


# Reading --------------------------------------------------------------------------------


@dataclass(frozen=True)
class UserFilter:
    institution_id: int | None = None
    role: str | None = None
    q: str | None = None
    limit: int = 50
    offset: int = 0


def require_user_admin(session: Session, principal: Principal, *, action: str) -> None:
    """403 (audited) for anyone who administers no accounts, the audit admin included."""
    require_roles(session, principal, USER_ADMINS, action=action, object_kind="user")


def list_users(session: Session, principal: Principal, f: UserFilter) -> tuple[Sequence[User], int]:
    """The accounts this admin administers; totals never count anyone else's."""
    require_user_admin(session, principal, action="user.list")
    stmt = select(User)
    if f.institution_id is not None:
        access_institution_for_admin(
            session, principal, f.institution_id, action="user.list", field="institution_id"
        )
        stmt = stmt.where(User.institution_id == f.institution_id)
    if not principal.is_platform_admin:
        own = principal.institution_id
        stmt = stmt.where(User.institution_id == own) if own is not None else stmt.where(false())
    if f.role:
        stmt = stmt.where(User.roles.any(UserRole.role == f.role))
    if f.q:
        needle = f.q.strip().lower()
        stmt = stmt.where(
            or_(
                User.username.contains(needle, autoescape=True),
                func.lower(User.display_name).contains(needle, autoescape=True),
            )
        )
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = session.execute(stmt.order_by(User.id).limit(f.limit).offset(f.offset)).scalars()
    return rows.all(), total


def get_user(session: Session, principal: Principal, user_id: int) -> User:
    return access_user_for_admin(session, principal, user_id, action="user.read")


def institution_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Institution.id, Institution.name).where(Institution.id.in_(ids)))
    return {row.id: row.name for row in rows}


def administrable_institutions(session: Session, principal: Principal) -> Sequence[Institution]:
    """Institutions the create form offers (the own one for an institution admin)."""
    stmt = select(Institution).where(Institution.is_active.is_(True)).order_by(Institution.name)
    if not principal.is_platform_admin:
        if principal.institution_id is None:
            return []
        stmt = stmt.where(Institution.id == principal.institution_id)
    return session.execute(stmt.limit(500)).scalars().all()


# Checks ---------------------------------------------------------------------------------


def _deny(
    session: Session,
    principal: Principal,
    action: str,
    object_id: str | int,
    *,
    reason: str,
    field: str | None = None,
) -> Forbidden:
    audit.record_denial(session, principal, action, "user", object_id, reason=reason)
    return Forbidden(code=reason, field=field)


def _check_grants(
    session: Session, principal: Principal, roles: set[str], action: str, object_id: str | int
) -> None:
    if principal.is_platform_admin:
        return
    if roles - GRANTABLE_BY_INSTITUTION_ADMIN:
        raise _deny(
            session, principal, action, object_id, reason="role_not_grantable", field="roles"
        )


def _access_for_change(session: Session, principal: Principal, user_id: int, action: str) -> User:
    """The account, if this admin may change it: 404 outside their scope, 403 when an
    institution admin aims at the holder of a platform-wide role."""
    user = access_user_for_admin(session, principal, user_id, action=action)
    if not principal.is_platform_admin and set(user.role_names) & PLATFORM_WIDE_ROLES:
        raise _deny(session, principal, action, user.id, reason="target_privileged")
    return user


def _refuse_self(principal: Principal, user: User, field: str) -> None:
    if user.id == principal.user_id:
        raise Conflict(
            N_("Change your own account on the account page."), code="self_change", field=field
        )


def _check_shape(
    session: Session,
    roles: set[str],
    *,
    institution_id: int | None,
    jurisdiction_code: str | None,
) -> None:
    """An account's roles must fit its institution and jurisdiction."""
    check_role_combination(roles)
    if roles & INSTITUTION_ROLES and institution_id is None:
        raise Invalid(
            N_("These roles need an institution."),
            code="institution_required",
            field="institution_id",
        )
    if Role.AUTHORITY in roles:
        if not jurisdiction_code:
            raise Invalid(
                N_("A health authority needs a jurisdiction."),
                code="jurisdiction_required",
                field="jurisdiction_code",
            )
        if find_region(session, jurisdiction_code) is None:
            raise Invalid(
                N_("No region has this code."),
                code="region_not_found",
                field="jurisdiction_code",
            )
    elif jurisdiction_code:
        raise Invalid(
            N_("Only a health authority has a jurisdiction."),
            code="jurisdiction_not_allowed",
            field="jurisdiction_code",
        )


def _check_practitioner(
    session: Session, practitioner_id: int | None, institution_id: int | None
) -> None:
    if practitioner_id is None:
        return
    practitioner = session.get(Practitioner, practitioner_id)
    if practitioner is None or practitioner.institution_id != institution_id:
        raise Invalid(
            N_("This practitioner does not work at the account's institution."),
            code="practitioner_invalid",
            field="practitioner_id",
        )
    taken = session.execute(
        select(User.id).where(User.practitioner_id == practitioner_id)
    ).scalar_one_or_none()
    if taken is not None:
        raise Conflict(
            N_("This practitioner already has an account."),
            code="practitioner_taken",
            field="practitioner_id",
        )


# Changes --------------------------------------------------------------------------------


def create_user(
    session: Session, principal: Principal, data: UserCreateIn, policy: SecuritySettings
) -> User:
    action = "user.create"
    require_user_admin(session, principal, action=action)
    roles = {str(r) for r in data.roles}
    _check_grants(session, principal, roles, action, "")
    institution_id = data.institution_id
    if institution_id is None and not principal.is_platform_admin:
        institution_id = principal.institution_id
    if institution_id is not None:
        access_institution_for_admin(
            session, principal, institution_id, action=action, field="institution_id"
        )
    _check_shape(
        session, roles, institution_id=institution_id, jurisdiction_code=data.jurisdiction_code
    )
    _check_practitioner(session, data.practitioner_id, institution_id)
    user = identity.create_user(
        session,
        username=data.username,
        password=data.password,
        display_name=data.display_name,
        roles=sorted(roles),
        policy=policy,
        institution_id=institution_id,
        practitioner_id=data.practitioner_id,
        jurisdiction_code=data.jurisdiction_code,
    )
    audit.record(
        session,
        principal,
        action,
        object_kind="user",
        object_id=user.id,
        detail={"after": snapshot(user)},
    )
    return user


def update_user(session: Session, principal: Principal, user_id: int, data: UserUpdateIn) -> User:
    action = "user.update"
    user = _access_for_change(session, principal, user_id, action)
    before = snapshot(user)
    old_roles = set(user.role_names)
    new_roles = {str(r) for r in data.roles} if data.roles is not None else old_roles
    _check_grants(session, principal, old_roles ^ new_roles, action, user.id)
    if user.id == principal.user_id:
        if data.is_active is False:
            raise Conflict(
                N_("You cannot deactivate your own account."),
                code="self_lockout",
                field="is_active",
            )
        if (old_roles & {str(r) for r in USER_ADMINS}) - new_roles:
            raise Conflict(
                N_("You cannot remove your own administrator role."),
                code="self_lockout",
                field="roles",
            )
    jurisdiction = (
        data.jurisdiction_code
        if "jurisdiction_code" in data.model_fields_set
        else (user.jurisdiction_code if Role.AUTHORITY in new_roles else None)
    )
    if new_roles != old_roles or jurisdiction != user.jurisdiction_code:
        # Only when they change: a legacy account (say, from the CLI) can still be renamed
        # or deactivated.
        _check_shape(
            session, new_roles, institution_id=user.institution_id, jurisdiction_code=jurisdiction
        )
    if data.display_name is not None:
        user.display_name = data.display_name
    if new_roles != old_roles:
        identity.set_roles(session, user, new_roles)
    user.jurisdiction_code = jurisdiction
    if data.is_active is not None and data.is_active != user.is_active:
        user.is_active = data.is_active
        if not data.is_active:
            identity.revoke_all_sessions(session, user.id)
    session.flush()
    change = _changes(before, snapshot(user))
    if change["after"]:
        audit.record(
            session, principal, action, object_kind="user", object_id=user.id, detail=change
        )
    return user


def unlock_user(session: Session, principal: Principal, user_id: int) -> User:
    action = "user.unlock"
    user = _access_for_change(session, principal, user_id, action)
    before = {"locked_until": user.locked_until, "failed_logins": user.failed_logins}
    identity.unlock(session, user)
    audit.record(
        session,
        principal,
        action,
        object_kind="user",
        object_id=user.id,
        detail={"before": before, "after": {"locked_until": None, "failed_logins": 0}},
    )
    return user


def reset_password(
    session: Session,
    principal: Principal,
    user_id: int,
    new_password: str,
    policy: SecuritySettings,
) -> User:
    """Set a temporary password the user must change at next sign-in; end their sessions."""
    action = "user.password_reset"
    user = _access_for_change(session, principal, user_id, action)
    _refuse_self(principal, user, "new_password")
    identity.set_password(session, user, new_password, policy, field="new_password")
    user.must_change_password = True
    identity.revoke_all_sessions(session, user.id)
    session.flush()
    audit.record(
        session,
        principal,
        action,
        object_kind="user",
        object_id=user.id,
        detail={"must_change_password": True, "sessions_revoked": True},
    )
    return user


def reset_totp(session: Session, principal: Principal, user_id: int) -> User:
    """Remove the second factor (lost device); the user enrols again at next sign-in."""
    action = "user.totp_reset"
    user = _access_for_change(session, principal, user_id, action)
    _refuse_self(principal, user, "otp")
    before = user.totp_enabled
    identity.reset_totp(session, user)
    identity.revoke_all_sessions(session, user.id)
    audit.record(
        session,
        principal,
        action,
        object_kind="user",
        object_id=user.id,
        detail={
            "before": {"totp_enabled": before},
            "after": {"totp_enabled": False},
            "sessions_revoked": True,
        },
    )
    return user

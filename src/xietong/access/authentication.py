"""Login, logout and the principal behind a session; every outcome is audited."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.models import AuditEvent
from xietong.access.principal import Principal
from xietong.config import SecuritySettings
from xietong.core.clock import now
from xietong.core.errors import N_, Forbidden, Locked, TooManyRequests, Unauthorized
from xietong.core.events import on_rollback_durable
from xietong.directory.lookup import find_institution, region_prefix
from xietong.identity import service as identity
from xietong.identity.models import User
from xietong.identity.roles import ADMIN_ROLES


@dataclass(frozen=True)
class LoginResult:
    user: User
    principal: Principal
    token: str
    mfa_pending: bool
    password_expired: bool
    totp_enrolment_required: bool = False


def principal_for(
    session: Session, user: User, *, client_address: str = "", session_kind: str = ""
) -> Principal:
    region_code: str | None = None
    if user.institution_id is not None:
        institution = find_institution(session, user.institution_id)
        region_code = institution.region_code if institution else None
    return Principal(
        user_id=user.id,
        username=user.username,
        roles=frozenset(user.role_names),
        institution_id=user.institution_id,
        institution_region_code=region_code,
        jurisdiction_code=user.jurisdiction_code,
        jurisdiction_prefix=region_prefix(session, user.jurisdiction_code),
        client_address=client_address,
        display_name=user.display_name,
        locale=user.locale,
        session_kind=session_kind,
        totp_enabled=user.totp_enabled,
    )


def _anonymous(username: str, client_address: str) -> Principal:
    return Principal(
        user_id=None, username=username[:64], roles=frozenset(), client_address=client_address
    )


def login(
    session: Session,
    *,
    username: str,
    password: str,
    otp: str | None,
    kind: str,
    policy: SecuritySettings,
    client_address: str,
) -> LoginResult:
    """Check credentials and open a session (cookie) or a token (bearer).

    Cookie logins of accounts with a second factor open an ``mfa_pending`` session that the
    TOTP page completes; bearer logins must send the code with the password.
    """
    if client_address and _address_throttled(session, client_address, policy):
        audit.record_durable(
            session,
            _anonymous(username, client_address),
            "auth.login",
            outcome="failed",
            detail={"reason": "address_throttled"},
        )
        raise TooManyRequests(field="username")
    check = identity.check_credentials(
        session, username, password, otp if kind == "bearer" else None, policy
    )
    user = check.user
    who = (
        principal_for(session, user, client_address=client_address)
        if user
        else _anonymous(username, client_address)
    )
    outcome = check.outcome
    if outcome == "otp_required" and kind == "cookie":
        outcome = "ok_mfa_pending"
    if outcome not in ("ok", "ok_mfa_pending"):
        # Written so that it survives the rollback of this refused request.
        audit.record_durable(
            session,
            who,
            "auth.login",
            object_kind="user",
            object_id=user.id if user else "",
            outcome="failed",
            detail={"reason": outcome},
        )
        if user is not None:
            _keep_counter(session, user)
        _raise_for(outcome)
    if user is None:  # unreachable: only a found user can pass the checks above
        raise Unauthorized()
    needs_enrolment = needs_totp_enrolment(who, policy)
    token = identity.open_session(
        session,
        user,
        kind=kind,
        policy=policy,
        client_address=client_address,
        mfa_pending=outcome == "ok_mfa_pending",
    )
    audit.record(
        session,
        who,
        "auth.login",
        object_kind="user",
        object_id=user.id,
        detail={
            "kind": kind,
            "mfa_pending": outcome == "ok_mfa_pending",
            "totp_enrolment_required": needs_enrolment,
        },
    )
    return LoginResult(
        user=user,
        principal=who,
        token=token,
        mfa_pending=outcome == "ok_mfa_pending",
        password_expired=check.password_expired,
        totp_enrolment_required=needs_enrolment,
    )


def needs_totp_enrolment(principal: Principal, policy: SecuritySettings) -> bool:
    """An admin who must enrol a second factor before using admin functions."""
    return (
        policy.require_totp_for_admins
        and bool(principal.roles & {str(r) for r in ADMIN_ROLES})
        and not principal.totp_enabled
    )


def _address_throttled(session: Session, client_address: str, policy: SecuritySettings) -> bool:
    """Per-address throttling, counted from the audit log's failed logins."""
    since = now() - timedelta(minutes=policy.lockout_minutes)
    failed = session.execute(
        select(func.count())
        .select_from(AuditEvent)
        .where(
            AuditEvent.action == "auth.login",
            AuditEvent.outcome == "failed",
            AuditEvent.client_address == client_address,
            AuditEvent.at >= since,
        )
    ).scalar_one()
    return bool(failed >= policy.max_failed_logins_per_address)


def _keep_counter(session: Session, user: User) -> None:
    """The failure counter and lock must also survive the rollback."""
    failed, locked_until, last_step = user.failed_logins, user.locked_until, user.totp_last_step
    user_id = user.id

    def rewrite(s: Session) -> None:
        fresh = s.get(User, user_id)
        if fresh is not None:
            fresh.failed_logins = failed
            fresh.locked_until = locked_until
            fresh.totp_last_step = last_step

    on_rollback_durable(session, rewrite)


def _raise_for(outcome: str) -> None:
    if outcome == "locked":
        raise Locked(field="username")
    if outcome == "inactive":
        raise Forbidden(N_("This account is disabled."), code="account_disabled", field="username")
    if outcome == "otp_required":
        raise Unauthorized(
            N_("Enter the code from your authenticator app."), code="otp_required", field="otp"
        )
    if outcome == "bad_otp":
        raise Unauthorized(N_("The code is not correct."), code="otp_invalid", field="otp")
    raise Unauthorized(
        N_("The username or password is not correct."), code="bad_credentials", field="password"
    )


def complete_second_factor(
    session: Session, token: str, code: str, policy: SecuritySettings, client_address: str
) -> None:
    found = identity.resolve_session(session, token, kind="cookie", policy=policy)
    if found is None:
        raise Unauthorized()
    row, user = found
    who = principal_for(session, user, client_address=client_address)
    if identity.is_locked(user):
        # Without this, a locked account could go on guessing codes on this page.
        audit.record_durable(
            session,
            who,
            "auth.otp",
            object_kind="user",
            object_id=user.id,
            outcome="failed",
            detail={"reason": "locked"},
        )
        raise Locked(field="otp")
    if not identity.verify_totp(user, code):
        identity._count_failure(session, user, policy)
        audit.record_durable(
            session, who, "auth.otp", object_kind="user", object_id=user.id, outcome="failed"
        )
        _keep_counter(session, user)
        raise Unauthorized(N_("The code is not correct."), code="otp_invalid", field="otp")
    row.mfa_pending = False
    audit.record(session, who, "auth.otp", object_kind="user", object_id=user.id)


def logout(session: Session, principal: Principal, token: str) -> None:
    identity.revoke_session(session, token)
    audit.record(
        session, principal, "auth.logout", object_kind="user", object_id=principal.user_id or ""
    )

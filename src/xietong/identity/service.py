"""Accounts: credentials, lockout, sessions and tokens, second factor.

Auditing is the caller's job (``xietong.access.authentication``): identity knows accounts,
not who may see what.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

import pyotp
from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xietong.config import SecuritySettings
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Invalid, NotFound
from xietong.core.security import (
    DUMMY_HASH,
    hash_password,
    new_token,
    password_needs_rehash,
    token_digest,
    verify_password,
)
from xietong.core.validation import has_control_characters
from xietong.identity.models import AuthSession, User, UserRole
from xietong.identity.passwords import check_password_policy, password_expired
from xietong.identity.roles import Role, check_role_combination
from xietong.identity.schemas import USERNAME_PATTERN


@dataclass(frozen=True)
class CredentialCheck:
    """What a login attempt found; the caller audits and answers."""

    user: User | None
    outcome: str  # ok | bad_credentials | locked | inactive | otp_required | bad_otp
    password_expired: bool = False


def get_user(session: Session, user_id: int) -> User:
    user = session.get(User, user_id)
    if user is None:
        raise NotFound(code="user_not_found")
    return user


def display_names(session: Session, user_ids: Iterable[int | None]) -> dict[int, str]:
    """The display names of the users by id (who did a step, shown in a history)."""
    wanted = {i for i in user_ids if i is not None}
    if not wanted:
        return {}
    rows = session.execute(select(User.id, User.display_name).where(User.id.in_(wanted)))
    return {int(i): str(n) for i, n in rows}


def find_user(session: Session, username: str) -> User | None:
    name = username.strip().lower()
    if not name or len(name) > 64 or has_control_characters(name):
        return None  # no such account can exist; PostgreSQL would refuse a NUL anyway
    return session.execute(select(User).where(User.username == name)).scalar_one_or_none()


def check_credentials(
    session: Session,
    username: str,
    password: str,
    otp: str | None,
    policy: SecuritySettings,
) -> CredentialCheck:
    """Verify a password (and TOTP when the account has one), keeping the lockout counter.

    The counter is updated with a single UPDATE so parallel attempts cannot lose counts.
    """
    user = find_user(session, username)
    at = now()
    if user is None:
        verify_password(DUMMY_HASH, password)  # same cost as a real check
        return CredentialCheck(None, "bad_credentials")
    if user.locked_until is not None and user.locked_until > at:
        return CredentialCheck(user, "locked")
    if not verify_password(user.password_hash, password):
        _count_failure(session, user, policy)
        return CredentialCheck(user, "locked" if _is_locked(user) else "bad_credentials")
    if not user.is_active:
        return CredentialCheck(user, "inactive")
    if user.totp_enabled:
        if not otp:
            return CredentialCheck(user, "otp_required")
        if not verify_totp(user, otp):
            _count_failure(session, user, policy)
            return CredentialCheck(user, "locked" if _is_locked(user) else "bad_otp")
    user.failed_logins = 0
    user.locked_until = None
    user.last_login_at = at
    if password_needs_rehash(user.password_hash):
        user.password_hash = hash_password(password)
    expired = user.must_change_password or password_expired(
        user.password_changed_at, max_age_days=policy.password_max_age_days, at=at
    )
    session.flush()
    return CredentialCheck(user, "ok", password_expired=expired)


def _is_locked(user: User) -> bool:
    return is_locked(user)


def is_locked(user: User, at: datetime | None = None) -> bool:
    return user.locked_until is not None and user.locked_until > (at or now())


def _count_failure(session: Session, user: User, policy: SecuritySettings) -> None:
    session.execute(
        update(User).where(User.id == user.id).values(failed_logins=User.failed_logins + 1)
    )
    session.refresh(user, ["failed_logins"])
    if user.failed_logins >= policy.max_failed_logins:
        user.locked_until = now() + timedelta(minutes=policy.lockout_minutes)
        user.failed_logins = 0
    session.flush()


def totp_for(user: User) -> pyotp.TOTP:
    if not user.totp_secret:
        raise Conflict(N_("No second factor is set up."), code="totp_not_set", field="otp")
    return pyotp.TOTP(user.totp_secret)


def verify_totp(user: User, code: str) -> bool:
    """Accept the current step (±1 for clock drift), and each step only once."""
    code = code.strip()
    if not (code.isdigit() and len(code) == 6) or not user.totp_secret:
        return False
    totp = pyotp.TOTP(user.totp_secret)
    current = int(now().timestamp()) // totp.interval
    for step in (current, current - 1, current + 1):
        if totp.generate_otp(step) == code:
            if user.totp_last_step is not None and step <= user.totp_last_step:
                return False  # replayed
            user.totp_last_step = step
            return True
    return False


def reset_totp(session: Session, user: User) -> None:
    """Remove the second factor (an admin's reset after a lost device). The last used step
    is kept, so a code seen before can never be replayed."""
    user.totp_secret = None
    user.totp_enabled = False
    session.flush()


def start_totp_enrolment(user: User) -> str:
    user.totp_secret = pyotp.random_base32()
    user.totp_enabled = False
    return user.totp_secret


def confirm_totp_enrolment(session: Session, user: User, code: str) -> None:
    if not verify_totp(user, code):
        raise Invalid(N_("The code is not correct."), code="otp_invalid", field="otp")
    user.totp_enabled = True
    session.flush()


def provisioning_uri(user: User, issuer: str = "Xietong") -> str:
    return totp_for(user).provisioning_uri(name=user.username, issuer_name=issuer)


# Sessions and tokens ----------------------------------------------------------------------


def open_session(
    session: Session,
    user: User,
    *,
    kind: str,
    policy: SecuritySettings,
    client_address: str,
    mfa_pending: bool = False,
) -> str:
    token = new_token()
    at = now()
    lifetime = (
        timedelta(hours=policy.session_absolute_hours)
        if kind == "cookie"
        else timedelta(hours=policy.token_hours)
    )
    session.add(
        AuthSession(
            token_digest=token_digest(token),
            user_id=user.id,
            kind=kind,
            created_at=at,
            last_seen_at=at,
            expires_at=at + lifetime,
            mfa_pending=mfa_pending,
            client_address=client_address[:64],
        )
    )
    session.flush()
    return token


def resolve_session(
    session: Session, token: str, *, kind: str, policy: SecuritySettings, touch: bool = True
) -> tuple[AuthSession, User] | None:
    """The live session for a token, or None; an idle cookie session is ended here.

    ``touch=False`` reads the session without counting the request as activity: background
    polls (the notification badge) must not keep an idle session alive forever."""
    if not token or len(token) > 128:
        return None
    row = session.execute(
        select(AuthSession).where(
            AuthSession.token_digest == token_digest(token), AuthSession.kind == kind
        )
    ).scalar_one_or_none()
    at = now()
    if row is None or row.revoked_at is not None or row.expires_at <= at:
        return None
    if kind == "cookie" and at - row.last_seen_at > timedelta(minutes=policy.session_idle_minutes):
        row.revoked_at = at
        return None
    user = session.get(User, row.user_id)
    if user is None or not user.is_active:
        return None
    # Touch at most once a minute: fewer writes, same idle semantics.
    if touch and at - row.last_seen_at > timedelta(seconds=60):
        row.last_seen_at = at
    return row, user


def revoke_session(session: Session, token: str) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.token_digest == token_digest(token), AuthSession.revoked_at.is_(None))
        .values(revoked_at=now())
    )


def revoke_all_sessions(session: Session, user_id: int) -> None:
    session.execute(
        update(AuthSession)
        .where(AuthSession.user_id == user_id, AuthSession.revoked_at.is_(None))
        .values(revoked_at=now())
    )


# Accounts ---------------------------------------------------------------------------------


def create_user(
    session: Session,
    *,
    username: str,
    password: str,
    display_name: str,
    roles: Iterable[Role | str],
    policy: SecuritySettings,
    institution_id: int | None = None,
    practitioner_id: int | None = None,
    jurisdiction_code: str | None = None,
    locale: str | None = None,
    enforce_policy: bool = True,
) -> User:
    name = username.strip().lower()
    if not re.fullmatch(USERNAME_PATTERN, name):
        raise Invalid(
            N_("This value has the wrong format."), code="invalid_username", field="username"
        )
    check_role_combination(roles)
    if enforce_policy:
        check_password_policy(password, username=name, min_length=policy.password_min_length)
    taken = Conflict(N_("This username is taken."), code="username_taken", field="username")
    if find_user(session, name) is not None:
        raise taken
    user = User(
        username=name,
        display_name=display_name.strip(),
        password_hash=hash_password(password),
        institution_id=institution_id,
        practitioner_id=practitioner_id,
        jurisdiction_code=jurisdiction_code,
        locale=locale,
        password_changed_at=now(),
    )
    user.roles = [UserRole(role=str(Role(r))) for r in sorted(set(map(str, roles)))]
    try:
        # The unique key, not the check above, decides a race between two creations.
        with session.begin_nested():
            session.add(user)
            session.flush()
    except IntegrityError:
        raise taken from None
    return user


def set_roles(session: Session, user: User, roles: Iterable[Role | str]) -> None:
    wanted = {str(Role(r)) for r in roles}
    check_role_combination(wanted)
    user.roles = [r for r in user.roles if r.role in wanted]
    present = {r.role for r in user.roles}
    user.roles.extend(UserRole(role=r) for r in sorted(wanted - present))
    session.flush()


def change_password(
    session: Session, user: User, current: str, new: str, policy: SecuritySettings
) -> None:
    if not verify_password(user.password_hash, current):
        raise Invalid(
            N_("The current password is not correct."),
            code="password_incorrect",
            field="current_password",
        )
    if verify_password(user.password_hash, new):
        raise Invalid(
            N_("Choose a password different from the current one."),
            code="password_reused",
            field="new_password",
        )
    set_password(session, user, new, policy, field="new_password")


def set_password(
    session: Session,
    user: User,
    new: str,
    policy: SecuritySettings,
    *,
    field: str = "password",
) -> None:
    check_password_policy(
        new, username=user.username, min_length=policy.password_min_length, field=field
    )
    user.password_hash = hash_password(new)
    user.password_changed_at = now()
    user.must_change_password = False
    session.flush()


def unlock(session: Session, user: User) -> None:
    user.failed_logins = 0
    user.locked_until = None
    session.flush()

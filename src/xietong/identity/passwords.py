"""The password policy (GB/T 22239 §8.1.4.1: complexity and periodic change)."""

from __future__ import annotations

import string
from datetime import datetime, timedelta

from xietong.core.errors import N_, Invalid

COMMON_PASSWORDS = frozenset(
    {
        "password123",
        "password1234",
        "1234567890",
        "qwertyuiop",
        "a1234567890",
        "admin123456",
        "1qaz2wsx3edc",
        "p@ssw0rd123",
        "iloveyou123",
        "woaini1314",
    }
)


def check_password_policy(
    password: str, *, username: str, min_length: int, field: str = "password"
) -> None:
    """Raise :class:`Invalid` naming ``field`` (the input that holds the password) when it
    breaks the policy."""
    if len(password) < min_length:
        raise Invalid(
            N_("The password must have at least {min_length} characters."),
            code="password_too_short",
            field=field,
            params={"min_length": min_length},
        )
    if len(password) > 256:
        raise Invalid(N_("The password is too long."), code="password_too_long", field=field)
    classes = sum(
        [
            any(c in string.ascii_lowercase for c in password),
            any(c in string.ascii_uppercase for c in password),
            any(c in string.digits for c in password),
            any(not c.isalnum() for c in password),
        ]
    )
    if classes < 3:
        raise Invalid(
            N_("Use at least three of: lower case, upper case, digits, symbols."),
            code="password_too_simple",
            field=field,
        )
    if username and username.lower() in password.lower():
        raise Invalid(
            N_("The password must not contain the username."),
            code="password_contains_username",
            field=field,
        )
    if password.lower() in COMMON_PASSWORDS:
        raise Invalid(N_("This password is too common."), code="password_common", field=field)


def password_expired(changed_at: datetime, *, max_age_days: int, at: datetime) -> bool:
    return max_age_days > 0 and at - changed_at > timedelta(days=max_age_days)

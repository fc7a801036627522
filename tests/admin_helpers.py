"""Shared builders of the security suite: two institutions with their admins and staff,
a movable clock, TOTP codes at the test clock's time, and audit-row queries."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from typing import Any
from unittest import mock

import pyotp
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.helpers import csrf_from
from xietong.access.models import AuditEvent
from xietong.core import clock, security
from xietong.directory.models import Institution
from xietong.identity import service as identity_service
from xietong.identity.models import User
from xietong.identity.roles import Role


@dataclass
class World:
    inst_a: Institution
    inst_b: Institution
    platform_admin: User
    audit_admin: User
    admin_a: User
    admin_b: User
    doctor_a: User
    doctor_b: User


@cache
def _hash_once(password: str) -> str:
    return security.hash_password(password)


def world(db: Session) -> World:
    """Institution A and B, each with an institution admin and a doctor; a platform admin
    and an audit admin (no institution). Committed so that the app's sessions see it.

    The six accounts share one real Argon2 hash of the test password (hashing is the slow
    part of the suite); signing in still verifies it for real.
    """
    with mock.patch.object(identity_service, "hash_password", _hash_once):
        return _world(db)


def _world(db: Session) -> World:
    inst_a = factories.institution(db, name="甲医院")
    inst_b = factories.institution(db, name="乙医院")
    w = World(
        inst_a=inst_a,
        inst_b=inst_b,
        platform_admin=factories.user(db, Role.PLATFORM_ADMIN, username="root.admin"),
        audit_admin=factories.user(db, Role.AUDIT_ADMIN, username="audit.admin"),
        admin_a=factories.user(db, Role.INSTITUTION_ADMIN, institution=inst_a, username="admin.a"),
        admin_b=factories.user(db, Role.INSTITUTION_ADMIN, institution=inst_b, username="admin.b"),
        doctor_a=factories.user(db, Role.EXPERT, institution=inst_a, username="doctor.a"),
        doctor_b=factories.user(db, Role.EXPERT, institution=inst_b, username="doctor.b"),
    )
    db.commit()
    return w


class Clock:
    """Freeze the kernel clock and move it by hand (restored by conftest after each test)."""

    def __init__(self, start: datetime | None = None) -> None:
        self.at = start or datetime(2026, 11, 26, 2, 0, 0, tzinfo=UTC)
        clock.set_clock(lambda: self.at)

    def advance(self, **delta: float) -> datetime:
        self.at += timedelta(**delta)
        return self.at


def totp_code(secret: str, at: datetime) -> str:
    code: str = pyotp.TOTP(secret).at(at)
    return code


def audit_rows(db: Session, **where: Any) -> Sequence[AuditEvent]:
    stmt = select(AuditEvent).filter_by(**where).order_by(AuditEvent.seq)
    return db.execute(stmt).scalars().all()


def fresh_user(db: Session, user_id: int) -> User:
    db.expire_all()
    user = db.get(User, user_id)
    assert user is not None
    return user


def page_form(client: TestClient, page: str) -> str:
    """The CSRF token of a page (also sets the CSRF cookie)."""
    response = client.get(page)
    assert response.status_code == 200, response.text
    return csrf_from(response.text)


def error_of(response: Any) -> dict[str, Any]:
    body = response.json()
    assert "error" in body, body
    err: dict[str, Any] = body["error"]
    return err

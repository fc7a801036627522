"""A small tiered network: province → city → county → township → village, with admins."""

from __future__ import annotations

import functools
from dataclasses import dataclass

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from xietong.access.models import AuditEvent
from xietong.config import SecuritySettings
from xietong.core.security import hash_password
from xietong.directory.models import Institution
from xietong.identity import service as identity
from xietong.identity.models import User, UserRole
from xietong.identity.roles import Role


@dataclass
class Network:
    provincial: Institution
    city: Institution
    county: Institution
    township: Institution
    village: Institution
    other_county: Institution


@pytest.fixture
def network(db: Session) -> Network:
    provincial = factories.institution(
        db, name="河南省人民医院", level="provincial", region_code="410105", grade="3A"
    )
    city = factories.institution(db, name="洛阳市中心医院", level="city", region_code="410302")
    county = factories.institution(db, name="新安县人民医院", level="county", region_code="410323")
    township = factories.institution(
        db, name="新安县石寺镇卫生院", level="township", region_code="410323101"
    )
    village = factories.institution(
        db, name="磨五村卫生室", level="village", region_code="410323101201"
    )
    other = factories.institution(db, name="嵩县人民医院", level="county", region_code="410325")
    factories.link(db, county, city)
    factories.link(db, county, provincial)
    factories.link(db, township, county)
    factories.link(db, village, township)
    factories.link(db, village, county)
    return Network(provincial, city, county, township, village, other)


@dataclass
class Actors:
    platform: dict[str, str]
    county_admin: dict[str, str]
    other_admin: dict[str, str]
    doctor: dict[str, str]


@functools.cache
def _password_hash() -> str:
    return hash_password(factories.PASSWORD)


def fast_user(
    db: Session, username: str, role: Role, institution: Institution | None = None
) -> User:
    """An account without hashing a password per test (Argon2 is slow on purpose)."""
    user = User(
        username=username,
        display_name=username,
        password_hash=_password_hash(),
        institution_id=institution.id if institution else None,
        roles=[UserRole(role=str(role))],
    )
    db.add(user)
    db.flush()
    return user


def bearer(db: Session, user: User) -> dict[str, str]:
    token = identity.open_session(
        db, user, kind="bearer", policy=SecuritySettings(), client_address="testclient"
    )
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def actors(db: Session, network: Network) -> Actors:
    platform = fast_user(db, "platform1", Role.PLATFORM_ADMIN)
    county_admin = fast_user(db, "countyadmin", Role.INSTITUTION_ADMIN, network.county)
    other_admin = fast_user(db, "otheradmin", Role.INSTITUTION_ADMIN, network.other_county)
    doctor = fast_user(db, "doctor1", Role.APPLICANT_DOCTOR, network.county)
    actors = Actors(
        platform=bearer(db, platform),
        county_admin=bearer(db, county_admin),
        other_admin=bearer(db, other_admin),
        doctor=bearer(db, doctor),
    )
    db.commit()
    return actors


def denials(db: Session, action: str | None = None) -> list[AuditEvent]:
    stmt = select(AuditEvent).where(AuditEvent.outcome == "denied")
    if action:
        stmt = stmt.where(AuditEvent.action == action)
    return list(db.execute(stmt.order_by(AuditEvent.seq)).scalars())


def cookie_login(client: TestClient, db: Session, user: User) -> None:
    """Sign a browser in without the login form (the form itself is tested elsewhere)."""
    token = identity.open_session(
        db, user, kind="cookie", policy=SecuritySettings(), client_address="testclient"
    )
    db.commit()
    client.cookies.set("xt_session", token)

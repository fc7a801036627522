"""Fixtures of the patient index tests: two institutions, their doctors, a PII protector."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pytest
from fastapi.testclient import TestClient
from httpx import Response
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from xietong.access.models import AuditEvent
from xietong.access.principal import Principal
from xietong.core.pii import PiiProtector
from xietong.directory.models import Institution
from xietong.identity.models import User
from xietong.identity.roles import Role

# Valid GB 11643 numbers (check digits computed), with the birth date and sex they encode.
RESIDENT_ID_MALE = "41010219800101123X"  # 1980-01-01, male (17th digit 3)
RESIDENT_ID_FEMALE = "410102199002151247"  # 1990-02-15, female (17th digit 4)


def principal_of(user: User, institution: Institution | None = None) -> Principal:
    return Principal(
        user_id=user.id,
        username=user.username,
        roles=frozenset(r.role for r in user.roles),
        institution_id=institution.id if institution else user.institution_id,
        institution_region_code=institution.region_code if institution else None,
        client_address="127.0.0.1",
    )


@dataclass
class World:
    village: Institution
    county: Institution
    other: Institution
    village_doctor: Principal
    county_doctor: Principal
    other_doctor: Principal
    platform: Principal
    authority: Principal
    institution_admin: Principal


@pytest.fixture
def pii() -> PiiProtector:
    return PiiProtector("test-pii-key-0123456789abcdef0123456789")


@pytest.fixture
def world(db: Session) -> World:
    village = factories.institution(db, name="测试村卫生室", level="village", region_code="410102")
    county = factories.institution(db, name="测试县医院", level="county", region_code="410102")
    other = factories.institution(db, name="外地医院", level="county", region_code="410300")
    factories.link(db, village, county)
    vd = factories.user(db, Role.APPLICANT_DOCTOR, institution=village)
    cd = factories.user(db, Role.EXPERT, institution=county)
    od = factories.user(db, Role.APPLICANT_DOCTOR, institution=other)
    pa = factories.user(db, Role.PLATFORM_ADMIN)
    au = factories.user(db, Role.AUTHORITY, jurisdiction_code="410000")
    ia = factories.user(db, Role.INSTITUTION_ADMIN, institution=village)
    return World(
        village,
        county,
        other,
        principal_of(vd),
        principal_of(cd),
        principal_of(od),
        principal_of(pa),
        principal_of(au),
        principal_of(ia),
    )


# HTTP fixtures ------------------------------------------------------------------------------


@dataclass
class Api:
    """Bearer headers of one account per relation, over the same institutions as World."""

    village: Institution
    county: Institution
    other: Institution
    village_doctor: dict[str, str]
    village_coordinator: dict[str, str]
    county_doctor: dict[str, str]
    other_doctor: dict[str, str]
    radiologist: dict[str, str]
    platform: dict[str, str]
    authority: dict[str, str]
    city_authority: dict[str, str]
    institution_admin: dict[str, str]
    audit_admin: dict[str, str]
    users: dict[str, User]


def with_reason(
    headers: dict[str, str], reason: str = "complaint 2026-118 review"
) -> dict[str, str]:
    return {**headers, "X-Access-Reason": reason}


@pytest.fixture
def api(db: Session) -> Api:
    from tests.directory.conftest import bearer, fast_user

    village = factories.institution(db, name="测试村卫生室", level="village", region_code="410102")
    county = factories.institution(db, name="测试县医院", level="county", region_code="410102")
    other = factories.institution(db, name="外地医院", level="county", region_code="410302")
    factories.link(db, village, county)
    users = {
        "village_doctor": fast_user(db, "p_village_doc", Role.APPLICANT_DOCTOR, village),
        "village_coordinator": fast_user(db, "p_village_coord", Role.COORDINATOR, village),
        "county_doctor": fast_user(db, "p_county_doc", Role.EXPERT, county),
        "other_doctor": fast_user(db, "p_other_doc", Role.APPLICANT_DOCTOR, other),
        "radiologist": fast_user(db, "p_radiologist", Role.RADIOLOGIST, county),
        "platform": fast_user(db, "p_platform", Role.PLATFORM_ADMIN),
        "authority": fast_user(db, "p_authority", Role.AUTHORITY),
        "city_authority": fast_user(db, "p_city_authority", Role.AUTHORITY),
        "institution_admin": fast_user(db, "p_inst_admin", Role.INSTITUTION_ADMIN, village),
        "audit_admin": fast_user(db, "p_audit_admin", Role.AUDIT_ADMIN),
    }
    users["authority"].jurisdiction_code = "410000"
    users["city_authority"].jurisdiction_code = "410100"
    db.flush()
    headers = {name: bearer(db, user) for name, user in users.items()}
    db.commit()
    return Api(village=village, county=county, other=other, users=users, **headers)


MALE = {
    "name": "张建国",
    "sex": "1",
    "birth_date": "1980-01-01",
    "resident_id": RESIDENT_ID_MALE,
    "phone": "13812345678",
}
FEMALE = {
    "name": "王芳",
    "sex": "2",
    "birth_date": "1990-02-15",
    "resident_id": RESIDENT_ID_FEMALE,
    "phone": "13987654321",
}


def error_of(response: Response) -> dict[str, Any]:
    body = response.json()
    assert set(body) == {"error"}, body
    assert {"code", "message", "field"} <= set(body["error"]), body
    error: dict[str, Any] = body["error"]
    return error


def audit_rows(
    db: Session, action: str | None = None, *, outcome: str | None = None
) -> list[AuditEvent]:
    stmt = select(AuditEvent).order_by(AuditEvent.seq)
    if action is not None:
        stmt = stmt.where(AuditEvent.action == action)
    if outcome is not None:
        stmt = stmt.where(AuditEvent.outcome == outcome)
    return list(db.execute(stmt).scalars())


def last_seq(db: Session) -> int:
    return int(db.execute(select(func.coalesce(func.max(AuditEvent.seq), 0))).scalar_one())


def rows_since(db: Session, seq: int) -> list[AuditEvent]:
    return list(
        db.execute(
            select(AuditEvent).where(AuditEvent.seq > seq).order_by(AuditEvent.seq)
        ).scalars()
    )


def register(client: TestClient, headers: dict[str, str], body: dict[str, Any]) -> int:
    response = client.post("/api/v1/patients", json=body, headers=headers)
    assert response.status_code in (200, 201), response.text
    patient_id: int = response.json()["patient"]["id"]
    return patient_id

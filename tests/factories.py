"""Builders for test data: institutions, departments, practitioners and accounts."""

from __future__ import annotations

import itertools

from sqlalchemy.orm import Session

from xietong.config import SecuritySettings
from xietong.directory.models import Department, Institution, Practitioner, ServiceLink
from xietong.identity import service as identity
from xietong.identity.models import User
from xietong.identity.roles import Role

PASSWORD = "Xietong-Test-2026"
_seq = itertools.count(1)


def institution(
    db: Session,
    *,
    name: str | None = None,
    level: str = "county",
    region_code: str = "410102",
    grade: str | None = None,
) -> Institution:
    n = next(_seq)
    inst = Institution(
        code=f"T{n:06d}",
        name=name or f"测试医院{n}",
        level=level,
        region_code=region_code,
        grade=grade,
    )
    db.add(inst)
    db.flush()
    return inst


def link(db: Session, applicant: Institution, centre: Institution) -> ServiceLink:
    row = ServiceLink(applicant_id=applicant.id, centre_id=centre.id)
    db.add(row)
    db.flush()
    return row


def department(
    db: Session, inst: Institution, name: str = "内科", specialty: str | None = None
) -> Department:
    dept = Department(institution_id=inst.id, name=name, specialty=specialty)
    db.add(dept)
    db.flush()
    return dept


def practitioner(
    db: Session,
    inst: Institution,
    *,
    name: str = "王医生",
    title: str = "attending",
    department: Department | None = None,
    is_expert: bool = False,
) -> Practitioner:
    p = Practitioner(
        institution_id=inst.id,
        department_id=department.id if department else None,
        name=name,
        title=title,
        is_expert=is_expert,
    )
    db.add(p)
    db.flush()
    return p


def user(
    db: Session,
    *roles: Role,
    institution: Institution | None = None,
    username: str | None = None,
    jurisdiction_code: str | None = None,
    password: str = PASSWORD,
) -> User:
    n = next(_seq)
    return identity.create_user(
        db,
        username=username or f"user{n}",
        password=password,
        display_name=f"用户{n}",
        roles=roles or (Role.APPLICANT_DOCTOR,),
        policy=SecuritySettings(),
        institution_id=institution.id if institution else None,
        jurisdiction_code=jurisdiction_code,
    )

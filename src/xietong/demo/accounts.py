"""One demo account per role, all with the same memorable password.

Accounts that act as a practitioner get one, created through the directory's services
(so they are validated like any other), with an expert profile where it fits.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import time

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.config import SecuritySettings
from xietong.demo.staff import expert_profile_row
from xietong.directory import service as svc
from xietong.directory.models import Department, Institution
from xietong.directory.schemas import (
    AvailabilityWindow,
    ExpertProfileIn,
    PractitionerCreateIn,
    SexCode,
)
from xietong.identity import service as identity
from xietong.identity.roles import Role

DEMO_PASSWORD = "Xietong@2026"  # noqa: S105 - published on purpose: demo accounts only
DEMO_COUNTY = "410323"  # 新安县, Luoyang: the county whose people have accounts


@dataclass(frozen=True)
class Person:
    name: str
    sex: SexCode
    title: str
    specialty: str
    expert: bool = False


@dataclass(frozen=True)
class DemoAccount:
    username: str
    display_name: str
    role: Role
    institution: str | None = None  # the code of a demo institution
    jurisdiction: str | None = None
    person: Person | None = None


ACCOUNTS: tuple[DemoAccount, ...] = (
    DemoAccount(
        "doctor",
        "张秀兰",
        Role.APPLICANT_DOCTOR,
        f"HN-V{DEMO_COUNTY}101201",  # 石寺镇磨五村卫生室
        person=Person("张秀兰", "2", "village_doctor", "general_practice"),
    ),
    DemoAccount(
        "expert",
        "王建国",
        Role.EXPERT,
        "HN-P01",
        person=Person("王建国", "1", "chief_physician", "cardiology", expert=True),
    ),
    DemoAccount(
        "radiologist",
        "李文华",
        Role.RADIOLOGIST,
        "HN-P01",
        person=Person("李文华", "2", "associate_chief_physician", "radiology", expert=True),
    ),
    DemoAccount(
        "coordinator",
        "赵明",
        Role.COORDINATOR,
        f"HN-X{DEMO_COUNTY}",
        person=Person("赵明", "1", "attending_physician", "internal_medicine"),
    ),
    # The imaging read (ADR 0017): the county hospital's doctor sends a CT up, the provincial
    # hospital's coordinator assigns the radiologist.
    DemoAccount(
        "doctor.county",
        "孙立新",
        Role.APPLICANT_DOCTOR,
        f"HN-X{DEMO_COUNTY}",
        person=Person("孙立新", "1", "attending_physician", "internal_medicine"),
    ),
    DemoAccount(
        "coordinator.province",
        "周晓梅",
        Role.COORDINATOR,
        "HN-P01",
        person=Person("周晓梅", "2", "attending_physician", "internal_medicine"),
    ),
    DemoAccount("instadmin", "新安县人民医院信息科", Role.INSTITUTION_ADMIN, f"HN-X{DEMO_COUNTY}"),
    DemoAccount("authority", "河南省卫生健康委员会", Role.AUTHORITY, jurisdiction="410000"),
    DemoAccount("authority.city", "洛阳市卫生健康委员会", Role.AUTHORITY, jurisdiction="410300"),
    DemoAccount(
        "learner",
        "陈静",
        Role.LEARNER,
        f"HN-T{DEMO_COUNTY}101",  # 新安县石寺镇卫生院
        person=Person("陈静", "2", "physician", "general_practice"),
    ),
    DemoAccount(
        "teacher",
        "刘卫东",
        Role.TEACHER,
        "HN-P02",
        person=Person("刘卫东", "1", "chief_physician", "neurology", expert=True),
    ),
    DemoAccount("platform", "平台管理员", Role.PLATFORM_ADMIN),
    DemoAccount("auditor", "审计管理员", Role.AUDIT_ADMIN),
)


@dataclass(frozen=True)
class AccountRow:
    username: str
    role: str
    display_name: str
    where: str
    created: bool


def _institution(session: Session, code: str | None) -> Institution | None:
    if code is None:
        return None
    stmt = select(Institution)
    stmt = (
        stmt.where(Institution.code.like(code))
        if code.endswith("%")
        else stmt.where(Institution.code == code)
    )
    return session.execute(stmt.order_by(Institution.code).limit(1)).scalar_one_or_none()


def _practitioner_for(
    session: Session, institution: Institution, person: Person, rng: random.Random
) -> int:
    department_id = session.execute(
        select(Department.id).where(
            Department.institution_id == institution.id, Department.specialty == person.specialty
        )
    ).scalar()
    practitioner = svc.create_practitioner(
        session,
        institution,
        PractitionerCreateIn(
            name=person.name,
            sex=person.sex,
            title=person.title,
            department_id=department_id,
            specialties=[person.specialty],
            is_expert=person.expert,
        ),
    )
    if person.expert:
        row = expert_profile_row(practitioner.id, person.title, person.specialty, rng)
        svc.set_expert_profile(
            session,
            practitioner,
            ExpertProfileIn(summary=row["summary"], expertise=row["expertise"]),
        )
        svc.set_availability(
            session,
            practitioner,
            [
                AvailabilityWindow(weekday=1, start=time(8, 0), end=time(12, 0)),
                AvailabilityWindow(weekday=3, start=time(14, 30), end=time(17, 30)),
            ],
        )
    return practitioner.id


def create_accounts(
    session: Session, policy: SecuritySettings, actor: Principal, rng: random.Random
) -> list[AccountRow]:
    """Create the accounts that do not exist yet; report every one of them."""
    report: list[AccountRow] = []
    for account in ACCOUNTS:
        institution = _institution(session, account.institution)
        where = institution.name if institution else (account.jurisdiction or "")
        if identity.find_user(session, account.username) is not None:
            report.append(
                AccountRow(account.username, account.role, account.display_name, where, False)
            )
            continue
        practitioner_id = None
        if account.person is not None and institution is not None:
            practitioner_id = _practitioner_for(session, institution, account.person, rng)
        user = identity.create_user(
            session,
            username=account.username,
            password=DEMO_PASSWORD,
            display_name=account.display_name,
            roles=[account.role],
            policy=policy,
            institution_id=institution.id if institution else None,
            practitioner_id=practitioner_id,
            jurisdiction_code=account.jurisdiction,
        )
        audit.record(
            session,
            actor,
            "user.create",
            object_kind="user",
            object_id=user.id,
            detail={"username": user.username, "roles": user.role_names, "demo": True},
        )
        report.append(AccountRow(account.username, account.role, account.display_name, where, True))
    return report

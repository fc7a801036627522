"""Accounts and directory rows for the browser tests.

Run as ``python -m tests.e2e.seed`` in the live server's environment (XIETONG_DATA_DIR,
XIETONG_DATABASE_URL) after ``xietong migrate``: it goes through the service functions and
the ORM only, so it works on SQLite and PostgreSQL alike. The tests import the constants.

Replace with ``xietong demo-data`` plus the few rows below once the demo loader exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import time

from sqlalchemy.orm import Session

from tests.e2e.seed_reads import seed_reads
from xietong.config import load_settings
from xietong.core.db import make_engine, make_session_factory, session_scope
from xietong.core.errors import N_
from xietong.directory.models import (
    Department,
    ExpertProfile,
    Institution,
    Practitioner,
    PractitionerSpecialty,
    ServiceLink,
)
from xietong.directory.regions import load_regions
from xietong.identity import service as identity
from xietong.identity.roles import Role
from xietong.notifications import service as notifications
from xietong.referral import slots
from xietong.referral.slot_models import SlotTemplate

PASSWORD = "Xietong-E2E-2026"


@dataclass(frozen=True)
class Account:
    username: str
    display_name: str
    role: Role


# One account per concern: the language test changes its user's preference, so no other
# test may share that user.
DOCTOR = Account("e2e.doctor", "张卫民医生", Role.APPLICANT_DOCTOR)
LANG_USER = Account("e2e.lang", "李语言", Role.LEARNER)
MOBILE_USER = Account("e2e.mobile", "王移动", Role.APPLICANT_DOCTOR)
SEARCHER = Account("e2e.searcher", "赵检索", Role.APPLICANT_DOCTOR)
EXPERT = Account("e2e.expert", "欧阳心远", Role.EXPERT)
CHART_USER = Account("e2e.chart", "孙记录", Role.APPLICANT_DOCTOR)
# The consultation walk: an applicant at the county hospital, the provincial centre's
# coordinator, and EXPERT (the provincial cardiologist) reading it.
CONSULT_DOCTOR = Account("e2e.consult", "周申请", Role.APPLICANT_DOCTOR)
COORDINATOR = Account("e2e.coordinator", "吴协调", Role.COORDINATOR)
# The provincial hospital's referral desk publishing slots (号源) from a phone.
SLOT_DESK = Account("e2e.slots", "钱号源", Role.COORDINATOR)
# The referral walk: a county doctor refers up into a slot of the provincial cardiology
# clinic; the provincial referral desk (转诊办) accepts and checks the patient in.
REFER_DOCTOR = Account("e2e.refer", "钱转诊", Role.APPLICANT_DOCTOR)
REFERRAL_DESK = Account("e2e.desk", "郑转诊办", Role.COORDINATOR)
# Uploads DICOM files and zips from the county hospital (/imaging/upload).
UPLOADER = Account("e2e.upload", "冯上传", Role.APPLICANT_DOCTOR)
# A group conversation between colleagues: a county doctor and a provincial expert (phone).
GROUP_DOCTOR = Account("e2e.group.doctor", "陈群聊", Role.APPLICANT_DOCTOR)
GROUP_EXPERT = Account("e2e.group.expert", "林群聊", Role.EXPERT)
CARDIOLOGY = "心血管内科"

PROVINCIAL_CODE = "E2E-PROV-1"
COUNTY_CODE = "E2E-CNTY-1"
EXPERT_NAME = EXPERT.display_name
EXPERT_SPECIALTY = "cardiology"


def seed(session: Session) -> None:
    policy = load_settings().security
    load_regions(session)
    provincial = Institution(
        code=PROVINCIAL_CODE,
        name="河南省人民医院（端到端测试）",
        name_en="Henan Provincial People's Hospital (e2e)",
        level="provincial",
        grade="3A",
        region_code="410105",  # 郑州市金水区
    )
    county = Institution(
        code=COUNTY_CODE,
        name="中牟县人民医院（端到端测试）",
        name_en="Zhongmou County People's Hospital (e2e)",
        level="county",
        grade="2A",
        region_code="410122",  # 郑州市中牟县
    )
    session.add_all([provincial, county])
    session.flush()
    session.add(ServiceLink(applicant_id=county.id, centre_id=provincial.id))
    cardiology = Department(
        institution_id=provincial.id, name=CARDIOLOGY, specialty=EXPERT_SPECIALTY
    )
    session.add(cardiology)
    session.flush()
    expert = Practitioner(
        institution_id=provincial.id,
        department_id=cardiology.id,
        name=EXPERT_NAME,
        sex="1",
        title="chief_physician",
        is_expert=True,
    )
    session.add(expert)
    session.flush()
    session.add_all(
        [
            PractitionerSpecialty(practitioner_id=expert.id, specialty=EXPERT_SPECIALTY),
            ExpertProfile(
                practitioner_id=expert.id,
                summary="心血管内科主任医师，擅长冠心病介入治疗。",
                expertise="冠心病、心力衰竭、心律失常",
                accepts_requests=True,
            ),
        ]
    )
    for account in (
        DOCTOR,
        LANG_USER,
        MOBILE_USER,
        SEARCHER,
        CHART_USER,
        CONSULT_DOCTOR,
        REFER_DOCTOR,
        UPLOADER,
        GROUP_DOCTOR,
    ):
        created = identity.create_user(
            session,
            username=account.username,
            password=PASSWORD,
            display_name=account.display_name,
            roles=[account.role],
            policy=policy,
            institution_id=None if account.role is Role.LEARNER else county.id,
        )
        if account is MOBILE_USER:
            # Something to read on a phone: a long title must wrap, not scroll sideways.
            notifications.notify(
                session,
                [created.id],
                kind="e2e.welcome",
                subject=notifications.Subject("user", created.id),
                title=N_("Welcome, {name}"),
                params={"name": "新安县人民医院远程会诊中心" * 4},
                link="/account",
                dedupe_key="e2e.welcome",
            )
    for desk in (COORDINATOR, SLOT_DESK, REFERRAL_DESK, GROUP_EXPERT):
        identity.create_user(
            session,
            username=desk.username,
            password=PASSWORD,
            display_name=desk.display_name,
            roles=[desk.role],
            policy=policy,
            institution_id=provincial.id,
        )
    # The provincial cardiology clinic every morning, with places kept for referrals.
    session.add_all(
        [
            SlotTemplate(
                institution_id=provincial.id,
                department_id=cardiology.id,
                kind="outpatient",
                weekday=weekday,
                start_time=time(8, 0),
                end_time=time(12, 0),
                capacity=20,
                referral_reserved=5,
                green_quota=2,
                valid_from=slots.china_today(),
            )
            for weekday in range(7)
        ]
    )
    session.flush()
    slots.generate_all_slots(session, load_settings().referral)
    identity.create_user(
        session,
        username=EXPERT.username,
        password=PASSWORD,
        display_name=EXPERT.display_name,
        roles=[EXPERT.role],
        policy=policy,
        institution_id=provincial.id,
        practitioner_id=expert.id,
    )
    seed_reads(session, provincial, county, PASSWORD)


def main() -> None:
    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        with session_scope(make_session_factory(engine)) as session:
            seed(session)
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()

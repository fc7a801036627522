"""The demo network at demo scale: the first-phase Henan network and one account per role."""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session, aliased

from tests.consultation.read_study import ct_slices
from xietong.access.authentication import principal_for
from xietong.config import SecuritySettings
from xietong.consultation.service import reads
from xietong.core.pii import PiiProtector
from xietong.core.storage import LocalBlobStore
from xietong.demo import ACCOUNTS, DEMO_PASSWORD, DemoReport, build_demo
from xietong.demo.loader import SEED
from xietong.demo.names import person_name
from xietong.demo.plan import RegionIndex, plan_network
from xietong.demo.reads import add_demo_reads
from xietong.directory.levels import LEVEL_BY_CODE
from xietong.directory.models import (
    ExpertAvailability,
    ExpertProfile,
    Institution,
    Practitioner,
    ServiceLink,
)
from xietong.directory.service import search_experts
from xietong.directory.service.experts import ExpertQuery
from xietong.directory.titles import SENIOR_TITLES
from xietong.identity.models import User
from xietong.identity.passwords import check_password_policy
from xietong.identity.roles import Role
from xietong.imaging.service import ingest
from xietong.patients.registration import register_patient
from xietong.patients.schemas import IdentifierIn, PatientIn
from xietong.referral import slots as slots_svc
from xietong.referral.models import Referral
from xietong.referral.slot_models import Slot, SlotTemplate


@pytest.fixture(scope="module")
def built(engine: Engine) -> Iterator[tuple[Session, DemoReport]]:
    """Build the network once for the module, in a transaction rolled back at the end."""
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    report = build_demo(session, scale="demo")
    yield session, report
    session.close()
    outer.rollback()
    connection.close()


@pytest.fixture
def db(built: tuple[Session, DemoReport]) -> Session:
    return built[0]


@pytest.fixture
def report(built: tuple[Session, DemoReport]) -> DemoReport:
    return built[1]


def _levels(db: Session) -> Counter[str]:
    return Counter(db.execute(select(Institution.level)).scalars())


def test_first_phase_network(db: Session, report: DemoReport) -> None:
    levels = _levels(db)
    assert levels["provincial"] == 6
    assert levels["city"] == 18
    assert levels["county"] == 18
    assert levels["township"] == 54
    assert 2 * 54 <= levels["village"] <= 3 * 54
    names = set(db.execute(select(Institution.name)).scalars())
    assert {"河南省人民医院", "郑州大学第一附属医院", "洛阳市中心医院", "济源市人民医院"} <= names
    assert "新安县人民医院" in names
    assert report.counts["institutions"] == sum(levels.values())


def test_every_region_and_institution_is_real(db: Session, report: DemoReport) -> None:
    assert report.counts["regions"] == 0  # the test database has them already
    villages = db.execute(select(Institution).where(Institution.level == "village")).scalars()
    for village in villages:
        assert len(village.region_code) == 12
        assert village.region.level == "village"
        assert village.name.endswith(("卫生室", "社区卫生服务站"))
    for county in db.execute(select(Institution).where(Institution.level == "county")).scalars():
        assert county.region.level in ("county", "township")


def test_links_go_upward_only(db: Session, report: DemoReport) -> None:
    applicant, centre = aliased(Institution), aliased(Institution)
    pairs = db.execute(
        select(applicant.level, centre.level)
        .select_from(ServiceLink)
        .join(applicant, applicant.id == ServiceLink.applicant_id)
        .join(centre, centre.id == ServiceLink.centre_id)
    ).all()
    assert pairs
    assert all(LEVEL_BY_CODE[c].rank > LEVEL_BY_CODE[a].rank for a, c in pairs)
    by_kind = Counter(pairs)
    assert by_kind[("city", "provincial")] == 18 * 6
    assert by_kind[("county", "city")] == 18
    assert by_kind[("county", "provincial")] == 18 * 6
    assert by_kind[("township", "county")] == 54
    villages = _levels(db)["village"]
    assert by_kind[("village", "township")] == by_kind[("village", "county")] == villages


def test_practitioners_and_experts(db: Session, report: DemoReport) -> None:
    total = db.execute(select(func.count()).select_from(Practitioner)).scalar_one()
    assert 250 <= total <= 350
    experts, count = search_experts(db, ExpertQuery())
    assert count >= 20
    for expert in experts:
        assert expert.title in SENIOR_TITLES
        assert expert.institution.level in ("provincial", "city")
        assert expert.specialties
    assert db.execute(select(func.count()).select_from(ExpertProfile)).scalar_one() == count
    windows = db.execute(select(ExpertAvailability)).scalars().all()
    assert all(w.start_time < w.end_time for w in windows)
    names = db.execute(select(Practitioner.name)).scalars().all()
    assert all(2 <= len(n) <= 4 for n in names)
    assert len(set(names)) > total * 0.8


def test_one_account_per_role(db: Session, report: DemoReport) -> None:
    users = {u.username: u for u in db.execute(select(User)).scalars()}
    roles = Counter(role for u in users.values() for role in u.role_names)
    assert set(roles) == {str(r) for r in Role}
    assert roles[Role.AUTHORITY] == 2
    assert users["authority"].jurisdiction_code == "410000"
    assert users["authority.city"].jurisdiction_code == "410300"
    doctor = users["doctor"]
    clinic = db.get(Institution, doctor.institution_id)
    assert clinic is not None
    assert clinic.level in ("village", "township")
    expert = users["expert"]
    assert db.get(Institution, expert.institution_id).level == "provincial"  # type: ignore[union-attr]
    practitioner = db.get(Practitioner, expert.practitioner_id)
    assert practitioner is not None
    assert practitioner.is_expert
    assert db.get(Institution, users["coordinator"].institution_id).level == "county"  # type: ignore[union-attr]
    assert db.get(Institution, users["instadmin"].institution_id).level == "county"  # type: ignore[union-attr]
    assert [row.username for row in report.accounts] == [a.username for a in ACCOUNTS]
    for account in ACCOUNTS:
        check_password_policy(DEMO_PASSWORD, username=account.username, min_length=10)


def test_a_second_run_adds_nothing(db: Session, report: DemoReport) -> None:
    before = _levels(db)
    again = build_demo(db, scale="demo")
    assert again.counts["institutions"] == 0
    assert again.counts["service_links"] == 0
    assert again.counts["practitioners"] == 0
    assert not any(row.created for row in again.accounts)
    assert _levels(db) == before
    assert (again.counts["slot_templates"], again.counts["slots"]) == (0, 0)
    assert again.counts["slot_bookings"] == 0
    assert again.counts["referrals"] == 0


def test_the_same_seed_gives_the_same_network(db: Session) -> None:
    index = RegionIndex.load(db)
    first = plan_network(index, "demo", random.Random(SEED))
    second = plan_network(index, "demo", random.Random(SEED))
    assert [(s.code, s.name, s.grade) for s in first] == [(s.code, s.name, s.grade) for s in second]
    rng_a, rng_b = random.Random(7), random.Random(7)
    assert [person_name(rng_a, "1") for _ in range(50)] == [
        person_name(rng_b, "1") for _ in range(50)
    ]


def test_receiving_hospitals_publish_slots(db: Session, report: DemoReport) -> None:
    """The desk's county hospital and the experts' provincial hospitals have a real week:
    clinics, the experts' own clinics, CT, MRI, ultrasound and beds, with referral
    reserves and green-channel places; the county desk has booked a few of its patients."""
    publishers = db.execute(
        select(Institution.code)
        .join(SlotTemplate, SlotTemplate.institution_id == Institution.id)
        .distinct()
        .order_by(Institution.code)
    ).scalars()
    assert list(publishers) == ["HN-P01", "HN-P02", "HN-X410323"]
    templates = db.execute(select(SlotTemplate)).scalars().all()
    assert len(templates) == report.counts["slot_templates"] > 150
    kinds = {(t.kind, t.exam_type) for t in templates}
    assert {("outpatient", ""), ("exam", "ct"), ("exam", "mri"), ("exam", "ultrasound")} <= kinds
    assert ("admission", "") in kinds
    assert all(0 < t.referral_reserved <= t.capacity and t.green_quota > 0 for t in templates)
    expert = db.execute(select(User).where(User.username == "expert")).scalar_one()
    assert any(t.practitioner_id == expert.practitioner_id for t in templates)
    slots = db.execute(select(func.count()).select_from(Slot)).scalar_one()
    assert slots == report.counts["slots"] > 500
    coordinator = db.execute(select(User).where(User.username == "coordinator")).scalar_one()
    desk = principal_for(db, coordinator)
    seen = []
    today = slots_svc.china_today()
    for week in (today, today + timedelta(days=7)):
        calendar = slots_svc.slot_calendar(db, desk, desk.institution_id or 0, week=week)
        seen += [b for d in calendar.days for s in d.slots for b in s.bookings]
    assert report.counts["slot_bookings"] == 3
    assert all(b.patient_name for b in seen)
    purposes = sorted(b.booking.purpose for b in seen)
    assert purposes == ["local"] * 3 + ["referral"] * 3  # the demo referrals' places


def test_the_village_doctor_has_referred_patients_up(db: Session, report: DemoReport) -> None:
    assert report.counts["referrals"] == 3
    rows = db.execute(select(Referral).order_by(Referral.id)).scalars().all()
    assert [(r.kind, r.state) for r in rows] == [
        ("up", "accepted"),
        ("up", "requested"),
        ("exam", "requested"),
    ]
    coordinator = db.execute(select(User).where(User.username == "coordinator")).scalar_one()
    assert {r.target_institution_id for r in rows} == {coordinator.institution_id}


def test_the_demo_read_is_made_once_a_county_study_exists(db: Session, tmp_path: Path) -> None:
    """Without a county study no read is made; with one (the imaging demo's CT, here a
    generated one), the county doctor's read is sent to the provincial radiology and the
    demo radiologist leads it, once."""
    assert add_demo_reads(db) == {"reads": 0}
    nested = db.begin_nested()
    pii = PiiProtector(SecuritySettings().pii_key, SecuritySettings().pii_cipher)
    doctor_user = db.execute(select(User).where(User.username == "doctor.county")).scalar_one()
    doctor = principal_for(db, doctor_user)
    patient = register_patient(
        db,
        doctor,
        pii,
        PatientIn(
            name="马国庆",
            sex="1",
            birth_date=date(1960, 10, 1),
            identifiers=[IdentifierIn(kind="mrn", value="DEMO-CT-1")],
        ),
    ).patient
    assert doctor.institution_id is not None
    for data in ct_slices("DEMO-CT-1", count=2):
        ingest(
            db,
            LocalBlobStore(tmp_path),
            pii,
            data,
            sender_institution_id=doctor.institution_id,
            actor=doctor,
        )
    assert add_demo_reads(db) == {"reads": 1}
    assert add_demo_reads(db) == {"reads": 0}
    radiologist = db.execute(select(User).where(User.username == "radiologist")).scalar_one()
    rows, _total = reads.worklist(db, principal_for(db, radiologist))
    assert [row.read.patient_id for row in rows] == [patient.id]
    assert rows[0].assigned_to_me
    assert rows[0].read.state == "accepted"
    nested.rollback()

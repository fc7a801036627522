"""A hundred bookings of one slot at once (PostgreSQL): exactly as many succeed as there
are places, every other one gets a clear 409, and the counters agree with the booking rows.

Each thread has its own Session and connection and commits for real, so the test runs in
its own schema. The threads are released together by a barrier; a winner holds its row
lock a moment before committing, so the others queue on the lock and re-check the UPDATE's
WHERE against the committed row (READ COMMITTED) — the path that must never overbook. A
monitor counts the transactions seen waiting on a lock. The connection pool takes what the
server can spare (up to 100): threads beyond it wait for a connection and then contend too.
SQLite serialises writers (BEGIN IMMEDIATE): no race to test there.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, func, select, text
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import fast_user
from tests.patients.conftest import principal_of
from tests.pg_race import together
from xietong.cli import alembic_config
from xietong.core.db import make_engine
from xietong.core.errors import Conflict
from xietong.core.pii import PiiProtector
from xietong.directory.regions import load_regions
from xietong.identity.roles import Role
from xietong.patients.registration import register_patient
from xietong.patients.schemas import PatientIn
from xietong.referral import slots as svc
from xietong.referral.models import Referral
from xietong.referral.slot_models import Slot, SlotBooking
from xietong.referral.slot_schemas import OneOffSlotIn

URL = os.environ.get("XIETONG_DATABASE_URL", "")
pytestmark = pytest.mark.skipif(
    not URL.startswith(("postgresql", "postgres")),
    reason="race tests need PostgreSQL; SQLite serialises writers (BEGIN IMMEDIATE)",
)
THREADS = 100
ROUNDS = 20
PLACES = 5
HOLD_SECONDS = 0.005  # a winner keeps its row lock this long before committing
SPARE_CONNECTIONS = 20  # left to the rest of the server (other test workers, psql)


@dataclass
class Race:
    engine: Engine
    schema: str
    pool: int
    institution_id: int
    department_id: int
    patient_id: int
    referral_ids: list[int]
    coordinator: object


def _pool_size(admin: Engine) -> int:
    with admin.connect() as conn:
        limit = int(conn.execute(text("SHOW max_connections")).scalar_one())
        reserved = int(conn.execute(text("SHOW superuser_reserved_connections")).scalar_one())
        used = int(conn.execute(text("SELECT count(*) FROM pg_stat_activity")).scalar_one())
    return max(10, min(THREADS, limit - reserved - used - SPARE_CONNECTIONS))


@pytest.fixture(scope="module")
def race(worker_id: str) -> Iterator[Race]:
    schema = f"xt_slot_race_{worker_id}".replace("-", "_")
    admin = make_engine(URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    joiner = "&" if "?" in URL else "?"
    url = f"{URL}{joiner}options=-csearch_path%3D{schema}"
    pool = _pool_size(admin)
    engine = create_engine(url, pool_size=pool, max_overflow=0, pool_timeout=120)
    config = alembic_config(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with Session(engine) as db:
        load_regions(db)
        centre = factories.institution(db, level="city", region_code="410302")
        sender = factories.institution(db, level="county", region_code="410323")
        factories.link(db, sender, centre)
        dept = factories.department(db, centre, name="心内科")
        doctor = principal_of(fast_user(db, "race_slot_doctor", Role.APPLICANT_DOCTOR, sender))
        coordinator = principal_of(fast_user(db, "race_slot_desk", Role.COORDINATOR, centre))
        patient = register_patient(
            db,
            doctor,
            PiiProtector("race-test-pii-key-0123456789abcdef012345"),
            PatientIn.model_validate({"name": "赛跑", "sex": "1", "birth_date": date(1970, 1, 1)}),
        ).patient
        referrals = [
            Referral(
                kind="up",
                patient_id=patient.id,
                sender_user_id=doctor.uid,
                sender_institution_id=sender.id,
                target_institution_id=centre.id,
                reason="并发预约",
            )
            for _ in range(THREADS)
        ]
        db.add_all(referrals)
        db.commit()
        yield Race(
            engine,
            schema,
            pool,
            centre.id,
            dept.id,
            patient.id,
            [r.id for r in referrals],
            coordinator,
        )
    engine.dispose()
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    admin.dispose()


def _slot(race: Race, n: int, *, capacity: int, green_quota: int) -> int:
    day = (datetime.now(UTC) + timedelta(days=2 + n // 10)).date()
    data = OneOffSlotIn(
        department_id=race.department_id,
        day=day,
        start_time=f"{8 + n % 10:02d}:00",  # type: ignore[arg-type]
        end_time=f"{8 + n % 10:02d}:30",  # type: ignore[arg-type]
        capacity=capacity,
        referral_reserved=0,
        green_quota=green_quota,
    )
    with Session(race.engine) as db:
        slot = svc.create_slot(db, race.coordinator, race.institution_id, data)  # type: ignore[arg-type]
        db.commit()
        return slot.id


class LockWatch:
    """Polls pg_stat_activity for transactions of the race's schema waiting on a lock."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run)

    def _run(self) -> None:
        with self.engine.connect() as conn:
            while not self._stop.is_set():
                waiting = conn.execute(
                    text(
                        "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
                        " AND datname = current_database() AND query LIKE 'UPDATE slot SET%'"
                    )
                ).scalar_one()
                conn.rollback()
                self.peak = max(self.peak, int(waiting))
                time.sleep(0.001)

    def __enter__(self) -> LockWatch:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def _booking(race: Race, slot_id: int, index: int, channel: str) -> Callable[[], str]:
    def job() -> str:
        with Session(race.engine) as session:
            svc.book_for_referral(
                session,
                slot_id,
                patient_id=race.patient_id,
                referral_id=race.referral_ids[index],
                channel=channel,  # type: ignore[arg-type]
                booked_by_user_id=None,
                institution_id=race.institution_id,
                kinds=("outpatient",),
            )
            time.sleep(HOLD_SECONDS)
            session.commit()
            return "booked"

    return job


def _round(race: Race, slot_id: int, channel: str, code: str) -> tuple[float, int]:
    with LockWatch(race.engine) as watch:
        started = time.perf_counter()
        results = together(*(_booking(race, slot_id, i, channel) for i in range(THREADS)))
        seconds = time.perf_counter() - started
    booked = [r for r in results if r == "booked"]
    refused = [r for r in results if isinstance(r, Conflict)]
    others = [r for r in results if r != "booked" and not isinstance(r, Conflict)]
    assert others == []
    assert (len(booked), len(refused)) == (PLACES, THREADS - PLACES)
    assert {(e.status, e.code, e.field) for e in refused} == {(409, code, "slot_id")}
    with Session(race.engine) as session:
        slot = session.get(Slot, slot_id)
        assert slot is not None
        rows = session.execute(
            select(SlotBooking.channel, func.count())
            .where(SlotBooking.slot_id == slot_id, SlotBooking.status == "booked")
            .group_by(SlotBooking.channel)
        ).all()
        if channel == "green":
            assert (slot.booked_green, slot.booked_referral) == (PLACES, 0)
        else:
            assert (slot.booked_referral, slot.booked_green) == (PLACES, 0)
        assert rows == [(channel, PLACES)]
    return seconds, watch.peak


def _report(label: str, race: Race, figures: list[tuple[float, int]]) -> None:
    times = sorted(s for s, _ in figures)
    # The figures docs/slots.md quotes (shown with pytest -s).
    print(
        f"\n{label}: {ROUNDS} rounds x {THREADS} threads over {race.pool} connections; "
        f"{PLACES} booked and {THREADS - PLACES} refused every round; "
        f"median {times[len(times) // 2] * 1000:.0f} ms, max {times[-1] * 1000:.0f} ms per round; "
        f"peak lock waiters seen {max(p for _, p in figures)}, "
        f"median {sorted(p for _, p in figures)[len(figures) // 2]}"
    )


def test_a_hundred_bookings_of_five_places(race: Race) -> None:
    figures = []
    for n in range(ROUNDS):
        slot_id = _slot(race, n, capacity=PLACES, green_quota=0)
        figures.append(_round(race, slot_id, "normal", "slot_full"))
    _report("normal places", race, figures)
    assert max(p for _, p in figures) > 1  # the bookings did wait on each other


def test_the_green_quota_holds_the_same_way(race: Race) -> None:
    figures = []
    for n in range(ROUNDS):
        # No normal place left to fall back on: the capacity is 1 and taken.
        slot_id = _slot(race, 100 + n, capacity=1, green_quota=PLACES)
        figures.append(_round(race, slot_id, "green", "green_quota_full"))
    _report("green-channel quota", race, figures)
    assert max(p for _, p in figures) > 1

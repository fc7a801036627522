"""Races on PostgreSQL: two registrations of the same resident ID number at the same moment
make one patient; two opposite merges of the same pair make one merge.

Each thread has its own connection and session and commits for real, so the test runs in
its own schema (created, migrated and dropped here) and never sees, or leaves, rows of the
rolled-back tests. SQLite serialises writers (BEGIN IMMEDIATE), so there is no race to test.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session
from stdnum.cn import ric

from tests.pg_race import needs_postgres, schema_engine, together
from xietong.access.principal import Principal
from xietong.core.errors import Conflict
from xietong.core.pii import PiiProtector
from xietong.directory.models import Institution, Region
from xietong.patients.merge import merge_patients
from xietong.patients.models import Patient, PatientIdentifier, PatientInstitution
from xietong.patients.registration import register_patient
from xietong.patients.schemas import MergeIn, PatientIn

pytestmark = needs_postgres
ROUNDS = 20
PII = PiiProtector("race-test-pii-key-0123456789abcdef012345")


@pytest.fixture(scope="module")
def race_engine(worker_id: str) -> Iterator[Engine]:
    with schema_engine("xt_race", worker_id, pool_size=4) as engine:
        with Session(engine) as session:
            session.add(
                Region(code="410000", name="河南省", level="province", depth=0, prefix="41")
            )
            session.add(
                Region(
                    code="410102",
                    name="中原区",
                    level="county",
                    depth=2,
                    prefix="410102",
                    parent_code="410000",
                )
            )
            session.commit()
        yield engine


def _institution(engine: Engine, name: str) -> int:
    with Session(engine) as session:
        inst = Institution(code=name, name=name, level="county", region_code="410102")
        session.add(inst)
        session.commit()
        return inst.id


def _doctor(institution_id: int, name: str) -> Principal:
    return Principal(
        user_id=None,
        username=name,
        roles=frozenset({"applicant_doctor"}),
        institution_id=institution_id,
        client_address="race",
    )


def _resident_id(n: int) -> str:
    body = f"41010219800101{n % 1000:03d}"
    return body + ric.calc_check_digit(body + "0")  # the last character is ignored


def _sex(number: str) -> str:
    return "1" if int(number[16]) % 2 else "2"


def test_simultaneous_registrations_make_one_patient(race_engine: Engine) -> None:
    first = _doctor(_institution(race_engine, "RACE-A"), "race-a")
    second = _doctor(_institution(race_engine, "RACE-B"), "race-b")

    def registration(principal: Principal, number: str) -> Callable[[], tuple[int, bool]]:
        def job() -> tuple[int, bool]:
            data = PatientIn(
                name="赛跑",
                sex=_sex(number),  # type: ignore[arg-type]
                birth_date=date(1980, 1, 1),
                resident_id=number,
            )
            with Session(race_engine) as session:
                result = register_patient(session, principal, PII, data)
                session.commit()
                return result.patient.id, result.created

        return job

    for n in range(1, ROUNDS + 1):
        number = _resident_id(n)
        results = together(registration(first, number), registration(second, number))
        errors = [r for r in results if isinstance(r, Exception)]
        assert errors == [], errors
        ids = {r[0] for r in results}
        assert len(ids) == 1, results
        assert sorted(r[1] for r in results) == [False, True], results
        with Session(race_engine) as session:
            bidx = PII.blind_index("resident_id", number)
            identifiers = session.execute(
                select(PatientIdentifier.patient_id).where(PatientIdentifier.value_bidx == bidx)
            ).all()
            assert len(identifiers) == 1
            links = session.execute(
                select(func.count())
                .select_from(PatientInstitution)
                .where(PatientInstitution.patient_id == identifiers[0][0])
            ).scalar_one()
            assert links == 2
    with Session(race_engine) as session:
        patients = session.execute(select(func.count()).select_from(Patient)).scalar_one()
        assert patients == ROUNDS


def test_opposite_merges_of_one_pair_make_one_merge(race_engine: Engine) -> None:
    doctor = _doctor(_institution(race_engine, "RACE-M"), "race-m")

    def new_patient(phone: str) -> int:
        data = PatientIn(name="合并", sex="1", birth_date=date(1970, 5, 5), phone=phone)
        with Session(race_engine) as session:
            patient = register_patient(session, doctor, PII, data).patient
            session.commit()
            return patient.id

    def merge(survivor: int, merged: int) -> Callable[[], int]:
        def job() -> int:
            body = MergeIn(survivor_id=survivor, merged_id=merged, reason="race")
            with Session(race_engine) as session:
                row = merge_patients(session, doctor, body)
                session.commit()
                return row.id

        return job

    for n in range(ROUNDS // 2):
        a, b = new_patient(f"1380000{n:04d}"), new_patient(f"1390000{n:04d}")
        results = together(merge(a, b), merge(b, a))
        done = [r for r in results if isinstance(r, int)]
        refused = [r for r in results if isinstance(r, Conflict)]
        assert (len(done), len(refused)) == (1, 1), results
        assert refused[0].code == "already_merged"
        with Session(race_engine) as session:
            pointers = session.execute(
                select(Patient.merged_into_id).where(Patient.id.in_([a, b]))
            ).scalars()
            assert sorted(p is None for p in pointers) == [False, True]

"""The demo patients: valid numbers, charts at the village clinic and the county hospital,
and a loader that adds nothing on a second run."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session
from stdnum.cn import ric

from xietong.access.authentication import principal_for
from xietong.demo import DemoReport, build_demo
from xietong.demo.chart_data import PATIENTS
from xietong.identity.models import User
from xietong.patients.models import Patient
from xietong.records import service as records


@pytest.fixture(scope="module")
def built(engine: Engine) -> Iterator[tuple[Session, DemoReport]]:
    connection = engine.connect()
    outer = connection.begin()
    session = Session(bind=connection, join_transaction_mode="create_savepoint")
    report = build_demo(session, scale="demo")
    yield session, report
    session.close()
    outer.rollback()
    connection.close()


def test_demo_patients_have_charts(built: tuple[Session, DemoReport]) -> None:
    db, report = built
    assert report.counts["patients"] == len(PATIENTS)
    assert report.counts["record_entries"] == sum(len(p.items) for p in PATIENTS)
    for patient in PATIENTS:
        assert ric.calc_check_digit(patient.resident_id) == patient.resident_id[-1]
        assert ric.get_birth_date(patient.resident_id) == patient.birth_date
    doctor = db.execute(select(User).where(User.username == "doctor")).scalar_one()
    principal = principal_for(db, doctor)
    wang = db.execute(select(Patient).where(Patient.name == "王德福")).scalar_one()
    # The village doctor sees the village clinic's abnormal values, not the county's.
    items, total = records.timeline(
        db, principal, wang.id, records.TimelineQuery(abnormal_only=True)
    )
    assert total == len(items) > 0
    assert all(i.institution_name.endswith("卫生室") for i in items)


def test_a_second_run_adds_no_patient_or_entry(built: tuple[Session, DemoReport]) -> None:
    again = build_demo(built[0], scale="demo")
    assert again.counts["patients"] == 0
    assert again.counts["record_entries"] == 0

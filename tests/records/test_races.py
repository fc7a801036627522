"""Races on PostgreSQL: concurrent retries of one POST make one entry; concurrent corrections
of one version make one revision. Each test runs in a schema of its own, with real commits,
dropped at the end."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests import factories
from tests.patients.conftest import principal_of
from tests.pg_race import schema_engine
from tests.records.conftest import INPUT_MODELS, VALID
from xietong.access.principal import Principal
from xietong.core.db import session_scope
from xietong.core.errors import Conflict
from xietong.directory.models import Region
from xietong.identity.roles import Role
from xietong.patients.models import Patient
from xietong.patients.registration import link_institution
from xietong.records import service as svc
from xietong.records.kinds import RecordKind
from xietong.records.models import LabResult, RecordRevision

URL = os.environ.get("XIETONG_DATABASE_URL", "")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL.startswith("postgresql"), reason="races are tested on PostgreSQL"),
]
RACERS = 6


@pytest.fixture
def race_db(worker_id: str) -> Iterator[tuple[sessionmaker[Session], Principal, int]]:
    with schema_engine("xt_race", worker_id, pool_size=RACERS) as engine:
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        with session_scope(factory) as session:
            session.add(
                Region(code="410102", name="中原区", level="county", prefix="410102", depth=3)
            )
            session.flush()
            institution = factories.institution(session, name="竞争测试医院")
            user = factories.user(session, Role.APPLICANT_DOCTOR, institution=institution)
            patient = Patient(
                name="张三",
                sex="1",
                birth_date=date(1970, 1, 1),
                registered_institution_id=institution.id,
            )
            session.add(patient)
            session.flush()
            link_institution(session, patient.id, institution.id, "registered")
            principal = principal_of(user)
            patient_id = patient.id
        yield factory, principal, patient_id


def _race(factory: sessionmaker[Session], work: Callable[[Session], Any]) -> list[Any]:
    barrier = threading.Barrier(RACERS)

    def one(_: int) -> Any:
        barrier.wait()
        try:
            with session_scope(factory) as session:
                return work(session)
        except Conflict as exc:
            return exc

    with ThreadPoolExecutor(RACERS) as pool:
        return list(pool.map(one, range(RACERS)))


def test_concurrent_retries_make_one_entry(
    race_db: tuple[sessionmaker[Session], Principal, int],
) -> None:
    factory, principal, patient_id = race_db
    body = INPUT_MODELS[RecordKind.LAB_RESULT].model_validate(
        {**VALID[RecordKind.LAB_RESULT], "client_request_id": "retry-1"}
    )

    def post(session: Session) -> tuple[int, bool]:
        added = svc.add_entry(session, principal, RecordKind.LAB_RESULT, patient_id, body)
        return added.entry.id, added.created

    results = _race(factory, post)
    assert len({entry_id for entry_id, _ in results}) == 1
    assert sum(created for _, created in results) == 1
    with factory() as session:
        assert session.execute(select(func.count()).select_from(LabResult)).scalar_one() == 1


def test_concurrent_corrections_of_one_version_make_one_revision(
    race_db: tuple[sessionmaker[Session], Principal, int],
) -> None:
    factory, principal, patient_id = race_db
    with session_scope(factory) as session:
        body = INPUT_MODELS[RecordKind.LAB_RESULT].model_validate(VALID[RecordKind.LAB_RESULT])
        lab_id = svc.add_entry(session, principal, RecordKind.LAB_RESULT, patient_id, body).entry.id

    def correct(session: Session) -> int:
        entry = svc.correct_entry(
            session, principal, RecordKind.LAB_RESULT, lab_id, {"value_text": "5.1"}, "recheck"
        )
        return entry.version

    results = _race(factory, correct)
    conflicts = [r for r in results if isinstance(r, Conflict)]
    successes = [r for r in results if not isinstance(r, Conflict)]
    with factory() as session:
        revisions = session.execute(select(RecordRevision)).scalars().all()
        lab = session.get(LabResult, lab_id)
    assert lab is not None
    # Each writer that won saw the version before it: versions never repeat.
    assert sorted(r.version for r in revisions) == list(range(1, len(revisions) + 1))
    assert lab.version == len(revisions) + 1
    assert len(successes) + len(conflicts) == RACERS
    assert all(c.code == "version_conflict" for c in conflicts)

"""Two coordinators accepting the same request at once: exactly one succeeds, the other
gets 409 (PostgreSQL; each thread has its own connection and commits for real, so the test
runs in its own schema). SQLite serialises writers (BEGIN IMMEDIATE): no race to test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.consultation.conftest import SETTINGS
from tests.directory.conftest import fast_user
from tests.patients.conftest import principal_of
from tests.pg_race import needs_postgres, schema_engine, together
from tests.records.conftest import _patient_in
from xietong.access.principal import Principal
from xietong.consultation import service as svc
from xietong.consultation.models import Consultation, ConsultationAssignment
from xietong.consultation.schemas import AcceptIn, ConsultationIn
from xietong.core.errors import Conflict
from xietong.core.pii import PiiProtector
from xietong.directory.regions import load_regions
from xietong.identity.roles import Role
from xietong.patients.registration import register_patient

pytestmark = needs_postgres
ROUNDS = 10
PII = PiiProtector("race-test-pii-key-0123456789abcdef012345")


@pytest.fixture(scope="module")
def race_engine(worker_id: str) -> Iterator[Engine]:
    with schema_engine("xt_consult_race", worker_id, pool_size=4) as engine:
        with Session(engine) as session:
            load_regions(session)
            session.commit()
        yield engine


def test_two_coordinators_accept_at_once(race_engine: Engine) -> None:
    with Session(race_engine) as db:
        village = factories.institution(db, level="village")
        county = factories.institution(db, level="county")
        factories.link(db, village, county)
        expert = factories.practitioner(db, county, is_expert=True)
        expert_user = fast_user(db, "race_expert", Role.EXPERT, county)
        expert_user.practitioner_id = expert.id
        applicant = principal_of(fast_user(db, "race_applicant", Role.APPLICANT_DOCTOR, village))
        coordinators = [
            principal_of(fast_user(db, f"race_coord_{i}", Role.COORDINATOR, county)) for i in (1, 2)
        ]
        patient = register_patient(db, applicant, PII, _patient_in()).patient
        ids = []
        for _ in range(ROUNDS):
            data = ConsultationIn(
                patient_id=patient.id,
                purpose="会诊",
                clinical_summary="摘要",
                questions="问题",
                specialty="cardiology",
                target_institution_id=county.id,
                submit=True,
            )
            ids.append(svc.create_consultation(db, applicant, data, SETTINGS).consultation.id)
        db.commit()
        expert_id = expert.id

    def accept(principal: Principal, cid: int) -> Callable[[], str]:
        def job() -> str:
            with Session(race_engine) as session:
                svc.accept(
                    session,
                    principal,
                    cid,
                    AcceptIn(experts=[expert_id], lead=expert_id),
                )
                session.commit()
                return "accepted"

        return job

    for cid in ids:
        results = together(accept(coordinators[0], cid), accept(coordinators[1], cid))
        done = [r for r in results if r == "accepted"]
        refused = [r for r in results if isinstance(r, Conflict)]
        assert (len(done), len(refused)) == (1, 1), results
        assert refused[0].status == 409
        with Session(race_engine) as session:
            c = session.get(Consultation, cid)
            assert c is not None
            assert c.state == "accepted"
            assigned = session.execute(
                select(func.count()).where(ConsultationAssignment.consultation_id == cid)
            ).scalar_one()
            assert assigned == 1

"""The mesh cap under concurrent joins (PostgreSQL, each join its own connection and
transaction): ten joins of one session at once, two tabs each of five participants, leave
exactly XIETONG_LIVE_MESH_MAX_PARTICIPANTS in the room and refuse the rest with 409
``live_full``; no more attendance rows are open than the cap."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy import Engine, func, select
from sqlalchemy.orm import Session

from tests.consultation.conftest import Net, build_net, reach
from tests.pg_race import needs_postgres, schema_engine, together
from xietong.config import LiveSettings
from xietong.core.errors import Conflict
from xietong.directory.regions import load_regions
from xietong.live import presence
from xietong.live import service as svc
from xietong.live.models import LiveAttendance
from xietong.live.schemas import InstantIn
from xietong.web.subjects import register_subjects

pytestmark = needs_postgres
LIVE = LiveSettings()
PARTICIPANTS = ("applicant", "coordinator", "coordinator2", "expert_a", "expert_b")
ROUNDS = 3


@pytest.fixture(scope="module")
def race(worker_id: str) -> Iterator[tuple[Engine, Net]]:
    register_subjects()
    with schema_engine("xt_live_race", worker_id, pool_size=2 * len(PARTICIPANTS) + 2) as engine:
        # The network's objects are used after this session ends: keep them loaded.
        with Session(engine, expire_on_commit=False) as db:
            load_regions(db)
            net = build_net(db)
            db.commit()
        yield engine, net


def _join(engine: Engine, net: Net, who: str, live_id: int, tab: int) -> Callable[[], str]:
    def job() -> str:
        with Session(engine) as db:
            joined = presence.join(db, net.p[who], live_id, f"{who}-{tab}", LIVE)
            db.commit()
            return type(joined).__name__

    return job


def test_concurrent_joins_never_pass_the_mesh_cap(race: tuple[Engine, Net]) -> None:
    engine, net = race
    for _ in range(ROUNDS):
        with Session(engine) as db:
            c = reach(db, net, "accepted")
            opened, _created = svc.instant_session(
                db,
                net.p["applicant"],
                InstantIn(subject_kind="consultation", subject_id=str(c.id)),
                LIVE,
            )
            db.commit()
            live_id = opened.live.id
            assert opened.live.mode == "mesh"
        jobs = [_join(engine, net, who, live_id, tab) for who in PARTICIPANTS for tab in (1, 2)]
        results = together(*jobs)
        joined = [r for r in results if r == "Joined"]
        full = [r for r in results if isinstance(r, Conflict) and r.code == "live_full"]
        assert (len(joined), len(full)) == (LIVE.mesh_max_participants, len(jobs) - len(joined)), (
            results
        )
        with Session(engine) as db:
            present = db.execute(
                select(func.count())
                .select_from(LiveAttendance)
                .where(LiveAttendance.session_id == live_id, LiveAttendance.left_at.is_(None))
            ).scalar_one()
        assert present == LIVE.mesh_max_participants

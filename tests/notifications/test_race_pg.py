"""On PostgreSQL: the same event notified by concurrent transactions (a retried request, a
job run twice at once) makes one notification per recipient, and neither transaction fails.
Runs in a schema of its own, with real commits, dropped at the end."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from tests import factories
from tests.notifications.conftest import TITLE
from tests.pg_race import schema_engine
from xietong.core.db import session_scope
from xietong.directory.models import Region
from xietong.identity.roles import Role
from xietong.notifications import service as svc
from xietong.notifications.models import Notification

URL = os.environ.get("XIETONG_DATABASE_URL", "")
pytestmark = [
    pytest.mark.postgres,
    pytest.mark.skipif(not URL.startswith("postgresql"), reason="races are tested on PostgreSQL"),
]
RACERS = 6


@pytest.fixture
def race_db(worker_id: str) -> Iterator[tuple[sessionmaker[Session], list[int]]]:
    with schema_engine("xt_notify_race", worker_id, pool_size=RACERS) as engine:
        factory = sessionmaker(bind=engine, expire_on_commit=False)
        with session_scope(factory) as session:
            session.add(
                Region(code="410102", name="中原区", level="county", prefix="410102", depth=3)
            )
            session.flush()
            institution = factories.institution(session, name="竞争测试医院")
            users = [
                factories.user(session, Role.COORDINATOR, institution=institution).id
                for _ in range(2)
            ]
        yield factory, users


def test_concurrent_notifications_of_one_event_make_one_each(
    race_db: tuple[sessionmaker[Session], list[int]],
) -> None:
    factory, users = race_db
    barrier = threading.Barrier(RACERS)

    def one(_: int) -> list[int]:
        barrier.wait()
        with session_scope(factory) as session:
            return svc.notify(
                session,
                users,
                kind="consultation.submitted",
                subject=svc.Subject("consultation", 1),
                title=TITLE,
                params={"name": "x"},
                link="/consultations/1",
                dedupe_key="consultation.submitted:1",
            )

    with ThreadPoolExecutor(RACERS) as pool:
        results = list(pool.map(one, range(RACERS)))
    assert sorted(len(r) for r in results if r) in ([2], [1, 1])
    with session_scope(factory) as session:
        count = session.scalar(select(func.count()).select_from(Notification))
    assert count == 2

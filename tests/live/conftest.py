"""Video session tests run on the consultation tests' network (tests/consultation/conftest):
an accepted consultation of the village clinic at the county hospital, expert a leading and
expert b assigned. Its participants: the applicant, the centre's coordinators (hosts), the
experts (a, the lead, hosts). The clinic's nurse-coordinator (``viewer``) sees it without
taking part; the county's own doctor does not see it (a guest, by link); the outside
hospital's users see nothing (404)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy.orm import Session

from tests.consultation.conftest import (  # noqa: F401 - fixtures
    NOW,
    Net,
    _frozen_clock,
    accept,
    audits,
    create,
    net,
)
from xietong.config import LiveSettings
from xietong.consultation.models import Consultation
from xietong.live import service as svc
from xietong.live.access import Opened
from xietong.live.schemas import SessionIn
from xietong.web.subjects import register_subjects

LIVE = LiveSettings()

__all__ = ["LIVE", "NOW", "Net", "audits", "make_session", "subject"]


@pytest.fixture(autouse=True)
def _subject_registered() -> None:
    # The app registers them when it is created; service tests run without an app.
    register_subjects()


@pytest.fixture
def consult(db: Session, net: Net) -> Consultation:  # noqa: F811 - the fixture
    c = create(db, net, submit=True)
    accept(db, net, c)
    db.commit()
    return c


def subject(c: Consultation) -> dict[str, str]:
    return {"subject_kind": "consultation", "subject_id": str(c.id)}


def make_session(
    db: Session,
    net: Net,  # noqa: F811 - the fixture's value
    c: Consultation,
    who: str = "applicant",
    *,
    scheduled: bool = False,
    settings: LiveSettings = LIVE,
    **changes: Any,
) -> Opened:
    body = SessionIn(
        **subject(c),
        scheduled_at=NOW + timedelta(hours=2) if scheduled else None,
        **changes,
    )
    return svc.create_session(db, net.p[who], body, settings)

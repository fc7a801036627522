"""Two coordinators and an expert at a county hospital, a doctor at a village clinic, each
with a bearer token; a helper that notifies through the service as a workflow would."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import bearer, fast_user
from tests.patients.conftest import principal_of
from xietong.access.principal import Principal
from xietong.core.errors import N_
from xietong.directory.models import Institution
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.notifications import service as svc

# An existing msgid with a parameter, so both catalogs translate it (workflows bring their own).
TITLE = N_("Welcome, {name}")


@dataclass
class Site:
    county: Institution
    village: Institution
    coord1: User
    coord2: User
    expert: User
    doctor: User

    def principal(self, user: User) -> Principal:
        return principal_of(user)

    def token(self, db: Session, user: User) -> dict[str, str]:
        return bearer(db, user)


@pytest.fixture
def site(db: Session) -> Site:
    county = factories.institution(db, name="新安县人民医院", level="county", region_code="410323")
    village = factories.institution(
        db, name="磨五村卫生室", level="village", region_code="410323101201"
    )
    result = Site(
        county=county,
        village=village,
        coord1=fast_user(db, "coord1", Role.COORDINATOR, county),
        coord2=fast_user(db, "coord2", Role.COORDINATOR, county),
        expert=fast_user(db, "expert1", Role.EXPERT, county),
        doctor=fast_user(db, "doctor1", Role.APPLICANT_DOCTOR, village),
    )
    db.commit()
    return result


def send(
    db: Session,
    recipients: list[int],
    *,
    subject_id: int = 7,
    key: str | None = None,
    link: str = "/patients",
    kind: str = "consultation.submitted",
    actor: int | None = None,
) -> list[int]:
    ids = svc.notify(
        db,
        recipients,
        kind=kind,
        subject=svc.Subject("consultation", subject_id),
        title=TITLE,
        params={"name": "磨五村卫生室"},
        link=link,
        dedupe_key=key or f"{kind}:{subject_id}",
        actor_user_id=actor,
    )
    db.commit()
    return ids

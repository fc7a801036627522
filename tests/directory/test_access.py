"""Every directory admin endpoint: 403 without an admin role, 404 for another institution's
admin (as if absent), each refusal audited durably; nothing changes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import Actors, Network, denials
from xietong.access.models import AuditEvent
from xietong.directory.models import Department, Practitioner

Target = dict[str, Any]
Endpoint = Callable[[Target], tuple[str, str, dict[str, Any] | None]]

ENDPOINTS: dict[str, tuple[str, Endpoint]] = {
    "update institution": (
        "institution.update",
        lambda t: ("PATCH", f"/api/v1/institutions/{t['inst']}", {"phone": "1"}),
    ),
    "add service centre": (
        "service_link.create",
        lambda t: (
            "POST",
            f"/api/v1/institutions/{t['inst']}/service-centres",
            {"centre_id": t["centre"]},
        ),
    ),
    "remove service centre": (
        "service_link.delete",
        lambda t: (
            "DELETE",
            f"/api/v1/institutions/{t['inst']}/service-centres/{t['linked']}",
            None,
        ),
    ),
    "remove service centre (query)": (
        "service_link.delete",
        lambda t: (
            "DELETE",
            f"/api/v1/institutions/{t['inst']}/service-centres?centre_id={t['linked']}",
            None,
        ),
    ),
    "create department": (
        "department.create",
        lambda t: ("POST", f"/api/v1/institutions/{t['inst']}/departments", {"name": "新科室"}),
    ),
    "update department": (
        "department.update",
        lambda t: ("PATCH", f"/api/v1/departments/{t['dept']}", {"name": "改名"}),
    ),
    "create practitioner": (
        "practitioner.create",
        lambda t: (
            "POST",
            f"/api/v1/institutions/{t['inst']}/practitioners",
            {"name": "新医生", "title": "physician"},
        ),
    ),
    "update practitioner": (
        "practitioner.update",
        lambda t: ("PATCH", f"/api/v1/practitioners/{t['prac']}", {"name": "改名"}),
    ),
    "expert profile": (
        "expert_profile.update",
        lambda t: ("PUT", f"/api/v1/practitioners/{t['prac']}/expert-profile", {"summary": "x"}),
    ),
    "availability": (
        "expert_availability.update",
        lambda t: ("PUT", f"/api/v1/practitioners/{t['prac']}/availability", {"windows": []}),
    ),
}


@pytest.fixture
def target(db: Session, network: Network, actors: Actors) -> Target:
    dept = factories.department(db, network.county, "内科")
    prac = factories.practitioner(db, network.county, name="原名", title="physician")
    unlinked = factories.institution(
        db, name="洛阳市第一人民医院", level="city", region_code="410303"
    )
    db.commit()
    return {
        "inst": network.county.id,
        "centre": unlinked.id,
        "linked": network.city.id,
        "dept": dept.id,
        "prac": prac.id,
    }


def _call(client: TestClient, endpoint: Endpoint, target: Target, headers: dict[str, str]) -> Any:
    method, url, body = endpoint(target)
    return client.request(method, url, json=body, headers=headers)


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_non_admin_gets_403_and_an_audit_row(
    client: TestClient, db: Session, actors: Actors, target: Target, name: str
) -> None:
    action, endpoint = ENDPOINTS[name]
    response = _call(client, endpoint, target, actors.doctor)
    assert response.status_code == 403, response.text
    assert response.json()["error"]["code"] == "forbidden"
    rows = denials(db, action)
    assert len(rows) == 1
    assert rows[0].actor_username == "doctor1"
    assert '"reason": "role"' in rows[0].detail


@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_other_institutions_admin_gets_404_and_an_audit_row(
    client: TestClient, db: Session, actors: Actors, target: Target, name: str
) -> None:
    action, endpoint = ENDPOINTS[name]
    response = _call(client, endpoint, target, actors.other_admin)
    assert response.status_code == 404, response.text
    rows = denials(db, action)
    assert len(rows) == 1
    assert rows[0].actor_username == "otheradmin"
    assert '"reason": "scope"' in rows[0].detail
    db.expire_all()
    assert db.get(Department, target["dept"]).name == "内科"  # type: ignore[union-attr]
    assert db.get(Practitioner, target["prac"]).name == "原名"  # type: ignore[union-attr]


@pytest.mark.parametrize("who", ["county_admin", "platform"])
@pytest.mark.parametrize("name", sorted(ENDPOINTS))
def test_own_admin_and_platform_admin_may(
    client: TestClient, db: Session, actors: Actors, target: Target, name: str, who: str
) -> None:
    action, endpoint = ENDPOINTS[name]
    response = _call(client, endpoint, target, getattr(actors, who))
    assert response.status_code in (200, 201, 204), response.text
    successes = db.execute(
        select(AuditEvent).where(AuditEvent.action == action, AuditEvent.outcome == "success")
    ).scalars()
    assert len(list(successes)) == 1
    assert denials(db) == []


def test_absent_objects_look_like_hidden_ones(
    client: TestClient, db: Session, actors: Actors, target: Target
) -> None:
    absent = {**target, "inst": 999999, "dept": 999999, "prac": 999999}
    for name in ("update institution", "update department", "update practitioner"):
        response = _call(client, ENDPOINTS[name][1], absent, actors.county_admin)
        assert response.status_code == 404, name
    assert len(denials(db)) == 3


def test_only_platform_admins_create_institutions(
    client: TestClient, db: Session, actors: Actors
) -> None:
    body = {"name": "新医院", "level": "county", "region_code": "410324"}
    for headers in (actors.doctor, actors.county_admin):
        response = client.post("/api/v1/institutions", json=body, headers=headers)
        assert response.status_code == 403
    assert len(denials(db, "institution.create")) == 2


def test_anonymous_callers_must_sign_in(client: TestClient, target: Target) -> None:
    for name in sorted(ENDPOINTS):
        assert _call(client, ENDPOINTS[name][1], target, {}).status_code == 401
    for url in ("/api/v1/institutions", "/api/v1/experts", "/api/v1/specialties"):
        assert client.get(url).status_code == 401

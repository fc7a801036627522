"""Bad input to the directory API: a clear 4xx naming the field, never a 500, nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import Actors, Network
from xietong.directory.models import Institution

VALID_INSTITUTION = {"name": "某县人民医院", "level": "county", "region_code": "410324"}

CASES: list[tuple[str, str, str, dict[str, Any], str]] = [
    # (method, url template, description, body, field)
    ("POST", "/api/v1/institutions", "unknown field", {**VALID_INSTITUTION, "beds": 5}, "beds"),
    ("POST", "/api/v1/institutions", "missing", {"name": "x", "level": "county"}, "region_code"),
    ("POST", "/api/v1/institutions", "wrong type", {**VALID_INSTITUTION, "name": 12}, "name"),
    ("POST", "/api/v1/institutions", "too long", {**VALID_INSTITUTION, "name": "长" * 129}, "name"),
    ("POST", "/api/v1/institutions", "bad level", {**VALID_INSTITUTION, "level": "x"}, "level"),
    ("POST", "/api/v1/institutions", "bad grade", {**VALID_INSTITUTION, "grade": "5a"}, "grade"),
    ("POST", "/api/v1/institutions", "bad code", {**VALID_INSTITUTION, "code": "a b"}, "code"),
    ("POST", "/api/v1/institutions", "bad phone", {**VALID_INSTITUTION, "phone": "abc"}, "phone"),
    (
        "POST",
        "/api/v1/institutions",
        "long region",
        {**VALID_INSTITUTION, "region_code": "4" * 13},
        "region_code",
    ),
    ("PATCH", "/api/v1/institutions/{inst}", "unknown field", {"colour": "red"}, "colour"),
    ("PATCH", "/api/v1/institutions/{inst}", "null name", {"name": None}, "name"),
    ("PATCH", "/api/v1/institutions/{inst}", "null phone", {"phone": None}, "phone"),
    ("PATCH", "/api/v1/institutions/{inst}", "null active", {"is_active": None}, "is_active"),
    ("PATCH", "/api/v1/institutions/{inst}", "wrong type", {"is_active": "maybe"}, "is_active"),
    ("PATCH", "/api/v1/institutions/{inst}", "long address", {"address": "址" * 257}, "address"),
    (
        "POST",
        "/api/v1/institutions/{inst}/service-centres",
        "string id",
        {"centre_id": "a"},
        "centre_id",
    ),
    (
        "POST",
        "/api/v1/institutions/{inst}/service-centres",
        "zero id",
        {"centre_id": 0},
        "centre_id",
    ),
    ("POST", "/api/v1/institutions/{inst}/departments", "too long", {"name": "科" * 65}, "name"),
    ("POST", "/api/v1/institutions/{inst}/departments", "extra", {"name": "a", "x": 1}, "x"),
    ("POST", "/api/v1/institutions/{inst}/departments", "empty", {"name": ""}, "name"),
    ("PATCH", "/api/v1/departments/{dept}", "wrong type", {"is_active": []}, "is_active"),
    (
        "POST",
        "/api/v1/institutions/{inst}/practitioners",
        "specialties not a list",
        {"name": "a", "title": "physician", "specialties": "cardiology"},
        "specialties",
    ),
    (
        "POST",
        "/api/v1/institutions/{inst}/practitioners",
        "too many specialties",
        {"name": "a", "title": "physician", "specialties": ["cardiology"] * 9},
        "specialties",
    ),
    (
        "POST",
        "/api/v1/institutions/{inst}/practitioners",
        "long title",
        {"name": "a", "title": "t" * 33},
        "title",
    ),
    (
        "PATCH",
        "/api/v1/practitioners/{prac}",
        "bad department",
        {"department_id": -1},
        "department_id",
    ),
    ("PATCH", "/api/v1/practitioners/{prac}", "null title", {"title": None}, "title"),
    (
        "PUT",
        "/api/v1/practitioners/{prac}/expert-profile",
        "too long",
        {"summary": "x" * 2001},
        "summary",
    ),
    ("PUT", "/api/v1/practitioners/{prac}/expert-profile", "extra", {"photo": "x"}, "photo"),
    ("PUT", "/api/v1/practitioners/{prac}/availability", "missing", {}, "windows"),
    (
        "PUT",
        "/api/v1/practitioners/{prac}/availability",
        "too many",
        {"windows": [{"weekday": 0, "start": "08:00", "end": "09:00"}] * 29},
        "windows",
    ),
    (
        "PUT",
        "/api/v1/practitioners/{prac}/availability",
        "extra in window",
        {"windows": [{"weekday": 0, "start": "08:00", "end": "09:00", "room": 1}]},
        "windows.0.room",
    ),
]


@pytest.fixture
def ids(db: Session, network: Network, actors: Actors) -> dict[str, int]:
    dept = factories.department(db, network.county)
    prac = factories.practitioner(db, network.county, title="physician")
    db.commit()
    return {"inst": network.county.id, "dept": dept.id, "prac": prac.id}


@pytest.mark.parametrize(
    ("method", "url", "body", "field"),
    [(m, u, b, f) for m, u, _, b, f in CASES],
    ids=[f"{m} {u} {d}" for m, u, d, _, _ in CASES],
)
def test_bad_body_is_422_naming_the_field(
    client: TestClient,
    db: Session,
    actors: Actors,
    ids: dict[str, int],
    method: str,
    url: str,
    body: dict[str, Any],
    field: str,
) -> None:
    before = db.execute(select(func.count()).select_from(Institution)).scalar_one()
    response = client.request(method, url.format(**ids), json=body, headers=actors.platform)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["field"] == field
    assert error["message"]
    assert db.execute(select(func.count()).select_from(Institution)).scalar_one() == before


def test_malformed_json_is_400(client: TestClient, actors: Actors) -> None:
    response = client.post(
        "/api/v1/institutions",
        content=b'{"name": ',
        headers={**actors.platform, "Content-Type": "application/json"},
    )
    assert response.status_code == 400
    assert response.json()["error"]["field"] == "body"


def test_non_numeric_ids_are_422(client: TestClient, actors: Actors) -> None:
    response = client.get("/api/v1/institutions/abc", headers=actors.doctor)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "institution_id"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"q": "x" * 65}, "q"),
        ({"level": "planet"}, "level"),
        ({"region": "41x"}, "region"),
        ({"region": "1" * 13}, "region"),
        ({"limit": 1000}, "limit"),
        ({"offset": "last"}, "offset"),
    ],
)
def test_bad_institution_filters(
    client: TestClient, actors: Actors, params: dict[str, Any], field: str
) -> None:
    response = client.get("/api/v1/institutions", params=params, headers=actors.doctor)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field

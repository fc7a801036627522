"""Departments, practitioners, expert profiles and weekly availability."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import Actors, Network


def _post(client: TestClient, url: str, body: dict[str, Any], headers: dict[str, str]) -> Any:
    return client.post(url, json=body, headers=headers)


def test_departments_crud(client: TestClient, network: Network, actors: Actors) -> None:
    url = f"/api/v1/institutions/{network.county.id}/departments"
    created = _post(client, url, {"name": "心内科", "specialty": "cardiology"}, actors.county_admin)
    assert created.status_code == 201, created.text
    dept = created.json()
    duplicate = _post(client, url, {"name": "心内科"}, actors.county_admin)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["field"] == "name"
    unknown = _post(client, url, {"name": "外科", "specialty": "surgery"}, actors.county_admin)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "specialty"
    renamed = client.patch(
        f"/api/v1/departments/{dept['id']}",
        json={"name": "心血管内科", "is_active": False},
        headers=actors.county_admin,
    )
    assert renamed.status_code == 200, renamed.text
    assert renamed.json()["name"] == "心血管内科"
    listed = client.get(url, headers=actors.doctor).json()
    assert listed == []
    everything = client.get(url, params={"include_inactive": True}, headers=actors.doctor).json()
    assert [d["name"] for d in everything] == ["心血管内科"]
    nulled = client.patch(
        f"/api/v1/departments/{dept['id']}", json={"name": None}, headers=actors.county_admin
    )
    assert nulled.status_code == 422
    assert nulled.json()["error"]["field"] == "name"


def test_practitioner_with_title_specialties_and_department(
    client: TestClient, db: Session, network: Network, actors: Actors
) -> None:
    dept = factories.department(db, network.county, "内科", "internal_medicine")
    other_dept = factories.department(db, network.city, "内科")
    db.commit()
    url = f"/api/v1/institutions/{network.county.id}/practitioners"
    body = {
        "name": "王大夫",
        "sex": "1",
        "title": "attending_physician",
        "department_id": dept.id,
        "specialties": ["internal_medicine", "cardiology", "cardiology"],
    }
    created = _post(client, url, body, actors.county_admin)
    assert created.status_code == 201, created.text
    p = created.json()
    assert p["specialties"] == ["internal_medicine", "cardiology"]
    assert p["department_name"] == "内科"
    for bad, field in [
        ({"title": "professor"}, "title"),
        ({"specialties": ["astrology"]}, "specialties"),
        ({"department_id": other_dept.id}, "department_id"),
        ({"sex": "3"}, "sex"),
    ]:
        response = _post(client, url, {**body, **bad}, actors.county_admin)
        assert response.status_code == 422, (bad, response.text)
        assert response.json()["error"]["field"] == field
    patched = client.patch(
        f"/api/v1/practitioners/{p['id']}",
        json={"title": "associate_chief_physician", "specialties": ["neurology"]},
        headers=actors.county_admin,
    )
    assert patched.status_code == 200, patched.text
    assert patched.json()["specialties"] == ["neurology"]
    assert patched.json()["title"] == "associate_chief_physician"
    fetched = client.get(f"/api/v1/practitioners/{p['id']}", headers=actors.doctor).json()
    assert fetched["specialties"] == ["neurology"]
    listed = client.get(url, params={"q": "王"}, headers=actors.doctor).json()
    assert listed["total"] == 1


def test_expert_profile_and_availability(
    client: TestClient, db: Session, network: Network, actors: Actors
) -> None:
    p = factories.practitioner(db, network.county, name="李专家", title="chief_physician")
    db.commit()
    profile = client.put(
        f"/api/v1/practitioners/{p.id}/expert-profile",
        json={"summary": "主任医师", "expertise": "冠心病", "accepts_requests": True},
        headers=actors.county_admin,
    )
    assert profile.status_code == 200, profile.text
    windows = [
        {"weekday": 2, "start": "14:00", "end": "17:00"},
        {"weekday": 0, "start": "08:00", "end": "12:00"},
        {"weekday": 0, "start": "12:00", "end": "13:00"},  # touching is not overlapping
    ]
    url = f"/api/v1/practitioners/{p.id}/availability"
    saved = client.put(url, json={"windows": windows}, headers=actors.county_admin)
    assert saved.status_code == 200, saved.text
    assert [(w["weekday"], w["start"]) for w in saved.json()["windows"]] == [
        (0, "08:00:00"),
        (0, "12:00:00"),
        (2, "14:00:00"),
    ]
    detail = client.get(f"/api/v1/practitioners/{p.id}", headers=actors.doctor).json()
    assert detail["is_expert"] is True
    assert detail["profile"]["expertise"] == "冠心病"
    assert len(detail["availability"]) == 3
    cleared = client.put(url, json={"windows": []}, headers=actors.county_admin)
    assert cleared.json()["windows"] == []


@pytest.mark.parametrize(
    ("windows", "field"),
    [
        ([{"weekday": 0, "start": "12:00", "end": "08:00"}], "windows.0.end"),
        ([{"weekday": 0, "start": "08:00", "end": "08:00"}], "windows.0.end"),
        (
            [
                {"weekday": 1, "start": "08:00", "end": "12:00"},
                {"weekday": 1, "start": "11:00", "end": "13:00"},
            ],
            "windows.1.start",
        ),
        ([{"weekday": 7, "start": "08:00", "end": "12:00"}], "windows.0.weekday"),
        ([{"weekday": 1, "start": "25:00", "end": "26:00"}], "windows.0.start"),
        ([{"weekday": 1, "start": "08:00"}], "windows.0.end"),
    ],
)
def test_bad_availability_names_the_window(
    client: TestClient,
    db: Session,
    network: Network,
    actors: Actors,
    windows: list[dict[str, Any]],
    field: str,
) -> None:
    p = factories.practitioner(db, network.county, title="chief_physician")
    db.commit()
    response = client.put(
        f"/api/v1/practitioners/{p.id}/availability",
        json={"windows": windows},
        headers=actors.county_admin,
    )
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field

"""The expert library search: specialty, institution, region subtree, name, pagination."""

from __future__ import annotations

from datetime import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.directory.conftest import Actors, Network
from xietong.directory import service as svc
from xietong.directory.models import ExpertAvailability, ExpertProfile, Institution, Practitioner
from xietong.directory.models import PractitionerSpecialty as Spec


def _expert(
    db: Session, institution: Institution, name: str, *specialties: str, accepting: bool = True
) -> Practitioner:
    p = Practitioner(
        institution_id=institution.id, name=name, title="chief_physician", is_expert=True
    )
    p.specialty_rows = [Spec(specialty=s) for s in specialties]
    db.add(p)
    db.flush()
    db.add(ExpertProfile(practitioner_id=p.id, summary=name, accepts_requests=accepting))
    db.add(
        ExpertAvailability(practitioner_id=p.id, weekday=1, start_time=time(8), end_time=time(12))
    )
    db.flush()
    return p


@pytest.fixture
def experts(db: Session, network: Network) -> dict[str, Practitioner]:
    made = {
        "wang": _expert(db, network.provincial, "王心明", "cardiology"),
        "li": _expert(db, network.provincial, "李肺清", "respiratory", "critical_care"),
        "zhang": _expert(db, network.city, "张心安", "cardiology", accepting=False),
        "zhao": _expert(db, network.county, "赵脑宁", "neurology"),
    }
    not_expert = Practitioner(
        institution_id=network.city.id, name="王普通", title="attending_physician"
    )
    not_expert.specialty_rows = [Spec(specialty="cardiology")]
    db.add(not_expert)
    db.commit()
    return made


def _search(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    response = client.get("/api/v1/experts", params=params, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def _names(body: dict[str, Any]) -> list[str]:
    return [e["name"] for e in body["items"]]


def test_all_experts_provincial_first(
    client: TestClient, actors: Actors, experts: dict[str, Practitioner]
) -> None:
    body = _search(client, actors.doctor)
    assert body["total"] == 4
    assert _names(body)[:2] == sorted(["王心明", "李肺清"])
    assert _names(body)[2:] == ["张心安", "赵脑宁"]
    card = body["items"][0]
    assert card["institution"]["name"] == "河南省人民医院"
    assert card["availability"] == [{"weekday": 1, "start": "08:00:00", "end": "12:00:00"}]


def test_by_specialty(client: TestClient, actors: Actors, experts: dict[str, Practitioner]) -> None:
    assert sorted(_names(_search(client, actors.doctor, specialty="cardiology"))) == [
        "张心安",
        "王心明",
    ]
    assert _names(_search(client, actors.doctor, specialty="critical_care")) == ["李肺清"]
    unknown = client.get("/api/v1/experts", params={"specialty": "magic"}, headers=actors.doctor)
    assert unknown.status_code == 422
    assert unknown.json()["error"]["field"] == "specialty"


def test_by_institution_and_region_subtree(
    client: TestClient, network: Network, actors: Actors, experts: dict[str, Practitioner]
) -> None:
    by_city = _search(client, actors.doctor, institution_id=network.city.id)
    assert _names(by_city) == ["张心安"]
    luoyang = _search(client, actors.doctor, region="410300")
    assert sorted(_names(luoyang)) == ["张心安", "赵脑宁"]
    assert _names(_search(client, actors.doctor, region="410323")) == ["赵脑宁"]
    assert _search(client, actors.doctor, region="410000")["total"] == 4
    assert _search(client, actors.doctor, region="410200")["total"] == 0
    bad = client.get("/api/v1/experts", params={"region": "41"}, headers=actors.doctor)
    assert bad.status_code == 422
    assert bad.json()["error"]["field"] == "region"
    unknown = client.get("/api/v1/experts", params={"region": "419999"}, headers=actors.doctor)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "region"


def test_by_name_and_combined(
    client: TestClient, actors: Actors, experts: dict[str, Practitioner]
) -> None:
    assert sorted(_names(_search(client, actors.doctor, q="心"))) == ["张心安", "王心明"]
    assert _names(_search(client, actors.doctor, q="心", region="410300")) == ["张心安"]
    assert _search(client, actors.doctor, q="%")["total"] == 0  # wildcards are literal
    assert _names(_search(client, actors.doctor, accepting=True, specialty="cardiology")) == [
        "王心明"
    ]


def test_pagination(client: TestClient, actors: Actors, experts: dict[str, Practitioner]) -> None:
    everything = _names(_search(client, actors.doctor, limit=100))
    first = _search(client, actors.doctor, limit=3, offset=0)
    second = _search(client, actors.doctor, limit=3, offset=3)
    assert first["total"] == second["total"] == 4
    assert _names(first) + _names(second) == everything
    assert (first["limit"], second["offset"]) == (3, 3)
    assert _search(client, actors.doctor, offset=10)["items"] == []
    for params in ({"limit": 101}, {"limit": 0}, {"offset": -1}, {"limit": "ten"}):
        response = client.get("/api/v1/experts", params=params, headers=actors.doctor)
        assert response.status_code == 422
        assert response.json()["error"]["field"] in ("limit", "offset")


def test_inactive_experts_and_institutions_are_hidden(
    db: Session, network: Network, experts: dict[str, Practitioner]
) -> None:
    experts["wang"].is_active = False
    network.county.is_active = False
    db.flush()
    rows, total = svc.search_experts(db, svc.ExpertQuery())
    assert total == 2
    assert {p.name for p in rows} == {"李肺清", "张心安"}

"""Institutions: creation, update, search; tiers and service-centre links."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.directory.conftest import Actors, Network
from xietong.access.models import AuditEvent
from xietong.directory import service as svc
from xietong.directory.models import ServiceLink


def test_platform_admin_creates_an_institution(
    client: TestClient, db: Session, actors: Actors
) -> None:
    body = {
        "name": "栾川县人民医院",
        "level": "county",
        "grade": "2A",
        "region_code": "410324",
        "phone": "0379-66822120",
    }
    response = client.post("/api/v1/institutions", json=body, headers=actors.platform)
    assert response.status_code == 201, response.text
    created = response.json()
    assert created["code"].startswith("XT")
    assert created["level"] == "county"
    row = db.execute(
        select(AuditEvent).where(
            AuditEvent.action == "institution.create", AuditEvent.object_id == str(created["id"])
        )
    ).scalar_one()
    assert row.outcome == "success"
    again = client.post(
        "/api/v1/institutions", json={**body, "code": created["code"]}, headers=actors.platform
    )
    assert again.status_code == 409
    assert again.json()["error"]["field"] == "code"


@pytest.mark.parametrize(
    ("region_code", "level", "status"),
    [
        ("410000", "county", 422),  # a county hospital cannot sit at province level
        ("410300", "village", 422),  # a village clinic sits in a village
        ("410323101201", "village", 201),
        ("410105", "provincial", 201),
        ("41x", "county", 422),
        ("999999", "county", 404),
    ],
)
def test_an_institution_sits_at_or_below_its_tier(
    client: TestClient, actors: Actors, region_code: str, level: str, status: int
) -> None:
    body = {"name": "某医院", "level": level, "region_code": region_code}
    response = client.post("/api/v1/institutions", json=body, headers=actors.platform)
    assert response.status_code == status, response.text
    if status != 201:
        assert response.json()["error"]["field"] == "region_code"


def test_search_by_name_level_and_region_subtree(
    client: TestClient, network: Network, actors: Actors
) -> None:
    def names(**params: str) -> list[str]:
        response = client.get("/api/v1/institutions", params=params, headers=actors.doctor)
        assert response.status_code == 200, response.text
        return [i["name"] for i in response.json()["items"]]

    assert names(q="新安") == ["新安县人民医院", "新安县石寺镇卫生院"]
    assert names(level="county") == ["新安县人民医院", "嵩县人民医院"]
    assert set(names(region="410300")) == {
        "洛阳市中心医院",
        "新安县人民医院",
        "新安县石寺镇卫生院",
        "磨五村卫生室",
        "嵩县人民医院",
    }
    assert names(region="410323101") == ["新安县石寺镇卫生院", "磨五村卫生室"]
    assert names(region="410100") == ["河南省人民医院"]
    page = client.get(
        "/api/v1/institutions", params={"limit": 2, "offset": 1}, headers=actors.doctor
    ).json()
    assert page["total"] == 6
    assert len(page["items"]) == 2


def test_institution_detail(client: TestClient, network: Network, actors: Actors) -> None:
    response = client.get(f"/api/v1/institutions/{network.county.id}", headers=actors.doctor)
    assert response.status_code == 200
    body = response.json()
    assert [r["code"] for r in body["region_path"]] == ["410000", "410300", "410323"]
    assert [c["name"] for c in body["service_centres"]] == ["河南省人民医院", "洛阳市中心医院"]
    assert body["served_count"] == 2
    missing = client.get("/api/v1/institutions/999999", headers=actors.doctor)
    assert missing.status_code == 404


def test_own_admin_updates_the_institution_but_not_its_tier(
    client: TestClient, db: Session, network: Network, actors: Actors
) -> None:
    url = f"/api/v1/institutions/{network.county.id}"
    response = client.patch(
        url, json={"grade": "3B", "phone": "0379-1"}, headers=actors.county_admin
    )
    assert response.status_code == 200, response.text
    assert response.json()["grade"] == "3B"
    refused = client.patch(url, json={"level": "city"}, headers=actors.county_admin)
    assert refused.status_code == 403
    assert refused.json()["error"]["field"] == "level"
    denied = db.execute(
        select(AuditEvent).where(
            AuditEvent.action == "institution.update", AuditEvent.outcome == "denied"
        )
    ).scalar_one()
    assert denied.object_id == str(network.county.id)
    changed = db.execute(
        select(AuditEvent).where(
            AuditEvent.action == "institution.update", AuditEvent.outcome == "success"
        )
    ).scalar_one()
    assert '"grade": [null, "3B"]' in changed.detail


def test_level_change_may_not_break_links(
    client: TestClient, network: Network, actors: Actors
) -> None:
    url = f"/api/v1/institutions/{network.county.id}"
    # The county sends work to the city hospital: it cannot become a city hospital itself.
    response = client.patch(url, json={"level": "city"}, headers=actors.platform)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == "level"
    ok = client.patch(
        f"/api/v1/institutions/{network.other_county.id}",
        json={"level": "city", "name": "嵩县中心医院"},
        headers=actors.platform,
    )
    assert ok.status_code == 200, ok.text
    assert ok.json()["level"] == "city"


# Service-centre links ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("applicant", "centre", "status"),
    [
        ("village", "other_county", 201),
        ("township", "city", 201),
        ("township", "provincial", 201),
        ("other_county", "city", 201),
        ("city", "provincial", 201),
        ("county", "other_county", 422),  # same level
        ("county", "township", 422),  # downwards
        ("provincial", "city", 422),
        ("village", "village", 422),  # itself
    ],
)
def test_service_centres_are_strictly_higher(
    client: TestClient,
    network: Network,
    actors: Actors,
    applicant: str,
    centre: str,
    status: int,
) -> None:
    source = getattr(network, applicant)
    target = getattr(network, centre)
    response = client.post(
        f"/api/v1/institutions/{source.id}/service-centres",
        json={"centre_id": target.id},
        headers=actors.platform,
    )
    assert response.status_code == status, response.text
    if status == 422:
        assert response.json()["error"]["field"] == "centre_id"
        assert response.json()["error"]["code"] == "centre_not_higher"


def test_links_listed_duplicated_and_removed(
    client: TestClient, db: Session, network: Network, actors: Actors
) -> None:
    url = f"/api/v1/institutions/{network.county.id}/service-centres"
    listed = client.get(url, headers=actors.doctor)
    assert [c["level"] for c in listed.json()] == ["provincial", "city"]
    duplicate = client.post(url, json={"centre_id": network.city.id}, headers=actors.county_admin)
    assert duplicate.status_code == 409
    assert duplicate.json()["error"]["field"] == "centre_id"
    unknown = client.post(url, json={"centre_id": 999999}, headers=actors.county_admin)
    assert unknown.status_code == 404
    assert unknown.json()["error"]["field"] == "centre_id"
    removed = client.delete(f"{url}/{network.city.id}", headers=actors.county_admin)
    assert removed.status_code == 204
    assert not svc.is_upward(db, network.county.id, network.city.id)
    again = client.delete(url, params={"centre_id": network.city.id}, headers=actors.county_admin)
    assert again.status_code == 404
    readded = client.post(url, json={"centre_id": network.city.id}, headers=actors.county_admin)
    assert readded.status_code == 201
    served = client.get(f"/api/v1/institutions/{network.city.id}/served", headers=actors.doctor)
    assert [i["name"] for i in served.json()["items"]] == ["新安县人民医院"]


def test_upward_and_served_in_the_service_layer(db: Session, network: Network) -> None:
    assert [c.name for c in svc.upward_centres(db, network.village)] == [
        "新安县人民医院",
        "新安县石寺镇卫生院",
    ]
    served, total = svc.served_institutions(db, network.county)
    assert total == 2
    assert {i.level for i in served} == {"township", "village"}
    assert svc.is_upward(db, network.village.id, network.county.id)
    assert not svc.is_upward(db, network.county.id, network.village.id)
    assert not svc.is_upward(db, network.village.id, network.provincial.id)
    network.county.is_active = False
    db.flush()
    assert not svc.is_upward(db, network.village.id, network.county.id)
    links = db.execute(select(ServiceLink)).scalars().all()
    assert len(links) == 5

"""The region tree: the shipped Henan data, the children API and region codes."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.directory.conftest import bearer, fast_user
from xietong.directory import regions
from xietong.identity.roles import Role

HENAN_DIVISIONS = {
    "410100": "郑州市",
    "410200": "开封市",
    "410300": "洛阳市",
    "410400": "平顶山市",
    "410500": "安阳市",
    "410600": "鹤壁市",
    "410700": "新乡市",
    "410800": "焦作市",
    "410900": "濮阳市",
    "411000": "许昌市",
    "411100": "漯河市",
    "411200": "三门峡市",
    "411300": "南阳市",
    "411400": "商丘市",
    "411500": "信阳市",
    "411600": "周口市",
    "411700": "驻马店市",
    "419001": "济源市",
}


@pytest.fixture
def headers(db: Session) -> dict[str, str]:
    token = bearer(db, fast_user(db, "reader", Role.LEARNER))
    db.commit()
    return token


def test_henan_has_exactly_its_18_prefecture_level_divisions(db: Session) -> None:
    rows = regions.children(db, "410000")
    assert {r.code: r.name for r in rows} == HENAN_DIVISIONS
    assert [r.code for r in rows] == sorted(HENAN_DIVISIONS)
    assert {r.level for r in rows} == {"city"}


def test_prefixes_cover_the_subtrees(db: Session) -> None:
    assert regions.get_region(db, "410000").prefix == "41"
    assert regions.get_region(db, "410300").prefix == "4103"
    assert regions.get_region(db, "419001").prefix == "419001"  # county-level code
    township = regions.children(db, "410323")[0]
    assert township.prefix == township.code
    assert all(v.code.startswith(township.prefix) for v in regions.children(db, township.code))


def test_children_api(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/api/v1/regions/410000/children", headers=headers)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["code"] == "410000"
    assert body["child_count"] == 18
    children = body["children"]
    assert [(c["code"], c["name"]) for c in children] == sorted(HENAN_DIVISIONS.items())
    assert children[0] == {"code": "410100", "name": "郑州市", "level": "city", "child_count": 12}
    assert children[-1]["code"] == "419001"
    assert children[-1]["child_count"] > 0  # Jiyuan's townships sit directly below it


def test_children_of_a_village_are_empty(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/api/v1/regions/410323101201/children", headers=headers)
    assert response.status_code == 200
    assert response.json()["children"] == []
    assert response.json()["child_count"] == 0


def test_region_with_ancestors(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/api/v1/regions/410323101", headers=headers)
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "石寺镇"
    assert body["level"] == "township"
    assert [a["code"] for a in body["ancestors"]] == ["410000", "410300", "410323"]
    assert body["child_count"] > 0


def test_region_search(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/api/v1/regions", params={"q": "洛阳"}, headers=headers)
    assert response.status_code == 200
    assert response.json()[0] == {"code": "410300", "name": "洛阳市", "level": "city"}
    cities = client.get("/api/v1/regions", params={"q": "市", "level": "city"}, headers=headers)
    assert {r["level"] for r in cities.json()} == {"city"}


@pytest.mark.parametrize(
    "path", ["/api/v1/regions/41x", "/api/v1/regions/4100", "/api/v1/regions/4100000000000"]
)
def test_malformed_region_code_is_422_naming_the_field(
    client: TestClient, headers: dict[str, str], path: str
) -> None:
    for suffix in ("", "/children"):
        response = client.get(path + suffix, headers=headers)
        assert response.status_code == 422, response.text
        error = response.json()["error"]
        assert error["field"] == "code"
        assert error["code"] == "invalid_region_code"


def test_unknown_region_code_is_404(client: TestClient, headers: dict[str, str]) -> None:
    response = client.get("/api/v1/regions/999999/children", headers=headers)
    assert response.status_code == 404
    assert response.json()["error"]["field"] == "code"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"q": ""}, "q"), ({"q": "x" * 65}, "q"), ({"q": "洛阳", "level": "planet"}, "level")],
)
def test_bad_region_search(
    client: TestClient, headers: dict[str, str], params: dict[str, str], field: str
) -> None:
    response = client.get("/api/v1/regions", params=params, headers=headers)
    assert response.status_code == 422
    assert response.json()["error"]["field"] == field


def test_regions_need_a_signed_in_user(client: TestClient) -> None:
    response = client.get("/api/v1/regions/410000/children")
    assert response.status_code == 401

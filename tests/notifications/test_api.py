"""The JSON API: list (paging, unread only), unread count, read one, read all; another
user's notification is a 404 (audited); bad input is a 4xx naming the field."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.admin_helpers import Clock
from tests.directory.conftest import denials
from tests.notifications.conftest import Site, send

BIG = 2**31
BASE = "/api/v1/notifications"


def test_list_count_read_and_read_all(client: TestClient, db: Session, site: Site) -> None:
    clock = Clock()
    for subject_id in (1, 2, 3):
        send(db, [site.coord1.id, site.coord2.id], subject_id=subject_id, link=f"/c/{subject_id}")
        clock.advance(minutes=1)
    me = site.token(db, site.coord1)
    db.commit()

    listing = client.get(BASE, headers={**me, "Accept-Language": "en"}).json()
    assert (listing["total"], listing["unread"], listing["limit"], listing["offset"]) == (
        3,
        3,
        20,
        0,
    )
    first = listing["items"][0]
    assert first["link"] == "/c/3"
    assert first["title"] == "Welcome, 磨五村卫生室"
    assert first["open_url"] == f"/notifications/{first['id']}/open"
    assert (first["read"], first["read_at"], first["kind"]) == (
        False,
        None,
        "consultation.submitted",
    )
    zh = client.get(BASE, headers={**me, "Accept-Language": "zh-CN"}).json()
    assert zh["items"][0]["title"] == "欢迎，磨五村卫生室"

    assert client.get(f"{BASE}/unread-count", headers=me).json() == {"unread": 3}
    read = client.post(f"{BASE}/{first['id']}/read", headers=me)
    assert read.status_code == 200
    assert read.json()["read"] is True
    assert client.get(f"{BASE}/unread-count", headers=me).json() == {"unread": 2}

    page = client.get(BASE, params={"limit": 1, "offset": 2}, headers=me).json()
    assert [i["link"] for i in page["items"]] == ["/c/3"]  # read: last
    unread = client.get(BASE, params={"unread_only": "true"}, headers=me).json()
    assert [i["link"] for i in unread["items"]] == ["/c/2", "/c/1"]
    assert unread["total"] == 2

    assert client.post(f"{BASE}/read-all", headers=me).json() == {"marked": 2, "unread": 0}
    assert client.post(f"{BASE}/read-all", headers=me).json() == {"marked": 0, "unread": 0}
    # The other coordinator's copies are still unread.
    other = site.token(db, site.coord2)
    db.commit()
    assert client.get(f"{BASE}/unread-count", headers=other).json() == {"unread": 3}


def test_another_users_notification_is_not_found(
    client: TestClient, db: Session, site: Site
) -> None:
    [nid] = send(db, [site.coord1.id])
    doctor = site.token(db, site.doctor)
    db.commit()
    response = client.post(f"{BASE}/{nid}/read", headers=doctor)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "notification_not_found"
    missing = client.post(f"{BASE}/{nid + 999}/read", headers=doctor)
    assert missing.status_code == 404
    assert missing.json() == response.json()  # the same answer: nothing leaks
    assert [d.object_id for d in denials(db, "notification.read")] == [
        str(nid),
        str(nid + 999),
    ]
    assert client.get(BASE, headers=doctor).json()["total"] == 0
    me = site.token(db, site.coord1)
    db.commit()
    assert client.get(f"{BASE}/unread-count", headers=me).json() == {"unread": 1}


@pytest.mark.parametrize(
    ("method", "path", "params", "field"),
    [
        ("GET", BASE, {"limit": 0}, "limit"),
        ("GET", BASE, {"limit": 101}, "limit"),
        ("GET", BASE, {"limit": "ten"}, "limit"),
        ("GET", BASE, {"offset": -1}, "offset"),
        ("GET", BASE, {"offset": BIG}, "offset"),
        ("GET", BASE, {"unread_only": "perhaps"}, "unread_only"),
        ("GET", BASE, {"colour": "red"}, "colour"),
        ("POST", f"{BASE}/{BIG}/read", {}, "notification_id"),
        ("POST", f"{BASE}/0/read", {}, "notification_id"),
        ("POST", f"{BASE}/abc/read", {}, "notification_id"),
        ("POST", f"{BASE}/1.5/read", {}, "notification_id"),
    ],
)
def test_bad_input_names_the_field(
    client: TestClient,
    db: Session,
    site: Site,
    method: str,
    path: str,
    params: dict[str, Any],
    field: str,
) -> None:
    me = site.token(db, site.coord1)
    db.commit()
    response = client.request(method, path, params=params, headers=me)
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"] == field


def test_anonymous_is_refused(client: TestClient) -> None:
    for method, path in [
        ("GET", BASE),
        ("GET", f"{BASE}/unread-count"),
        ("POST", f"{BASE}/1/read"),
        ("POST", f"{BASE}/read-all"),
    ]:
        assert client.request(method, path).status_code == 401

"""The /api/v1/live routes: thin over the services; JSON errors name the field; another
institution's user gets 404 everywhere; malformed, oversized and hostile bodies."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.live.conftest import Net, audits, subject
from xietong.consultation.models import Consultation

API = "/api/v1/live"


def create(client: TestClient, net: Net, c: Consultation, who: str = "applicant", **body: Any):
    return client.post(f"{API}/sessions", json={**subject(c), **body}, headers=net.tokens[who])


def test_create_get_list_end_and_attendance(
    client: TestClient, net: Net, consult: Consultation, db: Any
) -> None:
    answer = create(client, net, consult, title="病例讨论")
    assert answer.status_code == 201, answer.text
    live = answer.json()
    assert live["state"] == "open"
    assert live["title"] == "病例讨论"
    assert live["url"] == f"/live/{live['id']}"
    assert live["is_host"]
    got = client.get(f"{API}/sessions/{live['id']}", headers=net.tokens["expert_b"])
    assert got.status_code == 200
    assert not got.json()["is_host"]
    listed = client.get(
        f"{API}/sessions", params=subject(consult), headers=net.tokens["coordinator"]
    )
    assert [s["id"] for s in listed.json()] == [live["id"]]
    ended = client.post(f"{API}/sessions/{live['id']}/end", headers=net.tokens["coordinator"])
    assert ended.json()["state"] == "ended"
    report = client.get(f"{API}/sessions/{live['id']}/attendance", headers=net.tokens["applicant"])
    assert report.status_code == 200
    assert report.json()["rows"] == []
    assert audits(db, "live.attendance")


def test_scheduled_cancel_and_instant(client: TestClient, net: Net, consult: Consultation) -> None:
    answer = create(client, net, consult, scheduled_at="2026-11-21T02:00:00Z", planned_minutes=45)
    assert answer.json()["state"] == "scheduled"
    sid = answer.json()["id"]
    refused = client.post(f"{API}/sessions/{sid}/cancel", headers=net.tokens["expert_b"])
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "role_not_allowed"
    assert (
        client.post(f"{API}/sessions/{sid}/end", headers=net.tokens["applicant"]).status_code == 409
    )
    done = client.post(f"{API}/sessions/{sid}/cancel", headers=net.tokens["applicant"])
    assert done.json()["state"] == "cancelled"
    first = client.post(f"{API}/instant", json=subject(consult), headers=net.tokens["expert_b"])
    assert first.status_code == 201
    again = client.post(f"{API}/instant", json=subject(consult), headers=net.tokens["applicant"])
    assert again.status_code == 200
    assert again.json()["id"] == first.json()["id"]


def test_links_create_list_revoke(client: TestClient, net: Net, consult: Consultation) -> None:
    sid = create(client, net, consult).json()["id"]
    made = client.post(
        f"{API}/sessions/{sid}/links", json={"label": "省级专家"}, headers=net.tokens["applicant"]
    )
    assert made.status_code == 201
    link = made.json()
    assert len(link["token"]) >= 43
    assert link["url"] == f"/live/join/{link['token']}"
    listed = client.get(f"{API}/sessions/{sid}/links", headers=net.tokens["applicant"]).json()
    assert [item["token"] for item in listed] == [None]  # never shown again
    revoked = client.post(
        f"{API}/sessions/{sid}/links/{link['id']}/revoke", headers=net.tokens["applicant"]
    )
    assert revoked.json()["revoked_at"] is not None
    for who in ("expert_b", "viewer"):
        answer = client.post(f"{API}/sessions/{sid}/links", json={}, headers=net.tokens[who])
        assert answer.status_code == 403


def test_another_institution_gets_404_everywhere(
    client: TestClient, net: Net, consult: Consultation
) -> None:
    sid = create(client, net, consult).json()["id"]
    link_id = client.post(
        f"{API}/sessions/{sid}/links", json={}, headers=net.tokens["applicant"]
    ).json()["id"]
    calls = [
        ("post", f"{API}/sessions", {**subject(consult)}),
        ("post", f"{API}/instant", subject(consult)),
        ("get", f"{API}/sessions?subject_kind=consultation&subject_id={consult.id}", None),
        ("get", f"{API}/sessions/{sid}", None),
        ("post", f"{API}/sessions/{sid}/cancel", None),
        ("post", f"{API}/sessions/{sid}/end", None),
        ("post", f"{API}/sessions/{sid}/links", {}),
        ("get", f"{API}/sessions/{sid}/links", None),
        ("post", f"{API}/sessions/{sid}/links/{link_id}/revoke", None),
        ("get", f"{API}/sessions/{sid}/attendance", None),
    ]
    for who in ("other_doctor", "other_coordinator", "other_expert"):
        for method, url, body in calls:
            answer = client.request(method, url, json=body, headers=net.tokens[who])
            assert answer.status_code == 404, (who, url, answer.text)


def test_unauthenticated_is_401(client: TestClient, consult: Consultation) -> None:
    assert client.get(f"{API}/sessions/1").status_code == 401
    assert client.post(f"{API}/sessions", json=subject(consult)).status_code in (401, 403)


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"subject_kind": "consultation"}, "subject_id"),
        ({"subject_kind": "Consult!", "subject_id": "1"}, "subject_kind"),
        ({"subject_kind": "consultation", "subject_id": "1\x00"}, "subject_id"),
        ({"subject_kind": "consultation", "subject_id": "1' OR 1=1"}, "subject_id"),
        ({"subject_kind": "consultation", "subject_id": "9" * 65}, "subject_id"),
        ({"subject_kind": "consultation", "subject_id": "1", "title": "x" * 201}, "title"),
        ({"subject_kind": "consultation", "subject_id": "1", "title": "a\x07"}, "title"),
        (
            {"subject_kind": "consultation", "subject_id": "1", "planned_minutes": 0},
            "planned_minutes",
        ),
        ({"subject_kind": "consultation", "subject_id": "1", "size": 10**12}, "size"),
        (
            {"subject_kind": "consultation", "subject_id": "1", "scheduled_at": "soon"},
            "scheduled_at",
        ),
        ({"subject_kind": "consultation", "subject_id": "1", "host_user_id": 1}, "host_user_id"),
        ({"subject_kind": ["consultation"], "subject_id": "1"}, "subject_kind"),
    ],
)
def test_malformed_bodies_name_the_field(
    client: TestClient, net: Net, body: dict[str, Any], field: str
) -> None:
    answer = client.post(f"{API}/sessions", json=body, headers=net.tokens["applicant"])
    assert answer.status_code == 422, answer.text
    assert field in (answer.json()["error"].get("field") or "")


def test_hostile_paths_and_bodies(client: TestClient, net: Net, consult: Consultation) -> None:
    headers = net.tokens["applicant"]
    for path in (f"{API}/sessions/0", f"{API}/sessions/99999999999", f"{API}/sessions/abc"):
        assert client.get(path, headers=headers).status_code == 422
    assert client.get(f"{API}/sessions/2147483647", headers=headers).status_code == 404
    not_json = client.post(
        f"{API}/sessions",
        content=b"{not json",
        headers={**headers, "content-type": "application/json"},
    )
    assert not_json.status_code in (400, 422)
    huge = client.post(
        f"{API}/sessions",
        content=b'{"title": "' + b"x" * 3_000_000 + b'"}',
        headers={**headers, "content-type": "application/json"},
    )
    assert huge.status_code == 413
    sid = create(client, net, consult).json()["id"]
    link = client.post(
        f"{API}/sessions/{sid}/links", json={"label": "<script>alert(1)</script>"}, headers=headers
    )
    assert link.status_code == 201  # stored as text, escaped where shown
    assert (
        client.post(f"{API}/sessions/{sid}/links/99999/revoke", headers=headers).status_code == 404
    )

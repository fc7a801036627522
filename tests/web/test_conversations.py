"""Group conversations over the API (/api/v1/conversations, /api/v1/colleagues) and the
WebSocket (group:<id>): start, list with unread counts, messages with files, idempotent
resends, members added and leaving; a non-member gets 404 (audited) on every route and on
subscribe/post; malformed, oversized and hostile input is named by field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.consultation.conftest import Net, audits
from tests.consultation.conftest import _frozen_clock as _frozen_clock
from tests.consultation.conftest import net as net
from tests.records.test_documents import phone_photo
from xietong.messaging.models import Conversation, Message

API = "/api/v1/conversations"
OUTSIDERS = ("coordinator", "other_coordinator", "viewer")


def _id(n: Net, who: str) -> int:
    user_id = n.p[who].user_id
    assert user_id is not None
    return user_id


def _start(client: TestClient, n: Net, *others: str, title: str = "病例讨论") -> dict[str, Any]:
    body = {"title": title, "member_ids": [_id(n, o) for o in others]}
    r = client.post(API, json=body, headers=n.tokens["applicant"])
    assert r.status_code == 201, r.text
    out: dict[str, Any] = r.json()
    return out


def _count(db: Session, model: Any) -> int:
    return int(db.execute(select(func.count()).select_from(model)).scalar_one())


@pytest.fixture
def group(client: TestClient, net: Net) -> int:
    return int(_start(client, net, "expert_a", "other_doctor")["id"])


def test_start_write_and_list(client: TestClient, db: Session, net: Net) -> None:
    started = _start(client, net, "expert_a", "other_doctor", title="<b>胸痛</b> 讨论")
    cid = started["id"]
    assert started["title"] == "<b>胸痛</b> 讨论"
    members = {m["name"]: m["institution"] for m in started["members"]}
    assert members == {
        "c_applicant": "测试村卫生室",
        "c_expert_a": "测试县医院",
        "c_otherdoc": "外地医院",
    }
    h = net.tokens["other_doctor"]
    r = client.post(
        f"{API}/{cid}/messages", json={"text": "我来看看", "client_id": "x1"}, headers=h
    )
    assert r.status_code == 201, r.text
    again = client.post(
        f"{API}/{cid}/messages", json={"text": "我来看看", "client_id": "x1"}, headers=h
    )
    assert (again.status_code, again.json()["seq"]) == (200, r.json()["seq"])
    photo = client.post(
        f"{API}/{cid}/messages/files",
        data={"text": "片子"},
        files={"file": ("ct.jpg", phone_photo(), "image/jpeg")},
        headers=net.tokens["expert_a"],
    )
    assert photo.status_code == 201, photo.text
    att = photo.json()["attachment"]
    assert att["url"] == f"{API}/{cid}/messages/{photo.json()['seq']}/attachment"
    assert client.get(att["url"], headers=h).status_code == 200
    assert client.get(att["thumbnail_url"], headers=h).status_code == 200
    mine = client.get(API, headers=net.tokens["applicant"]).json()["items"]
    assert [(g["id"], g["unread"]) for g in mine] == [(cid, 2)]
    thread = client.get(f"{API}/{cid}/messages", headers=net.tokens["applicant"]).json()
    assert [m["kind"] for m in thread["items"]] == ["system", "text", "image"]
    assert thread["items"][0]["event"] == "group.create"
    assert client.get(API, headers=net.tokens["applicant"]).json()["items"][0]["unread"] == 0
    assert audits(db, "group.message.retry", object_id=str(cid))


def test_members_and_leaving(client: TestClient, db: Session, net: Net, group: int) -> None:
    h = net.tokens["expert_a"]
    r = client.post(
        f"{API}/{group}/members", json={"member_ids": [_id(net, "expert_b")]}, headers=h
    )
    assert r.status_code == 200, r.text
    assert len(r.json()["members"]) == 4
    assert client.delete(f"{API}/{group}/members/me", headers=h).status_code == 204
    assert client.get(f"{API}/{group}/messages", headers=h).status_code == 404
    assert client.get(API, headers=h).json()["items"] == []
    events = [
        m["event"]
        for m in client.get(f"{API}/{group}/messages", headers=net.tokens["expert_b"]).json()[
            "items"
        ]
    ]
    assert events == ["group.create", "group.add", "group.leave"]
    assert audits(db, "group.leave", object_id=str(group))


def test_the_colleague_search(client: TestClient, net: Net) -> None:
    r = client.get("/api/v1/colleagues", params={"q": "expert"}, headers=net.tokens["applicant"])
    assert [c["username"] for c in r.json()] == ["c_expert_a", "c_expert_b", "c_expert_c"]
    for q in ("", "x" * 65):
        bad = client.get("/api/v1/colleagues", params={"q": q}, headers=net.tokens["applicant"])
        assert (bad.status_code, bad.json()["error"]["field"]) == (422, "q")
    # Only staff look colleagues up or start conversations.
    admin = net.tokens["platform"]
    assert client.get("/api/v1/colleagues", params={"q": "c"}, headers=admin).status_code == 403
    body = {"title": "t", "member_ids": [_id(net, "expert_a")]}
    assert client.post(API, json=body, headers=admin).status_code == 403


@pytest.mark.parametrize("who", OUTSIDERS)
def test_a_non_member_gets_404_on_every_route(
    client: TestClient, db: Session, net: Net, group: int, who: str
) -> None:
    seq = client.post(
        f"{API}/{group}/messages/files",
        files={"file": ("a.jpg", phone_photo(), "image/jpeg")},
        headers=net.tokens["expert_a"],
    ).json()["seq"]
    before = _count(db, Message)
    h = net.tokens[who]
    for path in ("/messages", f"/messages/{seq}/attachment", f"/messages/{seq}/thumbnail"):
        r = client.get(f"{API}/{group}{path}", headers=h)
        assert (r.status_code, r.json()["error"]["code"]) == (404, "group_not_found"), path
    calls = [
        client.post(f"{API}/{group}/messages", json={"text": "偷看"}, headers=h),
        client.post(
            f"{API}/{group}/messages/files",
            files={"file": ("a.jpg", phone_photo(), "image/jpeg")},
            headers=h,
        ),
        client.post(f"{API}/{group}/members", json={"member_ids": [_id(net, who)]}, headers=h),
        client.delete(f"{API}/{group}/members/me", headers=h),
    ]
    assert [c.status_code for c in calls] == [404, 404, 404, 404]
    assert _count(db, Message) == before
    for action in (
        "group.messages",
        "group.message",
        "group.message.attachment",
        "group.members.add",
        "group.leave",
    ):
        rows = audits(db, action, outcome="denied", object_id=str(group))
        assert [r.actor_user_id for r in rows] == [net.p[who].user_id] * len(rows), action
        assert rows, action
    assert client.get(API, headers=h).json()["items"] == []


BAD_STARTS: list[tuple[str, Any, str]] = [
    ("no title", {"member_ids": [1]}, "title"),
    ("empty title", {"title": " ", "member_ids": [1]}, "title"),
    ("long title", {"title": "长" * 101, "member_ids": [1]}, "title"),
    ("NUL title", {"title": "a\x00b", "member_ids": [1]}, "title"),
    ("no members", {"title": "t", "member_ids": []}, "member_ids"),
    ("fifty members", {"title": "t", "member_ids": list(range(1, 51))}, "member_ids"),
    ("not ids", {"title": "t", "member_ids": ["x"]}, "member_ids.0"),
    ("huge id", {"title": "t", "member_ids": [2**31]}, "member_ids.0"),
    ("extra", {"title": "t", "member_ids": [1], "owner": 1}, "owner"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD_STARTS, ids=[b[0] for b in BAD_STARTS])
def test_bad_starts_name_their_field(
    client: TestClient, db: Session, net: Net, case: str, body: Any, field: str
) -> None:
    before = _count(db, Conversation)
    r = client.post(API, json=body, headers=net.tokens["applicant"])
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert _count(db, Conversation) == before


def test_bad_members_and_messages(client: TestClient, db: Session, net: Net, group: int) -> None:
    h = net.tokens["applicant"]
    unknown = client.post(API, json={"title": "t", "member_ids": [999_999]}, headers=h)
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (422, "member_not_found")
    admin = client.post(API, json={"title": "t", "member_ids": [_id(net, "platform")]}, headers=h)
    assert (admin.status_code, admin.json()["error"]["field"]) == (422, "member_ids")
    many = client.post(f"{API}/{group}/members", json={"member_ids": list(range(1, 51))}, headers=h)
    assert (many.status_code, many.json()["error"]["field"]) == (422, "member_ids")
    before = _count(db, Message)
    for body, field in (
        ({"text": ""}, "text"),
        ({"text": "长" * 4001}, "text"),
        ({"text": "a\x00b"}, "text"),
        ({"text": "ok", "client_id": "a b"}, "client_id"),
    ):
        r = client.post(f"{API}/{group}/messages", json=body, headers=h)
        assert (r.status_code, r.json()["error"]["field"]) == (422, field)
    r = client.post(
        f"{API}/{group}/messages",
        content=b"{nope",
        headers={**h, "Content-Type": "application/json"},
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "malformed_json")
    r = client.get(f"{API}/{2**31}/messages", headers=h)
    assert (r.status_code, r.json()["error"]["field"]) == (422, "conversation_id")
    r = client.post(
        f"{API}/{group}/messages/files",
        files={"file": ("run.exe", b"MZ" + b"\0" * 300, "image/png")},
        headers=h,
    )
    assert (r.status_code, r.json()["error"]["field"]) == (415, "file")
    assert _count(db, Message) == before
    hostile = client.post(f"{API}/{group}/messages", json={"text": "<script>x</script>"}, headers=h)
    assert hostile.json()["text"] == "<script>x</script>"  # stored as text; pages escape it


# Over the WebSocket ---------------------------------------------------------------------------


def _next(ws: Any, kind: str) -> dict[str, Any]:
    for _ in range(50):
        frame: dict[str, Any] = ws.receive_json()
        if frame["type"] == kind:
            return frame
    raise AssertionError(f"no {kind} frame")


def test_websocket_members_subscribe_and_post(
    client: TestClient, db: Session, net: Net, group: int
) -> None:
    key = f"group:{group}"
    with client.websocket_connect("/ws", headers=net.tokens["other_doctor"]) as other:
        other.receive_json()
        other.send_json({"type": "subscribe", "conversation": key, "after": 0})
        assert _next(other, "message")["message"]["event"] == "group.create"
        assert _next(other, "subscribed")["can_post"] is True
        with client.websocket_connect("/ws", headers=net.tokens["applicant"]) as me:
            me.receive_json()
            me.send_json({"type": "post", "conversation": key, "text": "在吗", "client_id": "k"})
            assert _next(me, "posted")["created"] is True
            me.send_json({"type": "post", "conversation": key, "text": "在吗", "client_id": "k"})
            assert _next(me, "posted")["created"] is False
            pushed = _next(other, "message")["message"]
            assert (pushed["text"], pushed["sender_name"]) == ("在吗", "c_applicant")
        # Leaving audits what the push delivered (the server does it before answering).
        other.send_json({"type": "unsubscribe", "conversation": key})
        _next(other, "unsubscribed")
    rows = audits(db, "group.messages", object_id=str(group))
    assert [json.loads(r.detail)["via"] for r in rows] == ["websocket", "websocket push"]


@pytest.mark.parametrize("who", OUTSIDERS)
def test_websocket_non_members_get_404(
    client: TestClient, db: Session, net: Net, group: int, who: str
) -> None:
    key = f"group:{group}"
    before = _count(db, Message)
    with client.websocket_connect("/ws", headers=net.tokens[who]) as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe", "conversation": key, "after": 0})
        assert _next(ws, "error")["status"] == 404
        ws.send_json({"type": "post", "conversation": key, "text": "偷看"})
        assert _next(ws, "error")["status"] == 404
        ws.send_json({"type": "subscribe", "conversation": "group:99999999999"})
        assert _next(ws, "error")["status"] == 404
    assert _count(db, Message) == before
    denied = [
        r
        for r in audits(db, "group.messages") + audits(db, "group.message")
        if r.outcome == "denied" and r.actor_user_id == net.p[who].user_id
    ]
    assert len(denied) == 3

"""The referral's conversation over the API and the WebSocket: the sending doctor and the
receiving desk and clinicians write to each other in order, with photos and PDFs; the
referral's steps appear as status events; resends are idempotent; who may read and post,
and until when; another institution's users get 404 (audited) on every route and on
subscribe/post; the "new message" notification; bad input named by field."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.records.test_documents import pdf_bytes, phone_photo
from tests.referral.conftest import Net, audits, reach
from xietong.messaging.models import Message
from xietong.notifications.models import Notification

API = "/api/v1/referrals"
UNRELATED = ("other_doctor", "other_desk", "city_desk", "platform")


def _post(client: TestClient, n: Net, rid: int, who: str, text: str, **extra: Any) -> Any:
    return client.post(f"{API}/{rid}/messages", json={"text": text, **extra}, headers=n.tokens[who])


def _read(client: TestClient, n: Net, rid: int, who: str, after: int = 0) -> Any:
    r = client.get(f"{API}/{rid}/messages", params={"after": after}, headers=n.tokens[who])
    assert r.status_code == 200, r.text
    return r.json()


def _messages(db: Session) -> int:
    return int(db.execute(select(func.count()).select_from(Message)).scalar_one())


def test_sender_desk_and_clinician_write_to_each_other_in_order(
    client: TestClient, db: Session, net: Net
) -> None:
    r = reach(db, net, "up", "arrived")
    db.commit()
    first = _post(client, net, r.id, "sender", "患者已出发，请留意")
    assert first.status_code == 201, first.text
    assert (first.json()["kind"], first.json()["sender_name"]) == ("text", "r_sender")
    assert _post(client, net, r.id, "desk", "已安排床位").status_code == 201
    assert _post(client, net, r.id, "clinician", "已接诊，心电图正常").status_code == 201
    thread = _read(client, net, r.id, "county_doctor")
    events = [m["event"] for m in thread["items"] if m["kind"] == "system"]
    assert events == ["referral.request", "referral.accept", "referral.check_in"]
    texts = [m["text"] for m in thread["items"] if m["kind"] == "text"]
    assert texts == ["患者已出发，请留意", "已安排床位", "已接诊，心电图正常"]
    seqs = [m["seq"] for m in thread["items"]]
    assert seqs == list(range(1, len(seqs) + 1))
    accepted = next(m for m in thread["items"] if m["event"] == "referral.accept")
    assert accepted["sender_name"] == "r_desk"
    assert accepted["event_data"] == {"from": "requested", "to": "accepted", "note": None}
    assert thread["can_post"] is True
    assert _read(client, net, r.id, "sender", after=thread["last_seq"])["items"] == []


def test_photos_pdfs_and_resends(client: TestClient, db: Session, net: Net) -> None:
    r = reach(db, net, "up", "accepted")
    db.commit()
    h = net.tokens["sender"]
    sent = {"text": "心电图", "client_id": "ecg-1"}
    photo = client.post(
        f"{API}/{r.id}/messages/files",
        data=sent,
        files={"file": ("心电图.jpg", phone_photo(), "image/jpeg")},
        headers=h,
    )
    assert photo.status_code == 201, photo.text
    att = photo.json()["attachment"]
    assert att["url"] == f"{API}/{r.id}/messages/{photo.json()['seq']}/attachment"
    got = client.get(att["url"], headers=net.tokens["desk"])
    assert (got.status_code, got.headers["cache-control"]) == (200, "private, no-store")
    assert client.get(att["thumbnail_url"], headers=net.tokens["clinician"]).status_code == 200
    again = client.post(
        f"{API}/{r.id}/messages/files",
        data=sent,
        files={"file": ("心电图.jpg", phone_photo(), "image/jpeg")},
        headers=h,
    )
    assert (again.status_code, again.json()["seq"]) == (200, photo.json()["seq"])
    pdf = client.post(
        f"{API}/{r.id}/messages/files",
        files={"file": ("出院小结.pdf", pdf_bytes(2), "application/pdf")},
        headers=net.tokens["desk"],
    )
    assert (pdf.json()["kind"], pdf.json()["attachment"]["pdf_pages"]) == ("file", 2)
    first = _post(client, net, r.id, "sender", "请尽快", client_id="req-1")
    same = _post(client, net, r.id, "sender", "请尽快", client_id="req-1")
    assert (first.status_code, same.status_code) == (201, 200)
    assert first.json()["seq"] == same.json()["seq"]
    other = _post(client, net, r.id, "sender", "改了", client_id="req-1")
    assert (other.status_code, other.json()["error"]["code"]) == (409, "client_id_reused")
    assert audits(db, "referral.message.retry", object_id=str(r.id))
    assert len(audits(db, "referral.message.attachment", object_id=str(r.id))) == 2


@pytest.mark.parametrize("who", UNRELATED)
def test_another_institution_gets_404_on_every_route(
    client: TestClient, db: Session, net: Net, who: str
) -> None:
    r = reach(db, net, "up", "accepted")
    db.commit()
    seq = client.post(
        f"{API}/{r.id}/messages/files",
        files={"file": ("a.jpg", phone_photo(), "image/jpeg")},
        headers=net.tokens["sender"],
    ).json()["seq"]
    before = _messages(db)
    h = net.tokens[who]
    for path in ("/messages", f"/messages/{seq}/attachment", f"/messages/{seq}/thumbnail"):
        got = client.get(f"{API}/{r.id}{path}", headers=h)
        assert (got.status_code, got.json()["error"]["code"]) == (404, "referral_not_found")
    assert _post(client, net, r.id, who, "hello").status_code == 404
    upload = client.post(
        f"{API}/{r.id}/messages/files",
        files={"file": ("a.jpg", phone_photo(), "image/jpeg")},
        headers=h,
    )
    assert upload.status_code == 404
    assert _messages(db) == before
    for action in ("referral.messages", "referral.message", "referral.message.attachment"):
        assert audits(db, action, outcome="denied", object_id=str(r.id)), action


def test_who_may_post_and_until_when(client: TestClient, db: Session, net: Net) -> None:
    waiting = reach(db, net, "up", "requested")
    done = reach(db, net, "up", "completed")
    rejected = reach(db, net, "up", "rejected")
    db.commit()
    # The sending clinic's coordinator sees the referral but takes no part in it.
    assert _read(client, net, waiting.id, "village_desk")["can_post"] is False
    refused = _post(client, net, waiting.id, "village_desk", "我也说")
    assert (refused.status_code, refused.json()["error"]["code"]) == (403, "role_not_allowed")
    (row,) = [a for a in audits(db, "referral.message") if a.outcome == "denied"]
    assert json.loads(row.detail) == {"reason": "role"}
    # Before it is accepted the desk and the receiving doctors already answer.
    assert _post(client, net, waiting.id, "desk", "请补充心电图").status_code == 201
    assert _post(client, net, waiting.id, "radiologist", "CT室已知悉").status_code == 201
    for closed in (done, rejected):
        answer = _post(client, net, closed.id, "sender", "还在吗")
        assert (answer.status_code, answer.json()["error"]["field"]) == (409, "state")
        assert answer.json()["error"]["code"] == "conversation_closed"
        kept = _read(client, net, closed.id, "sender")
        assert kept["can_post"] is False
        assert kept["items"][-1]["kind"] == "system"


def test_the_other_party_is_told_once_until_they_read(
    client: TestClient, db: Session, net: Net
) -> None:
    r = reach(db, net, "up", "accepted")
    db.commit()
    desk = net.p["desk"].user_id

    def unread(user_id: int | None) -> list[Notification]:
        db.expire_all()
        return list(
            db.execute(
                select(Notification).where(
                    Notification.recipient_user_id == user_id,
                    Notification.kind == "referral.message",
                    Notification.read_at.is_(None),
                )
            ).scalars()
        )

    _post(client, net, r.id, "sender", "一")
    _post(client, net, r.id, "sender", "二")
    assert len(unread(desk)) == 1
    assert unread(desk)[0].link == f"/referrals/{r.id}#conversation"
    assert unread(net.p["sender"].user_id) == []
    _read(client, net, r.id, "desk")
    assert unread(desk) == []
    # A clinician who answers is told of what comes next; the sender hears of the answer.
    _post(client, net, r.id, "clinician", "收到")
    assert len(unread(net.p["sender"].user_id)) == 1
    _post(client, net, r.id, "sender", "谢谢")
    assert len(unread(net.p["clinician"].user_id)) == 1


BAD: list[tuple[str, Any, str]] = [
    ("empty", {"text": ""}, "text"),
    ("blank", {"text": "   "}, "text"),
    ("too long", {"text": "长" * 4001}, "text"),
    ("NUL", {"text": "a\x00b"}, "text"),
    ("extra", {"text": "ok", "to": "all"}, "to"),
    ("client id", {"text": "ok", "client_id": "a b"}, "client_id"),
]


@pytest.mark.parametrize(("case", "body", "field"), BAD, ids=[b[0] for b in BAD])
def test_bad_messages_name_their_field(
    client: TestClient, db: Session, net: Net, case: str, body: Any, field: str
) -> None:
    r = reach(db, net, "up", "accepted")
    db.commit()
    before = _messages(db)
    got = client.post(f"{API}/{r.id}/messages", json=body, headers=net.tokens["sender"])
    assert (got.status_code, got.json()["error"]["field"]) == (422, field)
    assert _messages(db) == before


def test_bad_requests_and_files(client: TestClient, db: Session, net: Net) -> None:
    r = reach(db, net, "up", "accepted")
    db.commit()
    before = _messages(db)
    h = net.tokens["sender"]
    got = client.post(
        f"{API}/{r.id}/messages",
        content=b"{not json",
        headers={**h, "Content-Type": "application/json"},
    )
    assert (got.status_code, got.json()["error"]["code"]) == (400, "malformed_json")
    got = client.get(f"{API}/{r.id}/messages", params={"after": -1}, headers=h)
    assert (got.status_code, got.json()["error"]["field"]) == (422, "after")
    got = client.get(f"{API}/{2**31}/messages", headers=h)
    assert (got.status_code, got.json()["error"]["field"]) == (422, "referral_id")
    got = client.get(f"{API}/{r.id}/messages/{2**31}/attachment", headers=h)
    assert (got.status_code, got.json()["error"]["field"]) == (422, "seq")
    for upload, status in (
        (("run.exe", b"MZ" + b"\x00" * 500, "image/png"), 415),
        (("fake.pdf", b"%PDF-1.4 nothing else", "application/pdf"), 422),
    ):
        got = client.post(f"{API}/{r.id}/messages/files", files={"file": upload}, headers=h)
        assert (got.status_code, got.json()["error"]["field"]) == (status, "file")
    big = b"\xff\xd8\xff" + b"0" * (33 * 1024 * 1024)
    got = client.post(
        f"{API}/{r.id}/messages/files", files={"file": ("big.jpg", big, "image/jpeg")}, headers=h
    )
    assert (got.status_code, got.json()["error"]["field"]) == (413, "file")
    seq = _post(client, net, r.id, "sender", "文字").json()["seq"]
    got = client.get(f"{API}/{r.id}/messages/{seq}/attachment", headers=h)
    assert (got.status_code, got.json()["error"]["code"]) == (404, "attachment_not_found")
    assert _messages(db) == before + 1


# Over the WebSocket ---------------------------------------------------------------------------


def _next(ws: Any, kind: str) -> dict[str, Any]:
    for _ in range(50):
        frame: dict[str, Any] = ws.receive_json()
        if frame["type"] == kind:
            return frame
    raise AssertionError(f"no {kind} frame")


def test_websocket_subscribe_and_post(client: TestClient, db: Session, net: Net) -> None:
    r = reach(db, net, "up", "accepted")
    db.commit()
    key = f"referral:{r.id}"
    with client.websocket_connect("/ws", headers=net.tokens["desk"]) as desk:
        desk.receive_json()
        desk.send_json({"type": "subscribe", "conversation": key, "after": 0})
        replay = [_next(desk, "message")["message"]["event"] for _ in range(2)]
        assert replay == ["referral.request", "referral.accept"]
        assert _next(desk, "subscribed")["can_post"] is True
        with client.websocket_connect("/ws", headers=net.tokens["sender"]) as sender:
            sender.receive_json()
            sender.send_json(
                {"type": "post", "conversation": key, "text": "患者明早到", "client_id": "w1"}
            )
            assert _next(sender, "posted")["seq"] == 3
            pushed = _next(desk, "message")["message"]
            assert (pushed["text"], pushed["sender_name"]) == ("患者明早到", "r_sender")
            assert pushed["attachment"] is None
        # Leaving audits what the push delivered (the server does it before answering).
        desk.send_json({"type": "unsubscribe", "conversation": key})
        _next(desk, "unsubscribed")
    rows = audits(db, "referral.messages", object_id=str(r.id))
    assert [json.loads(a.detail)["via"] for a in rows] == ["websocket", "websocket push"]


@pytest.mark.parametrize("who", UNRELATED)
def test_websocket_outsiders_get_404(client: TestClient, db: Session, net: Net, who: str) -> None:
    r = reach(db, net, "up", "accepted")
    db.commit()
    key = f"referral:{r.id}"
    before = _messages(db)
    with client.websocket_connect("/ws", headers=net.tokens[who]) as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe", "conversation": key, "id": "s"})
        assert (_next(ws, "error")["status"], "s") == (404, "s")
        ws.send_json({"type": "post", "conversation": key, "text": "偷看"})
        assert _next(ws, "error")["status"] == 404
    assert _messages(db) == before
    denied = [
        a
        for a in audits(db, "referral.messages") + audits(db, "referral.message")
        if a.outcome == "denied" and a.actor_user_id == net.p[who].user_id
    ]
    assert len(denied) >= 2


def test_websocket_viewer_follows_but_closed_referrals_take_no_posts(
    client: TestClient, db: Session, net: Net
) -> None:
    open_one = reach(db, net, "up", "accepted")
    closed = reach(db, net, "up", "cancelled")
    db.commit()
    with client.websocket_connect("/ws", headers=net.tokens["village_desk"]) as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe", "conversation": f"referral:{open_one.id}"})
        assert _next(ws, "subscribed")["can_post"] is False
        ws.send_json({"type": "post", "conversation": f"referral:{open_one.id}", "text": "嗨"})
        assert _next(ws, "error")["status"] == 403
    with client.websocket_connect("/ws", headers=net.tokens["sender"]) as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe", "conversation": f"referral:{closed.id}"})
        assert _next(ws, "subscribed")["can_post"] is False
        ws.send_json({"type": "post", "conversation": f"referral:{closed.id}", "text": "嗨"})
        refused = _next(ws, "error")
        assert (refused["status"], refused["code"]) == (409, "conversation_closed")

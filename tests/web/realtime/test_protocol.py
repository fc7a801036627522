"""The /ws protocol in-process (TestClient): who may connect, subscribe and post; what bad,
oversized and hostile frames get; read receipts, typing and presence; and the audit rows
each leaves. The delivery guarantees under drops and across processes are tested against
live servers (test_delivery_live.py, test_redis_processes.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session
from starlette.testclient import WebSocketTestSession
from starlette.websockets import WebSocketDisconnect

from tests.consultation.conftest import Net, audits, reach
from tests.consultation.conftest import _frozen_clock as _frozen_clock
from tests.consultation.conftest import net as net
from xietong.identity import service as identity
from xietong.messaging.models import Message
from xietong.web.realtime import endpoint

UNRELATED = ("other_doctor", "other_coordinator", "other_expert", "county_doctor", "platform")


def _open(client: TestClient, headers: dict[str, str]) -> Any:
    return client.websocket_connect("/ws", headers=headers)


def _next(ws: WebSocketTestSession, kind: str) -> dict[str, Any]:
    for _ in range(50):
        frame: dict[str, Any] = ws.receive_json()
        if frame["type"] == kind:
            return frame
    raise AssertionError(f"no {kind} frame")


@pytest.fixture
def consultation(db: Session, net: Net) -> int:
    c = reach(db, net, "in_progress")
    db.commit()
    return c.id


def _messages(db: Session) -> int:
    return int(db.execute(select(func.count()).select_from(Message)).scalar_one())


def test_no_credentials_or_a_foreign_origin_is_refused(client: TestClient, net: Net) -> None:
    for headers in ({}, {"Authorization": "Bearer not-a-token"}):
        with pytest.raises(WebSocketDisconnect) as refused, _open(client, headers):
            pass
        assert refused.value.code == 1008
    # The session cookie from another site's page (cross-site WebSocket hijacking).
    token = net.tokens["applicant"]["Authorization"].split()[1]
    client.cookies.set("xt_session", token)
    with pytest.raises(WebSocketDisconnect), _open(client, {"Origin": "https://evil.example"}):
        pass


def test_subscribe_post_and_receive(
    client: TestClient, db: Session, net: Net, consultation: int
) -> None:
    key = f"consultation:{consultation}"
    with _open(client, net.tokens["expert_a"]) as expert:
        assert expert.receive_json()["type"] == "hello"
        expert.send_json({"type": "subscribe", "conversation": key, "after": 0, "id": 7})
        replay = [expert.receive_json() for _ in range(3)]
        assert [f["message"]["event"] for f in replay] == [
            "consultation.submit",
            "consultation.accept",
            "consultation.start",
        ]
        subscribed = expert.receive_json()
        assert subscribed == {
            "type": "subscribed",
            "conversation": key,
            "last_seq": 3,
            "can_post": True,
            "id": 7,
        }
        with _open(client, net.tokens["applicant"]) as applicant:
            applicant.receive_json()
            applicant.send_json(
                {"type": "post", "conversation": key, "text": "心电图已上传", "client_id": "m1"}
            )
            posted = _next(applicant, "posted")
            assert (posted["seq"], posted["created"]) == (4, True)
            pushed = _next(expert, "message")["message"]
            assert (pushed["seq"], pushed["text"], pushed["sender_name"]) == (
                4,
                "心电图已上传",
                "c_applicant",
            )
            # A resend is the same message, not a second one, and is not pushed again.
            applicant.send_json(
                {"type": "post", "conversation": key, "text": "心电图已上传", "client_id": "m1"}
            )
            again = _next(applicant, "posted")
            assert (again["seq"], again["created"]) == (4, False)
            # The same id with other words is refused, naming the field.
            applicant.send_json(
                {"type": "post", "conversation": key, "text": "别的", "client_id": "m1"}
            )
            reused = _next(applicant, "error")
            assert (reused["status"], reused["code"]) == (409, "client_id_reused")
        # Leaving audits what the push delivered (closing the socket does the same).
        expert.send_json({"type": "unsubscribe", "conversation": key})
        assert _next(expert, "unsubscribed")["conversation"] == key
    assert _messages(db) == 4
    # The catch-up read is audited with the range it revealed, and what the push delivered
    # as one range.
    rows = audits(db, "consultation.messages", object_id=str(consultation))
    assert [(r.actor_user_id, json.loads(r.detail)) for r in rows] == [
        (
            net.p["expert_a"].user_id,
            {"from_seq": 1, "to_seq": 3, "count": 3, "via": "websocket"},
        ),
        (
            net.p["expert_a"].user_id,
            {"from_seq": 4, "to_seq": 4, "count": 1, "via": "websocket push"},
        ),
    ]


def test_resume_sends_only_what_was_missed(client: TestClient, net: Net, consultation: int) -> None:
    key = f"consultation:{consultation}"
    with _open(client, net.tokens["applicant"]) as ws:
        ws.receive_json()
        for i in range(3):
            ws.send_json({"type": "post", "conversation": key, "text": f"第{i}条"})
            _next(ws, "posted")
    with _open(client, net.tokens["expert_b"]) as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe", "conversation": key, "after": 4})
        got = [ws.receive_json() for _ in range(3)]
        assert [f["type"] for f in got] == ["message", "message", "subscribed"]
        assert [f["message"]["text"] for f in got[:2]] == ["第1条", "第2条"]
        # Without ``after``: only what comes next.
        ws.send_json({"type": "subscribe", "conversation": key})
        assert ws.receive_json()["type"] == "subscribed"


@pytest.mark.parametrize("who", UNRELATED)
def test_outsiders_can_neither_subscribe_nor_post(
    client: TestClient, db: Session, net: Net, consultation: int, who: str
) -> None:
    key = f"consultation:{consultation}"
    before = _messages(db)
    with _open(client, net.tokens[who]) as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe", "conversation": key, "after": 0, "id": "s"})
        refused = ws.receive_json()
        assert (refused["type"], refused["status"], refused["id"]) == ("error", 404, "s")
        ws.send_json({"type": "post", "conversation": key, "text": "偷看", "id": "p"})
        assert _next(ws, "error")["status"] == 404
        ws.send_json({"type": "read", "conversation": key, "seq": 3})
        assert _next(ws, "error")["status"] == 404
        ws.send_json({"type": "typing", "conversation": key})
        assert _next(ws, "error")["code"] == "not_subscribed"
    assert _messages(db) == before
    denied = [
        r
        for r in audits(db, "consultation.messages") + audits(db, "consultation.message")
        if r.outcome == "denied" and r.actor_user_id == net.p[who].user_id
    ]
    assert len(denied) >= 3


def test_a_viewer_may_follow_but_not_write(
    client: TestClient, db: Session, net: Net, consultation: int
) -> None:
    """The clinic's coordinator sees the consultation but takes no part in it."""
    key = f"consultation:{consultation}"
    with _open(client, net.tokens["viewer"]) as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe", "conversation": key})
        assert _next(ws, "subscribed")["can_post"] is False
        ws.send_json({"type": "post", "conversation": key, "text": "我也说一句"})
        refused = _next(ws, "error")
        assert (refused["status"], refused["code"]) == (403, "role_not_allowed")
    (row,) = [r for r in audits(db, "consultation.message") if r.outcome == "denied"]
    assert json.loads(row.detail) == {"reason": "role"}


def test_read_receipts_typing_and_presence(client: TestClient, net: Net, consultation: int) -> None:
    key = f"consultation:{consultation}"
    with _open(client, net.tokens["expert_a"]) as expert:
        expert.receive_json()
        expert.send_json({"type": "subscribe", "conversation": key})
        _next(expert, "subscribed")
        with _open(client, net.tokens["applicant"]) as applicant:
            applicant.receive_json()
            applicant.send_json({"type": "subscribe", "conversation": key})
            _next(applicant, "subscribed")
            arrived = _next(expert, "presence")
            assert (arrived["state"], arrived["user_id"]) == ("online", net.p["applicant"].user_id)
            # The newcomer learns who is already there.
            here = _next(applicant, "presence")
            assert (here["state"], here["user_id"]) == ("online", net.p["expert_a"].user_id)
            applicant.send_json({"type": "typing", "conversation": key})
            assert _next(expert, "typing")["user_id"] == net.p["applicant"].user_id
            applicant.send_json({"type": "read", "conversation": key, "seq": 99, "id": 1})
            # Never past the last message.
            assert _next(applicant, "read_ok")["seq"] == 3
            receipt = _next(expert, "read")
            assert (receipt["user_id"], receipt["last_read_seq"]) == (
                net.p["applicant"].user_id,
                3,
            )
            # Leaving says goodbye. (Closing the socket does too; the TestClient cancels
            # the app on close, so that path is tested against real servers, in
            # test_redis_processes.py.)
            applicant.send_json({"type": "unsubscribe", "conversation": key})
            _next(applicant, "unsubscribed")
            left = _next(expert, "presence")
            assert (left["state"], left["user_id"]) == ("offline", net.p["applicant"].user_id)


BAD_FRAMES: list[tuple[Any, str, str | None]] = [
    ("not json", "frame_not_json", None),
    ("[1, 2]", "frame_not_object", None),
    ('{"no": "type"}', "type_missing", "type"),
    ('{"type": "x' + "y" * 60 + '"}', "type_missing", "type"),
    ('{"type": "drop_table"}', "type_unknown", "type"),
    ('{"type": "ping", "id": {"a": 1}}', "id_invalid", "id"),
    ('{"type": "subscribe"}', "conversation_missing", "conversation"),
    (
        '{"type": "subscribe", "conversation": "../../etc/passwd"}',
        "conversation_invalid",
        "conversation",
    ),
    (
        '{"type": "subscribe", "conversation": "consultation:1 OR 1=1"}',
        "conversation_invalid",
        "conversation",
    ),
    (
        '{"type": "subscribe", "conversation": "consultation:1", "after": -1}',
        "seq_invalid",
        "after",
    ),
    (
        '{"type": "subscribe", "conversation": "consultation:1", "after": "1"}',
        "seq_invalid",
        "after",
    ),
    (
        '{"type": "subscribe", "conversation": "consultation:1", "after": 1e99}',
        "seq_invalid",
        "after",
    ),
    ('{"type": "subscribe", "conversation": "nosuchkind:1"}', "subject_not_found", "conversation"),
    ('{"type": "post", "conversation": "consultation:1"}', "text_missing", "text"),
    (
        '{"type": "post", "conversation": "consultation:1", "text": "a", "client_id": 5}',
        "client_id_invalid",
        "client_id",
    ),
    ('{"type": "read", "conversation": "consultation:1"}', "seq_invalid", "seq"),
]


def test_bad_frames_get_an_error_naming_the_field(
    client: TestClient, net: Net, consultation: int
) -> None:
    with _open(client, net.tokens["applicant"]) as ws:
        ws.receive_json()
        for text, code, field in BAD_FRAMES:
            ws.send_text(text)
            error = ws.receive_json()
            assert (error["type"], error["code"], error["field"]) == ("error", code, field), text
            assert error["message"]
        # The socket survived all of them.
        ws.send_json({"type": "ping", "id": "p"})
        assert ws.receive_json() == {"type": "pong", "id": "p"}


def test_hostile_post_content_is_refused_or_kept_inert(
    client: TestClient, db: Session, net: Net, consultation: int
) -> None:
    key = f"consultation:{consultation}"
    with _open(client, net.tokens["applicant"]) as ws:
        ws.receive_json()
        for text, code in (
            ("x" * 4001, "too_long"),
            ("a\x00b", "control_characters"),
            ("  ", "message_empty"),
        ):
            ws.send_json({"type": "post", "conversation": key, "text": text})
            error = _next(ws, "error")
            assert (error["status"], error["code"], error["field"]) == (422, code, "text")
        ws.send_json({"type": "post", "conversation": key, "text": "<script>alert(1)</script>"})
        assert _next(ws, "posted")["created"] is True
    body = db.execute(select(Message.body).order_by(Message.id.desc()).limit(1)).scalar_one()
    assert body == "<script>alert(1)</script>"  # stored as text; pages escape it


def test_oversized_frames_and_binary_close_the_socket(client: TestClient, net: Net) -> None:
    with _open(client, net.tokens["applicant"]) as ws:
        ws.receive_json()
        ws.send_text(json.dumps({"type": "ping", "pad": "x" * 70_000}))
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1009
    with _open(client, net.tokens["applicant"]) as ws:
        ws.receive_json()
        ws.send_bytes(b"\x00\x01")
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == 1003


def test_too_many_subscriptions(client: TestClient, app: Any, net: Net, consultation: int) -> None:
    app.state.services.settings.live.max_subscriptions = 1
    with _open(client, net.tokens["applicant"]) as ws:
        ws.receive_json()
        ws.send_json({"type": "subscribe", "conversation": f"consultation:{consultation}"})
        _next(ws, "subscribed")
        ws.send_json({"type": "subscribe", "conversation": "consultation:999999"})
        error = _next(ws, "error")
        assert (error["status"], error["code"]) == (409, "too_many_subscriptions")


def test_a_revoked_session_closes_the_socket(
    client: TestClient, db: Session, net: Net, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The session is checked again while the socket is open: signed out elsewhere (or
    revoked by an admin), the socket closes with 4401."""
    monkeypatch.setattr(endpoint, "REVALIDATE_SECONDS", 0.05)
    with _open(client, net.tokens["applicant"]) as ws:
        ws.receive_json()
        identity.revoke_all_sessions(db, net.p["applicant"].uid)
        db.commit()
        with pytest.raises(WebSocketDisconnect) as closed:
            ws.receive_json()
        assert closed.value.code == endpoint.CLOSE_UNAUTHORISED

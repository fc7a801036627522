"""Signaling over /ws with the app's test client: joining, relaying offers and candidates
between the peers of one session only, state, the lobby, leaving, ending; and the frames
a hostile client may send."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.testclient import WebSocketTestSession

from tests.live.conftest import LIVE, Net, make_session
from xietong.config import LiveSettings
from xietong.consultation.models import Consultation
from xietong.live import lobby
from xietong.live.models import LiveAttendance
from xietong.live.schemas import LinkIn

OFFER = {"sdp": {"type": "offer", "sdp": "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\n"}}
CANDIDATE = {
    "candidate": {
        "candidate": "candidate:1 1 UDP 2122252543 192.0.2.1 54400 typ host",
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
}


def connect(client: TestClient, net: Net, who: str) -> Any:
    return client.websocket_connect("/ws", headers=net.tokens[who])


def hello(ws: WebSocketTestSession) -> str:
    frame = ws.receive_json()
    assert frame["type"] == "hello"
    return str(frame["connection"])


def expect(ws: WebSocketTestSession, kind: str) -> dict[str, Any]:
    frame: dict[str, Any] = ws.receive_json()
    assert frame["type"] == kind, frame
    return frame


def join(ws: WebSocketTestSession, sid: int, **extra: Any) -> dict[str, Any]:
    ws.send_json({"type": "live.join", "session": sid, "id": "j", **extra})
    return ws.receive_json()  # type: ignore[no-any-return]


@pytest.fixture
def sid(db: Session, net: Net, consult: Consultation) -> int:
    live = make_session(db, net, consult).live
    db.commit()
    return live.id


def test_two_peers_signal_and_a_guest_is_admitted(
    client: TestClient, net: Net, sid: int, db: Session
) -> None:
    _link, token = lobby.create_link(db, net.p["applicant"], sid, LinkIn(), LIVE)
    db.commit()
    with connect(client, net, "applicant") as a, connect(client, net, "expert_b") as b:
        peer_a, peer_b = hello(a), hello(b)
        joined_a = join(a, sid)
        assert joined_a["type"] == "live.joined"
        assert joined_a["peer"] == peer_a
        assert joined_a["peers"] == []
        assert joined_a["host"] is True
        assert joined_a["id"] == "j"
        assert joined_a["mode"] == "mesh"
        assert joined_a["upload_kbps"] == LiveSettings().upload_kbps  # the mesh's budget
        assert expect(a, "live.lobby")["waiting"] == []
        joined_b = join(b, sid)
        assert [p["peer"] for p in joined_b["peers"]] == [peer_a]
        assert joined_b["host"] is False
        assert expect(a, "live.peer_joined")["peer"] == peer_b
        # B offers to A; a candidate follows; A answers.
        b.send_json({"type": "live.signal", "session": sid, "to": peer_a, "data": OFFER})
        got = expect(a, "live.signal")
        assert got["from"] == peer_b
        assert got["data"] == OFFER
        b.send_json({"type": "live.signal", "session": sid, "to": peer_a, "data": CANDIDATE})
        assert expect(a, "live.signal")["data"]["candidate"]["sdpMid"] == "0"
        answer = {"sdp": {"type": "answer", "sdp": "v=0\r\n"}}
        a.send_json({"type": "live.signal", "session": sid, "to": peer_b, "data": answer})
        assert expect(b, "live.signal")["data"] == answer
        a.send_json({"type": "live.state", "session": sid, "muted": True, "camera_off": False})
        state = expect(b, "live.state")
        assert state["peer"] == peer_a
        assert state["muted"] is True
        # A guest with a link waits; only the host hears of it.
        with connect(client, net, "county_doctor") as g:
            peer_g = hello(g)
            assert join(g, sid, link=token)["type"] == "live.waiting"
            waiting = expect(a, "live.lobby")["waiting"]
            assert [w["user_id"] for w in waiting] == [net.p["county_doctor"].uid]
            # The guest cannot signal while waiting.
            g.send_json({"type": "live.signal", "session": sid, "to": peer_a, "data": OFFER})
            assert expect(g, "error")["code"] == "live_not_joined"
            b.send_json({"type": "live.admit", "session": sid, "user": 5, "id": "x"})
            assert expect(b, "error")["status"] == 403
            a.send_json({"type": "live.admit", "session": sid, "user": net.p["county_doctor"].uid})
            assert expect(g, "live.admitted")["session"] == sid
            assert expect(a, "live.lobby")["waiting"] == []
            assert expect(a, "live.admit")["ok"] is True
            joined_g = join(g, sid, link=token)
            assert joined_g["type"] == "live.joined"
            assert joined_g["guest"] is True
            assert {p["peer"] for p in joined_g["peers"]} == {peer_a, peer_b}
            assert expect(a, "live.peer_joined")["peer"] == peer_g
            assert expect(b, "live.peer_joined")["peer"] == peer_g
            g.send_json({"type": "live.leave", "session": sid, "id": "l"})
            assert expect(g, "live.left")["id"] == "l"
            assert expect(a, "live.peer_left")["peer"] == peer_g
            assert expect(b, "live.peer_left")["peer"] == peer_g
        b.send_json({"type": "live.leave", "session": sid})
        assert expect(b, "live.left")["seconds"] == 0
        assert expect(a, "live.peer_left")["peer"] == peer_b
        a.send_json({"type": "live.leave", "session": sid})
        expect(a, "live.left")
    rows = db.execute(select(LiveAttendance).order_by(LiveAttendance.id)).scalars().all()
    assert len(rows) == 3
    assert all(r.left_at is not None for r in rows)


def test_end_reaches_everyone(client: TestClient, net: Net, sid: int) -> None:
    # (Closing a socket is tested against the real server, test_aiortc_call.py: the test
    # client cancels the server's task instead of letting it see the disconnect.)
    with connect(client, net, "applicant") as a:
        hello(a)
        join(a, sid)
        expect(a, "live.lobby")
        with connect(client, net, "expert_a") as c:
            hello(c)
            join(c, sid)
            expect(c, "live.lobby")  # the lead is a host
            expect(a, "live.peer_joined")
            a.send_json({"type": "live.end", "session": sid, "id": "e"})
            got = {a.receive_json()["type"], a.receive_json()["type"]}
            assert got == {"live.end", "live.ended"}
            assert expect(c, "live.ended")["state"] == "ended"
            # Out of the session now: a signal is refused.
            c.send_json({"type": "live.signal", "session": sid, "to": "x", "data": OFFER})
            assert expect(c, "error")["code"] == "live_not_joined"
            assert join(c, sid)["code"] == "live_not_open"


def test_unrelated_users_get_404_on_join(client: TestClient, net: Net, sid: int) -> None:
    for who in ("other_doctor", "other_expert", "county_doctor"):
        with connect(client, net, who) as ws:
            hello(ws)
            error = join(ws, sid)
            assert error["type"] == "error"
            assert error["status"] == 404
            assert error["code"] == "live_session_not_found"
            assert error["id"] == "j"
            error = join(ws, sid, link="Z" * 43)
            assert error["status"] == 404


def test_anonymous_handshake_is_refused(client: TestClient) -> None:
    from starlette.websockets import WebSocketDisconnect

    with pytest.raises(WebSocketDisconnect), client.websocket_connect("/ws") as ws:
        ws.receive_json()


@pytest.mark.parametrize(
    ("frame", "field"),
    [
        ({"type": "live.join"}, "session"),
        ({"type": "live.join", "session": "1"}, "session"),
        ({"type": "live.join", "session": True}, "session"),
        ({"type": "live.join", "session": 0}, "session"),
        ({"type": "live.join", "session": 2**40}, "session"),
        ({"type": "live.join", "session": 1, "link": 5}, "link"),
        ({"type": "live.join", "session": 1, "link": "x" * 500}, "link"),
        ({"type": "live.signal", "session": 1, "to": "../x", "data": OFFER}, "to"),
        ({"type": "live.signal", "session": 1, "to": "a", "data": {}}, "data"),
        ({"type": "live.signal", "session": 1, "to": "a", "data": {**OFFER, **CANDIDATE}}, "data"),
        ({"type": "live.signal", "session": 1, "to": "sfu", "data": {"watch": 1}}, "data.watch"),
        ({"type": "live.signal", "session": 1, "to": "sfu", "data": {"watch": None}}, "data.watch"),
        (
            {"type": "live.signal", "session": 1, "to": "sfu", "data": {"watch": True, **OFFER}},
            "data",
        ),
        (
            {
                "type": "live.signal",
                "session": 1,
                "to": "a",
                "data": {"sdp": {"type": "pranswer", "sdp": ""}},
            },
            "data.sdp.type",
        ),
        (
            {
                "type": "live.signal",
                "session": 1,
                "to": "a",
                "data": {"sdp": {"type": "offer", "sdp": "v=0\x00"}},
            },
            "data.sdp.sdp",
        ),
        (
            {
                "type": "live.signal",
                "session": 1,
                "to": "a",
                "data": {"sdp": {"type": "offer", "sdp": "v", "x": 1}},
            },
            "data.sdp",
        ),
        (
            {
                "type": "live.signal",
                "session": 1,
                "to": "a",
                "data": {"candidate": {"candidate": "c", "evil": 1}},
            },
            "data.candidate",
        ),
        (
            {
                "type": "live.signal",
                "session": 1,
                "to": "a",
                "data": {"candidate": {"candidate": "c\nd"}},
            },
            "data.candidate.candidate",
        ),
        (
            {
                "type": "live.signal",
                "session": 1,
                "to": "a",
                "data": {"candidate": {"candidate": "c", "sdpMLineIndex": -1}},
            },
            "data.candidate.sdpMLineIndex",
        ),
        ({"type": "live.state", "session": 1, "muted": "yes"}, "muted"),
        ({"type": "live.admit", "session": 1, "user": "1"}, "user"),
        ({"type": "live.refuse", "session": 1, "user": 2**40}, "user"),
    ],
)
def test_hostile_frames_get_errors_naming_the_field(
    client: TestClient, net: Net, frame: dict[str, Any], field: str
) -> None:
    with connect(client, net, "applicant") as ws:
        hello(ws)
        ws.send_json(frame)
        error = expect(ws, "error")
        assert error["field"] == field
        assert error["status"] in (400, 422)
        ws.send_json({"type": "ping", "id": 1})  # the socket stays open
        assert expect(ws, "pong")["id"] == 1


def test_oversized_sdp_is_refused(client: TestClient, net: Net, sid: int) -> None:
    from xietong.core.errors import Invalid
    from xietong.live.signals import signal_data

    with pytest.raises(Invalid) as error:
        signal_data({"sdp": {"type": "offer", "sdp": "a" * (64 * 1024 + 1)}})
    assert error.value.field == "data.sdp.sdp"
    with connect(client, net, "applicant") as ws:
        hello(ws)
        join(ws, sid)
        expect(ws, "live.lobby")
        big = {
            "type": "live.signal",
            "session": sid,
            "to": "a",
            "data": {"candidate": {"candidate": "c" * 3000}},
        }
        ws.send_json(big)
        assert expect(ws, "error")["field"] == "data.candidate.candidate"
        ws.send_json({"type": "live.signal", "session": sid, "to": "nobody", "data": OFFER})
        ws.send_json({"type": "ping"})
        assert expect(ws, "pong")  # relayed to nobody, silently

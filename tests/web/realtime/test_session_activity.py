"""A page session's idle timeout and the socket: a socket left open does not keep an idle
page alive (it closes with 4401 once the session has timed out), but what the person does
on it does (a post, typing), and so does being in a video call, however long."""

from __future__ import annotations

import time
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session
from starlette.websockets import WebSocketDisconnect

from tests.consultation.conftest import NOW, Net, reach
from tests.consultation.conftest import _frozen_clock as _frozen_clock
from tests.consultation.conftest import net as net
from tests.live.conftest import make_session
from tests.web.realtime.test_protocol import _next
from xietong.config import SecuritySettings
from xietong.core import clock
from xietong.identity import service as identity
from xietong.identity.models import User
from xietong.web.realtime import endpoint

IDLE = SecuritySettings().session_idle_minutes


def _page_socket(client: TestClient, db: Session, net: Net, who: str) -> Any:
    """A socket opened by a signed-in page: the session cookie, from our own origin."""
    user = db.get(User, net.p[who].uid)
    assert user is not None
    token = identity.open_session(
        db, user, kind="cookie", policy=SecuritySettings(), client_address="testclient"
    )
    db.commit()
    client.cookies.set("xt_session", token)
    return client.websocket_connect("/ws", headers={"Origin": "http://testserver"})


def _at(minutes: int) -> None:
    clock.set_clock(lambda: NOW + timedelta(minutes=minutes))
    time.sleep(0.3)  # several session checks (every 0.05 s here) see the new time


def _still_open(ws: Any) -> bool:
    ws.send_json({"type": "ping", "id": "p"})
    try:
        _next(ws, "pong")
    except WebSocketDisconnect as closed:
        code = closed.code
    else:
        return True
    assert code == endpoint.CLOSE_UNAUTHORISED
    return False


@pytest.fixture(autouse=True)
def _quick_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(endpoint, "REVALIDATE_SECONDS", 0.05)


@pytest.mark.parametrize("types", [False, True])
def test_typing_keeps_the_page_session_alive(
    client: TestClient, db: Session, net: Net, types: bool
) -> None:
    c = reach(db, net, "in_progress")
    db.commit()
    key = f"consultation:{c.id}"
    with _page_socket(client, db, net, "applicant") as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_json({"type": "subscribe", "conversation": key, "id": "s"})
        _next(ws, "subscribed")
        _at(IDLE - 5)
        if types:
            ws.send_json({"type": "typing", "conversation": key})
        time.sleep(0.3)  # the next checks, still at this time, see the typing
        _at(IDLE + 10)
        # Idle since NOW: closed. Typed 15 minutes ago: open, until idle from then.
        assert _still_open(ws) is types
        if types:
            _at(2 * IDLE)
            assert _still_open(ws) is False


def test_a_video_call_keeps_the_page_session_alive(
    client: TestClient, db: Session, net: Net
) -> None:
    """Joined to a call, the session is in use at every check, however long the call;
    after leaving, the idle clock runs again."""
    sid = make_session(db, net, reach(db, net, "accepted")).live.id
    db.commit()
    with _page_socket(client, db, net, "applicant") as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_json({"type": "live.join", "session": sid, "id": "j"})
        _next(ws, "live.joined")
        # Twenty minutes at a time: every check in between finds the call going on.
        for minutes in range(20, 4 * IDLE, 20):
            _at(minutes)
            assert _still_open(ws)
        ws.send_json({"type": "live.leave", "session": sid, "id": "l"})
        _next(ws, "live.left")
        _at(6 * IDLE)
        assert _still_open(ws) is False

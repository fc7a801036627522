"""A page session's idle timeout and the socket: a socket left open does not keep an idle
page alive (it closes with 4401 once the session has timed out), but what the person does
on it does (a post, typing), and so does being in a video call, however long.

The session is checked every 0.05 s here; the tests move the app's clock and wait for what
the checks do (a check counting the socket as activity, or the socket closed), never for a
fixed time. The checks are watched by wrapping them, not by reading the session row: the
app and the test share one database connection, which two threads must not use at once."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
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
from xietong.access.principal import Principal
from xietong.config import SecuritySettings
from xietong.core import clock
from xietong.identity import service as identity
from xietong.identity.models import User
from xietong.web.realtime import endpoint

IDLE = SecuritySettings().session_idle_minutes
PATIENCE = 10.0  # seconds: how long a busy machine may take to run a check


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


def _at(minutes: int) -> datetime:
    at = NOW + timedelta(minutes=minutes)
    clock.set_clock(lambda: at)
    return at


def _eventually(condition: Callable[[], bool]) -> bool:
    deadline = time.monotonic() + PATIENCE
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return False


Check = tuple[datetime, bool, bool]  # the app's time, counted as activity, still valid


@pytest.fixture
def checks(monkeypatch: pytest.MonkeyPatch) -> list[Check]:
    """Every session check of the sockets, as it happens; checked every 0.05 s."""
    seen: list[Check] = []
    real = endpoint._authenticate

    def recording(
        services: Any, token: str, kind: str, address: str, touch: bool
    ) -> Principal | None:
        found = real(services, token, kind, address, touch)
        seen.append((clock.now(), touch, found is not None))
        return found

    monkeypatch.setattr(endpoint, "_authenticate", recording)
    monkeypatch.setattr(endpoint, "REVALIDATE_SECONDS", 0.05)
    return seen


def _touched(checks: list[Check], at: datetime) -> bool:
    """A session check at ``at`` counted the socket as activity, and the session held."""
    return _eventually(lambda: (at, True, True) in checks)


def _pong(ws: Any) -> bool:
    """True if the socket answers a ping; False if it closed for the session (4401)."""
    ws.send_json({"type": "ping", "id": "p"})
    try:
        _next(ws, "pong")
    except WebSocketDisconnect as closed:
        code = closed.code
    else:
        return True
    assert code == endpoint.CLOSE_UNAUTHORISED
    return False


def _closes(ws: Any) -> bool:
    return _eventually(lambda: not _pong(ws))


@pytest.mark.parametrize("types", [False, True])
def test_typing_keeps_the_page_session_alive(
    client: TestClient, db: Session, net: Net, checks: list[Check], types: bool
) -> None:
    c = reach(db, net, "in_progress")
    db.commit()
    key = f"consultation:{c.id}"
    with _page_socket(client, db, net, "applicant") as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_json({"type": "subscribe", "conversation": key, "id": "s"})
        _next(ws, "subscribed")
        typed_at = _at(IDLE - 5)
        if not types:
            _at(IDLE + 10)  # idle since NOW: signed out at the next check
            assert _closes(ws)
            return
        ws.send_json({"type": "typing", "conversation": key})
        assert _touched(checks, typed_at)
        _at(IDLE + 10)  # fifteen minutes after typing: still in use
        time.sleep(0.2)
        assert _pong(ws)
        _at(2 * IDLE)  # idle since the typing
        assert _closes(ws)


def test_a_video_call_keeps_the_page_session_alive(
    client: TestClient, db: Session, net: Net, checks: list[Check]
) -> None:
    """Joined to a call, the session is in use at every check, however long the call;
    after leaving, the idle clock runs again."""
    sid = make_session(db, net, reach(db, net, "accepted")).live.id
    db.commit()
    with _page_socket(client, db, net, "applicant") as ws:
        assert ws.receive_json()["type"] == "hello"
        ws.send_json({"type": "live.join", "session": sid, "id": "j"})
        _next(ws, "live.joined")
        # Twenty minutes at a time, well past the idle timeout: every step is touched.
        for minutes in range(20, 4 * IDLE, 20):
            assert _touched(checks, _at(minutes)), minutes
        ws.send_json({"type": "live.leave", "session": sid, "id": "l"})
        _next(ws, "live.left")
        _at(6 * IDLE)
        assert _closes(ws)

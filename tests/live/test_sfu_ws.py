"""Signals to the pseudo-peer ``sfu`` with the app's test client, without a working Janus:
a mesh session has no SFU; in a janus session a Janus that is down or silent gives a clear
``error`` frame (503, never a 500, never a hang) and the socket stays usable; hostile
``feed`` values are refused naming the field."""

from __future__ import annotations

import socket
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.helpers import run_async
from tests.live.conftest import Net, make_session
from tests.live.test_ws import CANDIDATE, OFFER, connect, expect, hello, join
from xietong.config import LiveSettings, Settings
from xietong.consultation.models import Consultation
from xietong.live import janus, media
from xietong.live.models import LiveSession


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A port that accepts connections and never answers (a hung Janus)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(16)
        yield int(sock.getsockname()[1])


def _janus_session(db: Session, net: Net, consult: Consultation) -> int:
    live = make_session(db, net, consult, size=12, settings=LiveSettings(sfu="janus")).live
    db.commit()
    assert live.mode == "janus"
    return live.id


def _ping(ws: object) -> None:
    ws.send_json({"type": "ping", "id": "p"})  # type: ignore[attr-defined]
    assert expect(ws, "pong")["id"] == "p"  # type: ignore[arg-type]


def test_a_mesh_session_has_no_sfu(
    client: TestClient, net: Net, db: Session, consult: Consultation
) -> None:
    sid = make_session(db, net, consult).live.id
    db.commit()
    with connect(client, net, "applicant") as ws:
        hello(ws)
        assert join(ws, sid)["mode"] == "mesh"
        expect(ws, "live.lobby")
        for data in (OFFER, {"watch": True}):
            ws.send_json({"type": "live.signal", "session": sid, "to": "sfu", "data": data})
            error = expect(ws, "error")
            assert (error["status"], error["code"], error["field"]) == (409, "live_no_sfu", "to")
        # Watching is asked of the SFU only, never of a peer.
        ws.send_json({"type": "live.signal", "session": sid, "to": "a-1", "data": {"watch": True}})
        error = expect(ws, "error")
        assert (error["status"], error["code"], error["field"]) == (422, "frame_invalid", "data")
        _ping(ws)


def test_janus_down_is_a_clear_error(
    client: TestClient, net: Net, db: Session, consult: Consultation, settings: Settings
) -> None:
    settings.live = LiveSettings(sfu="janus", janus_url="http://127.0.0.1:9/janus")
    sid = _janus_session(db, net, consult)
    with connect(client, net, "applicant") as ws:
        hello(ws)
        assert join(ws, sid)["mode"] == "janus"
        expect(ws, "live.lobby")
        # A candidate before any publication has nothing to join: dropped quietly.
        ws.send_json({"type": "live.signal", "session": sid, "to": "sfu", "data": CANDIDATE})
        _ping(ws)
        ws.send_json({"type": "live.signal", "session": sid, "to": "sfu", "data": OFFER, "id": 7})
        error = expect(ws, "error")
        assert (error["status"], error["code"], error["id"]) == (503, "live_media_down", 7)
        assert error["message"]
        answer = {"sdp": {"type": "answer", "sdp": "v=0\r\n"}}
        frame = {"type": "live.signal", "session": sid, "to": "sfu", "data": answer}
        ws.send_json({**frame, "feed": "1-abc"})
        error = expect(ws, "error")
        assert (error["status"], error["code"]) == (409, "live_not_publishing")
        for hostile in ("../etc", "", 7, {"a": 1}, "x" * 65):
            ws.send_json({**frame, "feed": hostile})
            error = expect(ws, "error")
            assert (error["status"], error["code"], error["field"]) == (
                422,
                "frame_invalid",
                "feed",
            )
        ws.send_json({"type": "live.leave", "session": sid})
        assert expect(ws, "live.left")["seconds"] is not None
    assert db.get(LiveSession, sid) is not None


def test_silent_janus_times_out(
    client: TestClient,
    net: Net,
    db: Session,
    consult: Consultation,
    settings: Settings,
    silent_port: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(media, "TIMEOUT", 0.5)
    monkeypatch.setattr(janus, "TIMEOUT", 0.5)
    settings.live = LiveSettings(sfu="janus", janus_url=f"http://127.0.0.1:{silent_port}/janus")
    sid = _janus_session(db, net, consult)
    with connect(client, net, "applicant") as ws:
        hello(ws)
        join(ws, sid)
        expect(ws, "live.lobby")
        ws.send_json({"type": "live.signal", "session": sid, "to": "sfu", "data": OFFER})
        error = expect(ws, "error")
        assert (error["status"], error["code"]) == (503, "live_media_timeout")
        _ping(ws)


def test_async_client_timeouts_and_refusals(silent_port: int) -> None:
    """The asyncio client alone: a silent Janus times out, a closed port is down."""

    async def attempt(url: str) -> str:
        try:
            await janus.http_json(url, {"janus": "create"}, timeout=0.5)
        except janus.MediaError as error:
            return error.code
        return "answered"

    assert (
        run_async(lambda: attempt(f"http://127.0.0.1:{silent_port}/janus")) == "live_media_timeout"
    )
    assert run_async(lambda: attempt("http://127.0.0.1:9/janus")) == "live_media_down"

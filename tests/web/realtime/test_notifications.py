"""Every socket hears of its own user's new notifications, and nobody else's: a nudge with
the notification's id and kind only (the bell fetches the rest over HTTP, audited as usual),
sent after the commit."""

from __future__ import annotations

import time
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.consultation.conftest import Net, reach
from tests.consultation.conftest import _frozen_clock as _frozen_clock
from tests.consultation.conftest import net as net
from xietong.notifications.models import Notification


@pytest.fixture
def consultation(db: Session, net: Net) -> int:
    c = reach(db, net, "in_progress")
    db.commit()
    return c.id


def _frames_until_pong(ws: Any) -> list[dict[str, Any]]:
    """What the socket got before the answer to a ping (the server answers in order)."""
    ws.send_json({"type": "ping", "id": "p"})
    frames = []
    for _ in range(20):
        frame: dict[str, Any] = ws.receive_json()
        if frame["type"] == "pong":
            return frames
        frames.append(frame)
    raise AssertionError("no pong")


def test_a_new_notification_nudges_its_recipient_only(
    client: TestClient, db: Session, net: Net, consultation: int
) -> None:
    with (
        client.websocket_connect("/ws", headers=net.tokens["expert_a"]) as expert,
        client.websocket_connect("/ws", headers=net.tokens["other_expert"]) as outsider,
    ):
        assert expert.receive_json()["type"] == "hello"
        assert outsider.receive_json()["type"] == "hello"
        answer = client.post(
            f"/api/v1/consultations/{consultation}/messages",
            json={"text": "心电图已上传"},
            headers=net.tokens["applicant"],
        )
        assert answer.status_code == 201, answer.text
        # Published after the commit, from the request's thread: poll with pings, so that
        # a missing nudge fails the test instead of hanging it.
        got: list[dict[str, Any]] = []
        deadline = time.monotonic() + 10  # a busy machine may take a while
        while not got and time.monotonic() < deadline:
            got = _frames_until_pong(expert)
            time.sleep(0.02)
        mine = db.scalars(
            select(Notification).where(
                Notification.recipient_user_id == net.p["expert_a"].user_id,
                Notification.kind == "consultation.message",
            )
        ).one()
        assert got == [{"type": "notification", "id": mine.id, "kind": "consultation.message"}]
        assert _frames_until_pong(outsider) == []
        assert _frames_until_pong(expert) == []

"""Idle and absolute timeouts of cookie sessions, lifetime of bearer tokens."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.admin_helpers import Clock
from tests.helpers import page_login, token_for
from xietong.config import Settings


def test_idle_cookie_session_ends(client: TestClient, db: Session, settings: Settings) -> None:
    clock = Clock()
    factories.user(db, username="idle.user")
    db.commit()
    page_login(client, "idle.user")
    idle = settings.security.session_idle_minutes
    # Activity keeps the session alive past the idle limit in total...
    for _ in range(3):
        clock.advance(minutes=idle - 5)
        assert client.get("/api/v1/me").status_code == 200
    # ...silence ends it, for good.
    clock.advance(minutes=idle + 1)
    assert client.get("/api/v1/me").status_code == 401
    clock.advance(seconds=1)
    assert client.get("/api/v1/me").status_code == 401


def test_idle_page_request_is_sent_to_sign_in(
    client: TestClient, db: Session, settings: Settings
) -> None:
    clock = Clock()
    factories.user(db, username="idle.page")
    db.commit()
    page_login(client, "idle.page")
    assert client.get("/account").status_code == 200
    clock.advance(minutes=settings.security.session_idle_minutes + 1)
    response = client.get("/account", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"].startswith("/login?next=")


def test_absolute_expiry_despite_activity(
    client: TestClient, db: Session, settings: Settings
) -> None:
    settings.security.session_absolute_hours = 1
    clock = Clock()
    factories.user(db, username="long.user")
    db.commit()
    page_login(client, "long.user")
    for _ in range(2):
        clock.advance(minutes=25)
        assert client.get("/api/v1/me").status_code == 200
    clock.advance(minutes=11)  # 61 minutes after sign-in, never idle for long
    assert client.get("/api/v1/me").status_code == 401


def test_bearer_token_expires_after_token_hours(
    client: TestClient, db: Session, settings: Settings
) -> None:
    settings.security.token_hours = 2
    clock = Clock()
    factories.user(db, username="bearer.user")
    db.commit()
    headers = token_for(client, "bearer.user")
    client.cookies.clear()
    clock.advance(minutes=119)  # bearer tokens have no idle timeout, only a lifetime
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    clock.advance(minutes=2)
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_deactivation_ends_live_sessions(client: TestClient, db: Session) -> None:
    user = factories.user(db, username="soon.gone")
    db.commit()
    headers = token_for(client, "soon.gone")
    assert client.get("/api/v1/me", headers=headers).status_code == 200
    user.is_active = False
    db.commit()
    assert client.get("/api/v1/me", headers=headers).status_code == 401

"""The notification centre, following a notification, "mark all read", the top bar's badge
and its poll (which must not keep an idle session alive)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.admin_helpers import Clock
from tests.directory.conftest import cookie_login, denials
from tests.helpers import csrf_from
from tests.notifications.conftest import Site, send
from xietong.config import Settings

HTML = {"Accept": "text/html"}


def _badge_count(html: str) -> int | None:
    match = re.search(r'id="notification-badge"[^>]*?data-unread="(\d+)"', html, re.S)
    return int(match.group(1)) if match else None


@pytest.mark.parametrize(
    ("lang", "heading", "mark_all", "title"),
    [
        ("zh", "通知", "全部标为已读", "欢迎，磨五村卫生室"),
        ("en", "Notifications", "Mark all read", "Welcome, 磨五村卫生室"),
    ],
)
def test_centre_in_both_languages(
    client: TestClient, db: Session, site: Site, lang: str, heading: str, mark_all: str, title: str
) -> None:
    clock = Clock()
    send(db, [site.coord1.id], subject_id=1)
    clock.advance(minutes=1)
    [new] = send(db, [site.coord1.id], subject_id=2)
    cookie_login(client, db, site.coord1)
    page = client.get("/notifications", headers={**HTML, "Accept-Language": lang})
    assert page.status_code == 200
    html = page.text
    assert f"<h1>{heading}</h1>" in html
    assert mark_all in html
    assert html.count(title) == 2
    # Unread first, styled apart, each linking through /open.
    assert re.search(
        rf'class="notif unread" data-id="{new}">\s*<a href="/notifications/{new}/open"', html
    )
    assert _badge_count(html) == 2
    assert 'href="/notifications"' in html  # the menu entry and the bell


def test_opening_marks_read_and_goes_to_the_subject(
    client: TestClient, db: Session, site: Site
) -> None:
    [nid] = send(db, [site.coord1.id], link="/patients?q=1")
    cookie_login(client, db, site.coord1)
    response = client.get(f"/notifications/{nid}/open", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/patients?q=1"
    html = client.get("/notifications", headers=HTML).text
    assert f'class="notif read" data-id="{nid}"' in html
    assert _badge_count(html) is None
    assert "全部标为已读" not in html  # nothing left to mark


def test_mark_all_read(client: TestClient, db: Session, site: Site) -> None:
    send(db, [site.coord1.id], subject_id=1)
    send(db, [site.coord1.id], subject_id=2)
    cookie_login(client, db, site.coord1)
    page = client.get("/notifications", headers=HTML)
    response = client.post(
        "/notifications/read-all", data={"csrf_token": csrf_from(page.text)}, follow_redirects=False
    )
    assert (response.status_code, response.headers["location"]) == (303, "/notifications")
    html = client.get("/notifications", headers=HTML).text
    assert "notif unread" not in html
    assert html.count("notif read") == 2
    # Without the CSRF token: refused.
    assert client.post("/notifications/read-all", follow_redirects=False).status_code == 403


def test_another_users_notification_is_a_404_page(
    client: TestClient, db: Session, site: Site
) -> None:
    [nid] = send(db, [site.coord1.id])
    cookie_login(client, db, site.coord2)
    response = client.get(f"/notifications/{nid}/open", headers=HTML, follow_redirects=False)
    assert response.status_code == 404
    assert "<html" in response.text
    assert [d.actor_username for d in denials(db, "notification.read")] == ["coord2"]
    cookie_login(client, db, site.coord1)
    assert client.get("/api/v1/notifications/unread-count").json() == {"unread": 1}


@pytest.mark.parametrize(
    "path",
    [
        f"/notifications/{2**31}/open",
        "/notifications/0/open",
        "/notifications/x/open",
        "/notifications?page=0",
        "/notifications?page=abc",
        "/notifications?page=10001",
        "/notifications?unread_only=maybe",
    ],
)
def test_bad_input_on_pages(client: TestClient, db: Session, site: Site, path: str) -> None:
    cookie_login(client, db, site.coord1)
    response = client.get(path, headers=HTML, follow_redirects=False)
    assert response.status_code == 422, response.text


def test_badge_fragment_and_shell(client: TestClient, db: Session, site: Site) -> None:
    # Anonymous visitors: no bell on the sign-in page, a 401 from the fragment.
    login_page = client.get("/login").text
    assert "notification-badge" not in login_page
    assert "live_bell.js" not in login_page
    assert client.get("/notifications/badge", headers={"HX-Request": "true"}).status_code == 401
    send(db, [site.coord1.id, site.coord2.id], subject_id=1)
    cookie_login(client, db, site.coord1)
    home = client.get("/", headers=HTML).text
    assert _badge_count(home) == 1
    # Polled every minute, and at once when the socket brings a new one (live_bell.js).
    assert 'hx-trigger="every 60s, xt-notification from:body"' in home
    assert '<script type="module" src="/static/live_bell.js"></script>' in home
    fragment = client.get("/notifications/badge", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert fragment.headers["cache-control"] == "no-store"
    assert fragment.text.lstrip().startswith('<a id="notification-badge"')
    assert "<html" not in fragment.text
    assert _badge_count(fragment.text) == 1
    assert 'hx-get="/notifications/badge"' in fragment.text
    # A large count is shortened.
    for n in range(2, 120):
        send(db, [site.coord1.id], subject_id=n)
    fragment = client.get("/notifications/badge").text
    assert _badge_count(fragment) == 119
    assert ">99+<" in fragment
    # An error page (rolled back) loads its badge itself.
    missing = client.get("/patients/999999", headers=HTML).text
    assert 'hx-trigger="load, every 60s, xt-notification from:body"' in missing


def test_polling_does_not_keep_an_idle_session_alive(
    client: TestClient, db: Session, site: Site, settings: Settings
) -> None:
    clock = Clock()
    cookie_login(client, db, site.coord1)
    idle = settings.security.session_idle_minutes
    assert client.get("/notifications", headers=HTML).status_code == 200  # activity
    # An open tab polls every minute for longer than the idle limit.
    for _ in range(idle + 2):
        clock.advance(seconds=60)
        poll = client.get("/notifications/badge", headers={"HX-Request": "true"})
        count = client.get("/api/v1/notifications/unread-count")
        if poll.status_code == 401:
            break
        assert count.status_code == 200
    assert poll.status_code == 401
    assert count.status_code == 401
    assert client.get("/notifications", follow_redirects=False).status_code == 303


def test_activity_still_keeps_the_session(
    client: TestClient, db: Session, site: Site, settings: Settings
) -> None:
    clock = Clock()
    cookie_login(client, db, site.coord1)
    idle = settings.security.session_idle_minutes
    for _ in range(3):
        clock.advance(minutes=idle - 5)
        assert client.get("/notifications", headers=HTML).status_code == 200
    assert client.get("/notifications/badge").status_code == 200

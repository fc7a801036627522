"""My account: profile, language preference, links to password and second factor."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.admin_helpers import fresh_user
from tests.helpers import page_login
from xietong.identity.roles import Role


def test_profile_shows_roles_and_institution(client: TestClient, db: Session) -> None:
    inst = factories.institution(db, name="郑州测试医院")
    factories.user(db, Role.EXPERT, Role.TEACHER, institution=inst, username="me.user")
    db.commit()
    page_login(client, "me.user")
    page = client.get("/account")
    assert page.status_code == 200
    assert "郑州测试医院" in page.text
    assert 'href="/account/password"' in page.text
    assert 'href="/account/totp"' in page.text
    assert 'name="csrf_token"' in page.text
    home = client.get("/")
    assert 'href="/account"' in home.text
    assert 'href="/admin/users"' not in home.text


def test_language_preference(client: TestClient, db: Session) -> None:
    user = factories.user(db, username="lang.user")
    db.commit()
    page_login(client, "lang.user")
    client.get("/account")
    response = client.post(
        "/account/preferences",
        data={"locale": "en", "csrf_token": client.cookies["xt_csrf"]},
        follow_redirects=False,
    )
    assert response.status_code == 303
    assert response.cookies.get("xt_lang") == "en"
    assert fresh_user(db, user.id).locale == "en"
    page = client.get("/account?saved=1")
    assert '<html lang="en">' in page.text
    assert "Saved." in page.text


def test_authority_sees_jurisdiction(client: TestClient, db: Session) -> None:
    factories.user(db, Role.AUTHORITY, username="gov.user", jurisdiction_code="410100")
    db.commit()
    page_login(client, "gov.user")
    assert "郑州市" in client.get("/account").text


def test_anonymous_account_redirects(client: TestClient) -> None:
    response = client.get("/account", follow_redirects=False)
    assert response.headers["location"] == "/login?next=%2Faccount"

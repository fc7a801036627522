"""CSRF: browser requests (session cookie, or any page form) must repeat the signed token;
bearer requests are exempt."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.admin_helpers import error_of
from tests.helpers import page_login, token_for
from xietong.identity.roles import Role

HTML = {"Accept": "text/html"}


def _signed_in(client: TestClient, db: Session, *roles: Role) -> str:
    factories.user(db, *(roles or (Role.LEARNER,)), username="csrf.user")
    db.commit()
    page_login(client, "csrf.user")
    token: str = client.cookies["xt_csrf"]
    return token


def test_cookie_json_post_needs_the_header(client: TestClient, db: Session) -> None:
    token = _signed_in(client, db)
    refused = client.post("/api/v1/me/totp")
    assert refused.status_code == 403
    assert error_of(refused) == {
        "code": "csrf_failed",
        "message": error_of(refused)["message"],
        "field": "csrf_token",
    }
    forged = client.post("/api/v1/me/totp", headers={"X-CSRF-Token": token + "0"})
    assert forged.status_code == 403
    allowed = client.post("/api/v1/me/totp", headers={"X-CSRF-Token": token})
    assert allowed.status_code == 200


def test_cookie_patch_needs_the_header(client: TestClient, db: Session) -> None:
    token = _signed_in(client, db)
    assert client.patch("/api/v1/me/preferences", json={"locale": "en"}).status_code == 403
    ok = client.patch(
        "/api/v1/me/preferences", json={"locale": "en"}, headers={"X-CSRF-Token": token}
    )
    assert ok.status_code == 204


def test_page_form_post_needs_the_field(client: TestClient, db: Session) -> None:
    token = _signed_in(client, db)
    refused = client.post("/account/preferences", data={"locale": "en"}, headers=HTML)
    assert refused.status_code == 403
    assert 'data-code="csrf_failed"' in refused.text
    wrong = client.post(
        "/account/preferences", data={"locale": "en", "csrf_token": "abc.def"}, headers=HTML
    )
    assert wrong.status_code == 403
    ok = client.post(
        "/account/preferences",
        data={"locale": "en", "csrf_token": token},
        follow_redirects=False,
    )
    assert ok.status_code == 303
    # htmx sends the header instead of the field.
    hx = client.post(
        "/account/preferences",
        data={"locale": "zh_CN"},
        headers={"X-CSRF-Token": token},
        follow_redirects=False,
    )
    assert hx.status_code == 303


def test_token_from_another_secret_is_refused(client: TestClient, db: Session) -> None:
    from xietong.core.security import new_token, sign

    _signed_in(client, db)
    forged = sign("another-secret", new_token(16))
    client.cookies.set("xt_csrf", forged)
    response = client.post("/api/v1/me/totp", headers={"X-CSRF-Token": forged})
    assert response.status_code == 403


def test_login_form_needs_the_token(client: TestClient, db: Session) -> None:
    factories.user(db, username="login.csrf")
    db.commit()
    response = client.post(
        "/login",
        data={"username": "login.csrf", "password": factories.PASSWORD},
        headers=HTML,
    )
    assert response.status_code == 403
    assert 'data-code="csrf_failed"' in response.text


def test_bearer_requests_are_exempt(client: TestClient, db: Session) -> None:
    factories.user(db, username="bearer.csrf")
    db.commit()
    headers = token_for(client, "bearer.csrf")
    assert client.post("/api/v1/me/totp", headers=headers).status_code == 200
    # Even when the client also holds a session cookie.
    page_login(client, "bearer.csrf")
    assert client.post("/api/v1/me/totp", headers=headers).status_code == 200


def test_admin_api_through_the_cookie_needs_the_header(client: TestClient, db: Session) -> None:
    inst = factories.institution(db)
    factories.user(db, Role.INSTITUTION_ADMIN, institution=inst, username="csrf.admin")
    target = factories.user(db, Role.EXPERT, institution=inst, username="csrf.target")
    db.commit()
    page_login(client, "csrf.admin")
    refused = client.post(f"/api/v1/users/{target.id}/unlock")
    assert (refused.status_code, error_of(refused)["code"]) == (403, "csrf_failed")
    ok = client.post(
        f"/api/v1/users/{target.id}/unlock", headers={"X-CSRF-Token": client.cookies["xt_csrf"]}
    )
    assert ok.status_code == 200

"""Sign-in by page and by token, wrong passwords, lockout and its end, per-address
throttling, and that refused attempts leave their trace despite the rollback."""

from __future__ import annotations

import httpx2 as httpx
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.admin_helpers import Clock, audit_rows, error_of, fresh_user, page_form
from tests.helpers import csrf_from, page_login, token_for
from xietong.config import Settings
from xietong.identity.roles import Role


def _token(client: TestClient, username: str, password: str, **extra: str) -> httpx.Response:
    return client.post(
        "/api/v1/auth/token", data={"username": username, "password": password, **extra}
    )


def test_page_login_sets_session_and_audits(client: TestClient, db: Session) -> None:
    user = factories.user(db, Role.LEARNER, username="page.user")
    db.commit()
    page_login(client, "page.user")
    me = client.get("/api/v1/me")
    assert me.status_code == 200
    assert me.json()["username"] == "page.user"
    rows = audit_rows(db, action="auth.login", outcome="success")
    assert [r.object_id for r in rows] == [str(user.id)]
    assert '"kind": "cookie"' in rows[0].detail


def test_page_login_wrong_password_shows_form_again(client: TestClient, db: Session) -> None:
    factories.user(db, username="page.user2")
    db.commit()
    token = page_form(client, "/login")
    response = client.post(
        "/login",
        data={"username": "page.user2", "password": "nope", "csrf_token": token},
        follow_redirects=False,
    )
    assert response.status_code == 401
    assert 'data-code="bad_credentials"' in response.text
    assert "xt_session" not in response.cookies
    assert csrf_from(response.text)


def test_page_login_keeps_local_next_only(client: TestClient, db: Session) -> None:
    factories.user(db, username="next.user")
    db.commit()
    for target, expected in [("/account", "/account"), ("https://evil.example/", "/")]:
        client.cookies.clear()
        token = page_form(client, "/login")
        response = client.post(
            "/login",
            data={
                "username": "next.user",
                "password": factories.PASSWORD,
                "next": target,
                "csrf_token": token,
            },
            follow_redirects=False,
        )
        assert response.headers["location"] == expected


def test_token_login_and_me(client: TestClient, db: Session) -> None:
    inst = factories.institution(db)
    factories.user(db, Role.EXPERT, institution=inst, username="tok.user")
    db.commit()
    response = _token(client, "tok.user", factories.PASSWORD)
    assert response.status_code == 200
    body = response.json()
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 8 * 3600
    me = client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"})
    assert me.status_code == 200
    assert me.json()["institution"]["id"] == inst.id


def test_wrong_password_is_401_naming_the_field(client: TestClient, db: Session) -> None:
    factories.user(db, username="wrong.pw")
    db.commit()
    response = client.post(
        "/api/v1/auth/token", data={"username": "wrong.pw", "password": "Wrong-Pass-2026"}
    )
    assert response.status_code == 401
    assert error_of(response) == {
        "code": "bad_credentials",
        "message": error_of(response)["message"],
        "field": "password",
    }
    # An unknown user gets exactly the same answer.
    unknown = client.post(
        "/api/v1/auth/token", data={"username": "nobody.here", "password": "Wrong-Pass-2026"}
    )
    assert unknown.status_code == 401
    assert error_of(unknown)["code"] == "bad_credentials"


def test_lockout_survives_rollback_and_ends_after_lockout_minutes(
    client: TestClient, db: Session, settings: Settings
) -> None:
    settings.security.max_failed_logins = 3
    settings.security.lockout_minutes = 15
    clock = Clock()
    user = factories.user(db, username="lock.me")
    db.commit()
    statuses = [
        client.post(
            "/api/v1/auth/token", data={"username": "lock.me", "password": "Bad-Guess-123"}
        ).status_code
        for _ in range(2)
    ]
    assert statuses == [401, 401]
    # The refused requests rolled back, yet the counter and the audit rows are there.
    assert fresh_user(db, user.id).failed_logins == 2
    failed = audit_rows(db, action="auth.login", outcome="failed", object_id=str(user.id))
    assert len(failed) == 2
    assert all('"reason": "bad_credentials"' in r.detail for r in failed)

    third = client.post(
        "/api/v1/auth/token", data={"username": "lock.me", "password": "Bad-Guess-123"}
    )
    assert third.status_code == 423
    assert error_of(third)["code"] == "account_locked"
    locked = fresh_user(db, user.id)
    assert locked.locked_until is not None
    # Locked: even the right password is refused, and that is audited too.
    right = _token(client, "lock.me", factories.PASSWORD)
    assert right.status_code == 423
    assert len(audit_rows(db, action="auth.login", outcome="failed", object_id=str(user.id))) == 4

    clock.advance(minutes=14)
    assert _token(client, "lock.me", factories.PASSWORD).status_code == 423
    clock.advance(minutes=2)
    assert _token(client, "lock.me", factories.PASSWORD).status_code == 200
    unlocked = fresh_user(db, user.id)
    assert unlocked.failed_logins == 0
    assert unlocked.locked_until is None


def test_page_login_lockout_is_423(client: TestClient, db: Session, settings: Settings) -> None:
    settings.security.max_failed_logins = 2
    user = factories.user(db, username="lock.page")
    db.commit()
    token = page_form(client, "/login")
    codes = []
    for _ in range(3):
        response = client.post(
            "/login",
            data={"username": "lock.page", "password": "Bad-Guess-123", "csrf_token": token},
        )
        codes.append(response.status_code)
    assert codes == [401, 423, 423]
    assert fresh_user(db, user.id).locked_until is not None


def test_address_throttling_429(client: TestClient, db: Session, settings: Settings) -> None:
    settings.security.max_failed_logins_per_address = 3
    factories.user(db, username="victim.one")
    db.commit()
    # Different usernames: no account reaches its own lockout, the address does.
    for n in range(3):
        response = client.post(
            "/api/v1/auth/token", data={"username": f"guess{n}", "password": "Bad-Guess-123"}
        )
        assert response.status_code == 401
    throttled = client.post(
        "/api/v1/auth/token", data={"username": "victim.one", "password": factories.PASSWORD}
    )
    assert throttled.status_code == 429
    assert error_of(throttled)["code"] == "too_many_requests"
    rows = audit_rows(db, action="auth.login", outcome="failed")
    assert '"reason": "address_throttled"' in rows[-1].detail
    assert rows[-1].client_address == "testclient"


def test_throttling_window_passes(client: TestClient, db: Session, settings: Settings) -> None:
    settings.security.max_failed_logins_per_address = 2
    clock = Clock()
    factories.user(db, username="patient.user")
    db.commit()
    for n in range(2):
        client.post("/api/v1/auth/token", data={"username": f"x{n}yz", "password": "Bad-1234"})
    assert _token(client, "patient.user", factories.PASSWORD).status_code == 429
    clock.advance(minutes=settings.security.lockout_minutes + 1)
    assert _token(client, "patient.user", factories.PASSWORD).status_code == 200


def test_inactive_account_cannot_sign_in(client: TestClient, db: Session) -> None:
    user = factories.user(db, username="gone.user")
    user.is_active = False
    db.commit()
    response = client.post(
        "/api/v1/auth/token", data={"username": "gone.user", "password": factories.PASSWORD}
    )
    assert response.status_code == 403
    assert error_of(response)["code"] == "account_disabled"


def test_bearer_missing_or_invalid_is_401_json(client: TestClient, db: Session) -> None:
    for headers in (
        {},
        {"Authorization": "Bearer not-a-real-token"},
        {"Authorization": "Bearer " + "x" * 500},
        {"Authorization": "Basic dXNlcjpwYXNz"},
    ):
        response = client.get("/api/v1/me", headers=headers)
        assert response.status_code == 401, headers
        assert response.headers["content-type"].startswith("application/json")
        assert error_of(response)["code"] == "not_authenticated"
        assert response.headers.get("www-authenticate") == "Bearer"


def test_token_logout_revokes_it(client: TestClient, db: Session) -> None:
    factories.user(db, username="bye.user")
    db.commit()
    headers = token_for(client, "bye.user")
    assert client.post("/api/v1/auth/logout", headers=headers).status_code == 204
    assert client.get("/api/v1/me", headers=headers).status_code == 401


def test_page_logout_ends_the_session(client: TestClient, db: Session) -> None:
    factories.user(db, username="page.bye")
    db.commit()
    page_login(client, "page.bye")
    session_cookie = client.cookies["xt_session"]
    token = page_form(client, "/account")
    response = client.post("/logout", data={"csrf_token": token}, follow_redirects=False)
    assert response.status_code == 303
    assert client.get("/api/v1/me").status_code == 401
    # The old cookie, replayed, is dead on the server too.
    client.cookies.set("xt_session", session_cookie)
    assert client.get("/api/v1/me").status_code == 401
    assert audit_rows(db, action="auth.logout")

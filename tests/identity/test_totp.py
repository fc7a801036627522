"""Second factor: enrolment (API and page), sign-in with a code by token and by the OTP
page, replay refusal, lockout on the OTP page, and forced enrolment of admins."""

from __future__ import annotations

import re

from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.admin_helpers import Clock, audit_rows, error_of, fresh_user, page_form, totp_code
from tests.helpers import csrf_from, page_login, token_for
from xietong.config import Settings
from xietong.identity.roles import Role


def _enrol_by_api(client: TestClient, username: str, clock: Clock) -> str:
    headers = token_for(client, username)
    started = client.post("/api/v1/me/totp", headers=headers)
    assert started.status_code == 200, started.text
    secret: str = started.json()["secret"]
    assert started.json()["provisioning_uri"].startswith("otpauth://totp/")
    confirm = client.post(
        "/api/v1/me/totp/confirm", headers=headers, json={"otp": totp_code(secret, clock.at)}
    )
    assert confirm.status_code == 204, confirm.text
    return secret


def _token(client: TestClient, username: str, otp: str | None = None) -> tuple[int, dict[str, str]]:
    data = {"username": username, "password": factories.PASSWORD}
    if otp is not None:
        data["otp"] = otp
    response = client.post("/api/v1/auth/token", data=data)
    body = response.json()
    return response.status_code, body.get("error", body)


def test_token_login_needs_the_code_and_refuses_replays(client: TestClient, db: Session) -> None:
    clock = Clock()
    factories.user(db, username="otp.user")
    db.commit()
    secret = _enrol_by_api(client, "otp.user", clock)

    status, body = _token(client, "otp.user")
    assert (status, body["code"], body["field"]) == (401, "otp_required", "otp")
    # The code used to confirm the enrolment cannot be used again.
    status, body = _token(client, "otp.user", totp_code(secret, clock.at))
    assert (status, body["code"], body["field"]) == (401, "otp_invalid", "otp")

    clock.advance(seconds=30)
    code = totp_code(secret, clock.at)
    status, body = _token(client, "otp.user", code)
    assert status == 200, body
    status, body = _token(client, "otp.user", code)  # replayed
    assert (status, body["code"]) == (401, "otp_invalid")
    status, body = _token(client, "otp.user", "12345")  # malformed
    assert status in (401, 422)


def test_enrolment_confirmation_with_a_wrong_code(client: TestClient, db: Session) -> None:
    factories.user(db, username="otp.wrong")
    db.commit()
    headers = token_for(client, "otp.wrong")
    assert client.post("/api/v1/me/totp", headers=headers).status_code == 200
    response = client.post("/api/v1/me/totp/confirm", headers=headers, json={"otp": "000000"})
    # (a 1-in-a-million chance of being right is accepted by this test)
    assert response.status_code == 422
    assert error_of(response)["field"] == "otp"
    me = client.get("/api/v1/me", headers=headers).json()
    assert me["totp_enabled"] is False


def test_otp_page_completes_the_cookie_login(client: TestClient, db: Session) -> None:
    clock = Clock()
    user = factories.user(db, username="otp.page")
    db.commit()
    secret = _enrol_by_api(client, "otp.page", clock)
    client.cookies.clear()
    clock.advance(seconds=30)

    token = page_form(client, "/login")
    response = client.post(
        "/login",
        data={"username": "otp.page", "password": factories.PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/login/otp"
    # Half signed in is not signed in.
    assert client.get("/api/v1/me").status_code == 401
    assert client.get("/account", follow_redirects=False).status_code == 303

    form = client.get("/login/otp")
    assert form.status_code == 200
    wrong = client.post("/login/otp", data={"otp": "000001", "csrf_token": csrf_from(form.text)})
    assert wrong.status_code == 401
    assert fresh_user(db, user.id).failed_logins == 1  # kept despite the refusal
    right = client.post(
        "/login/otp",
        data={"otp": totp_code(secret, clock.at), "csrf_token": csrf_from(form.text)},
        follow_redirects=False,
    )
    assert right.status_code == 303
    assert client.get("/api/v1/me").status_code == 200
    assert audit_rows(db, action="auth.otp", outcome="success")


def test_otp_page_locks_after_repeated_wrong_codes(
    client: TestClient, db: Session, settings: Settings
) -> None:
    settings.security.max_failed_logins = 3
    clock = Clock()
    user = factories.user(db, username="otp.brute")
    db.commit()
    secret = _enrol_by_api(client, "otp.brute", clock)
    client.cookies.clear()
    clock.advance(seconds=30)
    page_login_to_otp = page_form(client, "/login")
    client.post(
        "/login",
        data={
            "username": "otp.brute",
            "password": factories.PASSWORD,
            "csrf_token": page_login_to_otp,
        },
    )
    csrf = csrf_from(client.get("/login/otp").text)
    statuses = [
        client.post("/login/otp", data={"otp": f"00000{n}", "csrf_token": csrf}).status_code
        for n in range(3)
    ]
    assert statuses == [401, 401, 401]
    assert fresh_user(db, user.id).locked_until is not None
    # Locked: the right code no longer opens the session.
    right = client.post("/login/otp", data={"otp": totp_code(secret, clock.at), "csrf_token": csrf})
    assert right.status_code == 423
    assert client.get("/api/v1/me").status_code == 401


def test_enrolment_pages(client: TestClient, db: Session) -> None:
    clock = Clock()
    factories.user(db, username="otp.pages")
    db.commit()
    page_login(client, "otp.pages")
    start = client.get("/account/totp")
    assert start.status_code == 200
    assert 'action="/account/totp/start' in start.text
    client.post("/account/totp/start", data={"csrf_token": csrf_from(start.text)})
    shown = client.get("/account/totp")
    assert shown.headers["cache-control"] == "no-store"
    secret = re.search(r"<code data-secret>([A-Z2-7]+)</code>", shown.text)
    assert secret, shown.text
    assert "otpauth://totp/" in shown.text
    csrf = csrf_from(shown.text)
    wrong = client.post("/account/totp/confirm", data={"otp": "abc", "csrf_token": csrf})
    assert wrong.status_code == 422
    assert 'data-field="otp"' in wrong.text
    done = client.post(
        "/account/totp/confirm",
        data={"otp": totp_code(secret.group(1), clock.at), "csrf_token": csrf},
        follow_redirects=False,
    )
    assert done.status_code == 303
    assert client.get("/api/v1/me").json()["totp_enabled"] is True
    assert audit_rows(db, action="user.totp_enable")


def test_admins_must_enrol_when_required(
    client: TestClient, db: Session, settings: Settings
) -> None:
    settings.security.require_totp_for_admins = True
    clock = Clock()
    inst = factories.institution(db)
    admin = factories.user(db, Role.INSTITUTION_ADMIN, institution=inst, username="must.enrol")
    factories.user(db, Role.EXPERT, institution=inst, username="plain.doctor")
    db.commit()
    bearer = token_for(client, "must.enrol")

    token = page_form(client, "/login")
    response = client.post(
        "/login",
        data={"username": "must.enrol", "password": factories.PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/account/totp?required=1"
    blocked = client.get("/admin/users", follow_redirects=False)
    assert blocked.status_code == 303
    assert blocked.headers["location"] == "/account/totp?required=1"
    hx = client.get("/admin/users", headers={"HX-Request": "true"})
    assert hx.headers["hx-redirect"] == "/account/totp?required=1"
    api = client.get("/api/v1/users", headers=bearer)
    assert api.status_code == 403
    assert error_of(api)["code"] == "totp_enrolment_required"
    assert audit_rows(db, action="admin.access", outcome="denied", object_id=str(admin.id))

    # The enrolment page itself is open, and once enrolled the admin pages are too.
    page = client.get("/account/totp?required=1", headers={"Accept-Language": "en"})
    assert page.status_code == 200
    assert "must set up a second factor" in page.text
    client.post("/account/totp/start", data={"csrf_token": csrf_from(page.text)})
    shown = client.get("/account/totp")
    secret = re.search(r"<code data-secret>([A-Z2-7]+)</code>", shown.text)
    assert secret
    client.post(
        "/account/totp/confirm",
        data={"otp": totp_code(secret.group(1), clock.at), "csrf_token": csrf_from(shown.text)},
    )
    assert client.get("/admin/users").status_code == 200

    # Non-admins are not asked.
    client.cookies.clear()
    token = page_form(client, "/login")
    response = client.post(
        "/login",
        data={"username": "plain.doctor", "password": factories.PASSWORD, "csrf_token": token},
        follow_redirects=False,
    )
    assert response.headers["location"] == "/"


def test_admin_totp_reset_lets_the_user_enrol_again(client: TestClient, db: Session) -> None:
    clock = Clock()
    inst = factories.institution(db)
    factories.user(db, Role.INSTITUTION_ADMIN, institution=inst, username="reset.admin")
    user = factories.user(db, Role.EXPERT, institution=inst, username="lost.phone")
    db.commit()
    _enrol_by_api(client, "lost.phone", clock)
    client.cookies.clear()
    admin = token_for(client, "reset.admin")
    response = client.post(f"/api/v1/users/{user.id}/totp/reset", headers=admin)
    assert response.status_code == 200, response.text
    assert response.json()["totp_enabled"] is False
    status, _body = _token(client, "lost.phone")
    assert status == 200
    row = audit_rows(db, action="user.totp_reset")[-1]
    assert '"totp_enabled": true' in row.detail

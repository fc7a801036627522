"""The account administration pages: list and filters (htmx), create, edit roles,
(de)activate, unlock, reset password and second factor; errors shown next to the form."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.admin_helpers import World, audit_rows, fresh_user, world
from tests.helpers import page_login, token_for

NEW_PASSWORD = "Fresh-Start-2026!"


@pytest.fixture
def w(db: Session) -> World:
    return world(db)


def _csrf(client: TestClient) -> str:
    token: str = client.cookies["xt_csrf"]
    return token


def test_list_with_filters_and_htmx(client: TestClient, w: World) -> None:
    page_login(client, "root.admin")
    page = client.get("/admin/users")
    assert page.status_code == 200
    for name in ("root.admin", "admin.a", "doctor.b", 'hx-get="/admin/users"'):
        assert name in page.text
    assert 'href="/admin/users"' in page.text  # the menu entry
    only_a = client.get(f"/admin/users?institution_id={w.inst_a.id}")
    assert "doctor.a" in only_a.text
    assert "doctor.b" not in only_a.text
    partial = client.get("/admin/users?q=doctor&role=expert", headers={"HX-Request": "true"})
    assert "<html" not in partial.text
    assert "doctor.a" in partial.text
    assert "admin.a" not in partial.text
    paged = client.get("/admin/users?limit=2")
    assert "offset=2" in paged.text


def test_institution_admin_sees_own_people_only(client: TestClient, w: World) -> None:
    page_login(client, "admin.a")
    page = client.get("/admin/users")
    assert "doctor.a" in page.text
    assert "doctor.b" not in page.text
    assert "root.admin" not in page.text
    form = client.get("/admin/users/new")
    assert 'value="platform_admin"' not in form.text
    assert 'value="expert"' in form.text
    assert "甲医院" in form.text
    assert 'href="/admin/audit"' not in form.text


def test_create_through_the_form(client: TestClient, db: Session, w: World) -> None:
    page_login(client, "admin.a")
    client.get("/admin/users/new")
    bad = client.post(
        "/admin/users/new",
        data={
            "username": "form.user",
            "display_name": "表单用户",
            "password": "short",
            "roles": ["expert", "teacher"],
            "csrf_token": _csrf(client),
        },
    )
    assert bad.status_code == 422
    assert 'data-field="password"' in bad.text
    assert 'value="form.user"' in bad.text  # what was typed is kept
    assert re.search(r'value="teacher"\s+checked', bad.text)
    none = client.post(
        "/admin/users/new",
        data={"username": "form.user", "display_name": "x", "password": NEW_PASSWORD,
              "csrf_token": _csrf(client)},
    )  # fmt: skip
    assert none.status_code == 422
    assert 'data-field="roles"' in none.text
    ok = client.post(
        "/admin/users/new",
        data={
            "username": "form.user",
            "display_name": "表单用户",
            "password": NEW_PASSWORD,
            "roles": ["expert", "teacher"],
            "institution_id": str(w.inst_a.id),
            "csrf_token": _csrf(client),
        },
        follow_redirects=False,
    )
    assert ok.status_code == 303, ok.text
    detail = client.get(ok.headers["location"])
    assert "表单用户" in detail.text
    assert "The account was created." in detail.text or "已创建" in detail.text
    assert audit_rows(db, action="user.create", actor_username="admin.a")


def test_edit_roles_deactivate_unlock_reset(client: TestClient, db: Session, w: World) -> None:
    victim = token_for(client, "doctor.a")
    page_login(client, "admin.a")
    url = f"/admin/users/{w.doctor_a.id}"
    page = client.get(url)
    assert page.status_code == 200
    assert "Deactivate" in page.text or "停用" in page.text

    edit = client.post(
        url,
        data={
            "display_name": "新名字",
            "roles": ["expert", "coordinator"],
            "csrf_token": _csrf(client),
        },
        follow_redirects=False,
    )
    assert edit.status_code == 303
    assert fresh_user(db, w.doctor_a.id).role_names == ["coordinator", "expert"]
    no_roles = client.post(url, data={"display_name": "新名字", "csrf_token": _csrf(client)})
    assert no_roles.status_code == 422
    assert 'data-field="roles"' in no_roles.text
    grant = client.post(
        url, data={"display_name": "x", "roles": ["platform_admin"], "csrf_token": _csrf(client)}
    )
    assert grant.status_code == 403

    off = client.post(f"{url}/active", data={"active": "0", "csrf_token": _csrf(client)})
    assert off.status_code == 200  # followed to the detail page
    assert not fresh_user(db, w.doctor_a.id).is_active
    assert client.get("/api/v1/me", headers=victim).status_code == 401
    client.post(f"{url}/active", data={"active": "1", "csrf_token": _csrf(client)})
    assert fresh_user(db, w.doctor_a.id).is_active

    weak = client.post(
        f"{url}/password", data={"new_password": "weak", "csrf_token": _csrf(client)}
    )
    assert weak.status_code == 422
    assert 'data-field="new_password"' in weak.text
    reset = client.post(
        f"{url}/password", data={"new_password": NEW_PASSWORD, "csrf_token": _csrf(client)}
    )
    assert reset.status_code == 200
    assert fresh_user(db, w.doctor_a.id).must_change_password
    assert client.post(f"{url}/unlock", data={"csrf_token": _csrf(client)}).status_code == 200
    assert client.post(f"{url}/totp/reset", data={"csrf_token": _csrf(client)}).status_code == 200
    actions = {r.action for r in audit_rows(db, actor_username="admin.a", outcome="success")}
    assert {"user.update", "user.password_reset", "user.unlock", "user.totp_reset"} <= actions


def test_own_detail_page_protects_against_self_lockout(
    client: TestClient, db: Session, w: World
) -> None:
    page_login(client, "admin.a")
    url = f"/admin/users/{w.admin_a.id}"
    page = client.get(url)
    assert f'action="{url}/active"' not in page.text
    forced = client.post(f"{url}/active", data={"active": "0", "csrf_token": _csrf(client)})
    assert forced.status_code == 409
    assert 'data-code="self_lockout"' in forced.text
    demote = client.post(
        url, data={"display_name": "x", "roles": ["expert"], "csrf_token": _csrf(client)}
    )
    assert demote.status_code == 409
    assert fresh_user(db, w.admin_a.id).is_active
    assert "institution_admin" in fresh_user(db, w.admin_a.id).role_names


def test_anonymous_is_sent_to_sign_in(client: TestClient) -> None:
    response = client.get("/admin/users?q=x", follow_redirects=False)
    assert response.status_code == 303
    assert response.headers["location"] == "/login?next=%2Fadmin%2Fusers%3Fq%3Dx"

"""The account administration API: who may create and change which accounts, the shape
rules of an account, self-lockout protection, and the audit of every change."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.admin_helpers import World, audit_rows, error_of, fresh_user, world
from tests.helpers import token_for
from xietong.identity.roles import Role

NEW_PASSWORD = "Fresh-Start-2026!"


@pytest.fixture
def w(db: Session) -> World:
    return world(db)


def _new(**fields: Any) -> dict[str, Any]:
    body = {"username": "new.user", "display_name": "新用户", "password": NEW_PASSWORD}
    body.update(fields)
    return body


def test_platform_admin_creates_any_account(client: TestClient, db: Session, w: World) -> None:
    headers = token_for(client, "root.admin")
    response = client.post(
        "/api/v1/users",
        headers=headers,
        json=_new(roles=["expert", "teacher"], institution_id=w.inst_b.id),
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert response.headers["location"] == f"/api/v1/users/{body['id']}"
    assert body["roles"] == ["expert", "teacher"]
    assert body["institution_id"] == w.inst_b.id
    assert body["is_active"]
    assert not body["locked"]
    assert not body["totp_enabled"]
    row = audit_rows(db, action="user.create", object_id=str(body["id"]))[-1]
    detail = json.loads(row.detail)
    assert detail["after"]["username"] == "new.user"
    assert row.actor_username == "root.admin"
    assert NEW_PASSWORD not in row.detail
    assert "password" not in row.detail
    # The new account works.
    assert token_for(client, "new.user", NEW_PASSWORD)


def test_institution_admin_creates_in_own_institution(
    client: TestClient, db: Session, w: World
) -> None:
    headers = token_for(client, "admin.a")
    response = client.post("/api/v1/users", headers=headers, json=_new(roles=["coordinator"]))
    assert response.status_code == 201, response.text
    assert response.json()["institution_id"] == w.inst_a.id


@pytest.mark.parametrize("role", ["platform_admin", "audit_admin", "authority"])
def test_institution_admin_cannot_grant_platform_roles(
    client: TestClient, db: Session, w: World, role: str
) -> None:
    headers = token_for(client, "admin.a")
    body = _new(roles=[role], jurisdiction_code="410100" if role == "authority" else None)
    response = client.post("/api/v1/users", headers=headers, json=body)
    assert response.status_code == 403
    assert error_of(response)["code"] == "role_not_grantable"
    assert error_of(response)["field"] == "roles"
    denied = audit_rows(db, action="user.create", outcome="denied")
    assert len(denied) == 1
    assert denied[0].actor_username == "admin.a"


def test_institution_admin_cannot_create_elsewhere(
    client: TestClient, db: Session, w: World
) -> None:
    headers = token_for(client, "admin.a")
    for institution_id in (w.inst_b.id, 999_999):
        response = client.post(
            "/api/v1/users",
            headers=headers,
            json=_new(roles=["expert"], institution_id=institution_id),
        )
        assert response.status_code == 404
        assert error_of(response)["code"] == "institution_not_found"
    assert len(audit_rows(db, action="user.create", outcome="denied")) == 2
    assert not audit_rows(db, action="user.create", outcome="success")


def test_account_shape_rules(client: TestClient, db: Session, w: World) -> None:
    headers = token_for(client, "root.admin")
    cases = [
        (_new(roles=["expert"]), 422, "institution_required", "institution_id"),
        (_new(roles=["authority"]), 422, "jurisdiction_required", "jurisdiction_code"),
        (
            _new(roles=["authority"], jurisdiction_code="419999"),
            422,
            "region_not_found",
            "jurisdiction_code",
        ),
        (
            _new(roles=["learner"], jurisdiction_code="410100"),
            422,
            "jurisdiction_not_allowed",
            "jurisdiction_code",
        ),
        (_new(roles=["audit_admin", "platform_admin"]), 422, "roles_conflict", "roles"),
        (_new(username="root.admin", roles=["learner"]), 409, "username_taken", "username"),
        (_new(roles=["no_such_role"]), 422, "enum", "roles.0"),
        (_new(roles=[]), 422, "too_short", "roles"),
        (_new(username="Bad Name", roles=["learner"]), 422, "string_pattern_mismatch", "username"),
    ]
    for body, status, code, field in cases:
        response = client.post("/api/v1/users", headers=headers, json=body)
        assert response.status_code == status, (body, response.text)
        assert (error_of(response)["code"], error_of(response)["field"]) == (code, field), body
    ok = client.post(
        "/api/v1/users",
        headers=headers,
        json=_new(roles=["authority"], jurisdiction_code="410100"),
    )
    assert ok.status_code == 201, ok.text
    assert ok.json()["jurisdiction_code"] == "410100"


def test_practitioner_link_rules(client: TestClient, db: Session, w: World) -> None:
    own = factories.practitioner(db, w.inst_a)
    foreign = factories.practitioner(db, w.inst_b)
    db.commit()
    headers = token_for(client, "admin.a")
    wrong = client.post(
        "/api/v1/users", headers=headers, json=_new(roles=["expert"], practitioner_id=foreign.id)
    )
    assert (wrong.status_code, error_of(wrong)["field"]) == (422, "practitioner_id")
    ok = client.post(
        "/api/v1/users", headers=headers, json=_new(roles=["expert"], practitioner_id=own.id)
    )
    assert ok.status_code == 201
    again = client.post(
        "/api/v1/users",
        headers=headers,
        json=_new(username="other.user", roles=["expert"], practitioner_id=own.id),
    )
    assert (again.status_code, error_of(again)["code"]) == (409, "practitioner_taken")


@pytest.mark.parametrize(
    ("password", "code"),
    [
        ("Sh0rt!", "password_too_short"),
        ("alllowercaseletters", "password_too_simple"),
        ("Xx-new.user-2026", "password_contains_username"),
        ("Password123", "password_common"),
    ],
)
def test_password_policy_names_the_field(
    client: TestClient, db: Session, w: World, password: str, code: str
) -> None:
    headers = token_for(client, "root.admin")
    response = client.post(
        "/api/v1/users", headers=headers, json=_new(roles=["learner"], password=password)
    )
    assert response.status_code == 422
    assert (error_of(response)["code"], error_of(response)["field"]) == (code, "password")


def test_list_scopes_filters_and_pages(client: TestClient, db: Session, w: World) -> None:
    root = token_for(client, "root.admin")
    everyone = client.get("/api/v1/users", headers=root).json()
    assert everyone["total"] == 6
    by_inst = client.get(f"/api/v1/users?institution_id={w.inst_a.id}", headers=root).json()
    assert {u["username"] for u in by_inst["items"]} == {"admin.a", "doctor.a"}
    by_role = client.get("/api/v1/users?role=expert", headers=root).json()
    assert {u["username"] for u in by_role["items"]} == {"doctor.a", "doctor.b"}
    by_q = client.get("/api/v1/users?q=DOCTOR.", headers=root).json()
    assert by_q["total"] == 2
    wildcard = client.get("/api/v1/users?q=%25", headers=root).json()
    assert wildcard["total"] == 0  # LIKE wildcards are escaped
    page = client.get("/api/v1/users?limit=2&offset=2", headers=root).json()
    assert (len(page["items"]), page["total"], page["limit"], page["offset"]) == (2, 6, 2, 2)
    assert client.get("/api/v1/users?limit=101", headers=root).status_code == 422

    mine = client.get("/api/v1/users", headers=token_for(client, "admin.a")).json()
    assert mine["total"] == 2
    assert {u["institution_id"] for u in mine["items"]} == {w.inst_a.id}
    foreign = client.get(
        f"/api/v1/users?institution_id={w.inst_b.id}", headers=token_for(client, "admin.a")
    )
    assert foreign.status_code == 404


def test_read_one(client: TestClient, db: Session, w: World) -> None:
    headers = token_for(client, "admin.a")
    response = client.get(f"/api/v1/users/{w.doctor_a.id}", headers=headers)
    assert response.status_code == 200
    assert response.json()["username"] == "doctor.a"
    assert "password_hash" not in response.text
    assert "totp_secret" not in response.text
    assert client.get("/api/v1/users/987654", headers=headers).status_code == 404


def test_update_roles_and_name_is_audited_before_after(
    client: TestClient, db: Session, w: World
) -> None:
    headers = token_for(client, "admin.a")
    response = client.patch(
        f"/api/v1/users/{w.doctor_a.id}",
        headers=headers,
        json={"display_name": "王主任", "roles": ["expert", "coordinator"]},
    )
    assert response.status_code == 200, response.text
    assert response.json()["roles"] == ["coordinator", "expert"]
    row = audit_rows(db, action="user.update", object_id=str(w.doctor_a.id))[-1]
    detail = json.loads(row.detail)
    assert detail["before"] == {"display_name": w.doctor_a.display_name, "roles": ["expert"]}
    assert detail["after"] == {"display_name": "王主任", "roles": ["coordinator", "expert"]}
    # No change, no audit row.
    client.patch(f"/api/v1/users/{w.doctor_a.id}", headers=headers, json={"display_name": "王主任"})
    assert len(audit_rows(db, action="user.update", object_id=str(w.doctor_a.id))) == 1


def test_institution_admin_cannot_touch_platform_roles(
    client: TestClient, db: Session, w: World
) -> None:
    headers = token_for(client, "admin.a")
    grant = client.patch(
        f"/api/v1/users/{w.doctor_a.id}", headers=headers, json={"roles": ["platform_admin"]}
    )
    assert (grant.status_code, error_of(grant)["code"]) == (403, "role_not_grantable")
    # A platform admin who belongs to institution A is still out of admin.a's reach.
    boss = factories.user(db, Role.PLATFORM_ADMIN, institution=w.inst_a, username="boss.a")
    db.commit()
    for method, path, body in [
        ("PATCH", f"/api/v1/users/{boss.id}", {"is_active": False}),
        ("POST", f"/api/v1/users/{boss.id}/password", {"new_password": NEW_PASSWORD}),
        ("POST", f"/api/v1/users/{boss.id}/unlock", None),
        ("POST", f"/api/v1/users/{boss.id}/totp/reset", None),
    ]:
        response = client.request(method, path, headers=headers, json=body)
        assert (response.status_code, error_of(response)["code"]) == (403, "target_privileged")
    assert len(audit_rows(db, outcome="denied", object_id=str(boss.id))) == 4
    assert fresh_user(db, boss.id).is_active


def test_self_lockout_is_refused(client: TestClient, db: Session, w: World) -> None:
    for username, user, role in [
        ("admin.a", w.admin_a, "institution_admin"),
        ("root.admin", w.platform_admin, "platform_admin"),
    ]:
        headers = token_for(client, username)
        off = client.patch(f"/api/v1/users/{user.id}", headers=headers, json={"is_active": False})
        assert (off.status_code, error_of(off)["code"], error_of(off)["field"]) == (
            409,
            "self_lockout",
            "is_active",
        )
        demote = client.patch(
            f"/api/v1/users/{user.id}", headers=headers, json={"roles": ["learner"]}
        )
        assert (demote.status_code, error_of(demote)["field"]) == (409, "roles")
        reset = client.post(
            f"/api/v1/users/{user.id}/password",
            headers=headers,
            json={"new_password": NEW_PASSWORD},
        )
        assert (reset.status_code, error_of(reset)["code"]) == (409, "self_change")
        # Adding a role to oneself while keeping the admin role is fine.
        keep = client.patch(
            f"/api/v1/users/{user.id}", headers=headers, json={"roles": [role, "learner"]}
        )
        assert keep.status_code == 200, keep.text
    assert fresh_user(db, w.admin_a.id).is_active


def test_deactivation_ends_the_users_sessions(client: TestClient, db: Session, w: World) -> None:
    victim = token_for(client, "doctor.a")
    headers = token_for(client, "admin.a")
    off = client.patch(f"/api/v1/users/{w.doctor_a.id}", headers=headers, json={"is_active": False})
    assert off.status_code == 200
    assert off.json()["is_active"] is False
    assert client.get("/api/v1/me", headers=victim).status_code == 401
    on = client.patch(f"/api/v1/users/{w.doctor_a.id}", headers=headers, json={"is_active": True})
    assert on.json()["is_active"] is True
    assert client.get("/api/v1/me", headers=victim).status_code == 401  # stays revoked
    assert token_for(client, "doctor.a")


def test_authority_jurisdiction_changes(client: TestClient, db: Session, w: World) -> None:
    headers = token_for(client, "root.admin")
    made = client.post(
        "/api/v1/users", headers=headers, json=_new(roles=["authority"], jurisdiction_code="410100")
    ).json()
    moved = client.patch(
        f"/api/v1/users/{made['id']}", headers=headers, json={"jurisdiction_code": "410200"}
    )
    assert moved.json()["jurisdiction_code"] == "410200"
    cleared = client.patch(
        f"/api/v1/users/{made['id']}", headers=headers, json={"jurisdiction_code": None}
    )
    assert (cleared.status_code, error_of(cleared)["code"]) == (422, "jurisdiction_required")
    demoted = client.patch(
        f"/api/v1/users/{made['id']}", headers=headers, json={"roles": ["learner"]}
    )
    assert demoted.json()["jurisdiction_code"] is None


def test_unlock(client: TestClient, db: Session, w: World, settings: Any) -> None:
    settings.security.max_failed_logins = 2
    for _ in range(2):
        client.post("/api/v1/auth/token", data={"username": "doctor.a", "password": "Bad-Pass-01"})
    assert fresh_user(db, w.doctor_a.id).locked_until is not None
    headers = token_for(client, "admin.a")
    listed = client.get(f"/api/v1/users/{w.doctor_a.id}", headers=headers).json()
    assert listed["locked"] is True
    response = client.post(f"/api/v1/users/{w.doctor_a.id}/unlock", headers=headers)
    assert response.status_code == 200
    assert response.json()["locked"] is False
    assert token_for(client, "doctor.a")
    row = audit_rows(db, action="user.unlock")[-1]
    assert json.loads(row.detail)["after"] == {"locked_until": None, "failed_logins": 0}


def test_password_reset(client: TestClient, db: Session, w: World) -> None:
    victim = token_for(client, "doctor.a")
    headers = token_for(client, "admin.a")
    weak = client.post(
        f"/api/v1/users/{w.doctor_a.id}/password", headers=headers, json={"new_password": "short"}
    )
    assert (weak.status_code, error_of(weak)["field"]) == (422, "new_password")
    response = client.post(
        f"/api/v1/users/{w.doctor_a.id}/password",
        headers=headers,
        json={"new_password": NEW_PASSWORD},
    )
    assert response.status_code == 204
    assert client.get("/api/v1/me", headers=victim).status_code == 401
    login = client.post(
        "/api/v1/auth/token", data={"username": "doctor.a", "password": NEW_PASSWORD}
    ).json()
    assert login["password_expired"] is True
    assert fresh_user(db, w.doctor_a.id).must_change_password
    row = audit_rows(db, action="user.password_reset")[-1]
    assert NEW_PASSWORD not in row.detail
    assert json.loads(row.detail) == {"must_change_password": True, "sessions_revoked": True}
    # Changing it clears the flag.
    mine = {"Authorization": f"Bearer {login['access_token']}"}
    changed = client.post(
        "/api/v1/me/password",
        headers=mine,
        json={"current_password": NEW_PASSWORD, "new_password": "Another-Pass-2027"},
    )
    assert changed.status_code == 204
    assert client.get("/api/v1/me", headers=mine).json()["password_expired"] is False


def test_own_password_change_policy_names_new_password(
    client: TestClient, db: Session, w: World
) -> None:
    headers = token_for(client, "doctor.a")
    for new, code in [
        ("short", "password_too_short"),
        ("alllowercaseletters", "password_too_simple"),
        ("My-doctor.a-2026", "password_contains_username"),
        (factories.PASSWORD, "password_reused"),
    ]:
        response = client.post(
            "/api/v1/me/password",
            headers=headers,
            json={"current_password": factories.PASSWORD, "new_password": new},
        )
        assert response.status_code == 422
        assert (error_of(response)["code"], error_of(response)["field"]) == (code, "new_password")
    wrong = client.post(
        "/api/v1/me/password",
        headers=headers,
        json={"current_password": "not-it", "new_password": NEW_PASSWORD},
    )
    assert error_of(wrong)["field"] == "current_password"


def test_audit_admin_administers_nothing(client: TestClient, db: Session, w: World) -> None:
    headers = token_for(client, "audit.admin")
    assert client.get("/api/v1/users", headers=headers).status_code == 403
    response = client.post("/api/v1/users", headers=headers, json=_new(roles=["learner"]))
    assert response.status_code == 403
    assert client.get("/api/v1/audit", headers=headers).status_code == 200


def test_legacy_inconsistent_account_can_still_be_deactivated(
    client: TestClient, db: Session, w: World
) -> None:
    legacy = factories.user(db, Role.EXPERT, username="legacy.expert")  # no institution
    db.commit()
    headers = token_for(client, "root.admin")
    off = client.patch(f"/api/v1/users/{legacy.id}", headers=headers, json={"is_active": False})
    assert off.status_code == 200, off.text
    regrant = client.patch(
        f"/api/v1/users/{legacy.id}", headers=headers, json={"roles": ["expert", "teacher"]}
    )
    assert error_of(regrant)["code"] == "institution_required"

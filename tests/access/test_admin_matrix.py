"""Every admin endpoint refused to those without the role (403) and, for objects, to other
institutions' admins (404, as if absent); each refusal leaves a "denied" audit row that
survives the rollback of the refused request."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.admin_helpers import World, audit_rows, error_of, world
from tests.helpers import token_for

PW = {"new_password": "Fresh-Start-2026!"}
NEW = {
    "username": "m.user",
    "display_name": "M",
    "password": "Fresh-Start-2026!",
    "roles": ["learner"],
}

# (method, path with {uid}/{iid}, body, action recorded for a refusal)
USER_ENDPOINTS: list[tuple[str, str, Any, str]] = [
    ("GET", "/api/v1/users", None, "user.list"),
    ("POST", "/api/v1/users", NEW, "user.create"),
    ("GET", "/api/v1/users/{uid}", None, "user.read"),
    ("PATCH", "/api/v1/users/{uid}", {"display_name": "X"}, "user.update"),
    ("POST", "/api/v1/users/{uid}/unlock", None, "user.unlock"),
    ("POST", "/api/v1/users/{uid}/password", PW, "user.password_reset"),
    ("POST", "/api/v1/users/{uid}/totp/reset", None, "user.totp_reset"),
]
AUDIT_ENDPOINTS: list[tuple[str, str, Any, str]] = [
    ("GET", "/api/v1/audit", None, "audit.read"),
    ("GET", "/api/v1/audit/export", None, "audit.export"),
]
# The same through the pages.
USER_PAGES: list[tuple[str, str, Any, str]] = [
    ("GET", "/admin/users", None, "user.list"),
    ("GET", "/admin/users/new", None, "user.create"),
    ("GET", "/admin/users/{uid}", None, "user.read"),
    ("POST", "/admin/users/{uid}/unlock", {}, "user.unlock"),
    ("POST", "/admin/users/{uid}/active", {"active": "0"}, "user.update"),
]


HTML = {"Accept": "text/html"}


@pytest.fixture
def w(db: Session) -> World:
    return world(db)


def _call(client: TestClient, method: str, path: str, body: Any, headers: dict[str, str]) -> Any:
    return client.request(method, path, headers=headers, json=body)


# Who lacks the role for what: a doctor for everything, the audit admin for accounts
# (三员分立), an institution admin for the audit log.
REFUSED = (
    [("doctor.a", *e) for e in USER_ENDPOINTS + AUDIT_ENDPOINTS]
    + [("audit.admin", *e) for e in USER_ENDPOINTS]
    + [("admin.a", *e) for e in AUDIT_ENDPOINTS]
)


@pytest.mark.parametrize(("who", "method", "path", "body", "action"), REFUSED)
def test_without_the_role_403_audited(
    client: TestClient,
    db: Session,
    w: World,
    who: str,
    method: str,
    path: str,
    body: Any,
    action: str,
) -> None:
    headers = token_for(client, who)
    response = _call(client, method, path.format(uid=w.doctor_a.id), body, headers)
    assert response.status_code == 403, response.text
    assert error_of(response)["code"] == "forbidden"
    rows = audit_rows(db, action=action, outcome="denied", actor_username=who)
    assert len(rows) == 1
    assert '"reason": "role"' in rows[0].detail
    assert not audit_rows(db, outcome="success", action=action)


@pytest.mark.parametrize(
    ("method", "path", "body", "action"), [e for e in USER_ENDPOINTS if "{uid}" in e[1]]
)
def test_other_institution_admin_404_audited(
    client: TestClient, db: Session, w: World, method: str, path: str, body: Any, action: str
) -> None:
    headers = token_for(client, "admin.b")
    foreign = _call(client, method, path.format(uid=w.doctor_a.id), body, headers)
    absent = _call(client, method, path.format(uid=2_000_000), body, headers)
    assert foreign.status_code == absent.status_code == 404
    assert error_of(foreign) == error_of(absent)  # hidden and absent look the same
    rows = audit_rows(db, action=action, outcome="denied", actor_username="admin.b")
    assert [r.object_id for r in rows] == [str(w.doctor_a.id), "2000000"]
    assert all('"reason": "scope"' in r.detail for r in rows)


def test_foreign_institution_in_create_and_filter_404(
    client: TestClient, db: Session, w: World
) -> None:
    headers = token_for(client, "admin.b")
    created = client.post(
        "/api/v1/users", headers=headers, json={**NEW, "institution_id": w.inst_a.id}
    )
    listed = client.get(f"/api/v1/users?institution_id={w.inst_a.id}", headers=headers)
    assert created.status_code == listed.status_code == 404
    assert len(audit_rows(db, outcome="denied", object_kind="institution")) == 2


@pytest.mark.parametrize(("method", "path", "body", "action"), USER_PAGES)
def test_pages_refuse_like_the_api(
    client: TestClient, db: Session, w: World, method: str, path: str, body: Any, action: str
) -> None:
    from tests.helpers import page_login

    page_login(client, "doctor.a")
    csrf = client.cookies.get("xt_csrf") or ""
    url = path.format(uid=w.doctor_a.id)
    response = client.request(
        method,
        url,
        data={**body, "csrf_token": csrf} if body is not None else None,
        headers=HTML,
    )
    assert response.status_code == 403
    assert 'data-code="forbidden"' in response.text
    assert audit_rows(db, action=action, outcome="denied", actor_username="doctor.a")

    client.cookies.clear()
    page_login(client, "admin.b")
    csrf = client.cookies.get("xt_csrf") or ""
    response = client.request(
        method,
        url,
        data={**body, "csrf_token": csrf} if body is not None else None,
        headers=HTML,
    )
    if "{uid}" in path:
        assert response.status_code == 404
        assert audit_rows(db, action=action, outcome="denied", actor_username="admin.b")
    else:
        assert response.status_code == 200


def test_audit_pages_refused_to_institution_admins(
    client: TestClient, db: Session, w: World
) -> None:
    from tests.helpers import page_login

    page_login(client, "admin.a")
    response = client.get("/admin/audit", headers=HTML)
    assert response.status_code == 403
    assert 'data-code="forbidden"' in response.text
    assert audit_rows(db, action="audit.read", outcome="denied", actor_username="admin.a")

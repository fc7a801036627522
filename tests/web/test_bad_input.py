"""Bad input is refused with the right status and the field at fault, never with a 500:
malformed JSON, wrong types, unknown fields, oversized and chunked bodies, hostile strings
(very long, control characters, SQL-ish, HTML-ish — rendered escaped in pages)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.admin_helpers import World, audit_rows, error_of, world
from tests.helpers import page_login, token_for
from xietong.config import Settings

HOSTILE = [
    "x" * 10_000,
    "a\x00b",
    "tab\there\x07bell",
    "'; DROP TABLE app_user; --",
    '" OR 1=1 --',
    "<script>alert('x')</script>",
    "%_%\\",
    "\u202eevil\u202c",
    "𝔘𝔫𝔦𝔠𝔬𝔡𝔢 ☃ 测试",
]


@pytest.fixture
def w(db: Session) -> World:
    return world(db)


@pytest.fixture
def root(client: TestClient, w: World) -> dict[str, str]:
    return token_for(client, "root.admin")


def _json(client: TestClient, method: str, path: str, raw: bytes, headers: dict[str, str]) -> Any:
    return client.request(
        method, path, content=raw, headers={**headers, "Content-Type": "application/json"}
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/api/v1/users"),
        ("PATCH", "/api/v1/users/{uid}"),
        ("POST", "/api/v1/users/{uid}/password"),
        ("POST", "/api/v1/me/password"),
        ("POST", "/api/v1/me/totp/confirm"),
        ("PATCH", "/api/v1/me/preferences"),
    ],
)
def test_malformed_json_is_400(
    client: TestClient, w: World, root: dict[str, str], method: str, path: str
) -> None:
    url = path.format(uid=w.doctor_a.id)
    for raw in (b'{"username": ', b"{'single': 'quotes'}", b"\xff\xfe\x00garbage"):
        response = _json(client, method, url, raw, root)
        assert response.status_code == 400, (raw, response.text)
        assert error_of(response)["code"] in ("malformed_json", "bad_request")
        assert error_of(response)["field"] in ("body", None)
    response = _json(client, method, url, b'{"a": 1,,}', root)
    assert (error_of(response)["code"], error_of(response)["field"]) == ("malformed_json", "body")


def test_wrong_types_name_the_field(client: TestClient, w: World, root: dict[str, str]) -> None:
    cases: list[tuple[str, str, Any, str]] = [
        ("POST", "/api/v1/users", {"username": 5, "display_name": "x", "password": "p",
                                   "roles": ["learner"]}, "username"),
        ("POST", "/api/v1/users", {"username": "abc", "display_name": "x", "password": "p",
                                   "roles": "learner"}, "roles"),
        ("POST", "/api/v1/users", {"username": "abc", "display_name": "x", "password": "p",
                                   "roles": ["learner"], "institution_id": "one"},
         "institution_id"),
        ("POST", "/api/v1/users", {"username": "abc", "display_name": "x", "password": "p",
                                   "roles": ["learner"], "institution_id": 10**20},
         "institution_id"),
        ("PATCH", f"/api/v1/users/{w.doctor_a.id}", {"is_active": "maybe"}, "is_active"),
        ("PATCH", f"/api/v1/users/{w.doctor_a.id}", {"roles": [{"x": 1}]}, "roles.0"),
        ("PATCH", f"/api/v1/users/{w.doctor_a.id}", {"display_name": ["a"]}, "display_name"),
        ("POST", "/api/v1/users", [], "body"),
        ("POST", "/api/v1/users", "just a string", "body"),
        ("POST", "/api/v1/users", {}, "username"),
    ]  # fmt: skip
    for method, path, body, field in cases:
        response = client.request(method, path, json=body, headers=root)
        assert response.status_code == 422, (body, response.text)
        assert error_of(response)["field"] == field, (body, response.text)


def test_unknown_fields_are_refused(client: TestClient, w: World, root: dict[str, str]) -> None:
    cases = [
        ("PATCH", f"/api/v1/users/{w.doctor_a.id}", {"is_admin": True}, "is_admin"),
        ("PATCH", f"/api/v1/users/{w.doctor_a.id}", {"password_hash": "x"}, "password_hash"),
        ("POST", f"/api/v1/users/{w.doctor_a.id}/password",
         {"new_password": "Fresh-Start-2026!", "must_change_password": False},
         "must_change_password"),
        ("GET", "/api/v1/users?admin=1", None, "admin"),
    ]  # fmt: skip
    for method, path, body, field in cases:
        response = client.request(method, path, json=body, headers=root)
        assert response.status_code == 422
        assert (error_of(response)["code"], error_of(response)["field"]) == (
            "extra_forbidden",
            field,
        )


def test_bad_path_and_query_values(client: TestClient, w: World, root: dict[str, str]) -> None:
    for path, field in [
        ("/api/v1/users/abc", "user_id"),
        ("/api/v1/users/0", "user_id"),
        ("/api/v1/users/99999999999999999999", "user_id"),
        ("/api/v1/users?limit=abc", "limit"),
        ("/api/v1/users?offset=-5", "offset"),
        ("/api/v1/users?role=god", "role"),
        ("/api/v1/users?q=" + "x" * 65, "q"),
        ("/api/v1/users?q=%00", "q"),
    ]:
        response = client.get(path, headers=root)
        assert response.status_code == 422, path
        assert error_of(response)["field"] == field, path


def test_oversized_body_is_413(
    client: TestClient, w: World, root: dict[str, str], settings: Settings
) -> None:
    limit = settings.http.max_body_bytes
    big = b'{"display_name": "' + b"x" * (limit + 10) + b'"}'
    response = _json(client, "PATCH", f"/api/v1/users/{w.doctor_a.id}", big, root)
    assert response.status_code == 413
    assert (error_of(response)["code"], error_of(response)["field"]) == (
        "payload_too_large",
        "body",
    )


def _chunks(total: int, size: int = 65_536) -> Iterator[bytes]:
    yield b'{"display_name": "'
    sent = 0
    while sent < total:
        yield b"y" * size
        sent += size
    yield b'"}'


def test_chunked_oversized_body_is_413(
    client: TestClient, w: World, root: dict[str, str], settings: Settings
) -> None:
    settings.http.max_body_bytes = 4096
    app = client.app
    # The middleware was built with the limit at start-up: rebuild the client's app.
    from xietong.main import create_app

    services = app.state.services  # type: ignore[attr-defined]
    small = create_app(settings, session_factory=services.session_factory)
    with TestClient(small, raise_server_exceptions=False) as c:
        response = c.patch(
            f"/api/v1/users/{w.doctor_a.id}",
            content=_chunks(50_000),
            headers={**root, "Content-Type": "application/json"},
        )
        assert "content-length" not in {k.lower() for k in response.request.headers}
        assert response.status_code == 413, response.text
        assert error_of(response)["field"] == "body"
        # A page form, chunked, too (the CSRF check reads the form first).
        page = c.post(
            "/login",
            content=(b"username=" + b"z" * 1024 for _ in range(10)),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        assert page.status_code == 413
        # Under the limit, chunked is fine.
        ok = c.patch(
            f"/api/v1/users/{w.doctor_a.id}",
            content=iter([b'{"display_name": ', b'"chunked"}']),
            headers={**root, "Content-Type": "application/json"},
        )
        assert ok.status_code == 200, ok.text


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_strings_never_500(
    client: TestClient, db: Session, w: World, root: dict[str, str], text: str
) -> None:
    responses = [
        client.post(
            "/api/v1/users",
            headers=root,
            json={"username": text, "display_name": text, "password": text, "roles": ["learner"]},
        ),
        client.post(
            "/api/v1/users",
            headers=root,
            json={
                "username": "hostile.user",
                "display_name": text[:64],
                "password": "Fresh-Start-2026!",
                "roles": ["learner"],
                "jurisdiction_code": text,
            },
        ),
        client.patch(f"/api/v1/users/{w.doctor_a.id}", headers=root, json={"display_name": text}),
        client.get("/api/v1/users", headers=root, params={"q": text[:64]}),
        client.get("/api/v1/audit", headers=root, params={"actor": text[:64], "action": text}),
        client.post("/api/v1/auth/token", data={"username": text, "password": text}),
        client.post("/api/v1/auth/token", data={"username": text[:64], "password": "x"}),
        client.get("/lang/" + quote(text[:100], safe="")),
        client.get("/admin/users/" + quote(text[:100], safe=""), headers=root),
    ]
    for response in responses:
        assert response.status_code < 500, response.text
    # A failed login under a hostile name is still in the log (NUL replaced).
    assert audit_rows(db, action="auth.login", outcome="failed")


@pytest.mark.parametrize("text", HOSTILE)
def test_hostile_login_form_never_500(client: TestClient, w: World, text: str) -> None:
    page = client.get("/login")
    csrf = client.cookies["xt_csrf"]
    assert page.status_code == 200
    response = client.post(
        "/login",
        data={"username": text, "password": text, "next": text, "csrf_token": csrf},
        headers={"Accept": "text/html"},
    )
    assert response.status_code in (401, 422)
    assert "<script>alert" not in response.text


def test_html_is_escaped_in_pages(
    client: TestClient, db: Session, w: World, root: dict[str, str]
) -> None:
    evil = "<script>alert('x')</script>"
    response = client.patch(
        f"/api/v1/users/{w.doctor_a.id}", headers=root, json={"display_name": evil[:64]}
    )
    assert response.status_code == 200
    client.cookies.clear()
    page_login(client, "root.admin")
    for url in ("/admin/users", f"/admin/users/{w.doctor_a.id}", "/admin/audit?action=user."):
        html = client.get(url).text
        assert "<script>alert" not in html, url
    assert "&lt;script&gt;alert(" in client.get("/admin/users").text
    # In the audit detail column too (JSON inside HTML).
    assert "\\u003cscript\\u003e" in client.get("/admin/audit?action=user.update").text

"""No route without a policy: every /api/ route answers an anonymous request with 401, and
every page outside the public ones sends an anonymous visitor to sign in (or answers 401).

A new public route must be added to an allow-list here, on purpose, in review.
"""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from fastapi.testclient import TestClient

from tests.helpers import csrf_from

# (method, path) of API routes anyone may call.
PUBLIC_API: set[tuple[str, str]] = {
    ("POST", "/api/v1/auth/token"),
}
# Pages and technical routes anyone may open.
PUBLIC_PAGES: set[str] = {
    "/",  # redirects anonymous visitors to /login
    "/login",
    "/login/otp",
    "/lang/{code}",
    "/healthz",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    "/redoc",
}


def _routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) the app answers, through included routers too (mounts such as
    /static serve files and have no methods)."""
    found = []
    for route in iter_route_contexts(app.routes):
        if route.path is None or not route.methods:
            continue
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            found.append((method, route.path))
    return found


def _concrete(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "1", path)


def _unprotected_api_routes(app: FastAPI, client: TestClient) -> list[tuple[str, str, int]]:
    wrong = []
    for method, path in _routes(app):
        if not path.startswith("/api/") or (method, path) in PUBLIC_API:
            continue
        response = client.request(method, _concrete(path))
        if response.status_code != 401 or response.json()["error"]["code"] != "not_authenticated":
            wrong.append((method, path, response.status_code))
    return wrong


def test_every_api_route_refuses_anonymous(app: FastAPI, client: TestClient) -> None:
    assert len([p for _m, p in _routes(app) if p.startswith("/api/")]) >= 15
    wrong = _unprotected_api_routes(app, client)
    assert wrong == [], f"routes without an authentication policy: {wrong}"


def test_the_check_finds_a_route_without_policy(app: FastAPI, client: TestClient) -> None:
    @app.get("/api/v1/leak")
    def leak() -> dict[str, str]:
        return {"secret": "yes"}

    assert _unprotected_api_routes(app, client) == [("GET", "/api/v1/leak", 200)]


def test_every_page_refuses_anonymous(app: FastAPI, client: TestClient) -> None:
    csrf = csrf_from(client.get("/login").text)  # so that CSRF is not what refuses
    wrong = []
    for method, path in _routes(app):
        if path.startswith("/api/") or path in PUBLIC_PAGES:
            continue
        response = client.request(
            method,
            _concrete(path),
            data={"csrf_token": csrf} if method != "GET" else None,
            follow_redirects=False,
            headers={"Accept": "text/html"},
        )
        to_login = response.status_code == 303 and response.headers["location"].startswith("/login")
        if not (to_login or response.status_code == 401):
            wrong.append((method, path, response.status_code))
    assert wrong == [], f"pages without an authentication policy: {wrong}"


def test_allow_lists_name_real_routes(app: FastAPI) -> None:
    paths = {p for _m, p in _routes(app)}
    assert {p for _m, p in PUBLIC_API} <= paths
    assert {"/login", "/login/otp", "/lang/{code}", "/healthz"} <= paths

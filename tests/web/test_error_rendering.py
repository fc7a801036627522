"""One error, three renderings: JSON for the API, a page for browsers, a fragment for htmx."""

from fastapi.testclient import TestClient


def test_api_errors_are_json_in_chinese_by_default(client: TestClient) -> None:
    response = client.get("/api/v1/me")
    assert response.status_code == 401
    body = response.json()
    assert body["error"]["code"] == "not_authenticated"
    assert body["error"]["message"] == "请先登录。"
    assert "field" in body["error"]


def test_api_errors_follow_accept_language(client: TestClient) -> None:
    response = client.get("/api/v1/me", headers={"Accept-Language": "en-GB,en;q=0.9"})
    assert response.json()["error"]["message"] == "Please sign in."


def test_unknown_api_path_is_a_json_404(client: TestClient) -> None:
    response = client.get("/api/v1/no-such-thing")
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_wrong_method_is_a_json_405(client: TestClient) -> None:
    response = client.delete("/api/v1/me")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"


def test_browsers_get_an_error_page(client: TestClient) -> None:
    response = client.get("/no-such-page", headers={"Accept": "text/html"})
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("text/html")
    assert '<html lang="zh-CN">' in response.text
    assert "未找到。" in response.text


def test_htmx_gets_a_fragment_retargeted_to_messages(client: TestClient) -> None:
    response = client.get("/no-such-page", headers={"HX-Request": "true"})
    assert response.status_code == 404
    assert response.headers["HX-Retarget"] == "#messages"
    assert "<html" not in response.text
    assert 'data-code="not_found"' in response.text


def test_security_headers_on_every_response(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]
    assert response.headers["X-Frame-Options"] == "DENY"

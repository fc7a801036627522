from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests import factories
from tests.helpers import page_login, token_for
from xietong.identity.roles import Role


def test_healthz(client: TestClient) -> None:
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json()["database"] == "ok"


def test_token_and_me(client: TestClient, db: Session) -> None:
    inst = factories.institution(db)
    factories.user(db, Role.EXPERT, institution=inst, username="dr.wang")
    db.commit()
    headers = token_for(client, "dr.wang")
    me = client.get("/api/v1/me", headers=headers)
    assert me.status_code == 200, me.text
    body = me.json()
    assert body["roles"] == ["expert"]
    assert body["institution"]["id"] == inst.id


def test_page_login_and_home(client: TestClient, db: Session) -> None:
    factories.user(db, Role.LEARNER, username="learner1")
    db.commit()
    page_login(client, "learner1")
    home = client.get("/")
    assert home.status_code == 200
    assert "learner1" in home.text or "用户" in home.text


def test_api_docs_use_only_local_assets(client: TestClient) -> None:
    page = client.get("/docs")
    assert page.status_code == 200
    assert "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert "http" not in page.text.replace("http-equiv", "")
    schema = client.get("/openapi.json").json()
    assert "/api/v1/me" in schema["paths"]
    assert schema["components"]["securitySchemes"]["OAuth2PasswordBearer"]["type"] == "oauth2"

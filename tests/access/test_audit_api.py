"""Searching and exporting the audit log: filters, pagination, and the reading itself
leaving an audit row."""

from __future__ import annotations

import csv
import io
import json
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.admin_helpers import Clock, World, audit_rows, error_of, world
from tests.helpers import page_login, token_for
from xietong.access import audit
from xietong.access.principal import Principal, system_principal


@pytest.fixture
def w(db: Session) -> World:
    return world(db)


def _seed(db: Session, w: World, clock: Clock) -> None:
    actor = Principal(
        user_id=w.admin_a.id,
        username="admin.a",
        roles=frozenset({"institution_admin"}),
        institution_id=w.inst_a.id,
        client_address="10.0.0.7",
    )
    audit.record(db, actor, "user.update", object_kind="user", object_id=w.doctor_a.id)
    clock.advance(hours=1)
    audit.record(db, actor, "user.unlock", object_kind="user", object_id=w.doctor_a.id)
    clock.advance(hours=1)
    audit.record(
        db, system_principal("cli"), "user.create", object_kind="user", object_id=1,
        outcome="denied", detail={"reason": "test"},
    )  # fmt: skip
    db.commit()


def test_search_filters(client: TestClient, db: Session, w: World) -> None:
    clock = Clock()
    _seed(db, w, clock)
    headers = token_for(client, "audit.admin")

    def search(query: str) -> list[str]:
        response = client.get(f"/api/v1/audit?{query}", headers=headers)
        assert response.status_code == 200, response.text
        return [f"{i['action']}:{i['outcome']}" for i in response.json()["items"]]

    assert search("actor=admin.a") == ["user.unlock:success", "user.update:success"]
    assert search("action=user.") == [
        "user.create:denied",
        "user.unlock:success",
        "user.update:success",
    ]
    assert search("action=user.u") == ["user.unlock:success", "user.update:success"]
    assert search("outcome=denied&action=user.") == ["user.create:denied"]
    assert search(f"object_kind=user&object_id={w.doctor_a.id}") == [
        "user.unlock:success",
        "user.update:success",
    ]
    assert search(f"institution_id={w.inst_a.id}&action=user.") == [
        "user.unlock:success",
        "user.update:success",
    ]
    start = clock.at - timedelta(hours=2)
    since = (start + timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M:%S")
    until = (start + timedelta(minutes=90)).strftime("%Y-%m-%dT%H:%M:%S")
    assert search(f"since={since}&until={until}&action=user.") == ["user.unlock:success"]
    assert search(f"since={since}%2B08:00&action=user.") == [  # with a zone: converted
        "user.create:denied",
        "user.unlock:success",
        "user.update:success",
    ]
    item = client.get("/api/v1/audit?actor=admin.a&limit=1", headers=headers).json()
    assert item["total"] == 2
    assert len(item["items"]) == 1
    first = item["items"][0]
    assert first["client_address"] == "10.0.0.7"
    assert first["actor_role"] == "institution_admin"
    assert first["actor_institution_id"] == w.inst_a.id
    assert isinstance(first["detail"], dict)


def test_reading_is_audited(client: TestClient, db: Session, w: World) -> None:
    headers = token_for(client, "root.admin")
    client.get("/api/v1/audit?outcome=denied&limit=5", headers=headers)
    rows = audit_rows(db, action="audit.read")
    assert len(rows) == 1
    assert rows[0].actor_username == "root.admin"
    detail = json.loads(rows[0].detail)
    assert detail["filters"] == {"outcome": "denied"}


def test_bad_filters(client: TestClient, db: Session, w: World) -> None:
    headers = token_for(client, "audit.admin")
    for query, field in [
        ("outcome=maybe", "outcome"),
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
        ("limit=1000", "limit"),
        ("offset=-1", "offset"),
        ("institution_id=99999999999999999999", "institution_id"),
        ("actor=%00", "actor"),
        ("bogus=1", "bogus"),
    ]:
        response = client.get(f"/api/v1/audit?{query}", headers=headers)
        assert response.status_code == 422, query
        assert error_of(response)["field"] == field, query


def test_export_csv(client: TestClient, db: Session, w: World) -> None:
    clock = Clock()
    _seed(db, w, clock)
    # A value that a spreadsheet would run as a formula.
    audit.record(db, system_principal("test"), "user.update", object_kind="user", object_id="=1+2")
    db.commit()
    headers = token_for(client, "audit.admin")
    response = client.get("/api/v1/audit/export?action=user.", headers=headers)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    text = response.content.decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["action"] for r in rows] == [
        "user.update",
        "user.unlock",
        "user.create",
        "user.update",
    ]
    assert rows[-1]["object_id"] == "'=1+2"
    assert all(len(r["hash"]) == 64 for r in rows)
    exports = audit_rows(db, action="audit.export")
    assert len(exports) == 1
    assert json.loads(exports[0].detail)["filters"] == {"action": "user."}


def test_export_streams_many_rows_in_batches(client: TestClient, db: Session, w: World) -> None:
    who = system_principal("bulk")
    for n in range(2100):
        audit.record(db, who, "bulk.row", object_id=n)
    db.commit()
    headers = token_for(client, "root.admin")
    response = client.get("/api/v1/audit/export?action=bulk.", headers=headers)
    rows = list(csv.DictReader(io.StringIO(response.content.decode("utf-8-sig"))))
    assert len(rows) == 2100
    assert [int(r["object_id"]) for r in rows] == list(range(2100))


def test_audit_page(client: TestClient, db: Session, w: World) -> None:
    clock = Clock()
    _seed(db, w, clock)
    page_login(client, "audit.admin")
    page = client.get("/admin/audit?actor=admin.a")
    assert page.status_code == 200
    for text in ("user.unlock", "10.0.0.7", "甲医院", "institution_admin", 'name="actor"'):
        assert text in page.text
    assert "user.create" not in page.text.split('id="audit-results"')[1]
    partial = client.get("/admin/audit?outcome=denied", headers={"HX-Request": "true"})
    assert partial.status_code == 200
    assert "<html" not in partial.text
    assert "user.create" in partial.text
    bad = client.get("/admin/audit?since=nonsense", headers={"HX-Request": "true"})
    assert bad.status_code == 422
    assert 'data-field="since"' in bad.text
    reads = audit_rows(db, action="audit.read", actor_username="audit.admin")
    assert len(reads) == 2
    # The audit admin sees the audit menu, not the accounts menu.
    home = client.get("/")
    assert 'href="/admin/audit"' in home.text
    assert 'href="/admin/users"' not in home.text

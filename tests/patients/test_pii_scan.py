"""PII scan: no full resident ID number, passport number or phone number in any list
response, page (before an audited reveal), audit row, or stored column."""

from __future__ import annotations

from fastapi.testclient import TestClient
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from tests.directory.conftest import cookie_login
from tests.helpers import csrf_from
from tests.patients.conftest import (
    FEMALE,
    MALE,
    RESIDENT_ID_FEMALE,
    RESIDENT_ID_MALE,
    Api,
    register,
)
from xietong.access.models import AuditEvent

EMERGENCY_PHONE = "13700001111"
PASSPORT = "E98765432"
SECRETS = (
    RESIDENT_ID_MALE,
    RESIDENT_ID_FEMALE,
    MALE["phone"],
    FEMALE["phone"],
    EMERGENCY_PHONE,
    PASSPORT,
    "13600000000",
)


def _clean(label: str, body: str) -> None:
    leaked = [s for s in SECRETS if s in body or s.lower() in body]
    assert leaked == [], f"{label} shows {leaked}"


def test_nothing_full_in_lists_pages_or_the_audit_log(
    client: TestClient, db: Session, api: Api
) -> None:
    doc = api.village_doctor
    texts: dict[str, str] = {}
    male = client.post(
        "/api/v1/patients",
        json={
            **MALE,
            "emergency_contact": {"name": "李秀英", "relation": "配偶", "phone": EMERGENCY_PHONE},
            "identifiers": [{"kind": "passport", "value": PASSPORT, "issuer": "CHN"}],
        },
        headers=doc,
    )
    texts["register"] = male.text
    male_id = male.json()["patient"]["id"]
    female_id = register(client, doc, FEMALE)
    duplicate = client.post(
        "/api/v1/patients",
        json={**{k: v for k, v in MALE.items() if k != "resident_id"}, "phone": "13600000000"},
        headers=doc,
    )
    texts["register with near matches"] = duplicate.text
    assert duplicate.json()["near_matches"]
    duplicate_id = duplicate.json()["patient"]["id"]
    for label, params in {
        "search all": {},
        "search by id": {"resident_id": RESIDENT_ID_MALE},
        "search by phone": {"phone": MALE["phone"]},
        "search by name": {"name": "张"},
    }.items():
        texts[label] = client.get("/api/v1/patients", params=params, headers=doc).text
    texts["detail"] = client.get(f"/api/v1/patients/{male_id}", headers=doc).text
    texts["patch"] = client.patch(
        f"/api/v1/patients/{female_id}", json={"phone": "13987654321"}, headers=doc
    ).text
    merge = client.post(
        "/api/v1/patients/merges",
        json={"survivor_id": male_id, "merged_id": duplicate_id, "reason": "duplicate"},
        headers=doc,
    )
    texts["merge"] = merge.text
    texts["merges"] = client.get(f"/api/v1/patients/{male_id}/merges", headers=doc).text
    texts["grants"] = client.get(f"/api/v1/patients/{male_id}/grants", headers=doc).text
    texts["stats"] = client.get("/api/v1/patients/stats", headers=api.authority).text
    # Pages (a browser of the same doctor).
    cookie_login(client, db, api.users["village_doctor"])
    for url in (
        "/patients",
        "/patients?name=张",
        f"/patients/{male_id}",
        f"/patients/{duplicate_id}",
        f"/patients/{male_id}/edit",
        f"/patients/{male_id}/merge",
        f"/patients/{female_id}",
    ):
        texts[url] = client.get(url).text
    new_form = client.get("/patients/new").text
    near = client.post(
        "/patients/new",
        data={
            "csrf_token": csrf_from(new_form),
            "name": "王芳",
            "sex": "2",
            "birth_date": "1990-02-15",
            "phone": "13511112222",
        },
    )
    assert "已登记的疑似同一人" in near.text
    texts["registration near matches"] = near.text
    # The reveal itself shows full numbers; its audit row does not.
    revealed = client.post(f"/patients/{male_id}/reveal", data={"csrf_token": csrf_from(new_form)})
    assert RESIDENT_ID_MALE in revealed.text
    for label, body in texts.items():
        _clean(label, body)
    for row in db.execute(select(AuditEvent)).scalars():
        _clean(f"audit {row.action}", f"{row.detail} {row.purpose} {row.object_id}")


def test_no_identifier_is_stored_in_clear(client: TestClient, db: Session, api: Api) -> None:
    client.post(
        "/api/v1/patients",
        json={
            **MALE,
            "emergency_contact": {"name": "李秀英", "phone": EMERGENCY_PHONE},
            "identifiers": [{"kind": "passport", "value": PASSPORT, "issuer": "CHN"}],
        },
        headers=api.village_doctor,
    )
    for table in ("patient", "patient_identifier"):
        for row in db.execute(text(f"SELECT * FROM {table}")).all():  # noqa: S608 - fixed names
            _clean(table, " ".join(str(v) for v in row))

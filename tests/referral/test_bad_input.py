"""Bad input to the referral endpoints: a 4xx naming the field, never a 500, and nothing
written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.referral.conftest import Net, counts, down_body, reach

API = "/api/v1/referrals"
BIG = 2**31
NUL = "a\x00b"

CREATE: list[tuple[str, dict[str, Any], str, int]] = [
    ("extra field", {"ward": "3"}, "ward", 422),
    ("missing reason", {"reason": None}, "reason", 422),
    ("NUL", {"summary": NUL}, "summary", 422),
    ("huge summary", {"summary": "长" * 20_001}, "summary", 422),
    ("kind", {"kind": "sideways"}, "kind", 422),
    ("priority", {"priority": "vip"}, "priority", 422),
    ("patient beyond 2^31", {"patient_id": BIG}, "patient_id", 422),
    ("unknown patient", {"patient_id": 999_999}, "patient_id", 404),
    ("unknown ICD-10", {"diagnosis_code": "Q99.99"}, "diagnosis_code", 422),
    ("exam type on an up-referral", {"exam_type": "ct"}, "exam_type", 422),
    (
        "department elsewhere",
        {"target_department_id": "{other_department}"},
        "target_department_id",
        422,
    ),
    ("unknown doctor", {"target_practitioner_id": 999_999}, "target_practitioner_id", 422),
    ("unknown slot", {"slot_id": 999_999}, "slot_id", 422),
    ("exam slot for a visit", {"slot_id": "{ct}"}, "slot_id", 422),
    (
        "unknown item",
        {"shared_items": [{"kind": "diagnosis", "id": 999_999}]},
        "shared_items[0]",
        422,
    ),
    ("item kind", {"shared_items": [{"kind": "X!", "id": 1}]}, "shared_items.0.kind", 422),
    ("consultation not recommending", {"consultation_id": 999_999}, "consultation_id", 404),
]


def _fill(n: Net, value: Any) -> Any:
    names = {"{other_department}": n.extra.get("other_department"), "{ct}": n.slots["ct"]}
    if isinstance(value, str) and value in names:
        return names[value]
    return value


@pytest.mark.parametrize(("case", "changes", "field", "status"), CREATE, ids=[c[0] for c in CREATE])
def test_create(
    client: TestClient,
    db: Session,
    net: Net,
    case: str,
    changes: dict[str, Any],
    field: str,
    status: int,
) -> None:
    from tests import factories

    net.extra["other_department"] = factories.department(db, net.other, name="外科").id
    db.commit()
    body = net.body(**{k: _fill(net, v) for k, v in changes.items()})
    body = {k: v for k, v in body.items() if v is not None}
    before = counts(db)
    r = client.post(API, json=body, headers=net.tokens["sender"])
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field
    assert counts(db) == before


EXAM: list[tuple[str, dict[str, Any], str]] = [
    ("no exam type", {"exam_type": ""}, "exam_type"),
    ("exam type left out", {"exam_type": None}, "exam_type"),
    ("unknown exam type", {"exam_type": "xray-vision"}, "exam_type"),
    ("green exam", {"priority": "green"}, "priority"),
    ("outpatient slot for an exam", {"slot_id": "{outpatient}"}, "slot_id"),
    ("MRI slot? a CT one for an MRI", {"exam_type": "mri"}, "slot_id"),
]


@pytest.mark.parametrize(("case", "changes", "field"), EXAM, ids=[c[0] for c in EXAM])
def test_create_exam(
    client: TestClient, db: Session, net: Net, case: str, changes: dict[str, Any], field: str
) -> None:
    body = net.exam_body(
        **{k: (net.slots["outpatient"] if v == "{outpatient}" else v) for k, v in changes.items()}
    )
    body = {k: v for k, v in body.items() if v is not None}
    before = counts(db)
    r = client.post(API, json=body, headers=net.tokens["sender"])
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field
    assert counts(db) == before


DOWN: list[tuple[str, dict[str, Any], str, int]] = [
    (
        "no diagnoses",
        {"discharge": {"diagnoses": [], "follow_up_plan": "x"}},
        "discharge.diagnoses",
        422,
    ),
    (
        "bad ICD in the summary",
        {"discharge": {"diagnoses": [{"code": "ZZZ", "text": "x"}], "follow_up_plan": "x"}},
        "discharge.diagnoses[0].code",
        422,
    ),
    (
        "follow-up in the past",
        {"follow_ups": [{"due_date": "2026-01-01", "purpose": "x"}]},
        "follow_ups[0].due_date",
        422,
    ),
    ("no follow-ups", {"follow_ups": []}, "follow_ups", 422),
    (
        "medication days",
        {
            "discharge": {
                "diagnoses": [{"text": "x"}],
                "medications": [{"name": "a", "days": 0}],
                "follow_up_plan": "x",
            }
        },
        "discharge.medications.0.days",
        422,
    ),
    ("unknown parent", {"parent_id": 999_999}, "referral_id", 404),
    ("no target without a parent", {"parent_id": None}, "target_institution_id", 422),
]


@pytest.mark.parametrize(("case", "changes", "field", "status"), DOWN, ids=[c[0] for c in DOWN])
def test_create_down(
    client: TestClient,
    db: Session,
    net: Net,
    case: str,
    changes: dict[str, Any],
    field: str,
    status: int,
) -> None:
    up = reach(db, net, "up", "in_treatment")
    db.commit()
    before = counts(db)
    body = {**down_body(net, up.id), **changes}
    r = client.post(f"{API}/down", json=body, headers=net.tokens["county_doctor"])
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field
    assert counts(db) == before


def test_actions(client: TestClient, db: Session, net: Net) -> None:
    r = reach(db, net, "exam", "arrived")
    other = reach(db, net, "up", "requested")
    db.commit()
    before = counts(db)
    cases = [
        (f"/{other.id}/return", {}, "note", 422),
        (f"/{other.id}/reject", {"note": ""}, "note", 422),
        (f"/{other.id}/accept", {"slot_id": BIG}, "slot_id", 422),
        (f"/{other.id}/accept", {"slot_id": net.slots["ct"]}, "slot_id", 422),
        (f"/{r.id}/report", {"document_id": 999_999}, "document_id", 422),
        (f"/{r.id}/report", {"document_id": "x"}, "document_id", 422),
        (f"/{r.id}/decide", {"decision": "pray", "note": "x"}, "decision", 422),
        (f"/{BIG}/accept", {}, "referral_id", 422),
    ]
    for path, body, field, status in cases:
        who = "radiologist" if "report" in path or "decide" in path else "desk"
        got = client.post(f"{API}{path}", json=body, headers=net.tokens[who])
        assert got.status_code == status, (path, got.text)
        assert got.json()["error"]["field"] == field, path
    got = client.post(
        f"{API}",
        content=b"{nope",
        headers={**net.tokens["sender"], "Content-Type": "application/json"},
    )
    assert got.status_code == 400
    got = client.post(API, json=net.body(summary="长" * 600_000), headers=net.tokens["sender"])
    assert got.status_code == 413
    got = client.post(
        API, json=net.body(), headers={**net.tokens["sender"], "Idempotency-Key": "a b"}
    )
    assert (got.status_code, got.json()["error"]["field"]) == (422, "Idempotency-Key")
    assert counts(db) == before


def test_a_retry_with_the_same_key_makes_one_referral(
    client: TestClient, db: Session, net: Net
) -> None:
    headers = {**net.tokens["sender"], "Idempotency-Key": "ref-001"}
    first = client.post(API, json=net.body(), headers=headers)
    again = client.post(API, json=net.body(), headers=headers)
    assert (first.status_code, again.status_code) == (201, 200)
    assert first.json()["id"] == again.json()["id"]
    assert counts(db)["booking"] == 1

"""Bad input to every consultation endpoint: a 4xx naming the field, never a 500, and
nothing written."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.consultation.conftest import Net, counts, reach

API = "/api/v1/consultations"
BIG = 2**31
NUL = "a\x00b"

# (description, changes to the valid body, field, status)
CREATE: list[tuple[str, dict[str, Any], str, int]] = [
    ("extra field", {"ward": "3"}, "ward", 422),
    ("missing purpose", {"purpose": None}, "purpose", 422),
    ("empty summary", {"clinical_summary": "  "}, "clinical_summary", 422),
    ("NUL", {"questions": NUL}, "questions", 422),
    ("huge", {"questions": "长" * 10_001}, "questions", 422),
    ("specialty", {"specialty": "astrology"}, "specialty", 422),
    ("urgency", {"urgency": "whenever"}, "urgency", 422),
    ("mode", {"mode": "fax"}, "mode", 422),
    ("patient beyond 2^31", {"patient_id": BIG}, "patient_id", 422),
    ("unknown patient", {"patient_id": 999_999}, "patient_id", 404),
    ("both targets", {"target_practitioner_id": "{expert_a}"}, "target_institution_id", 422),
    ("no target", {"target_institution_id": None}, "target_institution_id", 422),
    ("not upward", {"target_institution_id": "{other}"}, "target_institution_id", 422),
    (
        "unknown expert",
        {"target_institution_id": None, "target_practitioner_id": 999_999},
        "target_practitioner_id",
        422,
    ),
    (
        "unknown item",
        {"shared_items": [{"kind": "diagnosis", "id": 999_999}]},
        "shared_items[0]",
        422,
    ),
    ("item kind", {"shared_items": [{"kind": "X!", "id": 1}]}, "shared_items.0.kind", 422),
    ("submit type", {"submit": "later"}, "submit", 422),
]


def _fill(n: Net, value: Any) -> Any:
    names = {"{expert_a}": n.experts["a"], "{other}": n.other.id}
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
    body = net.body(**{k: _fill(net, v) for k, v in changes.items()})
    body = {k: v for k, v in body.items() if v is not None}
    before = counts(db)
    r = client.post(
        API, json={**body, "submit": body.get("submit", True)}, headers=net.tokens["applicant"]
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field
    assert counts(db) == before


def test_bad_idempotency_key(client: TestClient, db: Session, net: Net) -> None:
    before = counts(db)
    headers = {**net.tokens["applicant"], "Idempotency-Key": "a b"}
    r = client.post(API, json=net.body(), headers=headers)
    assert r.status_code == 422
    assert r.json()["error"]["field"] == "Idempotency-Key"
    assert counts(db) == before


# (state, mode, who, method, action path, body, field, status)
ACTIONS: list[tuple[str, str, str, str, str, Any, str, int]] = [
    (
        "submitted",
        "async",
        "coordinator",
        "post",
        "accept",
        {"experts": [], "lead": 1},
        "experts",
        422,
    ),
    (
        "submitted",
        "async",
        "coordinator",
        "post",
        "accept",
        {"experts": ["{a}"], "lead": "{b}"},
        "lead",
        422,
    ),
    (
        "submitted",
        "async",
        "coordinator",
        "post",
        "accept",
        {"experts": ["{a}", "{a}"], "lead": "{a}"},
        "experts",
        422,
    ),
    (
        "submitted",
        "async",
        "coordinator",
        "post",
        "accept",
        {"experts": [999_999], "lead": 999_999},
        "experts[0]",
        422,
    ),
    (
        "submitted",
        "async",
        "coordinator",
        "post",
        "accept",
        {"experts": ["{a}"], "lead": "{a}", "room": 3},
        "room",
        422,
    ),
    ("submitted", "async", "coordinator", "post", "return", {}, "note", 422),
    ("submitted", "async", "coordinator", "post", "reject", {"note": ""}, "note", 422),
    ("submitted", "async", "applicant", "post", "cancel", {"note": NUL}, "note", 422),
    ("returned", "async", "applicant", "post", "resubmit", {"questions": ""}, "questions", 422),
    (
        "accepted",
        "live",
        "coordinator",
        "post",
        "schedule",
        {"scheduled_at": "2026-11-19T08:00:00Z"},
        "scheduled_at",
        422,
    ),
    (
        "accepted",
        "live",
        "coordinator",
        "post",
        "schedule",
        {"scheduled_at": "soon"},
        "scheduled_at",
        422,
    ),
    ("in_progress", "async", "expert_b", "put", "opinions/mine", {"text": ""}, "text", 422),
    ("in_progress", "async", "expert_b", "put", "opinions/mine", {}, "text", 422),
    (
        "report_signed",
        "async",
        "expert_a",
        "post",
        "amend",
        {"impression": "x", "recommendations": "y"},
        "reason",
        422,
    ),
    (
        "report_signed",
        "async",
        "expert_a",
        "post",
        "amend",
        {
            "impression": "x",
            "recommendations": "y",
            "reason": "r",
            "referral_recommended": True,
            "referral_institution_id": 999_999,
        },
        "referral_institution_id",
        422,
    ),
    (
        "report_signed",
        "async",
        "expert_a",
        "post",
        "amend",
        {
            "impression": "x",
            "recommendations": "y",
            "reason": "r",
            "referral_institution_id": "{county}",
        },
        "referral_institution_id",
        422,
    ),
    ("report_signed", "async", "applicant", "post", "complete", {"rating": 6}, "rating", 422),
    ("report_signed", "async", "applicant", "post", "complete", {"rating": 0}, "rating", 422),
    (
        "report_signed",
        "async",
        "applicant",
        "post",
        "complete",
        {"rating": 3, "comment": NUL},
        "comment",
        422,
    ),
]


@pytest.mark.parametrize(
    ("state", "mode", "who", "method", "path", "body", "field", "status"),
    ACTIONS,
    ids=[f"{a[4]}-{a[6]}-{i}" for i, a in enumerate(ACTIONS)],
)
def test_actions(
    client: TestClient,
    db: Session,
    net: Net,
    state: str,
    mode: str,
    who: str,
    method: str,
    path: str,
    body: Any,
    field: str,
    status: int,
) -> None:
    c = reach(db, net, state, mode=mode)
    db.commit()
    names = {"{a}": net.experts["a"], "{b}": net.experts["b"], "{county}": net.county.id}

    def fill(value: Any) -> Any:
        if isinstance(value, list):
            return [fill(v) for v in value]
        return names.get(value, value) if isinstance(value, str) else value

    payload = {k: fill(v) for k, v in body.items()}
    before = counts(db)
    r = client.request(
        method.upper(), f"{API}/{c.id}/{path}", json=payload, headers=net.tokens[who]
    )
    assert r.status_code == status, r.text
    assert r.json()["error"]["field"] == field
    assert counts(db) == before
    db.refresh(c)
    assert c.state == state


def test_sign_with_a_bad_referral(client: TestClient, db: Session, net: Net) -> None:
    c = reach(db, net, "in_progress")
    for who in ("expert_a", "expert_b"):
        client.put(f"{API}/{c.id}/opinions/mine", json={"text": "意见"}, headers=net.tokens[who])
    db.commit()
    before = counts(db)
    for body, field in (
        ({"recommendations": "y"}, "impression"),
        (
            {
                "impression": "x",
                "recommendations": "y",
                "referral_recommended": True,
                "referral_institution_id": 999_999,
            },
            "referral_institution_id",
        ),
    ):
        r = client.post(f"{API}/{c.id}/sign", json=body, headers=net.tokens["expert_a"])
        assert r.status_code == 422, r.text
        assert r.json()["error"]["field"] == field
    assert counts(db) == before


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"view": "all"}, "view"),
        ({"limit": 0}, "limit"),
        ({"state": "lost"}, "state"),
        ({"offset": -1}, "offset"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_list(client: TestClient, net: Net, params: dict[str, Any], field: str) -> None:
    r = client.get(API, params=params, headers=net.tokens["applicant"])
    assert r.status_code == 422, r.text
    assert r.json()["error"]["field"] == field


@pytest.mark.parametrize("bad", ["0", str(BIG), "abc"])
def test_path_ids(client: TestClient, net: Net, bad: str) -> None:
    for path in ("", "/reports", "/opinions"):
        r = client.get(f"{API}/{bad}{path}", headers=net.tokens["applicant"])
        assert r.status_code == 422
        assert r.json()["error"]["field"] == "consultation_id"

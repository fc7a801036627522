"""Who sees a referral and what was shared with it: unrelated institutions get 404 on
everything (audited), people who see it without a part get 403, the receiver reads only
the shared records and only until the grant expires, and every read is audited."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.directory.conftest import bearer
from tests.records.conftest import add
from tests.referral.conftest import NOW, SETTINGS, Net, audits, counts, reach
from xietong.core import clock
from xietong.identity.models import User
from xietong.records.kinds import RecordKind

API = "/api/v1/referrals"
UNRELATED = ("other_doctor", "other_desk", "city_desk")
ACTIONS = (
    "accept",
    "return",
    "reject",
    "cancel",
    "resubmit",
    "check-in",
    "no_show",
    "start",
    "complete",
    "report",
    "decide",
)


@pytest.mark.parametrize("who", UNRELATED)
@pytest.mark.parametrize("kind", ["up", "exam", "down"])
def test_unrelated_institutions_get_404_on_everything(
    client: TestClient, db: Session, net: Net, who: str, kind: str
) -> None:
    r = reach(db, net, kind, "accepted" if kind == "down" else "requested")
    db.commit()
    before = counts(db)
    h = net.tokens[who]
    for path in ("", "/chain"):
        got = client.get(f"{API}/{r.id}{path}", headers=h)
        assert got.status_code == 404, (path, got.text)
        assert got.json()["error"]["code"] == "referral_not_found"
    for action in ACTIONS:
        assert client.post(f"{API}/{r.id}/{action}", json={}, headers=h).status_code in (404, 422)
    got = client.post(f"{API}/{r.id}/follow-ups/1", json={"status": "done", "note": "x"}, headers=h)
    assert got.status_code == 404
    assert client.get(f"{API}/999999", headers=h).json()["error"]["code"] == "referral_not_found"
    assert audits(db, "referral.read", outcome="denied", object_id=str(r.id))
    # Nor do they read what was shared with it.
    got = client.get(f"/api/v1/records/diagnosis/{net.shared.id}", headers=h)
    assert got.status_code == 404
    assert counts(db) == before


def test_seeing_without_a_part_is_403(client: TestClient, db: Session, net: Net) -> None:
    r = reach(db, net, "up", "requested")
    db.commit()
    # The village coordinator sees the clinic's referrals but does not send them; the
    # county doctor sees the county's but is not its desk.
    assert client.get(f"{API}/{r.id}", headers=net.tokens["village_desk"]).json()["my_roles"] == [
        "viewer"
    ]
    got = client.post(f"{API}/{r.id}/cancel", json={}, headers=net.tokens["village_desk"])
    assert (got.status_code, got.json()["error"]["code"]) == (403, "role_not_allowed")
    got = client.post(f"{API}/{r.id}/accept", json={}, headers=net.tokens["county_doctor"])
    assert got.status_code == 403


def test_the_receiver_reads_only_what_is_shared_until_the_grant_expires(
    client: TestClient, db: Session, net: Net
) -> None:
    unshared = add(db, net.p["sender"], RecordKind.DIAGNOSIS, net.patient.id, code="E11.9")
    reach(db, net, "up", "requested")
    db.commit()
    shared = f"/api/v1/records/diagnosis/{net.shared.id}"
    assert client.get(shared, headers=net.tokens["desk"]).status_code == 200
    assert (
        client.get(
            f"/api/v1/records/diagnosis/{unshared.id}", headers=net.tokens["desk"]
        ).status_code
        == 404
    )
    expiry = NOW + timedelta(days=SETTINGS.grant_days)
    user = db.get(User, net.p["desk"].user_id)
    assert user is not None
    clock.set_clock(lambda: expiry + timedelta(seconds=1))
    token = bearer(db, user)
    db.commit()
    assert client.get(shared, headers=token).status_code == 404


def test_every_read_is_audited(client: TestClient, db: Session, net: Net) -> None:
    r = reach(db, net, "up", "arrived")
    db.commit()
    for who in ("sender", "village_desk", "desk", "clinician", "county_doctor"):
        assert client.get(f"{API}/{r.id}", headers=net.tokens[who]).status_code == 200
        assert client.get(f"{API}/{r.id}/chain", headers=net.tokens[who]).status_code == 200
    readers = {row.actor_user_id for row in audits(db, "referral.read", object_id=str(r.id))}
    assert len(readers) == 5
    assert len(audits(db, "referral.chain", object_id=str(r.id))) == 5
    listing = client.get(API, params={"view": "worklist"}, headers=net.tokens["clinician"])
    assert [row["id"] for row in listing.json()["items"]] == [r.id]
    assert audits(db, "referral.list")


def test_the_lower_institution_works_on_patients_sent_back_until_the_plan_is_done(
    client: TestClient, db: Session, net: Net
) -> None:
    down = reach(db, net, "down", "accepted")
    done = reach(db, net, "down", "completed")
    db.commit()
    listing = client.get(API, params={"view": "worklist"}, headers=net.tokens["sender"]).json()
    ids = [row["id"] for row in listing["items"]]
    assert down.id in ids
    assert done.id not in ids

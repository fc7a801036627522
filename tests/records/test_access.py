"""Who sees which entries, for every kind: the holding institution, grants of items and of
charts (until they expire), break-glass; everyone else a 404 that is audited, with hidden and
absent alike."""

from __future__ import annotations

from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.records.conftest import KINDS, NOW, PATHS, VALID, Site, add, audits
from xietong.core import clock
from xietong.core.errors import Forbidden, NotFound
from xietong.patients.grants import create_grant
from xietong.patients.models import Patient
from xietong.patients.registration import link_institution
from xietong.patients.schemas import GrantIn
from xietong.records import service as svc
from xietong.records.kinds import RecordKind


def _url(site: Site, kind: RecordKind) -> str:
    return f"/api/v1/patients/{site.patient.id}/{PATHS[kind]}"


@pytest.mark.parametrize("kind", KINDS)
def test_the_holder_records_lists_and_reads_with_an_audit_row_each(
    client: TestClient, db: Session, site: Site, kind: RecordKind
) -> None:
    headers = site.tokens["village_doctor"]
    created = client.post(_url(site, kind), json=VALID[kind], headers=headers)
    assert created.status_code == 201, created.text
    entry = created.json()
    assert entry["institution_id"] == site.village.id
    assert entry["recorded_by_practitioner_id"] == site.village_practitioner.id
    assert entry["recorded_by_name"] == "李医生"
    assert created.headers["location"] == f"/api/v1/records/{kind}/{entry['id']}"
    listed = client.get(_url(site, kind), headers=headers).json()
    assert [i["id"] for i in listed["items"]] == [entry["id"]]
    assert listed["total"] == 1
    got = client.get(f"/api/v1/records/{kind}/{entry['id']}", headers=headers)
    assert got.status_code == 200
    assert got.json()["record_kind"] == kind
    item = {"object_kind": kind.value, "object_id": str(entry["id"])}
    assert audits(db, f"{kind}.create", **item)
    assert audits(db, f"{kind}.read", **item)
    listing = audits(db, f"{kind}.list", object_kind=kind.value)
    assert f'"ids": [{entry["id"]}]' in listing[-1].detail
    # Opening the patient for each of those is audited on the patient too.
    assert audits(db, f"{kind}.read", object_kind="patient", object_id=str(site.patient.id))


@pytest.mark.parametrize("kind", KINDS)
def test_another_institution_gets_404_for_hidden_and_absent_alike(
    client: TestClient, db: Session, site: Site, kind: RecordKind
) -> None:
    entry = add(db, site.village_doctor, kind, site.patient.id)
    db.commit()
    headers = site.tokens["other_doctor"]
    hidden = client.get(f"/api/v1/records/{kind}/{entry.id}", headers=headers)
    absent = client.get(f"/api/v1/records/{kind}/{entry.id + 1000}", headers=headers)
    assert hidden.status_code == absent.status_code == 404
    assert hidden.json() == {
        "error": {**absent.json()["error"]},
    }
    assert hidden.json()["error"]["code"] == f"{kind}_not_found"
    listing = client.get(_url(site, kind), headers=headers)
    assert listing.status_code == 404
    assert listing.json()["error"]["code"] == "patient_not_found"
    correction = client.patch(
        f"/api/v1/records/{kind}/{entry.id}", json={"reason": "typo"}, headers=headers
    )
    assert correction.status_code == 404
    error = client.post(
        f"/api/v1/records/{kind}/{entry.id}/entered-in-error",
        json={"reason": "wrong patient"},
        headers=headers,
    )
    assert error.status_code == 404
    history = client.get(f"/api/v1/records/{kind}/{entry.id}/revisions", headers=headers)
    assert history.status_code == 404
    created = client.post(_url(site, kind), json=VALID[kind], headers=headers)
    assert created.status_code == 404
    # Every refusal left its row, though each request was rolled back.
    for action in ("read", "correct", "entered_in_error", "history"):
        denied = audits(db, f"{kind}.{action}", outcome="denied", object_kind=kind.value)
        assert str(entry.id) in {a.object_id for a in denied}, action
    assert audits(db, f"{kind}.list", outcome="denied", object_kind="patient")
    assert audits(db, f"{kind}.create", outcome="denied", object_kind="patient")


@pytest.mark.parametrize("kind", KINDS)
def test_the_linked_county_sees_its_own_entries_not_the_village_ones(
    db: Session, site: Site, kind: RecordKind
) -> None:
    village_entry = add(db, site.village_doctor, kind, site.patient.id)
    county_entry = add(db, site.county_doctor, kind, site.patient.id)
    rows, total = svc.list_entries(db, site.county_doctor, kind, site.patient.id, svc.ListQuery())
    assert [r.id for r in rows] == [county_entry.id]
    assert total == 1
    with pytest.raises(NotFound):
        svc.get_entry(db, site.county_doctor, kind, village_entry.id)


@pytest.mark.parametrize("kind", KINDS)
def test_an_item_grant_opens_exactly_its_items_until_it_expires(
    db: Session, site: Site, kind: RecordKind
) -> None:
    shared = add(db, site.village_doctor, kind, site.patient.id)
    kept = add(db, site.village_doctor, kind, site.patient.id)
    other_kind = next(k for k in KINDS if k is not kind)
    other_entry = add(db, site.village_doctor, other_kind, site.patient.id)
    expires = NOW + timedelta(days=3)
    create_grant(
        db,
        site.village_doctor,
        GrantIn(
            patient_id=site.patient.id,
            grantee_institution_id=site.other.id,
            scope="items",
            items=[{"kind": kind.value, "id": shared.id}],  # type: ignore[list-item]
            purpose="remote consultation",
            expires_at=expires,
        ),
    )
    viewer = site.other_doctor
    assert svc.get_entry(db, viewer, kind, shared.id).id == shared.id
    for hidden_kind, hidden_id in ((kind, kept.id), (other_kind, other_entry.id)):
        with pytest.raises(NotFound):
            svc.get_entry(db, viewer, hidden_kind, hidden_id)
    rows, total = svc.list_entries(db, viewer, kind, site.patient.id, svc.ListQuery())
    assert ([r.id for r in rows], total) == ([shared.id], 1)
    rows, total = svc.list_entries(db, viewer, other_kind, site.patient.id, svc.ListQuery())
    assert (rows, total) == ([], 0)
    items, total = svc.timeline(db, viewer, site.patient.id, svc.TimelineQuery())
    assert ([(i.kind, i.id) for i in items], total) == ([(kind.value, shared.id)], 1)
    # A grantee reads but does not correct what another institution holds.
    with pytest.raises(Forbidden):
        svc.correct_entry(db, viewer, kind, shared.id, {"encounter_id": None}, "x")
    clock.set_clock(lambda: expires + timedelta(seconds=1))
    with pytest.raises(NotFound):
        svc.get_entry(db, viewer, kind, shared.id)
    with pytest.raises(NotFound):
        svc.list_entries(db, viewer, kind, site.patient.id, svc.ListQuery())


def test_a_chart_grant_opens_the_granting_institutions_entries(db: Session, site: Site) -> None:
    village = [add(db, site.village_doctor, k, site.patient.id) for k in KINDS]
    county = [add(db, site.county_doctor, k, site.patient.id) for k in KINDS]
    expires = NOW + timedelta(days=1)
    create_grant(
        db,
        site.village_doctor,
        GrantIn(
            patient_id=site.patient.id,
            grantee_user_id=site.other_doctor.user_id,
            scope="chart",
            purpose="referral",
            expires_at=expires,
        ),
    )
    viewer = site.other_doctor
    for kind, seen, unseen in zip(KINDS, village, county, strict=True):
        rows, total = svc.list_entries(db, viewer, kind, site.patient.id, svc.ListQuery())
        assert ([r.id for r in rows], total) == ([seen.id], 1)
        assert svc.get_entry(db, viewer, kind, seen.id).id == seen.id
        with pytest.raises(NotFound):
            svc.get_entry(db, viewer, kind, unseen.id)
    items, total = svc.timeline(db, viewer, site.patient.id, svc.TimelineQuery())
    assert total == len(KINDS)
    assert {i.institution_id for i in items} == {site.village.id}
    clock.set_clock(lambda: expires)
    with pytest.raises(NotFound):
        svc.timeline(db, viewer, site.patient.id, svc.TimelineQuery())


def test_roles_without_charts_get_403_whether_the_entry_exists_or_not(
    client: TestClient, db: Session, site: Site
) -> None:
    entry = add(db, site.village_doctor, RecordKind.DIAGNOSIS, site.patient.id)
    db.commit()
    for who in ("authority", "institution_admin", "platform"):
        for entry_id in (entry.id, entry.id + 1000):
            response = client.get(f"/api/v1/records/diagnosis/{entry_id}", headers=site.tokens[who])
            assert response.status_code == 403, (who, response.text)
        listing = client.get(_url(site, RecordKind.DIAGNOSIS), headers=site.tokens[who])
        assert listing.status_code == 403
    refused = audits(db, "diagnosis.read", outcome="denied", object_id=str(entry.id))
    assert len(refused) == 3


def test_break_glass_opens_every_entry_with_the_reason_audited(
    client: TestClient, db: Session, site: Site
) -> None:
    village = add(db, site.village_doctor, RecordKind.LAB_RESULT, site.patient.id)
    county = add(db, site.county_doctor, RecordKind.LAB_RESULT, site.patient.id)
    db.commit()
    reason = "投诉调查 2026-118"
    headers = {
        **site.tokens["platform"],
        "X-Access-Reason": "%E6%8A%95%E8%AF%89%E8%B0%83%E6%9F%A5 2026-118",
    }
    listed = client.get(_url(site, RecordKind.LAB_RESULT), headers=headers)
    assert listed.status_code == 200, listed.text
    assert {i["id"] for i in listed.json()["items"]} == {village.id, county.id}
    got = client.get(f"/api/v1/records/lab_result/{county.id}", headers=headers)
    assert got.status_code == 200
    opened = audits(db, "patient.break_glass")
    assert opened
    assert opened[-1].purpose == reason
    short = {**site.tokens["platform"], "X-Access-Reason": "because"}
    assert client.get(f"/api/v1/records/lab_result/{county.id}", headers=short).status_code == 403
    # The platform admin reads; it never records.
    created = client.post(
        _url(site, RecordKind.LAB_RESULT), json=VALID[RecordKind.LAB_RESULT], headers=headers
    )
    assert created.status_code == 403


def test_entries_of_a_merged_record_show_in_the_survivors_chart(db: Session, site: Site) -> None:
    duplicate = Patient(
        name="张建国",
        sex="1",
        birth_date=site.patient.birth_date,
        registered_institution_id=site.village.id,
    )
    db.add(duplicate)
    db.flush()
    link_institution(db, duplicate.id, site.village.id, "registered")
    old = add(db, site.village_doctor, RecordKind.DIAGNOSIS, duplicate.id)
    duplicate.merged_into_id = site.patient.id
    db.flush()
    new = add(db, site.village_doctor, RecordKind.DIAGNOSIS, duplicate.id)
    assert new.patient_id == site.patient.id  # new entries go to the survivor
    rows, total = svc.list_entries(
        db, site.village_doctor, RecordKind.DIAGNOSIS, site.patient.id, svc.ListQuery()
    )
    assert {r.id for r in rows} == {old.id, new.id}
    assert total == 2

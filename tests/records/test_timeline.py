"""The timeline: every visible entry across kinds and institutions, newest first, with its
filters, paging and totals."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.records.conftest import NOW, Site, add, audits
from xietong.patients.grants import create_grant
from xietong.patients.schemas import GrantIn
from xietong.records import service as svc
from xietong.records.kinds import RecordKind


@pytest.fixture
def chart(db: Session, site: Site) -> dict[str, int]:
    """A village visit with a diagnosis, a high glucose and a fever; a county visit with a
    normal lab and a normal pulse; an old allergy. The county shares its chart with the
    village."""
    v, c, p = site.village_doctor, site.county_doctor, site.patient.id
    ids = {
        "v_visit": add(db, v, RecordKind.ENCOUNTER, p, start_date="2026-09-01").id,
        "v_dx": add(db, v, RecordKind.DIAGNOSIS, p, code="E11.9", diagnosed_on="2026-09-01").id,
        "v_lab": add(db, v, RecordKind.LAB_RESULT, p, collected_at="2026-09-01T09:00:00+08:00").id,
        "v_fever": add(
            db,
            v,
            RecordKind.VITAL_SIGN,
            p,
            kind="temperature",
            value=38.2,
            measured_at="2026-09-01T08:00:00+08:00",
        ).id,
        "allergy": add(db, v, RecordKind.ALLERGY, p, noted_on="2015-05-01").id,
        "c_visit": add(
            db,
            c,
            RecordKind.ENCOUNTER,
            p,
            kind="inpatient",
            start_date="2026-10-10",
            end_date="2026-10-15",
        ).id,
        "c_lab": add(
            db,
            c,
            RecordKind.LAB_RESULT,
            p,
            value_text="5.0",
            collected_at="2026-10-11T07:30:00+08:00",
        ).id,
        "c_pulse": add(
            db,
            c,
            RecordKind.VITAL_SIGN,
            p,
            kind="heart_rate",
            value=72,
            measured_at="2026-10-11T08:00:00+08:00",
        ).id,
        "c_order": add(
            db, c, RecordKind.MEDICATION, p, start_date="2026-10-11", end_date="2026-12-31"
        ).id,
    }
    create_grant(
        db,
        site.county_doctor,
        GrantIn(
            patient_id=p,
            grantee_institution_id=site.village.id,
            scope="chart",
            purpose="follow-up after discharge",
            expires_at=NOW + timedelta(days=30),
        ),
    )
    return ids


def _keys(items: list[svc.TimelineEntry]) -> list[tuple[str, int]]:
    return [(i.kind, i.id) for i in items]


def test_everything_visible_newest_first(db: Session, site: Site, chart: dict[str, int]) -> None:
    items, total = svc.timeline(db, site.village_doctor, site.patient.id, svc.TimelineQuery())
    assert total == 9
    # Same moment: kinds in alphabetical order (a diagnosis before the visit of its day).
    assert _keys(items) == [
        ("vital_sign", chart["c_pulse"]),
        ("lab_result", chart["c_lab"]),
        ("medication", chart["c_order"]),
        ("encounter", chart["c_visit"]),
        ("lab_result", chart["v_lab"]),
        ("vital_sign", chart["v_fever"]),
        ("diagnosis", chart["v_dx"]),
        ("encounter", chart["v_visit"]),
        ("allergy", chart["allergy"]),
    ]
    first = items[0]
    assert first.date == date(2026, 10, 11)
    assert first.precise
    assert first.institution_name == "测试县医院"
    assert (items[6].title, items[6].detail) == ("2型糖尿病不伴有并发症", "E11.9")
    assert audits(db, "timeline.read", object_kind="timeline")


def test_filters(db: Session, site: Site, chart: dict[str, int]) -> None:
    def run(**kw: object) -> list[tuple[str, int]]:
        items, total = svc.timeline(
            db,
            site.village_doctor,
            site.patient.id,
            svc.TimelineQuery(**kw),  # type: ignore[arg-type]
        )
        assert total == len(items)
        return _keys(items)

    assert run(abnormal_only=True) == [
        ("lab_result", chart["v_lab"]),
        ("vital_sign", chart["v_fever"]),
    ]
    assert run(kinds=frozenset({RecordKind.ENCOUNTER})) == [
        ("encounter", chart["c_visit"]),
        ("encounter", chart["v_visit"]),
    ]
    assert {k for k, _ in run(institution_id=site.village.id)} == {
        "encounter",
        "diagnosis",
        "lab_result",
        "vital_sign",
        "allergy",
    }
    # Dates are China's: a lab drawn at 07:30 on 11 October (23:30 UTC the day before).
    assert run(date_from=date(2026, 10, 11), date_to=date(2026, 10, 11)) == [
        ("vital_sign", chart["c_pulse"]),
        ("lab_result", chart["c_lab"]),
        ("medication", chart["c_order"]),
    ]
    assert run(date_to=date(2020, 1, 1)) == [("allergy", chart["allergy"])]
    assert run(abnormal_only=True, kinds=frozenset({RecordKind.DIAGNOSIS})) == []


def test_paging_keeps_the_total(db: Session, site: Site, chart: dict[str, int]) -> None:
    first, total = svc.timeline(
        db, site.village_doctor, site.patient.id, svc.TimelineQuery(limit=4)
    )
    rest, total_again = svc.timeline(
        db, site.village_doctor, site.patient.id, svc.TimelineQuery(limit=4, offset=4)
    )
    assert total == total_again == 9
    assert len(first) == 4
    assert len(rest) == 4
    assert not set(_keys(first)) & set(_keys(rest))


def test_the_county_without_a_grant_sees_only_its_own(
    db: Session, site: Site, chart: dict[str, int]
) -> None:
    items, total = svc.timeline(db, site.county_doctor, site.patient.id, svc.TimelineQuery())
    assert total == 4
    assert {i.institution_id for i in items} == {site.county.id}


def test_the_api_labels_and_filters(
    client: TestClient, db: Session, site: Site, chart: dict[str, int]
) -> None:
    db.commit()
    response = client.get(
        f"/api/v1/patients/{site.patient.id}/timeline",
        params={"kind": ["vital_sign", "lab_result"], "abnormal_only": "true"},
        headers={**site.tokens["village_doctor"], "Accept-Language": "en"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["total"] == 2
    fever = next(i for i in body["items"] if i["kind"] == "vital_sign")
    assert (fever["label"], fever["title"], fever["detail"]) == (
        "Temperature",
        "Temperature",
        "38.2 °C",
    )
    assert fever["abnormal_flag"] == "H"
    assert fever["at"] == "2026-09-01T00:00:00Z"
    visit = client.get(
        f"/api/v1/patients/{site.patient.id}/timeline",
        params={"kind": "encounter", "limit": 1},
        headers=site.tokens["village_doctor"],
    ).json()
    assert visit["total"] == 2
    assert visit["items"][0]["at"] is None
    assert visit["items"][0]["date"] == "2026-10-10"

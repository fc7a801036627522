"""Vital signs taken together (records.service.add_vital_signs): one entry per measurement
sharing the time and encounter, all or none, idempotent per kind."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.orm import Session

from tests.records.conftest import Site, audits, entry_counts
from xietong.core.errors import Invalid
from xietong.records import service as svc
from xietong.records.schemas import VitalSignsIn


def _body(**changes: Any) -> VitalSignsIn:
    return VitalSignsIn.model_validate(
        {
            "measured_at": "2026-11-20T08:30:00+08:00",
            "measurements": [
                {"kind": "temperature", "value": 38.2},
                {"kind": "heart_rate", "value": 88},
                {"kind": "spo2", "value": 97},
            ],
            "client_request_id": "form-1",
            **changes,
        }
    )


def test_each_measurement_is_one_entry_sharing_the_time(db: Session, site: Site) -> None:
    added = svc.add_vital_signs(db, site.village_doctor, site.patient.id, _body())
    assert [a.entry.kind for a in added] == ["temperature", "heart_rate", "spo2"]
    assert len({a.entry.measured_at for a in added}) == 1
    assert [a.entry.client_request_id for a in added] == [
        "form-1:temperature",
        "form-1:heart_rate",
        "form-1:spo2",
    ]
    assert entry_counts(db)["vital_sign"] == 3
    # A retry of the same form records nothing more.
    again = svc.add_vital_signs(db, site.village_doctor, site.patient.id, _body())
    assert [a.created for a in again] == [False, False, False]
    assert [a.entry.id for a in again] == [a.entry.id for a in added]
    assert entry_counts(db)["vital_sign"] == 3


def test_one_invalid_value_leaves_no_entry_written(db: Session, site: Site) -> None:
    before = len(audits(db, "vital_sign.create"))
    body = _body(
        measurements=[
            {"kind": "temperature", "value": 37.0},
            {"kind": "heart_rate", "value": 72},
            {"kind": "spo2", "value": 150},  # the last one is out of range
        ]
    )
    with pytest.raises(Invalid) as caught:
        svc.add_vital_signs(db, site.village_doctor, site.patient.id, body)
    assert caught.value.field == "spo2"
    # Nothing of the first two is left in the session, without the caller rolling back.
    assert entry_counts(db)["vital_sign"] == 0
    assert len(audits(db, "vital_sign.create")) == before


def test_a_kind_measured_twice_is_refused() -> None:
    with pytest.raises(ValidationError):
        _body(measurements=[{"kind": "spo2", "value": 97}, {"kind": "spo2", "value": 98}])

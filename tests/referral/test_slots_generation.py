"""Weekly templates make slots: the right China-time days and UTC instants, the horizon,
the templates' validity, inactive templates skipped, and a second run creating nothing."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from tests.referral.slot_fixtures import (
    SLOT_SETTINGS,
    SlotWorld,
    make_template,
    row_counts,
    slot_audits,
)
from xietong.cli import app as cli_app
from xietong.cli import run_migrations
from xietong.config import DatabaseSettings, ReferralSettings, Settings
from xietong.core import clock
from xietong.referral import slots as svc
from xietong.referral.slot_models import Slot


def _slots(db: Session, template_id: int) -> list[Slot]:
    return list(
        db.execute(
            select(Slot).where(Slot.template_id == template_id).order_by(Slot.starts_at)
        ).scalars()
    )


def test_a_weekly_template_makes_its_slots_in_china_time(
    db: Session, slot_world: SlotWorld
) -> None:
    w = slot_world
    monday = make_template(db, w, weekday=0, start_time="08:00", end_time="12:00")
    run = svc.generate_slots(db, w.p["coordinator"], w.centre.id, SLOT_SETTINGS)
    # Today is Friday 2026-11-20; the horizon is 28 days: 11-20 … 12-17.
    assert run.through == date(2026, 12, 17)
    slots = _slots(db, monday.id)
    assert [s.starts_at for s in slots] == [
        datetime(2026, 11, 23, 0, 0, tzinfo=UTC),  # Monday 08:00 in China
        datetime(2026, 11, 30, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 7, 0, 0, tzinfo=UTC),
        datetime(2026, 12, 14, 0, 0, tzinfo=UTC),
    ]
    assert all(s.ends_at - s.starts_at == timedelta(hours=4) for s in slots)
    first = slots[0]
    assert (first.capacity, first.referral_reserved, first.green_quota) == (5, 2, 1)
    assert (first.booked_referral, first.booked_local, first.booked_green) == (0, 0, 0)
    assert (first.status, first.kind, first.department_id) == ("open", "outpatient", w.cardio.id)
    assert run.created == 4
    audit = slot_audits(db, "slot.generate")[-1]
    assert json.loads(audit.detail) == {"created": 4, "through": "2026-12-17"}


def test_today_counts_only_if_the_slot_is_still_ahead(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    morning = make_template(db, w, weekday=4, start_time="08:00", end_time="11:00")
    afternoon = make_template(db, w, weekday=4, start_time="14:00", end_time="17:00")
    late = make_template(db, w, weekday=6, start_time="23:00", end_time="23:59")
    svc.generate_slots(db, w.p["coordinator"], w.centre.id, SLOT_SETTINGS)
    # It is 12:00 on Friday: this morning has gone, this afternoon is still to come.
    assert [s.starts_at.date() for s in _slots(db, morning.id)] == [
        date(2026, 11, 27),
        date(2026, 12, 4),
        date(2026, 12, 11),
    ]
    assert _slots(db, afternoon.id)[0].starts_at == datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    assert len(_slots(db, afternoon.id)) == 4
    # Sunday 23:00 in China is 15:00 UTC the same day.
    assert _slots(db, late.id)[0].starts_at == datetime(2026, 11, 22, 15, 0, tzinfo=UTC)


def test_a_second_run_creates_nothing(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    make_template(db, w, weekday=1)
    make_template(db, w, weekday=2, kind="exam", exam_type="ct", department_id=w.radiology.id)
    first = svc.generate_slots(db, w.p["coordinator"], w.centre.id, SLOT_SETTINGS)
    before = row_counts(db)
    again = svc.generate_slots(db, w.p["coordinator"], w.centre.id, SLOT_SETTINGS)
    assert first.created == 8
    assert again.created == 0
    assert row_counts(db) == before
    # A day later the horizon has moved by one day: only that day's slots are new.
    clock.set_clock(lambda: datetime(2026, 11, 26, 4, 0, tzinfo=UTC))  # Thursday
    later = svc.generate_slots(db, w.p["coordinator"], w.centre.id, SLOT_SETTINGS)
    assert later.created == 2  # Tuesday 12-22 and Wednesday 12-23 came within 28 days


def test_the_horizon_and_the_validity_are_kept(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    monday = make_template(db, w, weekday=0)
    bounded = make_template(
        db, w, weekday=2, valid_from="2026-12-01", valid_until="2026-12-09", capacity=2
    )
    week = ReferralSettings(slot_horizon_days=7)
    svc.generate_slots(db, w.p["coordinator"], w.centre.id, week)
    assert len(_slots(db, monday.id)) == 1
    assert _slots(db, bounded.id) == []
    svc.generate_slots(db, w.p["coordinator"], w.centre.id, SLOT_SETTINGS)
    assert [s.starts_at.date() for s in _slots(db, bounded.id)] == [
        date(2026, 12, 2),
        date(2026, 12, 9),
    ]


def test_inactive_templates_make_nothing(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    kept = make_template(db, w, weekday=0)
    dropped = make_template(db, w, weekday=1)
    svc.deactivate_template(db, w.p["coordinator"], dropped.id)
    svc.deactivate_template(db, w.p["coordinator"], dropped.id)  # twice: no change
    assert len(slot_audits(db, "slot.template.deactivate")) == 1
    run = svc.generate_slots(db, w.p["coordinator"], w.centre.id, SLOT_SETTINGS)
    assert run.created == 4
    assert len(_slots(db, kept.id)) == 4
    assert _slots(db, dropped.id) == []
    # An inactive department's templates make nothing either.
    w.cardio.is_active = False
    db.flush()
    clock.set_clock(lambda: datetime(2026, 12, 1, 4, 0, tzinfo=UTC))
    assert svc.generate_slots(db, w.p["coordinator"], w.centre.id, SLOT_SETTINGS).created == 0


def test_an_updated_template_shapes_the_next_slots(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    t = make_template(db, w, weekday=0)
    svc.generate_slots(db, w.p["coordinator"], w.centre.id, ReferralSettings(slot_horizon_days=7))
    from xietong.referral.slot_schemas import TemplateUpdateIn

    svc.update_template(
        db,
        w.p["coordinator"],
        t.id,
        TemplateUpdateIn(capacity=8, start_time="09:00", practitioner_id=w.expert.id),
    )
    svc.generate_slots(db, w.p["coordinator"], w.centre.id, ReferralSettings(slot_horizon_days=14))
    first, second = _slots(db, t.id)
    assert (first.capacity, first.starts_at.hour, first.practitioner_id) == (5, 0, None)
    assert (second.capacity, second.starts_at.hour, second.practitioner_id) == (8, 1, w.expert.id)
    audit = slot_audits(db, "slot.template.update")[-1]
    assert json.loads(audit.detail) == {
        "capacity": 8,
        "start_time": "09:00",
        "practitioner_id": w.expert.id,
    }


def test_the_job_generates_for_every_institution(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    make_template(db, w, weekday=0)
    from xietong.referral.slot_schemas import TemplateIn

    svc.create_template(
        db,
        w.p["other_coordinator"],
        w.other_centre.id,
        TemplateIn.model_validate(w.template(department_id=w.other_dept.id, weekday=3)),
    )
    run = svc.generate_all_slots(db, SLOT_SETTINGS)
    assert run.created == 8
    assert run.by_institution == {w.centre.id: 4, w.other_centre.id: 4}
    audit = slot_audits(db, "slot.generate")[-1]
    assert audit.actor_username == "system:slots"
    assert json.loads(audit.detail) == {"created": 8, "through": "2026-12-17", "institutions": 2}
    assert svc.generate_all_slots(db, SLOT_SETTINGS).created == 0


def test_the_cli_job_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`xietong jobs slots` against a migrated database of its own (the wall clock)."""
    url = f"sqlite:///{tmp_path / 'jobs.sqlite3'}"
    monkeypatch.setenv("XIETONG_DATABASE_URL", url)
    run_migrations(Settings(data_dir=tmp_path, database=DatabaseSettings(url=url)))
    result = CliRunner().invoke(cli_app, ["jobs", "slots"])
    assert result.exit_code == 0, result.output
    assert "slots created 0" in result.output

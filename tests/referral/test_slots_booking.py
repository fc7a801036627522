"""The booking rules: capacity, the referral reserve, the separate green quota, refusals
naming the field, releasing once, arrivals and no-shows, what the sender's picker offers,
and the CHECK constraints behind it all."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from tests.referral.slot_fixtures import (
    SlotWorld,
    book,
    counters,
    make_referral,
    make_slot,
    slot_audits,
)
from xietong.core import clock
from xietong.core.errors import Conflict, Invalid, NotFound, XietongError
from xietong.referral import slots as svc
from xietong.referral.slot_models import Slot, SlotBooking

MONDAY = date(2026, 11, 23)


def _local(db: Session, w: SlotWorld, slot: Slot, key: str | None = None) -> svc.LocalBooking:
    return svc.book_local(
        db, w.p["coordinator"], slot.id, patient_id=w.patient.id, client_request_id=key
    )


def _refused(exc: pytest.ExceptionInfo[XietongError], status: int, code: str, field: str) -> None:
    assert (exc.value.status, exc.value.code, exc.value.field) == (status, code, field)


def test_referrals_fill_the_capacity_and_no_more(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    slot = make_slot(db, w, capacity=3, referral_reserved=1)
    for _ in range(3):
        booking = book(db, w, slot)
        assert (booking.purpose, booking.channel, booking.status) == (
            "referral",
            "normal",
            "booked",
        )
    assert counters(db, slot.id) == (3, 0, 0)
    with pytest.raises(Conflict) as full:
        book(db, w, slot, field="appointment.slot_id")
    _refused(full, 409, "slot_full", "appointment.slot_id")
    assert counters(db, slot.id) == (3, 0, 0)


def test_local_bookings_leave_the_reserve_to_referrals(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    slot = make_slot(db, w, capacity=4, referral_reserved=2)
    assert _local(db, w, slot).created
    assert _local(db, w, slot).created
    with pytest.raises(Conflict) as reserved:
        _local(db, w, slot)
    _refused(reserved, 409, "slot_reserved_for_referrals", "slot_id")
    # Referrals may take the reserved places, and then the slot is full for everyone.
    book(db, w, slot)
    book(db, w, slot)
    assert counters(db, slot.id) == (2, 2, 0)
    with pytest.raises(Conflict) as full:
        book(db, w, slot)
    _refused(full, 409, "slot_full", "slot_id")
    with pytest.raises(Conflict) as local_full:
        _local(db, w, slot)
    _refused(local_full, 409, "slot_full", "slot_id")


def test_referrals_first_then_local_still_within_the_capacity(
    db: Session, slot_world: SlotWorld
) -> None:
    w = slot_world
    slot = make_slot(db, w, capacity=3, referral_reserved=1)
    book(db, w, slot)
    book(db, w, slot)
    _local(db, w, slot)  # 3 of 3, and only 1 local (≤ 3 - 1)
    with pytest.raises(Conflict) as full:
        _local(db, w, slot)
    _refused(full, 409, "slot_full", "slot_id")


def test_the_green_quota_is_counted_apart(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    slot = make_slot(db, w, capacity=1, referral_reserved=0, green_quota=2)
    book(db, w, slot)
    with pytest.raises(Conflict):
        book(db, w, slot)
    green = book(db, w, slot, channel="green")  # the normal places are gone; green ones are not
    assert green.channel == "green"
    book(db, w, slot, channel="green")
    with pytest.raises(Conflict) as full:
        book(db, w, slot, channel="green", field="slot")
    _refused(full, 409, "green_quota_full", "slot")
    assert counters(db, slot.id) == (1, 0, 2)
    no_quota = make_slot(db, w, green_quota=0)
    with pytest.raises(Conflict) as none:
        book(db, w, no_quota, channel="green")
    _refused(none, 409, "green_quota_full", "slot_id")


def test_refusals_name_the_field(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    slot = make_slot(db, w)
    exam = make_slot(db, w, kind="exam", exam_type="ct", department_id=w.radiology.id)
    cases = [
        (
            lambda: book(db, w, slot, institution_id=w.other_centre.id, field="f"),
            422,
            "slot_not_found",
        ),
        (lambda: book(db, w, exam, kinds=("outpatient",), field="f"), 422, "slot_not_found"),
    ]
    for call, status, code in cases:
        with pytest.raises(XietongError) as refused:
            call()
        _refused(refused, status, code, "f")
    referral = make_referral(db, w)
    with pytest.raises(Invalid) as absent:
        svc.book_for_referral(
            db,
            999_999,
            patient_id=w.patient.id,
            referral_id=referral.id,
            channel="normal",
            booked_by_user_id=None,
            institution_id=w.centre.id,
            kinds=("outpatient",),
            field="f",
        )
    _refused(absent, 422, "slot_not_found", "f")
    svc.close_slot(db, w.p["coordinator"], slot.id)
    with pytest.raises(Conflict) as closed:
        book(db, w, slot, field="f")
    _refused(closed, 409, "slot_closed", "f")
    svc.reopen_slot(db, w.p["coordinator"], slot.id)
    assert book(db, w, slot).status == "booked"
    clock.set_clock(lambda: datetime(2026, 11, 23, 0, 0, tzinfo=UTC))  # the slot starts now
    with pytest.raises(Invalid) as past:
        book(db, w, exam, field="f")
    _refused(past, 422, "slot_past", "f")


def test_a_release_frees_the_place_once(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    slot = make_slot(db, w, capacity=1, referral_reserved=0, green_quota=1)
    normal = book(db, w, slot)
    green = book(db, w, slot, channel="green")
    local_slot = make_slot(db, w, capacity=2, referral_reserved=0)
    local = _local(db, w, local_slot).booking
    actor = w.p["sender_doctor"].uid
    for _ in range(2):
        svc.release_booking(db, normal.id, actor_user_id=actor)
        svc.release_booking(db, green.id, actor_user_id=actor)
        svc.release_booking(db, local.id, actor_user_id=None)
    assert counters(db, slot.id) == (0, 0, 0)
    assert counters(db, local_slot.id) == (0, 0, 0)
    db.refresh(normal)
    assert (normal.status, normal.released_by_user_id) == ("cancelled", actor)
    assert normal.released_at == clock.now()
    # The freed place is bookable again, once.
    book(db, w, slot)
    with pytest.raises(Conflict):
        book(db, w, slot)
    with pytest.raises(NotFound):
        svc.release_booking(db, 999_999, actor_user_id=None)


def test_arrival_and_no_show_keep_the_place(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    slot = make_slot(db, w, capacity=3, referral_reserved=0)
    came, absent, dropped = book(db, w, slot), book(db, w, slot), book(db, w, slot)
    svc.mark_arrived(db, came.id, actor_user_id=w.p["coordinator"].uid)
    svc.mark_arrived(db, came.id, actor_user_id=w.p["coordinator"].uid)  # again: no change
    assert (came.status, came.arrived_by_user_id) == ("arrived", w.p["coordinator"].uid)
    with pytest.raises(Conflict) as early:
        svc.mark_no_show(db, absent.id)
    _refused(early, 409, "slot_not_started", "booking_id")
    svc.release_booking(db, dropped.id, actor_user_id=None)
    with pytest.raises(Conflict) as gone:
        svc.mark_arrived(db, dropped.id, actor_user_id=None)
    _refused(gone, 409, "booking_not_active", "booking_id")
    clock.set_clock(lambda: datetime(2026, 11, 23, 6, 0, tzinfo=UTC))  # after the slot
    svc.mark_no_show(db, absent.id)
    svc.mark_no_show(db, absent.id)
    assert absent.status == "no_show"
    svc.release_booking(db, absent.id, actor_user_id=None)  # a no-show keeps its place
    svc.release_booking(db, came.id, actor_user_id=None)  # so does an arrival
    assert counters(db, slot.id) == (2, 0, 0)
    with pytest.raises(Conflict):
        svc.mark_no_show(db, came.id)
    with pytest.raises(Conflict):
        svc.cancel_slot(db, w.p["coordinator"], slot.id)


def test_the_active_booking_of_a_referral(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    first, second = make_slot(db, w), make_slot(db, w, day="2026-11-24")
    referral = make_referral(db, w)

    def take(slot: Slot) -> SlotBooking:
        return svc.book_for_referral(
            db,
            slot.id,
            patient_id=w.patient.id,
            referral_id=referral.id,
            channel="normal",
            booked_by_user_id=None,
            institution_id=w.centre.id,
            kinds=("outpatient",),
        )

    assert svc.active_booking(db, referral.id) is None
    old = take(first)
    new = take(second)  # a move: the referral service books the new place, then releases
    svc.release_booking(db, old.id, actor_user_id=None)
    assert svc.active_booking(db, referral.id) == new
    svc.mark_arrived(db, new.id, actor_user_id=None)
    assert svc.active_booking(db, referral.id) == new
    assert svc.slot_of(db, second.id) == second
    assert svc.slot_of(db, 999_999) is None


def test_cancelling_a_slot_needs_it_empty(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    slot = make_slot(db, w)
    booking = book(db, w, slot)
    with pytest.raises(Conflict) as held:
        svc.cancel_slot(db, w.p["coordinator"], slot.id)
    _refused(held, 409, "slot_has_bookings", "slot_id")
    svc.release_booking(db, booking.id, actor_user_id=None)
    assert svc.cancel_slot(db, w.p["coordinator"], slot.id).status == "cancelled"
    svc.cancel_slot(db, w.p["coordinator"], slot.id)  # again: no change
    assert len(slot_audits(db, "slot.cancel")) == 1
    with pytest.raises(Conflict) as cancelled:
        book(db, w, slot)
    _refused(cancelled, 409, "slot_closed", "slot_id")
    with pytest.raises(Conflict) as closing:
        svc.close_slot(db, w.p["coordinator"], slot.id)
    _refused(closing, 409, "slot_cancelled", "slot_id")


def test_a_local_retry_makes_one_booking(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    slot = make_slot(db, w)
    first = _local(db, w, slot, key="desk-1")
    again = _local(db, w, slot, key="desk-1")
    assert first.created
    assert not again.created
    assert again.booking.id == first.booking.id
    assert counters(db, slot.id) == (0, 1, 0)
    audit = slot_audits(db, "slot.book_local")
    assert [a.object_id for a in audit] == [str(first.booking.id)]


def test_a_local_booking_is_for_a_patient_the_desk_sees(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    slot = make_slot(db, w)
    for patient_id in (w.outsider.id, 999_999):
        with pytest.raises(Invalid) as hidden:
            svc.book_local(db, w.p["coordinator"], slot.id, patient_id=patient_id)
        _refused(hidden, 422, "patient_not_found", "patient_id")
    assert len(slot_audits(db, "slot.book_local", "denied")) == 2
    assert counters(db, slot.id) == (0, 0, 0)


def test_the_picker_offers_places_left(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    full = make_slot(db, w, capacity=1, referral_reserved=0, green_quota=1)
    book(db, w, full)
    open_one = make_slot(db, w, day="2026-11-24", capacity=3, referral_reserved=2)
    _local(db, w, open_one)
    with_expert = make_slot(db, w, day="2026-11-25", practitioner_id=w.expert.id, green_quota=0)
    closed = make_slot(db, w, day="2026-11-26")
    svc.close_slot(db, w.p["coordinator"], closed.id)
    ct = make_slot(db, w, kind="exam", exam_type="ct", department_id=w.radiology.id)
    mri = make_slot(db, w, kind="exam", exam_type="mri", department_id=w.radiology.id)
    later = make_slot(db, w, day="2026-12-10")

    def picked(**query: object) -> list[tuple[int, int]]:
        found = svc.available_slots(db, w.centre.id, start=date(2026, 11, 20), **query)  # type: ignore[arg-type]
        return [(a.slot_id, a.free) for a in found]

    assert picked(days=28) == [(open_one.id, 2), (with_expert.id, 3), (later.id, 3)]
    assert picked() == [(open_one.id, 2), (with_expert.id, 3)]  # 14 days by default
    assert picked(days=28, channel="green") == [(full.id, 1), (open_one.id, 1), (later.id, 1)]
    assert picked(kinds=("exam",)) == [(ct.id, 3), (mri.id, 3)]
    assert picked(kinds=("exam",), exam_type="mri") == [(mri.id, 3)]
    assert picked(practitioner_id=w.expert.id) == [(with_expert.id, 3)]
    assert picked(department_id=w.radiology.id) == []
    one = svc.available_slots(db, w.centre.id, start=date(2026, 11, 25), days=1)
    assert [(a.department_name, a.practitioner_name, a.kind) for a in one] == [
        ("心内科", "张主任", "outpatient")
    ]
    assert one[0].starts_at == datetime(2026, 11, 25, 0, 0, tzinfo=UTC)
    # Slots that have started are not offered.
    clock.set_clock(lambda: datetime(2026, 11, 24, 1, 0, tzinfo=UTC))
    today = svc.available_slots(db, w.centre.id, start=date(2026, 11, 24), days=3)
    assert [a.slot_id for a in today] == [with_expert.id]


def test_the_constraints_hold_even_against_a_bug(db: Session, slot_world: SlotWorld) -> None:
    w = slot_world
    slot = make_slot(db, w, capacity=2, referral_reserved=1, green_quota=1)
    db.commit()
    for values in (
        {"booked_referral": 3},
        {"booked_local": 2},
        {"booked_green": 2},
        {"booked_referral": -1},
    ):
        with pytest.raises(IntegrityError), db.begin_nested():
            db.execute(update(Slot).where(Slot.id == slot.id).values(**values))

"""Taking and giving back places in slots.

The referral domain books through :func:`book_for_referral` and moves the booking with
:func:`release_booking`, :func:`mark_arrived` and :func:`mark_no_show`: it decides who may,
so these take explicit ids and check no access. The institution's own desk books its own
patients with :func:`book_local`, which checks access and keeps the referral reserve.

Every counter change is one conditional ``UPDATE slot SET booked_x = booked_x ± 1 WHERE
id = :id AND <room left>``. On PostgreSQL (READ COMMITTED) a concurrent UPDATE of the same
row waits for the row lock and then evaluates its WHERE again on the committed row, so
the last place goes to exactly one of them and the others find the slot full; SQLite
serialises writers (BEGIN IMMEDIATE). The CHECK constraints of ``slot`` hold the counters
within bounds even against a bug. Nothing here commits: all of it is part of the caller's
transaction.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import InstrumentedAttribute, Session

from xietong.access import audit
from xietong.access.policies import deny_not_found, require_roles
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Invalid, NotFound
from xietong.patients.access import resolve_access
from xietong.referral.slot_models import Slot, SlotBooking
from xietong.referral.slot_service.common import DESK_ROLES, kind_set, open_slot

ACTIVE = ("booked", "arrived")


@dataclass(frozen=True)
class LocalBooking:
    booking: SlotBooking
    created: bool  # False: a retry with the same client request id


def slot_of(session: Session, slot_id: int) -> Slot | None:
    return session.get(Slot, slot_id)


def active_booking(session: Session, referral_id: int) -> SlotBooking | None:
    """The referral's place: its newest booking that is booked or arrived."""
    return session.execute(
        select(SlotBooking)
        .where(SlotBooking.referral_id == referral_id, SlotBooking.status.in_(ACTIVE))
        .order_by(SlotBooking.id.desc())
        .limit(1)
    ).scalar_one_or_none()


def _counter(booking: SlotBooking) -> InstrumentedAttribute[int]:
    if booking.purpose == "local":
        return Slot.booked_local
    return Slot.booked_green if booking.channel == "green" else Slot.booked_referral


def _take(session: Session, slot_id: int, column: InstrumentedAttribute[int], *room: Any) -> bool:
    """``UPDATE slot SET column = column + 1 WHERE id AND status = 'open' AND room``."""
    session.flush()
    result = session.execute(
        update(Slot)
        .where(Slot.id == slot_id, Slot.status == "open", *room)
        .values({column: column + 1})
        .execution_options(synchronize_session=False)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def _refused(session: Session, slot: Slot, code: str, message: str, field: str) -> Conflict:
    """Why the conditional UPDATE changed nothing: the slot was closed meanwhile, or full."""
    session.refresh(slot)
    if slot.status != "open":
        return Conflict(N_("This slot takes no more bookings."), code="slot_closed", field=field)
    return Conflict(message, code=code, field=field)


def _bookable(slot: Slot | None, field: str) -> Slot:
    if slot is None:  # the callers have checked the institution and kind
        raise Invalid(N_("No slot has this id."), code="slot_not_found", field=field)
    if slot.status != "open":
        raise Conflict(N_("This slot takes no more bookings."), code="slot_closed", field=field)
    if slot.starts_at <= now():
        raise Invalid(N_("This slot has started already."), code="slot_past", field=field)
    return slot


def book_for_referral(
    session: Session,
    slot_id: int,
    *,
    patient_id: int,
    referral_id: int,
    channel: Literal["normal", "green"],
    booked_by_user_id: int | None,
    institution_id: int,
    kinds: Collection[str],
    field: str = "slot_id",
) -> SlotBooking:
    """A place for the referral in the slot, in the caller's transaction.

    The slot must be one of ``institution_id``'s of a kind in ``kinds`` (422
    ``slot_not_found`` otherwise), open (409 ``slot_closed``) and in the future (422
    ``slot_past``). The normal channel takes one of the ``capacity`` places, the
    reserve included (409 ``slot_full``); the green channel one of the ``green_quota``
    emergency places (409 ``green_quota_full``). Errors name ``field``.
    """
    # Fresh from the database: an object the session holds may predate a desk's change.
    slot = session.get(Slot, slot_id, populate_existing=True)
    if slot is None or slot.institution_id != institution_id or slot.kind not in kind_set(kinds):
        raise Invalid(N_("No slot has this id."), code="slot_not_found", field=field)
    _bookable(slot, field)
    if channel == "green":
        taken = _take(session, slot.id, Slot.booked_green, Slot.booked_green < Slot.green_quota)
        if not taken:
            raise _refused(
                session,
                slot,
                "green_quota_full",
                N_("The slot's green-channel places are taken."),
                field,
            )
    else:
        room = Slot.booked_referral + Slot.booked_local < Slot.capacity
        if not _take(session, slot.id, Slot.booked_referral, room):
            raise _refused(session, slot, "slot_full", N_("This slot is full."), field)
    booking = SlotBooking(
        slot_id=slot.id,
        patient_id=patient_id,
        referral_id=referral_id,
        purpose="referral",
        channel=channel,
        status="booked",
        booked_by_user_id=booked_by_user_id,
        booked_at=now(),
    )
    session.add(booking)
    session.flush()
    session.expire(slot)
    return booking


def _booking(session: Session, booking_id: int) -> SlotBooking:
    booking = session.get(SlotBooking, booking_id)
    if booking is None:
        raise NotFound(N_("No booking has this id."), code="booking_not_found", field="booking_id")
    return booking


def _move(
    session: Session,
    booking: SlotBooking,
    target: str,
    values: dict[str, Any],
    *extra: ColumnElement[bool],
) -> bool:
    """``UPDATE slot_booking SET status = target WHERE id AND status = 'booked'``."""
    session.flush()
    result = session.execute(
        update(SlotBooking)
        .where(SlotBooking.id == booking.id, SlotBooking.status == "booked", *extra)
        .values(status=target, **values)
        .execution_options(synchronize_session=False)
    )
    session.refresh(booking)
    return bool(result.rowcount)  # type: ignore[attr-defined]


def release_booking(session: Session, booking_id: int, *, actor_user_id: int | None) -> None:
    """Give the place back: booked → cancelled, and its counter down by one (never below
    zero). Releasing a booking that is not ``booked`` any more changes nothing, so two
    releases at once free the place once."""
    booking = _booking(session, booking_id)
    moment = now()
    if not _move(
        session,
        booking,
        "cancelled",
        {"released_at": moment, "released_by_user_id": actor_user_id},
    ):
        return
    column = _counter(booking)
    session.execute(
        update(Slot)
        .where(Slot.id == booking.slot_id, column > 0)
        .values({column: column - 1})
        .execution_options(synchronize_session=False)
    )
    slot = session.get(Slot, booking.slot_id)
    if slot is not None:
        session.expire(slot)


def _not_active(booking: SlotBooking) -> Conflict:
    return Conflict(
        N_("This booking is no longer active."),
        code="booking_not_active",
        field="booking_id",
        params={"status": booking.status},
    )


def mark_arrived(session: Session, booking_id: int, *, actor_user_id: int | None) -> None:
    """The patient came: booked → arrived (already arrived: nothing changes). The place
    stays taken. A cancelled or no-show booking answers 409 ``booking_not_active``."""
    booking = _booking(session, booking_id)
    values = {"arrived_at": now(), "arrived_by_user_id": actor_user_id}
    if not _move(session, booking, "arrived", values) and booking.status != "arrived":
        raise _not_active(booking)


def mark_no_show(session: Session, booking_id: int) -> None:
    """The patient did not come: booked → no_show. The place stays counted (the slot is
    past). Only once the slot has started (409 ``slot_not_started`` before); a no-show
    again changes nothing; an arrived or cancelled booking answers 409."""
    booking = _booking(session, booking_id)
    slot = session.get(Slot, booking.slot_id)
    if slot is not None and slot.starts_at > now():
        raise Conflict(
            N_("The slot has not started yet."), code="slot_not_started", field="booking_id"
        )
    if not _move(session, booking, "no_show", {}) and booking.status != "no_show":
        raise _not_active(booking)


# The institution's own bookings --------------------------------------------------------------


def _retry(
    session: Session, slot_id: int, user_id: int, client_request_id: str
) -> SlotBooking | None:
    return session.execute(
        select(SlotBooking).where(
            SlotBooking.slot_id == slot_id,
            SlotBooking.booked_by_user_id == user_id,
            SlotBooking.client_request_id == client_request_id,
        )
    ).scalar_one_or_none()


def book_local(
    session: Session,
    principal: Principal,
    slot_id: int,
    *,
    patient_id: int,
    client_request_id: str | None = None,
) -> LocalBooking:
    """A place for one of the institution's own patients, booked by its desk (a
    coordinator of the slot's institution: 403 for other roles, 404 for other
    institutions' slots). Local bookings stop ``referral_reserved`` places short of the
    capacity (409 ``slot_reserved_for_referrals``, or ``slot_full`` when no place is left at
    all). The patient must be one the coordinator can see (422 ``patient_not_found``). A
    retry with the same ``client_request_id`` answers with the first booking."""
    action = "slot.book_local"
    slot = open_slot(session, principal, slot_id, action=action, roles=DESK_ROLES)
    if client_request_id:
        first = _retry(session, slot.id, principal.uid, client_request_id)
        if first is not None:
            return LocalBooking(first, False)
    chart = resolve_access(session, principal, patient_id)
    if chart is None:
        audit.record_denial(session, principal, action, "patient", patient_id, reason="scope")
        raise Invalid(
            N_("No patient you can see has this id."),
            code="patient_not_found",
            field="patient_id",
        )
    _bookable(slot, "slot_id")
    room = (Slot.booked_local < Slot.capacity - Slot.referral_reserved) & (
        Slot.booked_referral + Slot.booked_local < Slot.capacity
    )
    try:
        with session.begin_nested():
            if not _take(session, slot.id, Slot.booked_local, room):
                raise _full_for_local(session, slot)
            booking = SlotBooking(
                slot_id=slot.id,
                patient_id=chart.patient_id,
                referral_id=None,
                purpose="local",
                channel="normal",
                status="booked",
                booked_by_user_id=principal.uid,
                booked_at=now(),
                client_request_id=client_request_id,
            )
            session.add(booking)
            session.flush()
    except IntegrityError:
        # The same request at the same moment won: its booking stands, this one is undone.
        first = _retry(session, slot.id, principal.uid, client_request_id or "")
        if first is None:
            raise
        return LocalBooking(first, False)
    session.expire(slot)
    audit.record(
        session,
        principal,
        action,
        object_kind="slot_booking",
        object_id=booking.id,
        detail={"slot_id": slot.id, "patient_id": booking.patient_id},
    )
    return LocalBooking(booking, True)


def _full_for_local(session: Session, slot: Slot) -> Conflict:
    session.refresh(slot)
    if slot.status != "open":
        return Conflict(
            N_("This slot takes no more bookings."), code="slot_closed", field="slot_id"
        )
    if slot.booked_referral + slot.booked_local < slot.capacity:
        return Conflict(
            N_("The places left are reserved for referrals."),
            code="slot_reserved_for_referrals",
            field="slot_id",
        )
    return Conflict(N_("This slot is full."), code="slot_full", field="slot_id")


def cancel_local_booking(session: Session, principal: Principal, booking_id: int) -> SlotBooking:
    """The desk gives back a local booking's place (a referral's booking moves only with
    its referral: 409 ``booking_is_referral``)."""
    action = "slot.booking.cancel"
    require_roles(
        session,
        principal,
        set(DESK_ROLES),
        action=action,
        object_kind="slot_booking",
        object_id=booking_id,
    )
    booking = session.get(SlotBooking, booking_id)
    slot = session.get(Slot, booking.slot_id) if booking is not None else None
    if booking is None or slot is None or slot.institution_id != principal.institution_id:
        raise deny_not_found(
            session, principal, action, "slot_booking", booking_id, field="booking_id"
        )
    if booking.purpose != "local":
        raise Conflict(
            N_("A referral's booking changes with its referral."),
            code="booking_is_referral",
            field="booking_id",
        )
    if booking.status == "booked":
        release_booking(session, booking.id, actor_user_id=principal.uid)
        audit.record(
            session,
            principal,
            action,
            object_kind="slot_booking",
            object_id=booking.id,
            detail={"slot_id": slot.id},
        )
    return booking

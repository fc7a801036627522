"""Appointment slots (号源): what other code imports of them (docs/slots.md).

* Publishing (the receiving institution's desk; access-checked, audited): weekly
  templates, generating slots up to the horizon, one-off slots, close, reopen, cancel.
* Booking primitives for the referral workflow (no access check: the referral decides who
  may book; explicit ids; the caller's transaction): :func:`book_for_referral`,
  :func:`release_booking`, :func:`mark_arrived`, :func:`mark_no_show`,
  :func:`active_booking`, :func:`slot_of`, :func:`available_slots`.
* The desk's own bookings (:func:`book_local`, :func:`cancel_local_booking`) and its week
  calendar (:func:`slot_calendar`, audited as ``slot.calendar``).

The use cases live in ``referral/slot_service/``; this module is their one import path.
"""

from xietong.referral.slot_service.booking import (
    LocalBooking,
    active_booking,
    book_for_referral,
    book_local,
    cancel_local_booking,
    mark_arrived,
    mark_no_show,
    release_booking,
    slot_of,
)
from xietong.referral.slot_service.common import (
    china_instant,
    china_today,
    departments_of,
    practitioners_of,
    week_start,
)
from xietong.referral.slot_service.generation import (
    Generation,
    generate_all_slots,
    generate_slots,
)
from xietong.referral.slot_service.publishing import (
    cancel_slot,
    close_slot,
    create_slot,
    create_template,
    deactivate_template,
    get_slot,
    get_template,
    list_templates,
    reopen_slot,
    update_template,
)
from xietong.referral.slot_service.reading import (
    Calendar,
    CalendarBooking,
    CalendarDay,
    CalendarSlot,
    SlotAvailability,
    availability_out,
    available_slots,
    booking_out,
    calendar_out,
    may_see_availability,
    slot_calendar,
    slot_out,
    slots_for_sender,
    template_out,
)

__all__ = [
    "Calendar",
    "CalendarBooking",
    "CalendarDay",
    "CalendarSlot",
    "Generation",
    "LocalBooking",
    "SlotAvailability",
    "active_booking",
    "availability_out",
    "available_slots",
    "book_for_referral",
    "book_local",
    "booking_out",
    "calendar_out",
    "cancel_local_booking",
    "cancel_slot",
    "china_instant",
    "china_today",
    "close_slot",
    "create_slot",
    "create_template",
    "deactivate_template",
    "departments_of",
    "generate_all_slots",
    "generate_slots",
    "get_slot",
    "get_template",
    "list_templates",
    "mark_arrived",
    "mark_no_show",
    "may_see_availability",
    "practitioners_of",
    "release_booking",
    "reopen_slot",
    "slot_calendar",
    "slot_of",
    "slot_out",
    "slots_for_sender",
    "template_out",
    "update_template",
    "week_start",
]

"""The record's use cases. Services flush, never commit; each checks access and audits."""

from xietong.records.service.common import RECORD_ROLES, NameBook, visible_clause
from xietong.records.service.corrections import correct_entry, mark_entered_in_error, revisions
from xietong.records.service.entries import (
    MAX_LIMIT,
    Added,
    ListQuery,
    add_entry,
    entries_out,
    entry_out,
    get_entry,
    list_entries,
)
from xietong.records.service.timeline import TimelineEntry, TimelineQuery, timeline
from xietong.records.service.vitals import add_vital_signs

__all__ = [
    "MAX_LIMIT",
    "RECORD_ROLES",
    "Added",
    "ListQuery",
    "NameBook",
    "TimelineEntry",
    "TimelineQuery",
    "add_entry",
    "add_vital_signs",
    "correct_entry",
    "entries_out",
    "entry_out",
    "get_entry",
    "list_entries",
    "mark_entered_in_error",
    "revisions",
    "timeline",
    "visible_clause",
]

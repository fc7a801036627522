"""Corrections: entries are never deleted, and no value is lost.

* A correction changes the entry in place (its id stays, so grants, documents and
  conversations that name it keep working), bumps its version, and keeps the values it had
  as a ``record_revision`` row with who, when and why.
* Marking an entry ``entered_in_error`` (wrong patient, never happened) keeps it, with who,
  when and why, out of lists and the timeline; it can no longer be corrected.

Only staff of the holding institution with a recording role change an entry; others who
can see it get a 403, those who cannot a 404.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import require_roles
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, Invalid
from xietong.records.kinds import RecordKind
from xietong.records.models import EntryColumns, RecordRevision
from xietong.records.schemas import FIELDS_BY_KIND, validate_fields
from xietong.records.service.common import (
    RECORD_ROLES,
    OpenedEntry,
    audit_entry,
    open_entry,
)
from xietong.records.service.values import Context, input_view, row_values, snapshot

# Bookkeeping a correction never changes (sent anyway: 422 naming it).
FIXED = frozenset(
    {
        "id",
        "patient_id",
        "institution_id",
        "source",
        "source_ref",
        "recorded_by_user_id",
        "recorded_by_practitioner_id",
        "recorded_at",
        "client_request_id",
        "version",
        "entry_status",
    }
)


def _editable(
    session: Session, principal: Principal, kind: RecordKind, opened: OpenedEntry, action: str
) -> None:
    entry = opened.entry
    require_roles(
        session,
        principal,
        RECORD_ROLES,
        action=action,
        object_kind=kind,
        object_id=entry.id,
    )
    if principal.institution_id != entry.institution_id:
        audit.record_denial(session, principal, action, kind, entry.id, reason="holder")
        raise Forbidden(
            N_("Only the institution that holds an entry corrects it."),
            code="not_holding_institution",
        )
    if entry.entry_status != "current":
        raise Conflict(
            N_("This entry was marked as entered in error; it cannot be changed."),
            code="entered_in_error",
        )


def _keep_revision(
    session: Session,
    principal: Principal,
    kind: RecordKind,
    entry: EntryColumns,
    change: str,
    reason: str,
) -> None:
    try:
        with session.begin_nested():
            session.add(
                RecordRevision(
                    item_kind=kind,
                    item_id=entry.id,
                    version=entry.version,
                    change=change,
                    previous=snapshot(entry),
                    reason=reason,
                    changed_by_user_id=principal.user_id,
                    changed_by_institution_id=principal.institution_id,
                )
            )
            session.flush()
    except IntegrityError:
        raise Conflict(
            N_("Someone changed this entry at the same time; reload it and try again."),
            code="version_conflict",
        ) from None


def correct_entry(
    session: Session,
    principal: Principal,
    kind: RecordKind,
    entry_id: int,
    changes: dict[str, Any],
    reason: str,
) -> EntryColumns:
    action = f"{kind}.correct"
    opened = open_entry(session, principal, kind, entry_id, op="correct")
    _editable(session, principal, kind, opened, action)
    entry = opened.entry
    if not changes:
        raise Invalid(N_("Name at least one field to change."), code="no_changes", field="body")
    for name in changes:
        if name in FIXED:
            raise Invalid(N_("This field cannot be corrected."), code="not_correctable", field=name)
    merged = {**input_view(kind, entry), **changes}
    if kind is RecordKind.DIAGNOSIS and "code" in changes and "name" not in changes:
        merged["name"] = ""  # the new code's title
    fields = validate_fields(FIELDS_BY_KIND[kind], merged)
    ctx = Context(session, opened.patient, opened.chart.member_ids, entry.institution_id, now())
    values = row_values(ctx, kind, fields)
    changed = sorted(k for k, v in values.items() if getattr(entry, k) != v)
    if not changed:
        return entry
    _keep_revision(session, principal, kind, entry, "correct", reason)
    for name in changed:
        setattr(entry, name, values[name])
    entry.version += 1
    entry.corrected_at = now()
    entry.corrected_by_user_id = principal.user_id
    session.flush()
    audit_entry(
        session,
        principal,
        action,
        kind,
        entry,
        fields=changed,
        version=entry.version,
        reason=reason,
    )
    return entry


def mark_entered_in_error(
    session: Session, principal: Principal, kind: RecordKind, entry_id: int, reason: str
) -> EntryColumns:
    action = f"{kind}.entered_in_error"
    opened = open_entry(session, principal, kind, entry_id, op="entered_in_error")
    _editable(session, principal, kind, opened, action)
    entry = opened.entry
    _keep_revision(session, principal, kind, entry, "entered_in_error", reason)
    entry.entry_status = "entered_in_error"
    entry.version += 1
    entry.error_at = now()
    entry.error_by_user_id = principal.user_id
    entry.error_reason = reason
    session.flush()
    audit_entry(session, principal, action, kind, entry, reason=reason)
    return entry


def revisions(
    session: Session,
    principal: Principal,
    kind: RecordKind,
    entry_id: int,
    *,
    reason: str | None = None,
) -> list[RecordRevision]:
    """The earlier versions of an entry the principal can see, oldest first (audited)."""
    opened = open_entry(session, principal, kind, entry_id, op="history", reason=reason)
    audit_entry(session, principal, f"{kind}.history", kind, opened.entry)
    stmt = (
        select(RecordRevision)
        .where(RecordRevision.item_kind == kind, RecordRevision.item_id == entry_id)
        .order_by(RecordRevision.version)
    )
    return list(session.execute(stmt).scalars().all())

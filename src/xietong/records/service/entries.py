"""Adding, reading and listing entries of a patient's record.

* Adding: the recorder (a clinical role of an institution) must be able to open the patient;
  the entry is held by the recorder's institution, which becomes linked to the patient as
  ``treated``. A retried request with the same ``client_request_id`` returns the first
  entry (the unique key of the table decides, never a check alone).
* Reading and listing: only what the principal's chart access shows; a list never holds an
  entry the user cannot see and its total never counts one. Every read is audited.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, cast

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Invalid
from xietong.identity.models import User
from xietong.patients.access import access_patient
from xietong.patients.registration import link_institution
from xietong.records.kinds import MODELS, RecordKind
from xietong.records.models import EntryColumns
from xietong.records.schemas import OUT_BY_KIND, EntryIn, EntryOut
from xietong.records.service.common import (
    NameBook,
    audit_entry,
    open_entry,
    require_recorder,
    visible_clause,
)
from xietong.records.service.values import Context, row_values

MAX_LIMIT = 100
MAX_OFFSET = 1_000_000


@dataclass(frozen=True)
class Added:
    entry: EntryColumns
    created: bool  # False: a retry of an earlier request returned its entry


def add_entry(
    session: Session,
    principal: Principal,
    kind: RecordKind,
    patient_id: int,
    data: EntryIn,
    *,
    reason: str | None = None,
) -> Added:
    action = f"{kind}.create"
    institution_id = require_recorder(session, principal, action=action, kind=kind)
    patient, chart = access_patient(
        session, principal, patient_id, action=action, reason=reason, field="patient_id"
    )
    model = MODELS[kind]
    if data.client_request_id:
        earlier = _by_request(session, model, institution_id, data.client_request_id)
        if earlier is not None:
            return _replayed(session, principal, kind, earlier, chart.member_ids)
    ctx = Context(session, patient, chart.member_ids, institution_id, now())
    values = row_values(ctx, kind, data)
    practitioner_id = _recorder_practitioner(session, principal, ctx, data)
    entry: EntryColumns = cast(Any, model)(
        patient_id=patient.id,
        institution_id=institution_id,
        source=data.source,
        source_ref=data.source_ref,
        recorded_by_user_id=principal.user_id,
        recorded_by_practitioner_id=practitioner_id,
        client_request_id=data.client_request_id,
        **values,
    )
    try:
        with session.begin_nested():
            session.add(entry)
            session.flush()
    except IntegrityError:
        # A concurrent retry of the same request inserted first: return its entry.
        winner = (
            _by_request(session, model, institution_id, data.client_request_id)
            if data.client_request_id
            else None
        )
        if winner is None:
            raise
        return _replayed(session, principal, kind, winner, chart.member_ids)
    link_institution(session, patient.id, institution_id, "treated")
    audit_entry(session, principal, action, kind, entry, source=data.source)
    return Added(entry, created=True)


def _by_request(
    session: Session, model: type[EntryColumns], institution_id: int, request_id: str
) -> EntryColumns | None:
    stmt = select(model).where(
        model.institution_id == institution_id, model.client_request_id == request_id
    )
    return session.execute(stmt).scalar_one_or_none()


def _replayed(
    session: Session,
    principal: Principal,
    kind: RecordKind,
    entry: EntryColumns,
    members: Sequence[int],
) -> Added:
    if entry.patient_id not in members:
        raise Conflict(
            N_("This client request id was used for another patient's entry."),
            code="client_request_reused",
            field="client_request_id",
        )
    audit_entry(session, principal, f"{kind}.create", kind, entry, replay=True)
    return Added(entry, created=False)


def _recorder_practitioner(
    session: Session, principal: Principal, ctx: Context, data: EntryIn
) -> int | None:
    """The practitioner named as recorder (one of the institution's), or the user's own."""
    if data.recorded_by_practitioner_id is not None:
        ctx.practitioner(data.recorded_by_practitioner_id, "recorded_by_practitioner_id")
        return data.recorded_by_practitioner_id
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    if user is None or user.practitioner_id is None:
        return None
    try:
        ctx.practitioner(user.practitioner_id, "recorded_by_practitioner_id")
    except Invalid:
        return None  # the user's practitioner works elsewhere: record the user only
    return user.practitioner_id


def get_entry(
    session: Session,
    principal: Principal,
    kind: RecordKind,
    entry_id: int,
    *,
    reason: str | None = None,
) -> EntryColumns:
    opened = open_entry(session, principal, kind, entry_id, op="read", reason=reason)
    audit_entry(session, principal, f"{kind}.read", kind, opened.entry)
    return opened.entry


@dataclass(frozen=True)
class ListQuery:
    limit: int = 50
    offset: int = 0
    include_errors: bool = False  # entries marked entered in error are left out by default

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise Invalid(N_("This value is too large."), code="invalid_limit", field="limit")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise Invalid(N_("This value is too large."), code="invalid_offset", field="offset")


def list_entries(
    session: Session,
    principal: Principal,
    kind: RecordKind,
    patient_id: int,
    query: ListQuery,
    *,
    reason: str | None = None,
) -> tuple[list[EntryColumns], int]:
    """A page of the patient's entries of one kind the principal can see, newest first,
    and how many there are in all."""
    action = f"{kind}.list"
    _patient, chart = access_patient(session, principal, patient_id, action=action, reason=reason)
    model = MODELS[kind]
    stmt = select(model).where(visible_clause(model, kind, chart))
    if not query.include_errors:
        stmt = stmt.where(model.entry_status == "current")
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = (
        session.execute(
            stmt.order_by(model.effective_at.desc(), model.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        )
        .scalars()
        .all()
    )
    # The clause is the rule; this is the belt to its braces.
    shown = [r for r in rows if chart.can_see(kind, r.id, r.institution_id)]
    audit.record(
        session,
        principal,
        action,
        object_kind=kind,
        object_id="",
        detail={"patient_id": chart.patient_id, "ids": [r.id for r in shown], "total": total},
    )
    return shown, total


def entry_out(kind: str, entry: EntryColumns, names: NameBook) -> EntryOut:
    extra: dict[str, Any] = {
        "institution_name": names.institutions.get(entry.institution_id, ""),
        "recorded_by_name": names.recorder(entry),
    }
    if kind == RecordKind.ENCOUNTER:
        department_id = getattr(entry, "department_id", None)
        attending_id = getattr(entry, "attending_practitioner_id", None)
        extra["department_name"] = names.departments.get(department_id or 0, "")
        extra["attending_name"] = names.practitioners.get(attending_id or 0, "")
    out = OUT_BY_KIND[kind].model_validate(entry)
    return out.model_copy(update=extra)


def entries_out(session: Session, kind: str, entries: Sequence[EntryColumns]) -> list[EntryOut]:
    names = NameBook.load(session, entries)
    return [entry_out(kind, e, names) for e in entries]

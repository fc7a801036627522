"""What every use case of the record shares: who may record, which entries a chart shows,
opening one entry (hidden and absent alike a 404), and the names output shows."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from sqlalchemy import ColumnElement, and_, false, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from xietong.access import audit
from xietong.access.policies import deny_not_found, require_roles
from xietong.access.principal import Principal
from xietong.core.errors import N_, Forbidden, NotFound
from xietong.directory.models import Department, Institution, Practitioner
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.patients.access import (
    BREAK_GLASS_MIN_REASON,
    CHART_ROLES,
    ChartAccess,
    access_patient,
)
from xietong.patients.models import Patient
from xietong.records.kinds import MODELS, RecordKind
from xietong.records.models import Encounter, EntryColumns

# Who records: the clinical roles of an institution (the platform admin reads with a
# reason, and never writes a chart).
RECORD_ROLES = {Role.APPLICANT_DOCTOR, Role.EXPERT, Role.RADIOLOGIST, Role.COORDINATOR}


def visible_clause(model: type[EntryColumns], kind: str, chart: ChartAccess) -> ColumnElement[bool]:
    """The entries of the chart's patient (and records merged into it) the chart shows:
    the SQL form of ``chart.can_see``, so that lists and totals never count the others."""
    member = model.patient_id.in_(chart.member_ids)
    if chart.everything:
        return member
    options: list[ColumnElement[bool]] = []
    if chart.open_institutions:
        options.append(model.institution_id.in_(sorted(chart.open_institutions)))
    granted = sorted(item_id for item_kind, item_id in chart.granted_items if item_kind == kind)
    if granted:
        options.append(model.id.in_(granted))
    return and_(member, or_(*options)) if options else false()


def require_chart_reader(
    session: Session,
    principal: Principal,
    *,
    action: str,
    kind: str,
    item_id: int,
    reason: str | None,
) -> None:
    """The role checks of ``access_patient``, made before the entry is looked up: a user
    who may not open charts gets the same 403 whether the entry exists or not."""
    clinical = principal.roles.intersection(CHART_ROLES - {Role.PLATFORM_ADMIN})
    if principal.is_platform_admin and not clinical:
        if reason and len(reason.strip()) >= BREAK_GLASS_MIN_REASON:
            return
        audit.record_denial(session, principal, action, kind, item_id, reason="no_reason")
        raise Forbidden(
            N_("A platform admin opens a chart only with a stated reason (10 characters or more)."),
            code="break_glass_reason_required",
            field="reason",
        )
    require_roles(
        session, principal, set(CHART_ROLES), action=action, object_kind=kind, object_id=item_id
    )


def require_recorder(session: Session, principal: Principal, *, action: str, kind: str) -> int:
    """The recorder's institution: 403 for a role that does not record, or no institution."""
    require_roles(session, principal, RECORD_ROLES, action=action, object_kind=kind)
    if principal.institution_id is None:
        raise Forbidden(
            N_("Only staff of an institution record clinical entries."),
            code="institution_required",
        )
    return principal.institution_id


@dataclass(frozen=True)
class OpenedEntry:
    entry: EntryColumns
    patient: Patient
    chart: ChartAccess


def open_entry(
    session: Session,
    principal: Principal,
    kind: RecordKind,
    entry_id: int,
    *,
    op: str,
    reason: str | None = None,
) -> OpenedEntry:
    """The entry, if the principal's chart of its patient shows it; 404 (audited) when it
    is hidden or absent, with the same code either way."""
    action = f"{kind}.{op}"
    require_chart_reader(
        session, principal, action=action, kind=kind, item_id=entry_id, reason=reason
    )
    entry = session.get(MODELS[kind], entry_id)
    if entry is None:
        raise deny_not_found(session, principal, action, kind, entry_id)
    try:
        patient, chart = access_patient(
            session, principal, entry.patient_id, action=action, reason=reason
        )
    except NotFound:
        raise deny_not_found(session, principal, action, kind, entry_id) from None
    if entry.patient_id not in chart.member_ids or not chart.can_see(
        kind, entry.id, entry.institution_id
    ):
        raise deny_not_found(session, principal, action, kind, entry_id)
    return OpenedEntry(entry, patient, chart)


def audit_entry(
    session: Session,
    principal: Principal,
    action: str,
    kind: str,
    entry: EntryColumns,
    **detail: object,
) -> None:
    audit.record(
        session,
        principal,
        action,
        object_kind=kind,
        object_id=entry.id,
        detail={"patient_id": entry.patient_id, **detail},
    )


def own_encounter(
    session: Session, encounter_id: int, members: Sequence[int], institution_id: int
) -> bool:
    encounter = session.get(Encounter, encounter_id)
    return (
        encounter is not None
        and encounter.patient_id in members
        and encounter.institution_id == institution_id
        and encounter.entry_status == "current"
    )


@dataclass
class NameBook:
    """Names of the institutions, departments, practitioners and users entries refer to,
    fetched once for a page of entries."""

    institutions: dict[int, str] = field(default_factory=dict)
    departments: dict[int, str] = field(default_factory=dict)
    practitioners: dict[int, str] = field(default_factory=dict)
    users: dict[int, str] = field(default_factory=dict)

    @classmethod
    def load(cls, session: Session, entries: Iterable[EntryColumns]) -> NameBook:
        rows = list(entries)
        inst = {e.institution_id for e in rows}
        depts = {d for e in rows if (d := getattr(e, "department_id", None)) is not None}
        pracs = {e.recorded_by_practitioner_id for e in rows if e.recorded_by_practitioner_id}
        pracs |= {p for e in rows if (p := getattr(e, "attending_practitioner_id", None))}
        users = {e.recorded_by_user_id for e in rows if e.recorded_by_user_id is not None}
        return cls(
            institutions=_names(session, Institution.id, Institution.name, inst),
            departments=_names(session, Department.id, Department.name, depts),
            practitioners=_names(session, Practitioner.id, Practitioner.name, pracs),
            users=_names(session, User.id, User.display_name, users),
        )

    def recorder(self, entry: EntryColumns) -> str:
        if entry.recorded_by_practitioner_id is not None:
            name = self.practitioners.get(entry.recorded_by_practitioner_id)
            if name:
                return name
        return self.users.get(entry.recorded_by_user_id or 0, "")


def _names(
    session: Session,
    id_column: InstrumentedAttribute[int],
    name_column: InstrumentedAttribute[str],
    ids: set[int],
) -> dict[int, str]:
    if not ids:
        return {}
    stmt = select(id_column, name_column).where(id_column.in_(sorted(ids)))
    return {row[0]: row[1] for row in session.execute(stmt)}

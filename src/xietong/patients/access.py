"""Who may open a patient and which of the patient's records: the one place that decides.

A user of a clinical role opens a patient when

* their institution registered or treated the patient (``patient_institution``): they see
  the records their own institution holds;
* a live grant names their institution or themselves: a ``chart`` grant opens the records of
  the granting institution (every record when a workflow of the platform granted it), an
  ``items`` grant opens exactly the items it lists;
* they are a platform admin and state a reason (break-glass): everything, audited with the
  reason as the purpose.

Authorities see counts, never charts. Every successful open writes an audit row in the
caller's transaction; every refusal writes a durable one. Hidden and absent give the same
404 (``patient_not_found``). See docs/patients.md.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    SQLColumnExpression,
    and_,
    or_,
    select,
)
from sqlalchemy.orm import Session, aliased

from xietong.access import audit
from xietong.access.policies import deny_not_found, require_roles
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Forbidden
from xietong.identity.roles import Role
from xietong.patients.models import ChartGrant, ChartGrantItem, Patient, PatientInstitution

CHART_ROLES: frozenset[Role] = frozenset(
    {Role.APPLICANT_DOCTOR, Role.EXPERT, Role.RADIOLOGIST, Role.COORDINATOR, Role.PLATFORM_ADMIN}
)
MAX_MERGE_DEPTH = 16
BREAK_GLASS_MIN_REASON = 10


@dataclass(frozen=True)
class ChartAccess:
    """What one principal may see of one patient (the survivor of any merges)."""

    patient_id: int
    member_ids: tuple[int, ...]  # the survivor and every record merged into it
    open_institutions: frozenset[int] = frozenset()
    everything: bool = False
    granted_items: frozenset[tuple[str, int]] = frozenset()
    basis: tuple[str, ...] = field(default_factory=tuple)

    def can_see(self, kind: str, item_id: int, institution_id: int | None) -> bool:
        if self.everything:
            return True
        if institution_id is not None and institution_id in self.open_institutions:
            return True
        return (kind, item_id) in self.granted_items

    @property
    def sees_some_institution(self) -> bool:
        return self.everything or bool(self.open_institutions)


# Item kinds --------------------------------------------------------------------------------
# Higher domains (records, imaging) register how to find the patient and the holding
# institution of their items, so that grants can be checked here without an upward import.

ItemResolver = Callable[[Session, int], tuple[int, int | None] | None]
_ITEM_RESOLVERS: dict[str, ItemResolver] = {}


def register_item_kind(kind: str, resolver: ItemResolver) -> None:
    _ITEM_RESOLVERS[kind] = resolver


def item_kinds() -> list[str]:
    return sorted(_ITEM_RESOLVERS)


def resolve_item(session: Session, kind: str, item_id: int) -> tuple[int, int | None] | None:
    """(patient id, holding institution id) of an item, or None when there is none."""
    resolver = _ITEM_RESOLVERS.get(kind)
    return resolver(session, item_id) if resolver else None


# Merges --------------------------------------------------------------------------------------


def survivor_of(session: Session, patient: Patient) -> Patient:
    current = patient
    for _ in range(MAX_MERGE_DEPTH):
        if current.merged_into_id is None:
            return current
        nxt = session.get(Patient, current.merged_into_id)
        if nxt is None:
            return current
        current = nxt
    return current


def member_ids(session: Session, survivor_id: int) -> tuple[int, ...]:
    """The survivor and every record merged into it, directly or through another."""
    members = [survivor_id]
    frontier = [survivor_id]
    for _ in range(MAX_MERGE_DEPTH):
        children = (
            session.execute(select(Patient.id).where(Patient.merged_into_id.in_(frontier)))
            .scalars()
            .all()
        )
        if not children:
            break
        members.extend(children)
        frontier = list(children)
    return tuple(members)


# Deciding ------------------------------------------------------------------------------------


def _live_grants(
    session: Session, principal: Principal, members: Iterable[int]
) -> list[ChartGrant]:
    grantee = [ChartGrant.grantee_user_id == principal.user_id]
    if principal.institution_id is not None:
        grantee.append(ChartGrant.grantee_institution_id == principal.institution_id)
    stmt = select(ChartGrant).where(
        ChartGrant.patient_id.in_(list(members)),
        ChartGrant.revoked_at.is_(None),
        ChartGrant.expires_at > now(),
        or_(*grantee),
    )
    return list(session.execute(stmt).scalars().all())


def _granted_items(session: Session, grant_ids: list[int]) -> frozenset[tuple[str, int]]:
    if not grant_ids:
        return frozenset()
    rows = session.execute(
        select(ChartGrantItem.item_kind, ChartGrantItem.item_id).where(
            ChartGrantItem.grant_id.in_(grant_ids)
        )
    ).all()
    return frozenset((kind, item_id) for kind, item_id in rows)


def resolve_access(
    session: Session, principal: Principal, patient_id: int, *, reason: str | None = None
) -> ChartAccess | None:
    """What the principal may see of the patient, or None when nothing (no audit here)."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        return None
    survivor = survivor_of(session, patient)
    members = member_ids(session, survivor.id)
    if principal.is_platform_admin and reason and len(reason.strip()) >= BREAK_GLASS_MIN_REASON:
        return ChartAccess(survivor.id, members, everything=True, basis=("break_glass",))
    if not principal.roles.intersection(CHART_ROLES):
        return None
    opened: set[int] = set()
    basis: list[str] = []
    everything = False
    if principal.institution_id is not None:
        related = session.execute(
            select(PatientInstitution.institution_id).where(
                PatientInstitution.patient_id.in_(members),
                PatientInstitution.institution_id == principal.institution_id,
            )
        ).first()
        if related is not None:
            opened.add(principal.institution_id)
            basis.append("institution")
    grants = _live_grants(session, principal, members)
    item_grants = [g.id for g in grants if g.scope == "items"]
    for grant in grants:
        if grant.scope != "chart":
            continue
        basis.append(f"grant:{grant.id}")
        if grant.granted_by_institution_id is None:
            everything = True
        else:
            opened.add(grant.granted_by_institution_id)
    items = _granted_items(session, item_grants)
    basis.extend(f"grant:{gid}" for gid in item_grants)
    if not opened and not everything and not items:
        return None
    return ChartAccess(survivor.id, members, frozenset(opened), everything, items, tuple(basis))


def access_patient(
    session: Session,
    principal: Principal,
    patient_id: int,
    *,
    action: str = "patient.read",
    purpose: str = "",
    reason: str | None = None,
    field: str | None = None,
) -> tuple[Patient, ChartAccess]:
    """The patient (the survivor, when ``patient_id`` was merged) and what the principal
    may see of it; 403 without a clinical role, 404 when hidden or absent. Audited."""
    patient, chart = open_patient(
        session, principal, patient_id, action=action, reason=reason, field=field
    )
    record_access(
        session, principal, chart, action, requested_id=patient_id, purpose=purpose, reason=reason
    )
    return patient, chart


def open_patient(
    session: Session,
    principal: Principal,
    patient_id: int,
    *,
    action: str,
    reason: str | None = None,
    field: str | None = None,
) -> tuple[Patient, ChartAccess]:
    """:func:`access_patient` without its success row: refusals are audited here, and the
    caller MUST write the success row itself with :func:`record_access` (used where one
    row should also say what was done, e.g. which fields an update changed)."""
    if principal.is_platform_admin and not (
        principal.roles.intersection(CHART_ROLES - {Role.PLATFORM_ADMIN})
    ):
        require_break_glass_reason(session, principal, patient_id, action, reason)
    else:
        require_roles(
            session,
            principal,
            set(CHART_ROLES),
            action=action,
            object_kind="patient",
            object_id=patient_id,
        )
    chart = resolve_access(session, principal, patient_id, reason=reason)
    if chart is None:
        raise deny_not_found(session, principal, action, "patient", patient_id, field=field)
    patient = session.get(Patient, chart.patient_id)
    if patient is None:  # cannot happen: resolved above in this transaction
        raise deny_not_found(session, principal, action, "patient", patient_id, field=field)
    return patient, chart


def record_access(
    session: Session,
    principal: Principal,
    chart: ChartAccess,
    action: str,
    *,
    requested_id: int,
    purpose: str = "",
    reason: str | None = None,
    detail: dict[str, object] | None = None,
) -> None:
    """The audit row of a successful open: a break-glass open is recorded as
    ``patient.break_glass`` with the reason as its purpose and the operation in detail."""
    glass = "break_glass" in chart.basis
    extra: dict[str, object] = {"operation": action} if glass else {}
    audit.record(
        session,
        principal,
        "patient.break_glass" if glass else action,
        object_kind="patient",
        object_id=chart.patient_id,
        purpose=(reason or purpose) if glass else purpose,
        detail={
            "basis": list(chart.basis),
            "requested_id": requested_id,
            **extra,
            **(detail or {}),
        },
    )


def require_break_glass_reason(
    session: Session,
    principal: Principal,
    patient_id: int | str,
    action: str,
    reason: str | None,
) -> None:
    """A platform admin acting on patient data states a reason (break-glass); 403 naming
    ``reason`` otherwise, audited."""
    if reason and len(reason.strip()) >= BREAK_GLASS_MIN_REASON:
        return
    audit.record_denial(session, principal, action, "patient", patient_id, reason="no_reason")
    raise Forbidden(
        N_("A platform admin opens a chart only with a stated reason (10 characters or more)."),
        code="break_glass_reason_required",
        field="reason",
    )


def accessible_patient_ids_clause(principal: Principal) -> object:
    """A WHERE clause on ``Patient.id`` for lists: patients of the principal's institution
    or granted to them (live grants). Lists never hold anything else."""
    current = now()
    grantee = [ChartGrant.grantee_user_id == principal.user_id]
    if principal.institution_id is not None:
        grantee.append(ChartGrant.grantee_institution_id == principal.institution_id)
    granted = select(ChartGrant.patient_id).where(
        ChartGrant.revoked_at.is_(None), ChartGrant.expires_at > current, or_(*grantee)
    )
    own = select(PatientInstitution.patient_id).where(
        PatientInstitution.institution_id == principal.institution_id
    )
    return or_(Patient.id.in_(own), Patient.id.in_(granted))


def has_break_glass_reason(principal: Principal, reason: str | None) -> bool:
    return bool(
        principal.is_platform_admin and reason and len(reason.strip()) >= BREAK_GLASS_MIN_REASON
    )


# Lists ---------------------------------------------------------------------------------------
# A list shows survivors only (merged records are reached through them). A criterion that
# matches a merged record finds its survivor: ``survivor_clause`` walks merged records up
# their ``merged_into_id`` chain with a recursive CTE seeded only by merged records, so the
# common case (nothing merged) costs one extra indexed lookup.


IdSelect = Select[int] | CompoundSelect[int]


def survivors_of_merged(seed_ids: IdSelect, name: str) -> Select[int]:
    """The survivors of the merged records among ``seed_ids`` (``name``: a CTE name unique
    within the statement)."""
    seed = aliased(Patient)
    parent = aliased(Patient)
    chain = (
        select(seed.id, seed.merged_into_id)
        .where(seed.id.in_(seed_ids), seed.merged_into_id.is_not(None))
        .cte(name, recursive=True)
    )
    chain = chain.union(
        select(parent.id, parent.merged_into_id).join(chain, parent.id == chain.c.merged_into_id)
    )
    return select(chain.c.id).where(chain.c.merged_into_id.is_(None))


def survivor_clause(seed_ids: IdSelect, name: str) -> ColumnElement[bool]:
    """A WHERE clause on ``Patient``: the record is among ``seed_ids`` or is the survivor
    of one of them. Combine with ``Patient.merged_into_id IS NULL``."""
    return or_(Patient.id.in_(seed_ids), Patient.id.in_(survivors_of_merged(seed_ids, name)))


def accessible_seed_ids(principal: Principal) -> IdSelect:
    """Records linked to the principal's institution or under a live grant to them."""
    grantee = [ChartGrant.grantee_user_id == principal.user_id]
    if principal.institution_id is not None:
        grantee.append(ChartGrant.grantee_institution_id == principal.institution_id)
    granted = select(ChartGrant.patient_id).where(
        ChartGrant.revoked_at.is_(None), ChartGrant.expires_at > now(), or_(*grantee)
    )
    if principal.institution_id is None:
        return granted
    own = select(PatientInstitution.patient_id).where(
        PatientInstitution.institution_id == principal.institution_id
    )
    return own.union(granted)


def accessible_survivors_clause(principal: Principal) -> ColumnElement[bool]:
    """A WHERE clause on ``Patient`` for lists: survivors the principal can open, exactly
    as :func:`resolve_access` decides (a link to any merged member opens the survivor)."""
    return and_(
        Patient.merged_into_id.is_(None),
        survivor_clause(accessible_seed_ids(principal), "accessible_chain"),
    )


def visible_items_clause(
    principal: Principal,
    kind: str,
    item_id: SQLColumnExpression[int],
    patient_id: SQLColumnExpression[int | None],
    institution_id: SQLColumnExpression[int],
) -> ColumnElement[bool]:
    """A WHERE clause for a higher domain's list of items across patients (``kind``
    registered with :func:`register_item_kind`): items held by the principal's
    institution, items a live ``items`` grant lists, and items of a patient under a live
    ``chart`` grant of the holding institution (or of a workflow of the platform).

    Conservative next to :func:`resolve_access`: grants on a merge survivor do not reach
    items filed under a merged record here; opening the item one by one does."""
    current = now()
    grantee = [ChartGrant.grantee_user_id == principal.user_id]
    if principal.institution_id is not None:
        grantee.append(ChartGrant.grantee_institution_id == principal.institution_id)
    live = and_(ChartGrant.revoked_at.is_(None), ChartGrant.expires_at > current, or_(*grantee))
    listed = (
        select(ChartGrantItem.item_id)
        .join(ChartGrant, ChartGrant.id == ChartGrantItem.grant_id)
        .where(live, ChartGrant.scope == "items", ChartGrantItem.item_kind == kind)
    )
    chart = (
        select(ChartGrant.id)
        .where(
            live,
            ChartGrant.scope == "chart",
            ChartGrant.patient_id == patient_id,
            or_(
                ChartGrant.granted_by_institution_id.is_(None),
                ChartGrant.granted_by_institution_id == institution_id,
            ),
        )
        .exists()
    )
    clauses: list[ColumnElement[bool]] = [item_id.in_(listed), chart]
    if principal.institution_id is not None:
        clauses.append(institution_id == principal.institution_id)
    return or_(*clauses)

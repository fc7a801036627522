"""Merging duplicate records of one person, and undoing a merge.

Nothing moves and nothing is deleted: the merged record points at its survivor
(``merged_into_id``) and a ``patient_merge`` row says who merged, when and why. Opening the
merged record opens the survivor, whose chart spans both (``access.member_ids``); searches
show only the survivor. An undo clears the pointer and records who undid it and why; only
the latest merge of a record can be undone.

Who may merge: staff (applicant doctor, expert, coordinator) of an institution linked to
both records, or a platform admin with the merge reason as the break-glass reason. Two
records with different resident ID numbers are two people: 409 naming ``resident_id``.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import deny_not_found, require_roles
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, NotFound
from xietong.identity.roles import Role
from xietong.patients.access import (
    MAX_MERGE_DEPTH,
    ChartAccess,
    access_patient,
    accessible_survivors_clause,
    member_ids,
    open_patient,
    record_access,
)
from xietong.patients.identifiers import IdentifierKind
from xietong.patients.models import Patient, PatientIdentifier, PatientInstitution, PatientMerge
from xietong.patients.schemas import MergeIn, UndoMergeIn

MERGE_ROLES = {Role.APPLICANT_DOCTOR, Role.EXPERT, Role.COORDINATOR, Role.PLATFORM_ADMIN}
MERGE = "patient.merge"
UNDO = "patient.merge_undo"


def merge_patients(session: Session, principal: Principal, data: MergeIn) -> PatientMerge:
    """Merge ``data.merged_id`` into ``data.survivor_id``."""
    require_roles(
        session,
        principal,
        MERGE_ROLES,
        action=MERGE,
        object_kind="patient",
        object_id=data.merged_id,
    )
    if data.survivor_id == data.merged_id:
        raise Conflict(
            N_("A record cannot be merged into itself."), code="merge_self", field="merged_id"
        )
    reason = data.reason if principal.is_platform_admin else None
    charts: dict[str, ChartAccess] = {}
    for field, patient_id in (("survivor_id", data.survivor_id), ("merged_id", data.merged_id)):
        patient, chart = open_patient(
            session, principal, patient_id, action=MERGE, reason=reason, field=field
        )
        _check_linked(session, principal, chart, [chart.member_ids], MERGE, patient_id)
        if patient.id != patient_id:
            raise _already_merged(field)
        charts[field] = chart
    survivor, merged = _lock(session, data.survivor_id, data.merged_id)
    if survivor.merged_into_id is not None:
        raise _already_merged("survivor_id")
    if merged.merged_into_id is not None:
        raise _already_merged("merged_id")
    survivor_members = member_ids(session, survivor.id)
    merged_members = member_ids(session, merged.id)
    _check_resident_ids(session, survivor_members, merged_members)
    if _depth(session, merged.id) + 1 >= MAX_MERGE_DEPTH:
        raise Conflict(
            N_("This record has been merged too many times; undo an earlier merge first."),
            code="merge_too_deep",
            field="merged_id",
        )
    merged.merged_into_id = survivor.id
    row = PatientMerge(
        survivor_id=survivor.id,
        merged_id=merged.id,
        reason=data.reason,
        merged_by_user_id=principal.user_id,
        merged_by_institution_id=principal.institution_id,
    )
    session.add(row)
    session.flush()
    for field, chart in charts.items():
        record_access(
            session,
            principal,
            chart,
            MERGE,
            requested_id=chart.patient_id,
            purpose=data.reason,
            reason=reason,
            detail={"merge_id": row.id, "as": field.removesuffix("_id")},
        )
    return row


def undo_merge(
    session: Session, principal: Principal, merge_id: int, data: UndoMergeIn
) -> PatientMerge:
    """Undo the latest merge of a record: it stands on its own again."""
    require_roles(
        session,
        principal,
        MERGE_ROLES,
        action=UNDO,
        object_kind="patient_merge",
        object_id=merge_id,
    )
    merge = session.get(PatientMerge, merge_id)
    if merge is None:
        raise deny_not_found(session, principal, UNDO, "patient_merge", merge_id, field="merge_id")
    reason = data.reason if principal.is_platform_admin else None
    try:
        _patient, chart = open_patient(
            session, principal, merge.merged_id, action=UNDO, reason=reason
        )
    except NotFound:
        raise NotFound(code="patient_merge_not_found", field="merge_id") from None
    merged_side = member_ids(session, merge.merged_id)
    survivor_side = tuple(m for m in member_ids(session, merge.survivor_id) if m not in merged_side)
    _check_linked(session, principal, chart, [merged_side, survivor_side], UNDO, merge.merged_id)
    _lock(session, merge.merged_id)
    session.refresh(merge, with_for_update=True)
    merged = session.get(Patient, merge.merged_id)
    latest = session.execute(
        select(func.max(PatientMerge.id)).where(PatientMerge.merged_id == merge.merged_id)
    ).scalar_one()
    if merge.undone_at is not None:
        raise Conflict(N_("This merge is undone already."), code="merge_undone", field="merge_id")
    if latest != merge.id or merged is None or merged.merged_into_id != merge.survivor_id:
        raise Conflict(
            N_("Only the latest merge of a record can be undone."),
            code="not_latest_merge",
            field="merge_id",
        )
    merged.merged_into_id = None
    merge.undone_at = now()
    merge.undone_by_user_id = principal.user_id
    merge.undo_reason = data.reason
    session.flush()
    record_access(
        session,
        principal,
        chart,
        UNDO,
        requested_id=merge.merged_id,
        purpose=data.reason,
        reason=reason,
        detail={"merge_id": merge.id, "survivor_id": merge.survivor_id},
    )
    audit.record(
        session,
        principal,
        UNDO,
        object_kind="patient",
        object_id=merge.merged_id,
        purpose=data.reason,
        detail={"merge_id": merge.id, "survivor_id": merge.survivor_id},
    )
    return merge


def merges_of_patient(
    session: Session, principal: Principal, patient_id: int, *, reason: str | None = None
) -> list[PatientMerge]:
    """Every merge (undone ones too) that involved the patient or a record merged into it."""
    _patient, chart = access_patient(
        session, principal, patient_id, action="patient.merge_list", reason=reason
    )
    return _merges_of(session, chart.member_ids)


@dataclass
class MergeOverview:
    """What the merge page shows: the survivor, its merge history (with the merges that
    can be undone) and possible duplicates the principal can open."""

    patient: Patient
    chart: ChartAccess
    merges: list[PatientMerge]
    undoable: set[int]
    candidates: list[Patient]


def merge_overview(
    session: Session, principal: Principal, patient_id: int, *, reason: str | None = None
) -> MergeOverview:
    action = "patient.merge_list"
    patient, chart = open_patient(session, principal, patient_id, action=action, reason=reason)
    merges = _merges_of(session, chart.member_ids)
    candidates = merge_candidates(session, principal, patient)
    record_access(
        session,
        principal,
        chart,
        action,
        requested_id=patient_id,
        reason=reason,
        detail={"candidates": [c.id for c in candidates]},
    )
    latest: dict[int, int] = {}
    for m in merges:
        latest[m.merged_id] = max(latest.get(m.merged_id, 0), m.id)
    undoable = {m.id for m in merges if m.undone_at is None and latest[m.merged_id] == m.id}
    return MergeOverview(patient, chart, merges, undoable, candidates)


def _merges_of(session: Session, members: tuple[int, ...]) -> list[PatientMerge]:
    return list(
        session.execute(
            select(PatientMerge)
            .where(
                or_(
                    PatientMerge.survivor_id.in_(list(members)),
                    PatientMerge.merged_id.in_(list(members)),
                )
            )
            .order_by(PatientMerge.merged_at.desc(), PatientMerge.id.desc())
        )
        .scalars()
        .all()
    )


def get_merge(
    session: Session, principal: Principal, merge_id: int, *, reason: str | None = None
) -> PatientMerge:
    """One merge, if the principal can open its survivor or merged record."""
    merge = session.get(PatientMerge, merge_id)
    if merge is None:
        raise deny_not_found(
            session, principal, "patient.merge_list", "patient_merge", merge_id, field="merge_id"
        )
    try:
        access_patient(
            session, principal, merge.merged_id, action="patient.merge_list", reason=reason
        )
    except NotFound:
        raise NotFound(code="patient_merge_not_found", field="merge_id") from None
    return merge


def merge_candidates(
    session: Session, principal: Principal, patient: Patient, limit: int = 10
) -> list[Patient]:
    """Possible duplicates of ``patient`` the principal can open: the same name and birth
    date, or the same phone (shown masked on the merge page)."""
    same = (Patient.name == patient.name) & (Patient.birth_date == patient.birth_date)
    if patient.phone_bidx:
        same = same | (Patient.phone_bidx == patient.phone_bidx)
    where = [same, Patient.id != patient.id, Patient.merged_into_id.is_(None)]
    if not principal.is_platform_admin:  # a platform admin got here through break-glass
        where.append(accessible_survivors_clause(principal))
    stmt = select(Patient).where(*where).order_by(Patient.id).limit(limit)
    return list(session.execute(stmt).scalars().all())


# Checks --------------------------------------------------------------------------------------


def _already_merged(field: str) -> Conflict:
    return Conflict(
        N_("This record is merged into another one already."), code="already_merged", field=field
    )


def _check_linked(
    session: Session,
    principal: Principal,
    chart: ChartAccess,
    sides: list[tuple[int, ...]],
    action: str,
    patient_id: int,
) -> None:
    """Break-glass, or the principal's institution is linked to every side."""
    if "break_glass" in chart.basis:
        return
    institution = principal.institution_id
    linked = institution is not None and all(
        session.execute(
            select(PatientInstitution.patient_id).where(
                PatientInstitution.patient_id.in_(list(side)),
                PatientInstitution.institution_id == institution,
            )
        ).first()
        is not None
        for side in sides
    )
    if not linked:
        audit.record_denial(session, principal, action, "patient", patient_id, reason="not_linked")
        raise Forbidden(
            N_("Only staff of an institution linked to both records merge them."),
            code="merge_not_allowed",
            field=None,
        )


def _lock(session: Session, *patient_ids: int) -> list[Patient]:
    """Lock the records (in id order, so two merges cannot deadlock) and reload them."""
    rows = session.execute(
        select(Patient)
        .where(Patient.id.in_(patient_ids))
        .order_by(Patient.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    ).scalars()
    by_id = {p.id: p for p in rows}
    return [by_id[i] for i in patient_ids]


def _check_resident_ids(
    session: Session, survivor_members: tuple[int, ...], merged_members: tuple[int, ...]
) -> None:
    def has_resident_id(members: tuple[int, ...]) -> bool:
        return (
            session.execute(
                select(PatientIdentifier.id).where(
                    PatientIdentifier.patient_id.in_(list(members)),
                    PatientIdentifier.kind == IdentifierKind.RESIDENT_ID.value,
                )
            ).first()
            is not None
        )

    # A number names one record (unique key), so two sides that both hold one differ.
    if has_resident_id(survivor_members) and has_resident_id(merged_members):
        raise Conflict(
            N_("The two records have different resident ID numbers: they are two people."),
            code="resident_id_differs",
            field="resident_id",
        )


def _depth(session: Session, root_id: int) -> int:
    """How many levels of merged records hang below ``root_id``."""
    depth, frontier = 0, [root_id]
    while frontier and depth < MAX_MERGE_DEPTH:
        frontier = list(
            session.execute(select(Patient.id).where(Patient.merged_into_id.in_(frontier)))
            .scalars()
            .all()
        )
        if frontier:
            depth += 1
    return depth

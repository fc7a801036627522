"""Finding patients: by resident ID number or phone (exact, through the blind index), by an
institution's medical record number, by name (a prefix) and birth date.

A search only ever returns survivors the principal can open (their institution's patients,
patients granted to them); the total counts nothing else. A platform admin searches the
whole index only with a stated reason (break-glass). Each search writes one audit row
naming the kinds of criteria used, never their values.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import ColumnElement, and_, func, select
from sqlalchemy.orm import Session, aliased

from xietong.access import audit
from xietong.access.policies import require_roles
from xietong.access.principal import Principal
from xietong.core.pii import PiiProtector
from xietong.identity.roles import Role
from xietong.patients.access import (
    CHART_ROLES,
    accessible_survivors_clause,
    has_break_glass_reason,
    require_break_glass_reason,
    survivor_clause,
)
from xietong.patients.identifiers import (
    IdentifierKind,
    normalise_identifier,
    normalise_phone,
    normalise_resident_id,
)
from xietong.patients.models import Patient, PatientIdentifier
from xietong.patients.schemas import PatientSearchIn

ACTION = "patient.search"


@dataclass(frozen=True)
class SearchResult:
    patients: list[Patient]
    total: int
    criteria: list[str]


def _like_prefix(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return escaped + "%"


def _identifier_seeds(kind: IdentifierKind, issuer: str, bidx: str) -> ColumnElement[bool]:
    row = aliased(PatientIdentifier)
    seeds = select(row.patient_id).where(
        row.kind == kind.value, row.issuer == issuer, row.value_bidx == bidx
    )
    return survivor_clause(seeds, f"{kind.value}_chain")


def criteria_clauses(
    query: PatientSearchIn, principal: Principal, pii: PiiProtector
) -> tuple[list[ColumnElement[bool]], list[str]]:
    """WHERE clauses for the criteria given, and their kinds (for the audit row).

    Values are normalised first: a malformed ID number or phone is a 422 naming the
    parameter, never a silent empty result."""
    clauses: list[ColumnElement[bool]] = []
    kinds: list[str] = []
    if query.resident_id:
        number = normalise_resident_id(query.resident_id, "resident_id")
        bidx = pii.blind_index(IdentifierKind.RESIDENT_ID.value, number)
        clauses.append(_identifier_seeds(IdentifierKind.RESIDENT_ID, "", bidx))
        kinds.append("resident_id")
    if query.mrn:
        issuer = query.mrn_issuer or principal.institution_id
        kind = IdentifierKind.MRN
        value = normalise_identifier(kind, query.mrn, str(issuer or ""), "mrn")
        bidx = pii.blind_index(kind.value, value)
        clauses.append(_identifier_seeds(kind, str(issuer or ""), bidx))
        kinds.append("mrn")
    record = aliased(Patient)
    own: list[ColumnElement[bool]] = []
    if query.phone:
        phone = normalise_phone(query.phone, "phone")
        own.append(record.phone_bidx == pii.blind_index("phone", phone))
        kinds.append("phone")
    if query.name:
        own.append(record.name.like(_like_prefix(query.name), escape="\\"))
        kinds.append("name")
    if query.birth_date:
        own.append(record.birth_date == query.birth_date)
        kinds.append("birth_date")
    if own:
        clauses.append(survivor_clause(select(record.id).where(and_(*own)), "record_chain"))
    return clauses, kinds


def search_patients(
    session: Session,
    principal: Principal,
    pii: PiiProtector,
    query: PatientSearchIn,
    *,
    reason: str | None = None,
) -> SearchResult:
    """A page of matching survivors the principal can open, and their total."""
    glass = has_break_glass_reason(principal, reason)
    clinical = principal.roles.intersection(CHART_ROLES - {Role.PLATFORM_ADMIN})
    if principal.is_platform_admin and not clinical and not glass:
        require_break_glass_reason(session, principal, "", ACTION, reason)
    elif not glass:
        require_roles(session, principal, set(CHART_ROLES), action=ACTION, object_kind="patient")
    clauses, kinds = criteria_clauses(query, principal, pii)
    where: list[ColumnElement[bool]] = [Patient.merged_into_id.is_(None), *clauses]
    if not glass:
        where.append(accessible_survivors_clause(principal))
    total = session.execute(select(func.count()).select_from(Patient).where(*where)).scalar_one()
    order = (Patient.name, Patient.birth_date, Patient.id) if query.name else (Patient.id.desc(),)
    rows = (
        session.execute(
            select(Patient).where(*where).order_by(*order).limit(query.limit).offset(query.offset)
        )
        .scalars()
        .all()
    )
    audit.record(
        session,
        principal,
        ACTION,
        object_kind="patient",
        purpose=(reason or "").strip() if glass else "",
        detail={
            "break_glass": glass,
            "criteria": kinds,
            "results": total,
            "limit": query.limit,
            "offset": query.offset,
        },
    )
    return SearchResult(list(rows), total, kinds)

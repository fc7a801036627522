"""Departments and practitioners of an institution."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xietong.core.errors import N_, Conflict, Invalid, NotFound
from xietong.directory.models import Department, Institution, Practitioner, PractitionerSpecialty
from xietong.directory.schemas import (
    DepartmentCreateIn,
    DepartmentUpdateIn,
    PractitionerCreateIn,
    PractitionerUpdateIn,
)
from xietong.directory.service.common import Paging, apply_changes, flush_unique, sent_fields
from xietong.directory.specialties import validate_specialties, validate_specialty
from xietong.directory.titles import validate_title

# Departments ------------------------------------------------------------------------------


def get_department(session: Session, department_id: int, field: str = "id") -> Department:
    department = session.get(Department, department_id)
    if department is None:
        raise NotFound(N_("Not found."), code="department_not_found", field=field)
    return department


def list_departments(
    session: Session, institution_id: int, *, include_inactive: bool = False
) -> Sequence[Department]:
    stmt = select(Department).where(Department.institution_id == institution_id)
    if not include_inactive:
        stmt = stmt.where(Department.is_active.is_(True))
    return session.execute(stmt.order_by(Department.name, Department.id)).scalars().all()


def create_department(
    session: Session, institution: Institution, data: DepartmentCreateIn
) -> Department:
    if data.specialty is not None:
        validate_specialty(data.specialty)
    _ensure_department_name_free(session, institution.id, data.name)
    department = Department(
        institution_id=institution.id, name=data.name, specialty=data.specialty, is_active=True
    )
    session.add(department)
    flush_unique(session, "name")
    return department


def update_department(
    session: Session, department: Department, data: DepartmentUpdateIn
) -> dict[str, list[Any]]:
    values = sent_fields(data, required=("name", "is_active"))
    if values.get("specialty") is not None:
        validate_specialty(values["specialty"])
    if "name" in values and values["name"] != department.name:
        _ensure_department_name_free(session, department.institution_id, values["name"])
    changes = apply_changes(department, values)
    flush_unique(session, "name")
    return changes


def _ensure_department_name_free(session: Session, institution_id: int, name: str) -> None:
    taken = session.execute(
        select(Department.id).where(
            Department.institution_id == institution_id, Department.name == name
        )
    ).first()
    if taken is not None:
        raise Conflict(
            N_("This institution already has a department with this name."),
            code="department_name_taken",
            field="name",
        )


# Practitioners ----------------------------------------------------------------------------


@dataclass(frozen=True)
class PractitionerQuery:
    institution_id: int
    q: str | None = None
    department_id: int | None = None
    include_inactive: bool = False
    paging: Paging = field(default_factory=Paging)


def get_practitioner(session: Session, practitioner_id: int, field: str = "id") -> Practitioner:
    practitioner = session.get(Practitioner, practitioner_id)
    if practitioner is None:
        raise NotFound(N_("Not found."), code="practitioner_not_found", field=field)
    return practitioner


def list_practitioners(
    session: Session, query: PractitionerQuery
) -> tuple[Sequence[Practitioner], int]:
    stmt = select(Practitioner).where(Practitioner.institution_id == query.institution_id)
    if not query.include_inactive:
        stmt = stmt.where(Practitioner.is_active.is_(True))
    if query.department_id is not None:
        stmt = stmt.where(Practitioner.department_id == query.department_id)
    if query.q:
        stmt = stmt.where(Practitioner.name.contains(query.q, autoescape=True))
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = (
        session.execute(
            stmt.order_by(Practitioner.name, Practitioner.id)
            .limit(query.paging.limit)
            .offset(query.paging.offset)
        )
        .scalars()
        .all()
    )
    return rows, total


def create_practitioner(
    session: Session, institution: Institution, data: PractitionerCreateIn
) -> Practitioner:
    validate_title(data.title)
    specialties = validate_specialties(data.specialties)
    if data.department_id is not None:
        _department_of(session, institution.id, data.department_id)
    practitioner = Practitioner(
        institution_id=institution.id,
        department_id=data.department_id,
        name=data.name,
        sex=data.sex,
        title=data.title,
        is_expert=data.is_expert,
        is_active=True,
    )
    practitioner.specialty_rows = [PractitionerSpecialty(specialty=s) for s in specialties]
    session.add(practitioner)
    session.flush()
    return practitioner


def update_practitioner(
    session: Session, practitioner: Practitioner, data: PractitionerUpdateIn
) -> dict[str, list[Any]]:
    values = sent_fields(
        data, required=("name", "sex", "title", "specialties", "is_expert", "is_active")
    )
    if "title" in values:
        validate_title(values["title"])
    if values.get("department_id") is not None:
        _department_of(session, practitioner.institution_id, values["department_id"])
    changes: dict[str, list[Any]] = {}
    if "specialties" in values:
        wanted = validate_specialties(values.pop("specialties"))
        if wanted != practitioner.specialties:
            changes["specialties"] = [practitioner.specialties, wanted]
            set_specialties(practitioner, wanted)
    changes.update(apply_changes(practitioner, values))
    session.flush()
    return changes


def set_specialties(practitioner: Practitioner, codes: list[str]) -> None:
    keep = [row for row in practitioner.specialty_rows if row.specialty in codes]
    present = {row.specialty for row in keep}
    keep.extend(PractitionerSpecialty(specialty=c) for c in codes if c not in present)
    practitioner.specialty_rows = keep


def _department_of(session: Session, institution_id: int, department_id: int) -> Department:
    """A department must belong to the practitioner's own institution."""
    department = session.get(Department, department_id)
    if (
        department is None
        or department.institution_id != institution_id
        or not department.is_active
    ):
        raise Invalid(
            N_("Choose a department of the same institution."),
            code="department_not_in_institution",
            field="department_id",
        )
    return department

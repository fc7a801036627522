"""Use cases of the patient index besides registration, search and merges: the detail (with
the audited reveal of full numbers), demographic updates and the counts for authorities.

Who may do what (docs/patients.md):

* read the header and masked numbers: anybody :func:`access_patient` lets in (institution
  link, any live grant, break-glass);
* reveal full numbers: an institution link, a ``chart`` grant or break-glass; an ``items``
  grant shares chosen records, not the person's identity papers, so it does not reveal;
* update demographics: an institution link or break-glass (a grantee, who sees the
  patient for one workflow, corrects nothing of the patient's identity);
* counts: authorities (their jurisdiction) and platform admins (everything); no names.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from sqlalchemy import func, or_, select
from sqlalchemy.orm import Session, aliased

from xietong.access import audit
from xietong.access.policies import require_roles
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Forbidden, Invalid
from xietong.core.pii import PiiProtector
from xietong.directory.levels import LEVEL_CODES
from xietong.directory.lookup import find_region
from xietong.directory.models import Institution
from xietong.identity.roles import Role
from xietong.patients.access import (
    ChartAccess,
    open_patient,
    record_access,
    survivors_of_merged,
)
from xietong.patients.identifiers import (
    IdentifierKind,
    check_resident_id_agrees,
    masked_phone,
    normalise_phone,
)
from xietong.patients.models import Patient, PatientIdentifier, PatientInstitution
from xietong.patients.registration import OLDEST_BIRTH_DATE
from xietong.patients.schemas import (
    EmergencyContactIn,
    LevelCount,
    PatientDetail,
    PatientStatsOut,
    PatientUpdateIn,
)
from xietong.patients.views import patient_detail

STATS_ROLES = {Role.AUTHORITY, Role.PLATFORM_ADMIN}


def may_reveal(chart: ChartAccess) -> bool:
    """An institution link, a chart grant or break-glass (not an items-only grant)."""
    return chart.sees_some_institution


def may_edit(chart: ChartAccess) -> bool:
    return "institution" in chart.basis or "break_glass" in chart.basis


def _refuse(
    session: Session, principal: Principal, action: str, patient_id: int, code: str, message: str
) -> Forbidden:
    audit.record_denial(session, principal, action, "patient", patient_id, reason=code)
    return Forbidden(message, code=code, field=None)


def get_patient(
    session: Session,
    principal: Principal,
    pii: PiiProtector,
    patient_id: int,
    *,
    reveal: bool = False,
    reason: str | None = None,
) -> PatientDetail:
    """The patient's detail, masked; with ``reveal`` the full numbers, audited as
    ``patient.reveal`` (403 for a principal who may open but not reveal)."""
    action = "patient.reveal" if reveal else "patient.read"
    patient, chart = open_patient(session, principal, patient_id, action=action, reason=reason)
    if reveal and not may_reveal(chart):
        raise _refuse(
            session,
            principal,
            action,
            patient_id,
            "reveal_not_allowed",
            N_("Full numbers are shown only to the patient's own institutions."),
        )
    detail: dict[str, Any] = {"fields": ["identifiers", "phone"]} if reveal else {}
    record_access(
        session, principal, chart, action, requested_id=patient_id, reason=reason, detail=detail
    )
    return patient_detail(
        session,
        patient,
        chart,
        pii=pii if reveal else None,
        can_reveal=may_reveal(chart),
        can_edit=may_edit(chart),
    )


# Updates -----------------------------------------------------------------------------------

_REQUIRED = ("name", "sex", "birth_date")


@dataclass
class Update:
    patient: Patient
    chart: ChartAccess
    changed: list[str]


def update_patient(
    session: Session,
    principal: Principal,
    pii: PiiProtector,
    patient_id: int,
    data: PatientUpdateIn,
    *,
    reason: str | None = None,
) -> Update:
    """PATCH the demographics; the audit row names the fields that changed, not values."""
    action = "patient.update"
    sent = {name: getattr(data, name) for name in data.model_fields_set}
    for name in _REQUIRED:
        if name in sent and sent[name] is None:
            raise Invalid(N_("This field is required."), code="missing", field=name)
    patient, chart = open_patient(session, principal, patient_id, action=action, reason=reason)
    if not may_edit(chart):
        raise _refuse(
            session,
            principal,
            action,
            patient_id,
            "update_not_allowed",
            N_("Only the patient's own institutions change the patient's details."),
        )
    _check_person(session, pii, patient, sent)
    changed = _apply(patient, pii, sent)
    session.flush()
    record_access(
        session,
        principal,
        chart,
        action,
        requested_id=patient_id,
        reason=reason,
        detail={"fields": changed},
    )
    return Update(patient, chart, changed)


def _check_person(
    session: Session, pii: PiiProtector, patient: Patient, sent: dict[str, Any]
) -> None:
    birth: date = sent.get("birth_date") or patient.birth_date
    sex: str = sent.get("sex") or patient.sex
    if "birth_date" in sent:
        if birth > now().date():
            raise Invalid(
                N_("The birth date is in the future."),
                code="birth_date_future",
                field="birth_date",
            )
        if birth < OLDEST_BIRTH_DATE:
            raise Invalid(
                N_("The birth date is too far in the past."),
                code="birth_date_too_old",
                field="birth_date",
            )
    if "birth_date" in sent or "sex" in sent:
        token = session.execute(
            select(PatientIdentifier.value_enc).where(
                PatientIdentifier.patient_id == patient.id,
                PatientIdentifier.kind == IdentifierKind.RESIDENT_ID.value,
            )
        ).scalar_one_or_none()
        if token is not None:
            number = pii.decrypt(IdentifierKind.RESIDENT_ID.value, token)
            check_resident_id_agrees(number, birth, sex)
    code = sent.get("address_region_code")
    if code and find_region(session, code) is None:
        raise Invalid(
            N_("No region has this code."), code="region_not_found", field="address_region_code"
        )


def _apply(patient: Patient, pii: PiiProtector, sent: dict[str, Any]) -> list[str]:
    changed: list[str] = []

    def put(name: str, value: object) -> None:
        if getattr(patient, name) != value:
            setattr(patient, name, value)
            if name not in changed:
                changed.append(name)

    for name in ("name", "sex", "birth_date", "address_region_code"):
        if name in sent:
            put(name, sent[name])
    if "address_detail" in sent:
        put("address_detail", sent["address_detail"] or "")
    if "phone" in sent:
        _set_phone(patient, pii, sent["phone"], changed)
    if "emergency_contact" in sent:
        _set_emergency(patient, pii, sent["emergency_contact"], changed)
    return changed


def _set_phone(patient: Patient, pii: PiiProtector, raw: str | None, changed: list[str]) -> None:
    phone = normalise_phone(raw, "phone") if raw else None
    bidx = pii.blind_index("phone", phone) if phone else None
    if bidx == patient.phone_bidx:
        return
    patient.phone_enc = pii.encrypt("phone", phone) if phone else None
    patient.phone_bidx = bidx
    patient.phone_masked = masked_phone(phone) if phone else ""
    changed.append("phone")


def _set_emergency(
    patient: Patient, pii: PiiProtector, contact: EmergencyContactIn | None, changed: list[str]
) -> None:
    if contact is None:
        if patient.emergency_name or patient.emergency_phone_enc:
            patient.emergency_name = ""
            patient.emergency_relation = ""
            patient.emergency_phone_enc = None
            patient.emergency_phone_masked = ""
            changed.append("emergency_contact")
        return
    phone = normalise_phone(contact.phone, "emergency_contact.phone")
    old_phone = (
        pii.decrypt("phone", patient.emergency_phone_enc) if patient.emergency_phone_enc else None
    )
    if (
        contact.name == patient.emergency_name
        and contact.relation == patient.emergency_relation
        and phone == old_phone
    ):
        return
    patient.emergency_name = contact.name
    patient.emergency_relation = contact.relation
    patient.emergency_phone_enc = pii.encrypt("phone", phone)
    patient.emergency_phone_masked = masked_phone(phone)
    changed.append("emergency_contact")


# Counts for authorities ---------------------------------------------------------------------


def patient_counts(session: Session, principal: Principal) -> PatientStatsOut:
    """Patients (survivors, each counted once) registered by institutions in the
    principal's jurisdiction, in total and by institution level. Counts only."""
    action = "patient.stats"
    require_roles(session, principal, STATS_ROLES, action=action, object_kind="patient")
    prefix = principal.jurisdiction_prefix
    if not principal.is_platform_admin and not prefix:
        audit.record_denial(session, principal, action, "patient", "", reason="no_jurisdiction")
        raise Forbidden(
            N_("Your account has no jurisdiction."), code="jurisdiction_required", field=None
        )
    scope = None if principal.is_platform_admin and not prefix else prefix
    by_level = _count_by_level(session, scope)
    total = _count_total(session, scope)
    audit.record(
        session,
        principal,
        action,
        object_kind="patient",
        detail={"jurisdiction_code": principal.jurisdiction_code if scope else None},
    )
    return PatientStatsOut(
        jurisdiction_code=principal.jurisdiction_code if scope else None,
        total=total,
        by_level=[LevelCount(level=lv, count=n) for lv, n in by_level],
    )


def _registered_in(prefix: str | None, level: str | None = None) -> Any:
    """Records registered by an institution in the region prefix (of one level)."""
    link = aliased(PatientInstitution)
    inst = aliased(Institution)
    stmt = (
        select(link.patient_id)
        .join(inst, inst.id == link.institution_id)
        .where(link.relation == "registered")
    )
    if prefix:
        stmt = stmt.where(inst.region_code.startswith(prefix, autoescape=True))
    if level:
        stmt = stmt.where(inst.level == level)
    return stmt


def _survivors_registered(prefix: str | None, level: str | None, name: str) -> Any:
    seeds = _registered_in(prefix, level)
    return (
        select(func.count())
        .select_from(Patient)
        .where(
            Patient.merged_into_id.is_(None),
            or_(Patient.id.in_(seeds), Patient.id.in_(survivors_of_merged(seeds, name))),
        )
    )


def _count_total(session: Session, prefix: str | None) -> int:
    return int(session.execute(_survivors_registered(prefix, None, "all_chain")).scalar_one())


def _count_by_level(session: Session, prefix: str | None) -> list[tuple[str, int]]:
    inst = aliased(Institution)
    levels_stmt = select(inst.level).distinct()
    if prefix:
        levels_stmt = levels_stmt.where(inst.region_code.startswith(prefix, autoescape=True))
    result: list[tuple[str, int]] = []
    present = set(session.execute(levels_stmt).scalars())
    for level in [lv for lv in LEVEL_CODES if lv in present]:
        stmt = _survivors_registered(prefix, level, "level_chain")
        result.append((level, int(session.execute(stmt).scalar_one())))
    return result

"""Registering a patient: one person, one record, whoever registers them first.

* The same resident ID number (or passport, or health card) finds the existing patient; the
  registering institution is linked to it. Two registrations racing with the same number end
  on the unique key of ``patient_identifier``: the loser's savepoint rolls back and it links
  to the winner's patient (docs/patients.md, tested on PostgreSQL).
* Without a national number, near matches (same name and birth date, or the same phone) are
  suggested, masked; the user may confirm one with ``same_as_patient_id``.
* A retried request with the same ``client_request_id`` returns its first result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import require_roles
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, Invalid
from xietong.core.pii import PiiProtector
from xietong.directory.lookup import find_region
from xietong.identity.roles import Role
from xietong.patients.access import survivor_of
from xietong.patients.identifiers import (
    IdentifierKind,
    check_resident_id_agrees,
    mask_identifier,
    masked_phone,
    normalise_identifier,
    normalise_phone,
)
from xietong.patients.models import Patient, PatientIdentifier, PatientInstitution
from xietong.patients.schemas import PatientIn

REGISTER_ROLES = {Role.APPLICANT_DOCTOR, Role.EXPERT, Role.RADIOLOGIST, Role.COORDINATOR}
OLDEST_BIRTH_DATE = date(1880, 1, 1)
NEAR_MATCH_LIMIT = 5
# Kinds that name one person nationally (with their issuer): a match is the same patient.
GLOBAL_KINDS = (IdentifierKind.RESIDENT_ID, IdentifierKind.PASSPORT, IdentifierKind.HEALTH_CARD)


@dataclass(frozen=True)
class CleanIdentifier:
    kind: IdentifierKind
    issuer: str
    value: str
    field: str


@dataclass
class Registration:
    patient: Patient
    created: bool
    near_matches: list[tuple[Patient, list[str]]] = field(default_factory=list)


def register_patient(
    session: Session, principal: Principal, pii: PiiProtector, data: PatientIn
) -> Registration:
    require_roles(
        session, principal, REGISTER_ROLES, action="patient.register", object_kind="patient"
    )
    institution_id = principal.institution_id
    if institution_id is None:
        raise Forbidden(
            N_("Only staff of an institution register patients."), code="institution_required"
        )
    identifiers = clean_identifiers(data, institution_id)
    phone = normalise_phone(data.phone) if data.phone else None
    _check_person(session, data, identifiers)

    if data.client_request_id:
        earlier = session.execute(
            select(Patient).where(
                Patient.registered_institution_id == institution_id,
                Patient.client_request_id == data.client_request_id,
            )
        ).scalar_one_or_none()
        if earlier is not None:
            return Registration(earlier, created=False)

    existing = find_by_identifiers(session, pii, identifiers)
    if existing is None and data.same_as_patient_id is not None:
        existing = _confirmed_near_match(session, pii, data, phone)
    if existing is not None:
        check_agrees(session, pii, existing, data, identifiers)
        _attach(session, principal, pii, existing, identifiers, institution_id)
        return Registration(existing, created=False)

    near = near_matches(session, pii, data.name, data.birth_date, phone)
    patient = _new_patient(data, pii, phone, principal, institution_id)
    try:
        with session.begin_nested():
            session.add(patient)
            session.flush()
            for ident in identifiers:
                session.add(_identifier_row(pii, patient.id, ident, principal.user_id))
            session.add(
                PatientInstitution(
                    patient_id=patient.id, institution_id=institution_id, relation="registered"
                )
            )
            session.flush()
    except IntegrityError:
        # A concurrent registration took the number (or the client request id) first.
        winner = find_by_identifiers(session, pii, identifiers)
        if winner is None:
            raise _taken("identifiers") from None
        check_agrees(session, pii, winner, data, identifiers)
        _attach(session, principal, pii, winner, identifiers, institution_id)
        return Registration(winner, created=False)
    audit.record(
        session,
        principal,
        "patient.register",
        object_kind="patient",
        object_id=patient.id,
        detail={"identifiers": [i.kind.value for i in identifiers], "near_matches": len(near)},
    )
    return Registration(patient, created=True, near_matches=near)


def preview_registration(
    session: Session, principal: Principal, pii: PiiProtector, data: PatientIn
) -> list[tuple[Patient, list[str]]]:
    """The near matches registering ``data`` would suggest, without writing anything: the
    registration page shows them before a new record is made. Empty when one of the numbers
    names a patient already (registering attaches to that patient) or the user confirmed a
    match. Validates exactly as :func:`register_patient` does; audited (names are shown)."""
    require_roles(
        session, principal, REGISTER_ROLES, action="patient.register", object_kind="patient"
    )
    institution_id = principal.institution_id
    if institution_id is None:
        raise Forbidden(
            N_("Only staff of an institution register patients."), code="institution_required"
        )
    identifiers = clean_identifiers(data, institution_id)
    phone = normalise_phone(data.phone) if data.phone else None
    _check_person(session, data, identifiers)
    if data.emergency_contact is not None:
        normalise_phone(data.emergency_contact.phone, "emergency_contact.phone")
    if data.same_as_patient_id is not None or find_by_identifiers(session, pii, identifiers):
        return []
    found = near_matches(session, pii, data.name, data.birth_date, phone)
    audit.record(
        session,
        principal,
        "patient.register_check",
        object_kind="patient",
        detail={"near_matches": [p.id for p, _ in found]},
    )
    return found


def clean_identifiers(data: PatientIn, institution_id: int) -> list[CleanIdentifier]:
    result: list[CleanIdentifier] = []
    if data.resident_id:
        kind = IdentifierKind.RESIDENT_ID
        value = normalise_identifier(kind, data.resident_id, "", "resident_id")
        result.append(CleanIdentifier(kind, "", value, "resident_id"))
    for index, item in enumerate(data.identifiers):
        kind = IdentifierKind(item.kind)
        name = f"identifiers[{index}].value"
        issuer = str(institution_id) if kind is IdentifierKind.MRN else item.issuer.upper()
        if kind is IdentifierKind.RESIDENT_ID:
            issuer = ""
        value = normalise_identifier(kind, item.value, issuer, name)
        if any(r.kind is kind and r.issuer == issuer for r in result):
            raise Invalid(
                N_("Give each kind of number once."), code="identifier_repeated", field=name
            )
        result.append(CleanIdentifier(kind, issuer, value, name))
    return result


def _check_person(session: Session, data: PatientIn, identifiers: list[CleanIdentifier]) -> None:
    today = now().date()
    if data.birth_date > today:
        raise Invalid(
            N_("The birth date is in the future."), code="birth_date_future", field="birth_date"
        )
    if data.birth_date < OLDEST_BIRTH_DATE:
        raise Invalid(
            N_("The birth date is too far in the past."),
            code="birth_date_too_old",
            field="birth_date",
        )
    for ident in identifiers:
        if ident.kind is IdentifierKind.RESIDENT_ID:
            check_resident_id_agrees(ident.value, data.birth_date, data.sex)
    if data.address_region_code and find_region(session, data.address_region_code) is None:
        raise Invalid(
            N_("No region has this code."), code="region_not_found", field="address_region_code"
        )


def find_by_identifiers(
    session: Session, pii: PiiProtector, identifiers: list[CleanIdentifier]
) -> Patient | None:
    """The patient the given numbers already name (the survivor, if it was merged).

    Numbers that name two different patients, or name a patient whose birth date, sex or
    number of the same kind disagrees with what is being registered, are a 409 naming the
    number: a record number typed on the wrong patient must not join two people."""
    found: Patient | None = None
    for ident in identifiers:
        match = _patient_with(session, pii, ident)
        if match is None:
            continue
        if found is not None and match.id != found.id:
            raise _taken(ident.field)
        found = match
    return found


def check_agrees(
    session: Session,
    pii: PiiProtector,
    patient: Patient,
    data: PatientIn,
    identifiers: list[CleanIdentifier],
) -> None:
    if patient.birth_date != data.birth_date or (
        patient.sex in ("1", "2") and data.sex in ("1", "2") and patient.sex != data.sex
    ):
        raise _taken(identifiers[0].field if identifiers else "same_as_patient_id")
    held = {
        (row.kind, row.issuer): row.value_bidx
        for row in session.execute(
            select(PatientIdentifier).where(PatientIdentifier.patient_id == patient.id)
        ).scalars()
    }
    for ident in identifiers:
        bidx = held.get((ident.kind.value, ident.issuer))
        if bidx is not None and bidx != pii.blind_index(ident.kind.value, ident.value):
            raise _taken(ident.field)


def _patient_with(session: Session, pii: PiiProtector, ident: CleanIdentifier) -> Patient | None:
    row = session.execute(
        select(PatientIdentifier.patient_id).where(
            PatientIdentifier.kind == ident.kind.value,
            PatientIdentifier.issuer == ident.issuer,
            PatientIdentifier.value_bidx == pii.blind_index(ident.kind.value, ident.value),
        )
    ).scalar_one_or_none()
    patient = session.get(Patient, row) if row is not None else None
    return survivor_of(session, patient) if patient is not None else None


def _taken(field: str) -> Conflict:
    return Conflict(
        N_("This number is already recorded for another patient."),
        code="identifier_taken",
        field=field,
    )


def near_matches(
    session: Session,
    pii: PiiProtector,
    name: str,
    birth_date: date,
    phone: str | None,
    *,
    exclude: int | None = None,
) -> list[tuple[Patient, list[str]]]:
    """Possible duplicates: the same name and birth date, or the same phone number."""
    found: dict[int, tuple[Patient, list[str]]] = {}
    same_person = select(Patient).where(
        Patient.name == name, Patient.birth_date == birth_date, Patient.merged_into_id.is_(None)
    )
    for patient in session.execute(same_person.limit(NEAR_MATCH_LIMIT)).scalars():
        found.setdefault(patient.id, (patient, []))[1].append("name_birth_date")
    if phone:
        same_phone = select(Patient).where(
            Patient.phone_bidx == pii.blind_index("phone", phone),
            Patient.merged_into_id.is_(None),
        )
        for patient in session.execute(same_phone.limit(NEAR_MATCH_LIMIT)).scalars():
            found.setdefault(patient.id, (patient, []))[1].append("phone")
    found.pop(exclude or 0, None)
    return list(found.values())[:NEAR_MATCH_LIMIT]


def _confirmed_near_match(
    session: Session, pii: PiiProtector, data: PatientIn, phone: str | None
) -> Patient:
    """The suggested near match the user confirmed; an id that would not have been
    suggested is refused (it must not become a way to attach to any patient)."""
    candidates = near_matches(session, pii, data.name, data.birth_date, phone)
    for patient, _reasons in candidates:
        if patient.id == data.same_as_patient_id:
            return patient
    raise Invalid(
        N_("This patient is not a near match of the one being registered."),
        code="not_a_near_match",
        field="same_as_patient_id",
    )


def _new_patient(
    data: PatientIn,
    pii: PiiProtector,
    phone: str | None,
    principal: Principal,
    institution_id: int,
) -> Patient:
    patient = Patient(
        name=data.name,
        sex=data.sex,
        birth_date=data.birth_date,
        address_region_code=data.address_region_code,
        address_detail=data.address_detail,
        registered_institution_id=institution_id,
        registered_by_user_id=principal.user_id,
        client_request_id=data.client_request_id,
    )
    if phone:
        patient.phone_enc = pii.encrypt("phone", phone)
        patient.phone_bidx = pii.blind_index("phone", phone)
        patient.phone_masked = masked_phone(phone)
    if data.emergency_contact is not None:
        contact_phone = normalise_phone(data.emergency_contact.phone, "emergency_contact.phone")
        patient.emergency_name = data.emergency_contact.name
        patient.emergency_relation = data.emergency_contact.relation
        patient.emergency_phone_enc = pii.encrypt("phone", contact_phone)
        patient.emergency_phone_masked = masked_phone(contact_phone)
    return patient


def _identifier_row(
    pii: PiiProtector, patient_id: int, ident: CleanIdentifier, user_id: int | None
) -> PatientIdentifier:
    return PatientIdentifier(
        patient_id=patient_id,
        kind=ident.kind.value,
        issuer=ident.issuer,
        value_enc=pii.encrypt(ident.kind.value, ident.value),
        value_bidx=pii.blind_index(ident.kind.value, ident.value),
        value_masked=mask_identifier(ident.kind, ident.value),
        created_by_user_id=user_id,
    )


def _attach(
    session: Session,
    principal: Principal,
    pii: PiiProtector,
    patient: Patient,
    identifiers: list[CleanIdentifier],
    institution_id: int,
) -> None:
    """An existing patient registered again: link the institution, add the numbers the
    patient did not have yet (a number naming another patient is a 409)."""
    link_institution(session, patient.id, institution_id, "registered")
    held = {
        (row.kind, row.issuer): row
        for row in session.execute(
            select(PatientIdentifier).where(PatientIdentifier.patient_id == patient.id)
        ).scalars()
    }
    for ident in identifiers:
        if (ident.kind.value, ident.issuer) in held:
            continue
        try:
            with session.begin_nested():
                session.add(_identifier_row(pii, patient.id, ident, principal.user_id))
                session.flush()
        except IntegrityError:
            raise _taken(ident.field) from None
    audit.record(
        session,
        principal,
        "patient.register_existing",
        object_kind="patient",
        object_id=patient.id,
        detail={"institution_id": institution_id},
    )


def link_institution(session: Session, patient_id: int, institution_id: int, relation: str) -> None:
    """Record that an institution registered or treated the patient (idempotent; a
    ``registered`` link is never downgraded to ``treated``)."""
    link = session.get(PatientInstitution, (patient_id, institution_id))
    if link is not None:
        link.last_at = now()
        if relation == "registered":
            link.relation = "registered"
        session.flush()
        return
    try:
        with session.begin_nested():
            session.add(
                PatientInstitution(
                    patient_id=patient_id, institution_id=institution_id, relation=relation
                )
            )
            session.flush()
    except IntegrityError:
        pass  # a concurrent request linked them first: the same outcome


def match_patient(
    session: Session,
    pii: PiiProtector,
    *,
    institution_id: int,
    mrn: str = "",
    resident_ids: tuple[str, ...] = (),
) -> Patient | None:
    """The patient an interface message (a DICOM study, an HL7 message) names: by the
    sending institution's medical record number, else by a resident ID number; the
    survivor when merged, None when nothing valid matches. Nothing is audited or linked
    here: the caller records what it did with the match."""
    candidates: list[CleanIdentifier] = []
    if mrn:
        try:
            value = normalise_identifier(IdentifierKind.MRN, mrn, str(institution_id), "mrn")
        except Invalid:
            value = ""
        if value:
            candidates.append(
                CleanIdentifier(IdentifierKind.MRN, str(institution_id), value, "mrn")
            )
    for raw in resident_ids:
        try:
            value = normalise_identifier(IdentifierKind.RESIDENT_ID, raw, "", "resident_id")
        except Invalid:
            continue
        candidates.append(CleanIdentifier(IdentifierKind.RESIDENT_ID, "", value, "resident_id"))
    for ident in candidates:
        match = _patient_with(session, pii, ident)
        if match is not None:
            return match
    return None

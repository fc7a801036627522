"""Patients as the API and pages show them: masked unless a reveal was audited.

Lists take the masked forms stored next to each ciphertext (``value_masked``,
``phone_masked``); only :func:`patient_detail` with ``revealed=True`` decrypts, and only
the detail service calls it that way, after writing the ``patient.reveal`` audit row.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.core.clock import now
from xietong.core.pii import PiiProtector
from xietong.directory.models import Institution, Region
from xietong.patients.access import ChartAccess
from xietong.patients.identifiers import IdentifierKind
from xietong.patients.models import (
    ChartGrant,
    Patient,
    PatientIdentifier,
    PatientInstitution,
    PatientMerge,
)
from xietong.patients.schemas import (
    GrantItemIn,
    GrantOut,
    IdentifierOut,
    MergeOut,
    NearMatch,
    PatientDetail,
    PatientInstitutionOut,
    PatientSummary,
)

# The order identifiers are listed in: the national number first.
_KIND_ORDER = {kind.value: n for n, kind in enumerate(IdentifierKind)}


def age_on(birth_date: date, today: date | None = None) -> int:
    day = today or now().date()
    before_birthday = (day.month, day.day) < (birth_date.month, birth_date.day)
    return max(day.year - birth_date.year - int(before_birthday), 0)


def _institution_names(session: Session, ids: set[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(select(Institution.id, Institution.name).where(Institution.id.in_(ids)))
    return {int(i): str(n) for i, n in rows.all()}


def _masked_resident_ids(session: Session, patient_ids: Sequence[int]) -> dict[int, str]:
    if not patient_ids:
        return {}
    rows = session.execute(
        select(PatientIdentifier.patient_id, PatientIdentifier.value_masked).where(
            PatientIdentifier.patient_id.in_(list(patient_ids)),
            PatientIdentifier.kind == IdentifierKind.RESIDENT_ID.value,
        )
    )
    return {int(pid): str(masked) for pid, masked in rows.all()}


def patient_summaries(session: Session, patients: Sequence[Patient]) -> list[PatientSummary]:
    """Masked summaries of ``patients`` (three queries, whatever their number)."""
    names = _institution_names(session, {p.registered_institution_id for p in patients})
    resident = _masked_resident_ids(session, [p.id for p in patients])
    return [
        PatientSummary(
            id=p.id,
            name=p.name,
            sex=p.sex,
            birth_date=p.birth_date,
            age=age_on(p.birth_date),
            resident_id=resident.get(p.id, ""),
            phone=p.phone_masked,
            registered_institution_id=p.registered_institution_id,
            registered_institution_name=names.get(p.registered_institution_id, ""),
            merged_into_id=p.merged_into_id,
        )
        for p in patients
    ]


def identifiers_of(
    session: Session, member_ids: Sequence[int], pii: PiiProtector | None = None
) -> list[IdentifierOut]:
    """The numbers of a patient and its merged records: masked, or in full with ``pii``."""
    rows = list(
        session.execute(
            select(PatientIdentifier).where(PatientIdentifier.patient_id.in_(list(member_ids)))
        ).scalars()
    )
    mrn = IdentifierKind.MRN.value
    names = _institution_names(
        session, {int(r.issuer) for r in rows if r.kind == mrn and r.issuer.isdigit()}
    )
    found = [
        IdentifierOut(
            kind=row.kind,
            issuer=row.issuer,
            issuer_name=names.get(int(row.issuer), "")
            if row.kind == mrn and row.issuer.isdigit()
            else "",
            value=pii.decrypt(row.kind, row.value_enc) if pii else row.value_masked,
            patient_id=row.patient_id,
        )
        for row in rows
    ]
    order = {pid: n for n, pid in enumerate(member_ids)}
    return sorted(
        found, key=lambda i: (order.get(i.patient_id, 99), _KIND_ORDER.get(i.kind, 9), i.issuer)
    )


def institutions_of(session: Session, member_ids: Sequence[int]) -> list[PatientInstitutionOut]:
    rows = session.execute(
        select(PatientInstitution.institution_id, Institution.name, PatientInstitution.relation)
        .join(Institution, Institution.id == PatientInstitution.institution_id)
        .where(PatientInstitution.patient_id.in_(list(member_ids)))
        .order_by(PatientInstitution.first_at, PatientInstitution.institution_id)
    ).all()
    seen: dict[int, PatientInstitutionOut] = {}
    for inst_id, name, relation in rows:
        known = seen.get(inst_id)
        if known is None or relation == "registered":
            seen[inst_id] = PatientInstitutionOut(id=inst_id, name=name, relation=relation)
    return list(seen.values())


def patient_detail(
    session: Session,
    patient: Patient,
    chart: ChartAccess,
    *,
    pii: PiiProtector | None = None,
    can_reveal: bool = False,
    can_edit: bool = False,
) -> PatientDetail:
    """The detail of a survivor; full identifiers and phones only when ``pii`` is given."""
    summary = patient_summaries(session, [patient])[0]
    phone = summary.phone
    emergency_phone = patient.emergency_phone_masked
    if pii is not None:
        phone = pii.decrypt("phone", patient.phone_enc) if patient.phone_enc else ""
        if patient.emergency_phone_enc:
            emergency_phone = pii.decrypt("phone", patient.emergency_phone_enc)
        resident = [
            i
            for i in identifiers_of(session, [patient.id], pii)
            if i.kind == IdentifierKind.RESIDENT_ID.value
        ]
        summary.resident_id = resident[0].value if resident else ""
    summary.phone = phone
    region = (
        session.get(Region, patient.address_region_code) if patient.address_region_code else None
    )
    return PatientDetail(
        **summary.model_dump(),
        identifiers=identifiers_of(session, chart.member_ids, pii),
        address_region_code=patient.address_region_code,
        address_region_name=region.name if region else "",
        address_detail=patient.address_detail,
        emergency_name=patient.emergency_name,
        emergency_relation=patient.emergency_relation,
        emergency_phone=emergency_phone,
        institutions=institutions_of(session, chart.member_ids),
        member_ids=list(chart.member_ids),
        created_at=patient.created_at,
        revealed=pii is not None,
        can_reveal=can_reveal,
        can_edit=can_edit,
    )


def near_match_out(
    session: Session, matches: Sequence[tuple[Patient, list[str]]]
) -> list[NearMatch]:
    names = _institution_names(session, {p.registered_institution_id for p, _ in matches})
    return [
        NearMatch(
            id=p.id,
            name=p.name,
            sex=p.sex,
            birth_year=p.birth_date.year,
            phone=p.phone_masked,
            registered_institution_name=names.get(p.registered_institution_id, ""),
            reasons=reasons,
        )
        for p, reasons in matches
    ]


def merge_out(merge: PatientMerge) -> MergeOut:
    return MergeOut.model_validate(merge)


def grant_out(grant: ChartGrant, items: Sequence[tuple[str, int]], active: bool) -> GrantOut:
    return GrantOut(
        id=grant.id,
        patient_id=grant.patient_id,
        grantee_institution_id=grant.grantee_institution_id,
        grantee_user_id=grant.grantee_user_id,
        scope=grant.scope,
        items=[GrantItemIn(kind=k, id=i) for k, i in items],
        purpose=grant.purpose,
        subject_kind=grant.subject_kind,
        subject_id=grant.subject_id,
        created_at=grant.created_at,
        expires_at=grant.expires_at,
        revoked_at=grant.revoked_at,
        active=active,
    )

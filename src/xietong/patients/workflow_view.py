"""What a workflow shows of its patient to its participants.

A consultation or a referral decides from its own rules who may see it, and audits that
read. Its participants then see who the patient is (name, sex, birth date, and the
requesting institution's own record number) without a chart grant, and never an encrypted
identifier. Workflows read that through these functions rather than the patients tables;
a merged record shows the survivor's current details.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.patients.access import member_ids, survivor_of
from xietong.patients.identifiers import IdentifierKind
from xietong.patients.models import Patient, PatientIdentifier


@dataclass(frozen=True)
class PatientCard:
    id: int
    name: str
    sex: str
    birth_date: date


def patient_cards(session: Session, patient_ids: Iterable[int]) -> dict[int, PatientCard]:
    """The patients by the ids the workflow holds (a merged id shows its survivor)."""
    wanted = set(patient_ids)
    if not wanted:
        return {}
    found = session.execute(select(Patient).where(Patient.id.in_(wanted))).scalars()
    cards = {}
    for patient in found:
        current = survivor_of(session, patient)
        cards[patient.id] = PatientCard(current.id, current.name, current.sex, current.birth_date)
    return cards


def patient_card(session: Session, patient_id: int) -> PatientCard | None:
    return patient_cards(session, [patient_id]).get(patient_id)


def record_number_at(session: Session, patient_id: int, institution_id: int) -> str:
    """The institution's medical record number of the patient (any record of the merged
    tree, the survivor's first), or "". It is the institution's own file number, stored
    readable (ADR 11), so nothing is decrypted."""
    patient = session.get(Patient, patient_id)
    if patient is None:
        return ""
    members = member_ids(session, survivor_of(session, patient).id)
    rows = session.execute(
        select(PatientIdentifier.patient_id, PatientIdentifier.value_masked).where(
            PatientIdentifier.patient_id.in_(members),
            PatientIdentifier.kind == IdentifierKind.MRN.value,
            PatientIdentifier.issuer == str(institution_id),
        )
    ).all()
    order = {pid: n for n, pid in enumerate(members)}
    ranked = sorted(rows, key=lambda row: order.get(int(row[0]), len(order)))
    return str(ranked[0][1]) if ranked else ""

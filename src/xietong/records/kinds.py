"""The kinds of clinical entry, their tables, and the labels pages show for their codes.

The kind names are the item kinds grants use (``chart_grant_item.item_kind``) and the
``{kind}`` of ``/api/v1/records/{kind}/{id}``.
"""

from __future__ import annotations

from enum import StrEnum

from xietong.core.errors import N_
from xietong.records.document_models import DOC_TYPE_LABELS
from xietong.records.models import (
    Allergy,
    Diagnosis,
    Encounter,
    EntryColumns,
    LabResult,
    Medication,
    VitalSign,
)


class RecordKind(StrEnum):
    ENCOUNTER = "encounter"
    DIAGNOSIS = "diagnosis"
    LAB_RESULT = "lab_result"
    MEDICATION = "medication"
    VITAL_SIGN = "vital_sign"
    ALLERGY = "allergy"


MODELS: dict[RecordKind, type[EntryColumns]] = {
    RecordKind.ENCOUNTER: Encounter,
    RecordKind.DIAGNOSIS: Diagnosis,
    RecordKind.LAB_RESULT: LabResult,
    RecordKind.MEDICATION: Medication,
    RecordKind.VITAL_SIGN: VitalSign,
    RecordKind.ALLERGY: Allergy,
}

KIND_LABELS: dict[str, str] = {
    RecordKind.ENCOUNTER: N_("Encounter"),
    RecordKind.DIAGNOSIS: N_("Diagnosis"),
    RecordKind.LAB_RESULT: N_("Lab result"),
    RecordKind.MEDICATION: N_("Order"),
    RecordKind.VITAL_SIGN: N_("Vital sign"),
    RecordKind.ALLERGY: N_("Allergy history"),
}

# The labels of every code a record carries, for pages and the timeline (translated at the
# edge). Keys are unique across the fields that use them.
CODE_LABELS: dict[str, str] = {
    # encounter kinds
    "outpatient": N_("Outpatient"),
    "inpatient": N_("Inpatient"),
    "emergency": N_("Emergency"),
    "exam": N_("Health examination"),
    # diagnosis kinds and statuses
    "primary": N_("Primary diagnosis"),
    "secondary": N_("Secondary diagnosis"),
    "provisional": N_("Provisional"),
    "confirmed": N_("Confirmed"),
    "refuted": N_("Refuted"),
    "resolved": N_("Resolved"),
    # order kinds and statuses
    "medication": N_("Medication"),
    "procedure": N_("Procedure"),
    "nursing": N_("Nursing"),
    "exam_order": N_("Examination"),
    "active": N_("In effect"),  # orders and allergies ("Active" is an account status)
    "completed": N_("Completed"),
    "stopped": N_("Stopped"),
    "cancelled": N_("Cancelled"),
    "inactive": N_("No longer in effect"),
    # routes
    "oral": N_("Oral"),
    "iv": N_("Intravenous"),
    "im": N_("Intramuscular"),
    "sc": N_("Subcutaneous"),
    "id": N_("Intradermal"),
    "inhalation": N_("Inhalation"),
    "topical": N_("Topical"),
    "sublingual": N_("Sublingual"),
    "rectal": N_("Rectal"),
    "nasal": N_("Nasal"),
    "ophthalmic": N_("Eye"),
    "otic": N_("Ear"),
    "other": N_("Other route"),
    # vital signs
    "temperature": N_("Temperature"),
    "heart_rate": N_("Heart rate"),
    "respiratory_rate": N_("Respiratory rate"),
    "bp_systolic": N_("Systolic blood pressure"),
    "bp_diastolic": N_("Diastolic blood pressure"),
    "spo2": N_("Oxygen saturation (SpO2)"),
    "weight": N_("Weight"),
    "height": N_("Height"),
    "blood_glucose": N_("Blood glucose"),
    # allergy severities
    "mild": N_("Mild"),
    "moderate": N_("Moderate"),
    "severe": N_("Severe"),
    "unknown": N_("Severity unknown"),
    # sources and entry statuses
    "entered": N_("Entered by hand"),
    "document": N_("From a document"),
    "interface": N_("From an interface"),
    "current": N_("Current"),
    "entered_in_error": N_("Entered in error"),
}

FLAG_LABELS: dict[str, str] = {
    "H": N_("High"),
    "L": N_("Low"),
    "HH": N_("Critically high"),
    "LL": N_("Critically low"),
    "A": N_("Abnormal"),
    "N": N_("Normal"),
}
ABNORMAL = frozenset({"H", "L", "HH", "LL", "A"})


def code_label(kind: str, code: str) -> str:
    """The msgid of a record's code ("exam" is a visit kind, and an order kind too)."""
    if kind == "document":
        return DOC_TYPE_LABELS.get(code, code)
    if kind == RecordKind.MEDICATION and code == "exam":
        return CODE_LABELS["exam_order"]
    return CODE_LABELS.get(code) or KIND_LABELS.get(code, code)

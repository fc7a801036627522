"""From a kind's validated fields to the values its row stores: every semantic check
(dates, codes, ranges, references to the recorder's own encounters and staff) and every
derived value (effective moment, numeric value, abnormal flag, canonical unit).

Used by creation and by correction alike, so a corrected entry obeys the same rules.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any, cast

from sqlalchemy.orm import Session

from xietong.core.errors import N_, Invalid
from xietong.directory.models import Department, Practitioner
from xietong.patients.models import Patient
from xietong.records import icd10, rules
from xietong.records.kinds import RecordKind
from xietong.records.models import EntryColumns
from xietong.records.schemas import (
    FIELDS_BY_KIND,
    AllergyFields,
    DiagnosisFields,
    EncounterFields,
    LabResultFields,
    MedicationFields,
    VitalSignFields,
)
from xietong.records.service.common import own_encounter


@dataclass(frozen=True)
class Context:
    session: Session
    patient: Patient
    members: tuple[int, ...]
    institution_id: int
    current: datetime

    @property
    def today(self) -> date:
        return rules.local_date(self.current)

    def day(self, day: date, field: str) -> None:
        rules.check_day(day, today=self.today, birth_date=self.patient.birth_date, field=field)

    def moment(self, moment: datetime, field: str) -> None:
        rules.check_moment(
            moment, current=self.current, birth_date=self.patient.birth_date, field=field
        )

    def encounter(self, encounter_id: int | None) -> None:
        if encounter_id is not None and not own_encounter(
            self.session, encounter_id, self.members, self.institution_id
        ):
            raise Invalid(
                N_("This is not an encounter of this patient at your institution."),
                code="encounter_not_found",
                field="encounter_id",
            )

    def practitioner(self, practitioner_id: int | None, field: str) -> None:
        if practitioner_id is None:
            return
        found = self.session.get(Practitioner, practitioner_id)
        if found is None or found.institution_id != self.institution_id:
            raise Invalid(
                N_("This is not a practitioner of your institution."),
                code="practitioner_not_found",
                field=field,
            )


def _encounter(ctx: Context, f: EncounterFields) -> dict[str, Any]:
    if f.department_id is not None:
        department = ctx.session.get(Department, f.department_id)
        if department is None or department.institution_id != ctx.institution_id:
            raise Invalid(
                N_("This is not a department of your institution."),
                code="department_not_found",
                field="department_id",
            )
    ctx.practitioner(f.attending_practitioner_id, "attending_practitioner_id")
    ctx.day(f.start_date, "start_date")
    if f.end_date is not None:
        rules.check_not_before(f.end_date, f.start_date, "end_date")
        ctx.day(f.end_date, "end_date")
    return {**f.model_dump(), "effective_at": rules.start_of_day(f.start_date)}


def _diagnosis(ctx: Context, f: DiagnosisFields) -> dict[str, Any]:
    ctx.encounter(f.encounter_id)
    code = icd10.lookup(f.code, field="code")
    ctx.day(f.diagnosed_on, "diagnosed_on")
    return {
        **f.model_dump(),
        "code": code.code,
        "name": f.name or code.recorded_name[:200],
        "effective_at": rules.start_of_day(f.diagnosed_on),
    }


def _lab_result(ctx: Context, f: LabResultFields) -> dict[str, Any]:
    ctx.encounter(f.encounter_id)
    if f.loinc_code is not None and not rules.loinc_check_digit_ok(f.loinc_code):
        raise Invalid(
            N_("This LOINC code's check digit is wrong."), code="loinc_invalid", field="loinc_code"
        )
    if f.ref_low is not None and f.ref_high is not None and f.ref_low > f.ref_high:
        raise Invalid(
            N_("The upper limit of the range is below the lower one."),
            code="range_inverted",
            field="ref_high",
        )
    ctx.moment(f.collected_at, "collected_at")
    if f.reported_at is not None:
        rules.check_not_before(f.reported_at, f.collected_at, "reported_at")
        ctx.moment(f.reported_at, "reported_at")
    numeric = rules.numeric_value(f.value_text)
    computed = f.abnormal_flag is None
    flag = (
        rules.lab_flag(numeric, f.ref_low, f.ref_high, f.value_text, f.ref_text)
        if computed
        else f.abnormal_flag
    )
    return {
        **f.model_dump(),
        "value_numeric": numeric,
        "abnormal_flag": flag,
        "flag_computed": computed and flag is not None,
        "effective_at": f.collected_at,
    }


def _medication(ctx: Context, f: MedicationFields) -> dict[str, Any]:
    ctx.encounter(f.encounter_id)
    if f.dose is not None and not f.unit:
        raise Invalid(N_("A dose needs its unit."), code="unit_required", field="unit")
    ctx.day(f.start_date, "start_date")
    # A course may be planned to end in the future; it may not end before it starts.
    rules.check_not_before(f.end_date, f.start_date, "end_date")
    return {**f.model_dump(), "effective_at": rules.start_of_day(f.start_date)}


def _vital_sign(ctx: Context, f: VitalSignFields) -> dict[str, Any]:
    ctx.encounter(f.encounter_id)
    unit = rules.check_vital(f.kind, f.value, f.unit)
    ctx.moment(f.measured_at, "measured_at")
    age = rules.age_on(ctx.patient.birth_date, rules.local_date(f.measured_at))
    return {
        **f.model_dump(),
        "unit": unit,
        "abnormal_flag": rules.vital_flag(f.kind, f.value, age),
        "effective_at": f.measured_at,
    }


def _allergy(ctx: Context, f: AllergyFields) -> dict[str, Any]:
    ctx.day(f.noted_on, "noted_on")
    return {**f.model_dump(), "effective_at": rules.start_of_day(f.noted_on)}


_BUILDERS: dict[RecordKind, Callable[[Context, Any], dict[str, Any]]] = {
    RecordKind.ENCOUNTER: _encounter,
    RecordKind.DIAGNOSIS: _diagnosis,
    RecordKind.LAB_RESULT: _lab_result,
    RecordKind.MEDICATION: _medication,
    RecordKind.VITAL_SIGN: _vital_sign,
    RecordKind.ALLERGY: _allergy,
}


def row_values(ctx: Context, kind: RecordKind, fields: Any) -> dict[str, Any]:
    """The checked values of a row, from the kind's fields (or its ``*In`` model, whose
    bookkeeping is left out here)."""
    model = FIELDS_BY_KIND[kind]
    clinical = model.model_validate(fields.model_dump(include=set(model.model_fields)))
    return _BUILDERS[kind](ctx, clinical)


def input_view(kind: RecordKind, entry: EntryColumns) -> dict[str, Any]:
    """An entry as the fields a client would send to create it again: the base a
    correction's changes are laid over (a computed flag is left to be computed again)."""
    model = FIELDS_BY_KIND[kind]
    values = {name: getattr(entry, name) for name in model.model_fields}
    if kind is RecordKind.LAB_RESULT and cast(Any, entry).flag_computed:
        values["abnormal_flag"] = None
    return values


def snapshot(entry: EntryColumns) -> dict[str, Any]:
    """Every column of the entry, JSON-ready: what a revision keeps."""
    table = cast(Any, entry).__table__
    values: dict[str, Any] = {}
    for column in table.columns:
        value = getattr(entry, column.key)
        values[column.key] = value.isoformat() if isinstance(value, date | datetime) else value
    return values

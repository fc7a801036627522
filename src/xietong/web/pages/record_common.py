"""Shared pieces of the record pages: the kinds, form parsing and failure, the choices
of the forms, names for ids (record_forms: the entry forms; record_entry: an entry, its
corrections)."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from fastapi import Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.principal import Principal
from xietong.core.errors import N_, Invalid, NotFound, XietongError
from xietong.core.i18n import translate
from xietong.core.validation import has_control_characters
from xietong.directory.models import Department, Practitioner
from xietong.records import rules
from xietong.records import service as svc
from xietong.records.kinds import RecordKind, code_label
from xietong.records.models import EntryColumns
from xietong.records.schemas import (
    AllergyIn,
    DiagnosisIn,
    EncounterIn,
    EntryIn,
    LabResultIn,
    MedicationIn,
    VitalSignIn,
)
from xietong.web.errors import validation_message
from xietong.web.pages.forms import form_error, locale_of
from xietong.web.pages.record_fields import (
    FIELDS,
    choice_label,
)

INPUT_MODELS: dict[RecordKind, type[EntryIn]] = {
    RecordKind.ENCOUNTER: EncounterIn,
    RecordKind.DIAGNOSIS: DiagnosisIn,
    RecordKind.LAB_RESULT: LabResultIn,
    RecordKind.MEDICATION: MedicationIn,
    RecordKind.VITAL_SIGN: VitalSignIn,
    RecordKind.ALLERGY: AllergyIn,
}
FORM_TITLES = {
    RecordKind.ENCOUNTER: N_("Record an encounter"),
    RecordKind.DIAGNOSIS: N_("Record a diagnosis"),
    RecordKind.LAB_RESULT: N_("Record a lab result"),
    RecordKind.MEDICATION: N_("Record an order or medication"),
    RecordKind.VITAL_SIGN: N_("Record vital signs"),
    RecordKind.ALLERGY: N_("Record an allergy"),
}
NOTICES = {
    "corrected": N_("The correction was saved; the earlier values are kept in the history."),
    "unchanged": N_("Nothing was changed."),
    "entered_in_error": N_("The entry was marked as entered in error."),
}
CHANGE_LABELS = {
    "correct": N_("Corrected"),
    "entered_in_error": N_("Marked as entered in error"),
}
ICD10_RESULTS = 15
ENCOUNTER_CHOICES = svc.MAX_LIMIT


def entry_kind(value: str | None) -> RecordKind:
    try:
        return RecordKind(value or "")
    except ValueError:
        raise NotFound(N_("Not found."), code="kind_not_found") from None


def see_other(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def china_time(moment: datetime | None) -> str:
    return moment.astimezone(rules.CHINA_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def form_failure(request: Request, session: Session, exc: XietongError) -> dict[str, Any]:
    """The form's error (403 and 404 are raised on to the error page)."""
    failure = form_error(request, session, exc)
    failure["error_field"] = failure.pop("field")
    return failure


def validate_input(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """Validate, naming the input at fault with the pages' messages."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ())]
        kind = str(first.get("type", "invalid"))
        raise Invalid(validation_message(kind), code=kind, field=loc[0] if loc else None) from None


def names_by_id(
    session: Session, column_id: Any, column_name: Any, ids: Iterable[int | None]
) -> dict[int, str]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    rows = session.execute(select(column_id, column_name).where(column_id.in_(wanted)))
    return {row[0]: row[1] for row in rows}


# Choices of the forms --------------------------------------------------------------------------


def own_encounters(
    session: Session, principal: Principal, patient_id: int, institution_id: int
) -> list[EntryColumns]:
    """The patient's current encounters held by the recorder's institution (the only ones
    an entry may hang off), newest first, through the audited list of the service."""
    rows, _total = svc.list_entries(
        session,
        principal,
        RecordKind.ENCOUNTER,
        patient_id,
        svc.ListQuery(limit=ENCOUNTER_CHOICES),
    )
    return [r for r in rows if r.institution_id == institution_id]


def encounter_label(locale: str, encounter: Any, departments: dict[int, str]) -> str:
    parts = [
        encounter.start_date.isoformat(),
        translate(locale, code_label(RecordKind.ENCOUNTER, encounter.kind)),
        departments.get(encounter.department_id or 0, ""),
        encounter.chief_complaint[:40],
    ]
    return " · ".join(p for p in parts if p) + f" (#{encounter.id})"


def field_choices(
    request: Request,
    session: Session,
    kind: RecordKind,
    institution_id: int,
    encounters: list[EntryColumns],
) -> dict[str, list[tuple[str, str]]]:
    """(value, label) pairs of every select of the kind's form, translated."""
    locale = locale_of(request)
    result: dict[str, list[tuple[str, str]]] = {}
    for spec in FIELDS[kind]:
        pairs: list[tuple[str, str]] = []
        if spec.widget == "select":
            codes = list(spec.choices)
            if spec.nullable and "" not in codes:
                codes.insert(0, "")
            pairs = [(c, translate(locale, choice_label(kind, spec, c))) for c in codes]
        elif spec.widget == "encounter":
            departments = names_by_id(
                session,
                Department.id,
                Department.name,
                (getattr(e, "department_id", None) for e in encounters),
            )
            pairs = [(str(e.id), encounter_label(locale, e, departments)) for e in encounters]
        elif spec.widget == "department":
            stmt = (
                select(Department.id, Department.name)
                .where(Department.institution_id == institution_id, Department.is_active)
                .order_by(Department.name)
            )
            pairs = [(str(i), name) for i, name in session.execute(stmt)]
        elif spec.widget == "practitioner":
            stmt = (
                select(Practitioner.id, Practitioner.name)
                .where(Practitioner.institution_id == institution_id, Practitioner.is_active)
                .order_by(Practitioner.name)
            )
            pairs = [(str(i), name) for i, name in session.execute(stmt)]
        if spec.widget in ("encounter", "department", "practitioner"):
            pairs.insert(0, ("", translate(locale, spec.blank or N_("None"))))
        if pairs:
            result[spec.name] = pairs
    return result


def keep_current(
    choices: dict[str, list[tuple[str, str]]], values: dict[str, str]
) -> dict[str, list[tuple[str, str]]]:
    """Every select offers the value the form holds, even one no longer offered (an
    encounter since marked in error, an inactive department): a correction never clears
    a field the user did not touch."""
    kept = {}
    for name, pairs in choices.items():
        current = values.get(name, "")
        if current and all(code != current for code, _label in pairs):
            pairs = [*pairs, (current, f"#{current}")]
        kept[name] = pairs
    return kept


def submitted_values(form: FormData) -> dict[str, str]:
    return {k: v[:4000] for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def kept_value(form: FormData, name: str) -> str:
    """A submitted text to show again (never an error of its own)."""
    value = form.get(name)
    text = value.strip()[:500] if isinstance(value, str) else ""
    return "" if has_control_characters(text) else text

"""Record pages: the forms through which clinicians record entries of a patient's chart
(one per kind; vital signs several at once), and the entry page that shows one entry with
its history and lets the holding institution correct it or mark it entered in error.

* ``GET|POST /patients/{id}/records/new?kind=…``: the form; a hidden client request id per
  render makes a double submit record once. Success goes to the chart (303).
* ``GET /records/{kind}/{id}``, ``POST …/correct``, ``POST …/entered-in-error``.
* ``GET /records/icd10-options?q=`` and ``GET /records/icd10-choice?code=``: the htmx
  fragments of the diagnosis form's ICD-10 picker (typing the code works without them).

Who may record, see and change what is decided by :mod:`xietong.records.service`; bad input
shows the form again naming the field, refusals (403, 404) are the error page.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import BaseModel, ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Invalid, NotFound, XietongError
from xietong.core.i18n import translate
from xietong.core.security import new_token
from xietong.core.validation import MAX_ID, has_control_characters
from xietong.directory.models import Department, Institution, Practitioner
from xietong.identity.models import User
from xietong.patients.access import access_patient
from xietong.patients.models import Patient
from xietong.records import icd10, rules
from xietong.records import service as svc
from xietong.records.kinds import FLAG_LABELS, KIND_LABELS, RecordKind, code_label
from xietong.records.models import EntryColumns, RecordRevision
from xietong.records.schemas import (
    AllergyIn,
    DiagnosisIn,
    EncounterIn,
    EnteredInErrorIn,
    EntryIn,
    LabResultIn,
    MedicationIn,
    VitalSignIn,
)
from xietong.records.service.common import RECORD_ROLES, require_recorder
from xietong.records.service.timeline import describe
from xietong.records.service.values import snapshot
from xietong.web.deps import DbSession, PagePrincipal
from xietong.web.errors import validation_message
from xietong.web.pages.directory_common import form_data
from xietong.web.pages.forms import form_error, locale_of
from xietong.web.pages.patients_common import form_text, render_private
from xietong.web.pages.record_fields import (
    FIELDS,
    VITAL_FORM_SHARED,
    VITAL_KINDS,
    FieldSpec,
    choice_label,
    correction_changes,
    creation_values,
    form_values,
    input_text,
    local_input,
    number_text,
    raw_value,
    required_missing,
    spec_of,
    typed,
)
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)

PatientId = Annotated[int, Path(ge=1, le=MAX_ID)]
EntryId = Annotated[int, Path(ge=1, le=MAX_ID)]
KindPath = Annotated[str, Path(max_length=32)]
KindQuery = Annotated[str | None, Query(max_length=32)]
Form = Annotated[FormData, Depends(form_data)]

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


def _kind(value: str | None) -> RecordKind:
    try:
        return RecordKind(value or "")
    except ValueError:
        raise NotFound(N_("Not found."), code="kind_not_found") from None


def _redirect(url: str) -> RedirectResponse:
    return RedirectResponse(url, status_code=303)


def _china_time(moment: datetime | None) -> str:
    return moment.astimezone(rules.CHINA_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def _failure(request: Request, session: Session, exc: XietongError) -> dict[str, Any]:
    """The form's error (403 and 404 are raised on to the error page)."""
    failure = form_error(request, session, exc)
    failure["error_field"] = failure.pop("field")
    return failure


def _validate(model: type[BaseModel], data: dict[str, Any]) -> Any:
    """Validate, naming the input at fault with the pages' messages."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ())]
        kind = str(first.get("type", "invalid"))
        raise Invalid(validation_message(kind), code=kind, field=loc[0] if loc else None) from None


def _names(
    session: Session, column_id: Any, column_name: Any, ids: Iterable[int | None]
) -> dict[int, str]:
    wanted = sorted({i for i in ids if i})
    if not wanted:
        return {}
    rows = session.execute(select(column_id, column_name).where(column_id.in_(wanted)))
    return {row[0]: row[1] for row in rows}


# Choices of the forms --------------------------------------------------------------------------


def _own_encounters(
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


def _encounter_label(locale: str, encounter: Any, departments: dict[int, str]) -> str:
    parts = [
        encounter.start_date.isoformat(),
        translate(locale, code_label(RecordKind.ENCOUNTER, encounter.kind)),
        departments.get(encounter.department_id or 0, ""),
        encounter.chief_complaint[:40],
    ]
    return " · ".join(p for p in parts if p) + f" (#{encounter.id})"


def _choices(
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
            departments = _names(
                session,
                Department.id,
                Department.name,
                (getattr(e, "department_id", None) for e in encounters),
            )
            pairs = [(str(e.id), _encounter_label(locale, e, departments)) for e in encounters]
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


def _keep_current(
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


def _own_practitioner(
    session: Session, principal: Principal, institution_id: int
) -> Practitioner | None:
    user = session.get(User, principal.user_id) if principal.user_id is not None else None
    if user is None or user.practitioner_id is None:
        return None
    found = session.get(Practitioner, user.practitioner_id)
    return found if found is not None and found.institution_id == institution_id else None


def _defaults(
    session: Session,
    principal: Principal,
    kind: RecordKind,
    institution_id: int,
    encounters: list[EntryColumns],
) -> dict[str, str]:
    """A new form: today (China), now to the minute, the recorder's department and self,
    the visit of today (or an inpatient stay that goes on) when there is one."""
    current = now()
    today = rules.local_date(current).isoformat()
    moment = local_input(current.replace(second=0, microsecond=0))
    values = {spec.name: spec.default for spec in FIELDS[kind] if spec.default}
    for spec in FIELDS[kind]:
        if spec.widget == "date" and spec.required:
            values[spec.name] = today
        elif spec.widget == "datetime" and spec.required:
            values[spec.name] = moment
    if kind is RecordKind.ENCOUNTER:
        values["kind"] = "outpatient"
        practitioner = _own_practitioner(session, principal, institution_id)
        if practitioner is not None:
            values["attending_practitioner_id"] = str(practitioner.id)
            if practitioner.department_id is not None:
                values["department_id"] = str(practitioner.department_id)
    ongoing = [
        e
        for e in encounters
        if input_text(getattr(e, "start_date", None)) == today
        or (getattr(e, "kind", "") == "inpatient" and getattr(e, "end_date", "") is None)
    ]
    if ongoing and spec_of(kind, "encounter_id") is not None:
        values["encounter_id"] = str(ongoing[0].id)
    return values


def _form_context(
    request: Request,
    session: Session,
    principal: Principal,
    patient_id: int,
    kind: RecordKind | None,
) -> dict[str, Any]:
    action = f"{kind}.form" if kind else "record.form"
    institution_id = require_recorder(session, principal, action=action, kind=kind or "patient")
    patient, _chart = access_patient(
        session, principal, patient_id, action=action, field="patient_id"
    )
    context: dict[str, Any] = {
        "patient": patient,
        "kind": kind,
        "kinds": [(k.value, KIND_LABELS[k], FORM_TITLES[k]) for k in RecordKind],
        "institution_id": institution_id,
        "today": rules.local_date(now()).isoformat(),
    }
    if kind is None:
        return context
    encounters: list[EntryColumns] = []
    if spec_of(kind, "encounter_id") is not None:
        encounters = _own_encounters(session, principal, patient.id, institution_id)
    context |= {
        "title": FORM_TITLES[kind],
        "fields": _form_fields(kind),
        "choices": _choices(request, session, kind, institution_id, encounters),
        "encounters": encounters,
        "vital_kinds": _vital_rows(),
    }
    return context


def _form_fields(kind: RecordKind) -> tuple[FieldSpec, ...]:
    if kind is RecordKind.VITAL_SIGN:
        return tuple(f for f in FIELDS[kind] if f.name in VITAL_FORM_SHARED)
    return FIELDS[kind]


def _vital_rows() -> list[tuple[str, str, str]]:
    """(kind, label msgid, unit) of each measurement of the vital-sign form."""
    return [(k, code_label(RecordKind.VITAL_SIGN, k), rules.VITALS[k].unit) for k in VITAL_KINDS]


def _render_form(request: Request, context: dict[str, Any], *, status_code: int = 200) -> Response:
    return render_private(request, "records/entry_form.html", context, status_code=status_code)


# New entries ---------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/records/new", response_class=HTMLResponse)
def new_entry(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    patient_id: PatientId,
    kind: KindQuery = None,
) -> Response:
    """The form of one kind; without ``kind``, the list of kinds to choose from."""
    record_kind = _kind(kind) if kind else None
    context = _form_context(request, session, principal, patient_id, record_kind)
    if record_kind is not None:
        context["values"] = _defaults(
            session, principal, record_kind, context["institution_id"], context["encounters"]
        )
        context["request_id"] = new_token(12)
    return _render_form(request, context)


@router.post("/patients/{patient_id}/records/new", response_class=HTMLResponse)
def create_entry(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    patient_id: PatientId,
    form: Form,
    kind: KindQuery = None,
) -> Response:
    record_kind = _kind(kind)
    raw: dict[str, str] = {}
    request_id = _kept(form, "client_request_id")[:64]  # its format: the input model's
    try:
        if record_kind is RecordKind.VITAL_SIGN:
            entry = _record_vitals(session, principal, patient_id, form, request_id, raw)
        else:
            data, raw = creation_values(record_kind, form)
            body = _validate(
                INPUT_MODELS[record_kind],
                {**data, "source": "entered", "client_request_id": request_id or None},
            )
            entry = svc.add_entry(session, principal, record_kind, patient_id, body).entry
    except XietongError as exc:
        failure = _failure(request, session, exc)
        context = _form_context(request, session, principal, patient_id, record_kind)
        values = raw or _submitted(form)
        context |= {
            "values": values,
            "choices": _keep_current(context["choices"], values),
            "request_id": request_id or new_token(12),
        }
        return _render_form(request, {**context, **failure}, status_code=int(failure["status"]))
    return _redirect(f"/patients/{entry.patient_id}/chart")


def _submitted(form: FormData) -> dict[str, str]:
    return {k: v[:4000] for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def _record_vitals(
    session: Session,
    principal: Principal,
    patient_id: int,
    form: FormData,
    request_id: str,
    raw: dict[str, str],
) -> EntryColumns:
    """Each filled measurement becomes one entry, all in this request's transaction: one
    refused value and none is kept. They share the time and the encounter; each gets the
    form's request id with its kind, so a double submit records each once."""
    shared: dict[str, Any] = {}
    for name in VITAL_FORM_SHARED:
        spec = spec_of(RecordKind.VITAL_SIGN, name)
        assert spec is not None  # noqa: S101 (the names come from the specs)
        raw[name] = raw_value(form, spec)
        if raw[name]:
            shared[name] = typed(spec, raw[name])
        elif spec.required:
            raise required_missing(name)
    value_spec = spec_of(RecordKind.VITAL_SIGN, "value")
    assert value_spec is not None  # noqa: S101
    measured: list[tuple[str, float]] = []
    for vital in VITAL_KINDS:
        raw[vital] = form_text(form, vital, value_spec.input_limit)
        if raw[vital]:
            measured.append((vital, typed(value_spec, raw[vital], field=vital)))
    if not measured:
        raise Invalid(N_("Enter at least one measurement."), code="missing", field="vitals")
    first: EntryColumns | None = None
    for vital, value in measured:
        data = {
            **shared,
            "kind": vital,
            "value": value,
            "source": "entered",
            "client_request_id": f"{request_id}:{vital}" if request_id else None,
        }
        try:
            body = _validate(VitalSignIn, data)
            entry = svc.add_entry(session, principal, RecordKind.VITAL_SIGN, patient_id, body).entry
        except XietongError as exc:
            if exc.field in ("kind", "value", "unit"):
                exc.field = vital
            raise
        first = first or entry
    assert first is not None  # noqa: S101
    return first


# The ICD-10 picker -----------------------------------------------------------------------------


@router.get("/records/icd10-options", response_class=HTMLResponse)
def icd10_options(
    request: Request,
    principal: PagePrincipal,
    q: Annotated[str, Query(max_length=64)] = "",
) -> Response:
    """The codes matching ``q`` (code prefix, else words of the title): buttons that fill
    the diagnosis form (htmx), or a page to look codes up in (the picker's search box opens
    it in a new tab when scripts are off)."""
    text = q.strip()
    usable = text and not has_control_characters(text)
    found = icd10.search(text, limit=ICD10_RESULTS) if usable else []
    locale = locale_of(request)
    options = [(c.code, c.name(locale)) for c in found]
    template = "_icd10_options.html" if request.headers.get("hx-request") else "icd10.html"
    return render(request, f"records/{template}", {"options": options, "q": text})


@router.get("/records/icd10-choice", response_class=HTMLResponse)
def icd10_choice(
    request: Request,
    principal: PagePrincipal,
    code: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    """The code and name inputs filled with the chosen code and its title (as a diagnosis
    records it: Chinese where shipped)."""
    found = icd10.catalogue().get(code)
    values = {"code": found.code, "name": found.recorded_name[:200]} if found else {"code": code}
    spec = {s.name: s for s in FIELDS[RecordKind.DIAGNOSIS]}
    return render(
        request,
        "records/_icd10_fields.html",
        {"values": values, "code_spec": spec["code"], "name_spec": spec["name"]},
    )


# One entry -----------------------------------------------------------------------------------


def _display(
    kind: RecordKind, spec: FieldSpec, value: Any, names: dict[str, dict[int, str]], locale: str
) -> str:
    """A value as the entry page shows it (also a revision's JSON value)."""
    if value is None:
        return "—"
    if value == "":
        return translate(locale, spec.blank) if spec.widget == "select" and spec.blank else "—"
    if spec.widget == "select":
        return translate(locale, choice_label(kind, spec, str(value)))
    if spec.widget == "datetime":
        moment = datetime.fromisoformat(value) if isinstance(value, str) else value
        return _china_time(moment)
    if spec.widget == "number":
        return number_text(float(value))
    if spec.widget == "encounter":
        return f"#{value}"
    if spec.widget in ("department", "practitioner"):
        return names[spec.widget].get(int(value), f"#{value}")
    return str(value) if not hasattr(value, "isoformat") else value.isoformat()


def _history(
    kind: RecordKind,
    entry: EntryColumns,
    rows: list[RecordRevision],
    names: dict[str, dict[int, str]],
    locale: str,
) -> list[dict[str, Any]]:
    """Each revision: when, who, why, and the fields it changed (before → after)."""
    users = names["users"]
    institutions = names["institutions"]
    after_states = [r.previous for r in rows[1:]] + ([snapshot(entry)] if rows else [])
    history = []
    for revision, after in zip(rows, after_states, strict=True):
        changed = []
        if revision.change == "correct":
            for spec in FIELDS[kind]:
                before_value = revision.previous.get(spec.name)
                after_value = after.get(spec.name)
                if before_value != after_value:
                    changed.append(
                        (
                            spec.label,
                            _display(kind, spec, before_value, names, locale),
                            _display(kind, spec, after_value, names, locale),
                        )
                    )
        history.append(
            {
                "version": revision.version,
                "change": CHANGE_LABELS.get(revision.change, revision.change),
                "reason": revision.reason,
                "at": _china_time(revision.changed_at),
                "by": users.get(revision.changed_by_user_id or 0, ""),
                "institution": institutions.get(revision.changed_by_institution_id or 0, ""),
                "changed": changed,
            }
        )
    return history


def _reference_names(
    session: Session, entry: EntryColumns, rows: list[RecordRevision]
) -> dict[str, dict[int, str]]:
    states = [r.previous for r in rows] + [snapshot(entry)]
    return {
        "department": _names(
            session, Department.id, Department.name, (s.get("department_id") for s in states)
        ),
        "practitioner": _names(
            session,
            Practitioner.id,
            Practitioner.name,
            (s.get("attending_practitioner_id") for s in states),
        ),
        "users": _names(
            session,
            User.id,
            User.display_name,
            [r.changed_by_user_id for r in rows]
            + [entry.recorded_by_user_id, entry.error_by_user_id, entry.corrected_by_user_id],
        ),
        "institutions": _names(
            session,
            Institution.id,
            Institution.name,
            [r.changed_by_institution_id for r in rows] + [entry.institution_id],
        ),
    }


def _entry_page(
    request: Request,
    session: Session,
    principal: Principal,
    kind: RecordKind,
    entry_id: int,
    *,
    notice: str | None = None,
    failure: dict[str, Any] | None = None,
    values: dict[str, str] | None = None,
    error_reason: str = "",
    reason: str = "",
) -> Response:
    entry = svc.get_entry(session, principal, kind, entry_id)
    rows = svc.revisions(session, principal, kind, entry_id)
    patient: Patient
    patient, _chart = access_patient(session, principal, entry.patient_id, action=f"{kind}.read")
    locale = locale_of(request)
    book = svc.NameBook.load(session, [entry])
    names = _reference_names(session, entry, rows)
    subtype, title, detail, flag = describe(kind, entry, book)
    shown = form_values(kind, entry)
    facts = [
        (spec.label, _display(kind, spec, getattr(entry, spec.name), names, locale))
        for spec in FIELDS[kind]
    ]
    facts.extend(_extra_facts(kind, entry, locale))
    may_change = (
        entry.entry_status == "current"
        and principal.institution_id == entry.institution_id
        and bool(principal.roles & {str(r) for r in RECORD_ROLES})
    )
    context: dict[str, Any] = {
        "kind": kind,
        "kind_label": KIND_LABELS[kind],
        "subtype_label": code_label(kind, subtype),
        "title": title,
        "detail": detail,
        "flag": flag,
        "flag_label": FLAG_LABELS.get(flag or "", ""),
        "entry": entry,
        "patient": patient,
        "facts": facts,
        "institution_name": book.institutions.get(entry.institution_id, ""),
        "recorder": book.recorder(entry),
        "recorded_at": _china_time(entry.recorded_at),
        "corrected_at": _china_time(entry.corrected_at),
        "corrected_by": names["users"].get(entry.corrected_by_user_id or 0, ""),
        "error_at": _china_time(entry.error_at),
        "error_by": names["users"].get(entry.error_by_user_id or 0, ""),
        "source_label": code_label(kind, entry.source),
        "history": _history(kind, entry, rows, names, locale),
        "may_change": may_change,
        "fields": FIELDS[kind],
        "values": values if values is not None else shown,
        "reason": reason,
        "error_reason": error_reason,
        "notice": translate(locale, NOTICES[notice]) if notice in NOTICES else None,
        "encounters": [],
    }
    if may_change:
        encounters: list[EntryColumns] = []
        if spec_of(kind, "encounter_id") is not None:
            encounters = _own_encounters(session, principal, entry.patient_id, entry.institution_id)
        choices = _choices(request, session, kind, entry.institution_id, encounters)
        context["choices"] = _keep_current(choices, context["values"])
    extra = failure or {}
    status = int(extra.get("status", 200))
    return render_private(request, "records/entry.html", {**context, **extra}, status_code=status)


def _extra_facts(kind: RecordKind, entry: Any, locale: str) -> list[tuple[str, str]]:
    """What an entry holds beyond its form's fields: derived values and the unit."""
    if kind is RecordKind.VITAL_SIGN:
        flag = FLAG_LABELS.get(entry.abnormal_flag or "", "")
        return [
            (N_("Unit"), entry.unit),
            (N_("Flag"), translate(locale, flag) if flag else "—"),
        ]
    if kind is RecordKind.LAB_RESULT and entry.abnormal_flag:
        how = N_("computed from the reference range") if entry.flag_computed else N_("as reported")
        return [(N_("How the flag was set"), translate(locale, how))]
    if kind is RecordKind.DIAGNOSIS:
        code = icd10.catalogue().get(entry.code)
        if code is not None:
            return [(N_("Title of the code"), code.name(locale))]
    return []


@router.get("/records/{kind}/{entry_id}", response_class=HTMLResponse)
def entry_page(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    kind: KindPath,
    entry_id: EntryId,
) -> Response:
    done = request.query_params.get("done")
    return _entry_page(request, session, principal, _kind(kind), entry_id, notice=done)


def _check_version(form: FormData, entry: EntryColumns) -> None:
    """The form was filled in from the version it carries: a change made since (by someone
    else, or by a first click of a double submit) is not overwritten."""
    if form_text(form, "version", 12) != str(entry.version):
        raise Conflict(
            N_("Someone changed this entry at the same time; reload it and try again."),
            code="version_conflict",
        )


def _reason(form: FormData, name: str) -> str:
    """The reason of a change, from the input ``name`` (required, 2 to 500 characters)."""
    text = form_text(form, name, 500)
    if not text:
        raise required_missing(name)
    try:
        body: EnteredInErrorIn = _validate(EnteredInErrorIn, {"reason": text})
    except Invalid as exc:
        exc.field = name
        raise
    return body.reason


def _kept(form: FormData, name: str) -> str:
    """A submitted text to show again (never an error of its own)."""
    value = form.get(name)
    text = value.strip()[:500] if isinstance(value, str) else ""
    return "" if has_control_characters(text) else text


@router.post("/records/{kind}/{entry_id}/correct", response_class=HTMLResponse)
def correct_entry(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    kind: KindPath,
    entry_id: EntryId,
    form: Form,
) -> Response:
    """Correct the fields whose inputs were changed, with a reason (the service keeps the
    earlier values as a revision)."""
    record_kind = _kind(kind)
    raw: dict[str, str] | None = None
    try:
        entry = svc.get_entry(session, principal, record_kind, entry_id)
        version = entry.version
        _check_version(form, entry)
        changes, raw = correction_changes(record_kind, form, form_values(record_kind, entry))
        reason = _reason(form, "reason")
        if changes:  # none: nothing to write (the page says so)
            svc.correct_entry(session, principal, record_kind, entry_id, changes, reason)
    except XietongError as exc:
        failure = _failure(request, session, exc)
        return _entry_page(
            request,
            session,
            principal,
            record_kind,
            entry_id,
            failure=failure,
            values=raw or _submitted(form),
            reason=_kept(form, "reason"),
        )
    done = "corrected" if entry.version != version else "unchanged"
    return _redirect(f"/records/{record_kind}/{entry_id}?done={done}")


@router.post("/records/{kind}/{entry_id}/entered-in-error", response_class=HTMLResponse)
def entered_in_error(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    kind: KindPath,
    entry_id: EntryId,
    form: Form,
) -> Response:
    record_kind = _kind(kind)
    try:
        entry = svc.get_entry(session, principal, record_kind, entry_id)
        reason = _reason(form, "error_reason")
        _check_version(form, entry)
        try:
            svc.mark_entered_in_error(session, principal, record_kind, entry_id, reason)
        except XietongError as exc:
            if exc.field == "reason":
                exc.field = "error_reason"
            raise
    except XietongError as exc:
        failure = _failure(request, session, exc) | {"failed_form": "entered_in_error"}
        return _entry_page(
            request,
            session,
            principal,
            record_kind,
            entry_id,
            failure=failure,
            error_reason=_kept(form, "error_reason"),
        )
    return _redirect(f"/records/{record_kind}/{entry_id}?done=entered_in_error")

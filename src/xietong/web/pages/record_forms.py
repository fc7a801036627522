"""Record pages: the forms through which clinicians record entries of a patient's chart
(one per kind; vital signs several at once) and the ICD-10 picker. The entry page, with its
corrections, is in ``record_entry``.

* ``GET|POST /patients/{id}/records/new?kind=…``: the form; a hidden client request id per
  render makes a double submit record once. Success goes to the chart (303).
* ``GET /records/icd10-options?q=`` and ``GET /records/icd10-choice?code=``: the htmx
  fragments of the diagnosis form's ICD-10 picker (typing the code works without them).

Who may record, see and change what is decided by :mod:`xietong.records.service`; bad input
shows the form again naming the field, refusals (403, 404) are the error page.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Invalid, XietongError
from xietong.core.security import new_token
from xietong.core.validation import MAX_ID, has_control_characters
from xietong.directory.models import Practitioner
from xietong.identity.models import User
from xietong.patients.access import access_patient
from xietong.records import icd10, rules
from xietong.records import service as svc
from xietong.records.kinds import KIND_LABELS, RecordKind, code_label
from xietong.records.models import EntryColumns
from xietong.records.schemas import VitalMeasurementIn, VitalSignsIn
from xietong.records.service.common import require_recorder
from xietong.web.deps import DbSession, PagePrincipal
from xietong.web.pages.directory_common import form_data
from xietong.web.pages.forms import locale_of
from xietong.web.pages.patients_common import form_text, render_private
from xietong.web.pages.record_common import (
    FORM_TITLES,
    ICD10_RESULTS,
    INPUT_MODELS,
    entry_kind,
    field_choices,
    form_failure,
    keep_current,
    kept_value,
    own_encounters,
    see_other,
    submitted_values,
    validate_input,
)
from xietong.web.pages.record_fields import (
    FIELDS,
    VITAL_FORM_SHARED,
    VITAL_KINDS,
    FieldSpec,
    creation_values,
    input_text,
    local_input,
    raw_value,
    required_missing,
    spec_of,
    typed,
)
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)

PatientId = Annotated[int, Path(ge=1, le=MAX_ID)]
KindQuery = Annotated[str | None, Query(max_length=32)]
Form = Annotated[FormData, Depends(form_data)]


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
        encounters = own_encounters(session, principal, patient.id, institution_id)
    context |= {
        "title": FORM_TITLES[kind],
        "fields": _form_fields(kind),
        "choices": field_choices(request, session, kind, institution_id, encounters),
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
    record_kind = entry_kind(kind) if kind else None
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
    record_kind = entry_kind(kind)
    raw: dict[str, str] = {}
    request_id = kept_value(form, "client_request_id")[:64]  # its format: the input model's
    try:
        if record_kind is RecordKind.VITAL_SIGN:
            entry = _record_vitals(session, principal, patient_id, form, request_id, raw)
        else:
            data, raw = creation_values(record_kind, form)
            body = validate_input(
                INPUT_MODELS[record_kind],
                {**data, "source": "entered", "client_request_id": request_id or None},
            )
            entry = svc.add_entry(session, principal, record_kind, patient_id, body).entry
    except XietongError as exc:
        failure = form_failure(request, session, exc)
        context = _form_context(request, session, principal, patient_id, record_kind)
        values = raw or submitted_values(form)
        context |= {
            "values": values,
            "choices": keep_current(context["choices"], values),
            "request_id": request_id or new_token(12),
        }
        return _render_form(request, {**context, **failure}, status_code=int(failure["status"]))
    return see_other(f"/patients/{entry.patient_id}/chart")


def _record_vitals(
    session: Session,
    principal: Principal,
    patient_id: int,
    form: FormData,
    request_id: str,
    raw: dict[str, str],
) -> EntryColumns:
    """The shared time and encounter and each filled measurement, recorded by
    :func:`xietong.records.service.add_vital_signs` (one entry each, all or none; the
    form's request id makes a double submit record each once). Returns the first entry."""
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
    measurements: list[VitalMeasurementIn] = []
    for vital in VITAL_KINDS:
        raw[vital] = form_text(form, vital, value_spec.input_limit)
        if raw[vital]:
            value = typed(value_spec, raw[vital], field=vital)
            measurements.append(_measurement(vital, value))
    if not measurements:
        raise Invalid(N_("Enter at least one measurement."), code="missing", field="vitals")
    body = validate_input(
        VitalSignsIn,
        {
            **shared,
            "measurements": measurements,
            "source": "entered",
            "client_request_id": request_id or None,
        },
    )
    return svc.add_vital_signs(session, principal, patient_id, body)[0].entry


def _measurement(vital: str, value: float) -> VitalMeasurementIn:
    """One measurement; a refused value names its input."""
    try:
        measurement: VitalMeasurementIn = validate_input(
            VitalMeasurementIn, {"kind": vital, "value": value}
        )
    except Invalid as exc:
        exc.field = vital
        raise
    return measurement


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

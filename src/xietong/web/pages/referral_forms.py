"""The referral create forms: the sender's up or exam referral from a patient's chart (or
from a consultation whose report recommends it) with the slot picker, and the upper
doctor's down-referral with its structured discharge summary. The referral services
decide; these routes parse and render.

* ``GET/POST /patients/{id}/referrals/new``: the form; its "show slots" button re-renders
  it with the departments and free places of the chosen institution (no script needed).
* ``GET /patients/{id}/referrals/slots``: the slot picker as an htmx fragment (with the
  chosen institution's departments, swapped out of band).
* ``GET/POST /referrals/{id}/down/new``: send the patient of an up-referral back down.

A hidden ``request_key`` makes a form posted twice one referral.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.policies import require_roles
from xietong.access.principal import Principal
from xietong.consultation import service as consultations
from xietong.core.errors import Invalid, XietongError
from xietong.core.i18n import translate
from xietong.core.security import new_token
from xietong.core.validation import MAX_ID
from xietong.directory.lookup import find_institution
from xietong.directory.service import Paging, served_institutions
from xietong.identity.roles import Role
from xietong.patients.access import access_patient
from xietong.patients.workflow_view import patient_card
from xietong.records import service as records
from xietong.referral import service as svc
from xietong.referral import slots
from xietong.referral.schemas import DownReferralIn, ReferralIn
from xietong.referral.slot_labels import EXAM_LABELS
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.errors import validation_message
from xietong.web.pages.consultations import TIMELINE_LIMIT, centre_choices
from xietong.web.pages.forms import form_error, locale_of, parse
from xietong.web.pages.patients_common import render_private
from xietong.web.pages.referral_common import (
    KIND_LABELS,
    PRIORITY_LABELS,
    form_values,
    page_labels,
    slot_choices,
)

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
DIAGNOSIS_ROWS = 3
MEDICATION_ROWS = 4
FOLLOW_UP_ROWS = 4
# The repeated rows of the down form: list name → the names of a row's inputs.
ROWS: dict[str, tuple[tuple[str, ...], int]] = {
    "discharge.diagnoses": (("code", "text"), DIAGNOSIS_ROWS),
    "discharge.medications": (("name", "dose", "frequency", "days"), MEDICATION_ROWS),
    "follow_ups": (("due_date", "purpose"), FOLLOW_UP_ROWS),
}
_ROW_FIELD = re.compile(r"^(discharge\.diagnoses|discharge\.medications|follow_ups)\[(\d+)\]")


def _id(raw: object) -> int | None:
    """A positive id typed in a form or query, else None (the chooser shows nothing)."""
    text = str(raw or "")
    return int(text) if text.isdigit() and 1 <= int(text) <= MAX_ID else None


def _shared_items(form: FormData) -> list[dict[str, Any]]:
    items = []
    for raw in form.getlist("shared"):
        kind, _sep, ident = str(raw).partition(":")
        items.append({"kind": kind, "id": ident})
    return items


def _entries(session: Session, principal: Principal, patient_id: int) -> list[dict[str, Any]]:
    """The chart items the user may share: checkboxes ``kind:id``."""
    entries, _total = records.timeline(
        session, principal, patient_id, records.TimelineQuery(limit=TIMELINE_LIMIT)
    )
    return [
        {"key": f"{e.kind}:{e.id}", "date": e.date.isoformat(), "title": e.title} for e in entries
    ]


# The sender's up or exam referral ----------------------------------------------------------


def _picker(
    request: Request,
    session: Session,
    principal: Principal,
    centres: list[tuple[int, str]],
    values: Mapping[str, Any],
) -> dict[str, Any]:
    """The departments of the chosen institution (one of the user's upward centres) and
    the free places of the chosen kind, department, examination and channel."""
    institution_id = _id(values.get("target_institution_id"))
    if institution_id not in {i for i, _name in centres}:
        institution_id = None
    departments = (
        [(d.id, d.name) for d in slots.departments_of(session, institution_id)]
        if institution_id
        else []
    )
    department_id = _id(values.get("target_department_id"))
    if department_id not in {d for d, _name in departments}:
        department_id = None
    kind = str(values.get("kind") or "up")
    exam_type = str(values.get("exam_type") or "")
    choices = (
        slot_choices(
            request,
            session,
            principal,
            institution_id,
            kind=kind,
            department_id=department_id,
            exam_type=exam_type if exam_type in EXAM_LABELS else "",
            priority=str(values.get("priority") or "normal"),
        )
        if institution_id
        else []
    )
    return {
        "departments": departments,
        "picker": {
            "institution_id": institution_id,
            "department_id": department_id,
            "kind": kind,
            "needs_exam": kind == "exam" and not exam_type,
            "slots": choices,
            "chosen": str(values.get("slot_id") or ""),
        },
    }


def _new_context(
    request: Request,
    session: Session,
    principal: Principal,
    patient_id: int,
    values: dict[str, Any],
) -> dict[str, Any]:
    locale = locale_of(request)
    require_roles(
        session,
        principal,
        {Role.APPLICANT_DOCTOR},
        action="referral.form",
        object_kind="patient",
        object_id=patient_id,
    )
    patient, _chart = access_patient(
        session, principal, patient_id, action="referral.form", field="patient_id"
    )
    centres = centre_choices(session, principal.institution_id)
    return {
        **page_labels(locale),
        "patient": patient,
        "entries": _entries(session, principal, patient_id),
        "centres": centres,
        "kinds": [(k, translate(locale, KIND_LABELS[k])) for k in ("up", "exam")],
        "priorities": [(p, translate(locale, label)) for p, label in PRIORITY_LABELS.items()],
        "exam_choices": [(k, translate(locale, v)) for k, v in EXAM_LABELS.items()],
        "values": values,
        **_picker(request, session, principal, centres, values),
    }


def _from_consultation(
    session: Session, principal: Principal, consultation_id: int
) -> dict[str, Any]:
    """The form filled from a consultation (the consultation service decides who reads
    it): its summary and shared material, the report's recommendations and target."""
    c = consultations.get_consultation(session, principal, consultation_id).consultation
    values: dict[str, Any] = {
        "consultation_id": str(c.id),
        "summary": c.clinical_summary,
        "shared": [f"{item.get('kind')}:{item.get('id')}" for item in c.shared_items],
    }
    latest = consultations.reports(session, principal, consultation_id)
    if latest:
        values["reason"] = latest[0].recommendations[:2000]
        if latest[0].referral_institution_id:
            values["target_institution_id"] = str(latest[0].referral_institution_id)
    return values


@router.get("/patients/{patient_id}/referrals/new", response_class=HTMLResponse)
def new_referral(
    request: Request, session: DbSession, principal: PagePrincipal, patient_id: Id
) -> Response:
    values: dict[str, Any] = {"kind": "up", "priority": "normal", "shared": []}
    consultation_id = _id(request.query_params.get("consultation_id"))
    if consultation_id is not None:
        values.update(_from_consultation(session, principal, consultation_id))
    context = _new_context(request, session, principal, patient_id, values)
    context["request_key"] = new_token(12)
    return render_private(request, "referrals/new.html", context)


@router.get("/patients/{patient_id}/referrals/slots", response_class=HTMLResponse)
def slot_picker(
    request: Request, session: DbSession, principal: PagePrincipal, patient_id: Id
) -> Response:
    """The slot picker of the form (htmx): the free places for the chosen institution,
    department, kind, examination and priority, and that institution's departments."""
    params = request.query_params
    values = {
        "target_institution_id": params.get("institution_id")
        or params.get("target_institution_id"),
        "target_department_id": params.get("department_id") or params.get("target_department_id"),
        "kind": params.get("kind") if params.get("kind") in ("up", "exam") else "up",
        "exam_type": params.get("exam_type", "")[:16],
        "priority": "green" if params.get("priority") == "green" else "normal",
        "slot_id": params.get("slot_id", "")[:12],
    }
    centres = centre_choices(session, principal.institution_id)
    context = {
        **page_labels(locale_of(request)),
        "patient_id": patient_id,
        "values": values,
        "oob": True,
        **_picker(request, session, principal, centres, values),
    }
    return render_private(request, "referrals/_slot_picker.html", context)


@router.post("/patients/{patient_id}/referrals/new", response_class=HTMLResponse)
async def create_referral(
    request: Request, session: DbSession, principal: PagePrincipal, patient_id: Id
) -> Response:
    form = await request.form()
    values = form_values(form)
    values["shared"] = [str(s) for s in form.getlist("shared")]
    key = str(values.get("request_key", ""))[:64] or None
    if values.get("show_slots"):
        context = _new_context(request, session, principal, patient_id, values)
        context["request_key"] = key or new_token(12)
        return render_private(request, "referrals/new.html", context)
    try:
        kind = values.get("kind", "up")
        fields = (
            "target_institution_id",
            "target_department_id",
            "slot_id",
            "priority",
            "reason",
            "diagnosis_code",
            "diagnosis_text",
            "summary",
            "consultation_id",
        )
        data = parse(
            ReferralIn,
            {
                **{k: values.get(k, "") for k in fields},
                "kind": kind,
                "patient_id": patient_id,
                "exam_type": values.get("exam_type", "") if kind == "exam" else "",
                "shared_items": _shared_items(form),
            },
        )
        created = svc.create_referral(
            session,
            principal,
            data,
            services(request).settings.referral,
            idempotency_key=key,
        )
    except XietongError as exc:
        failure = form_error(request, session, exc)
        context = _new_context(request, session, principal, patient_id, values)
        context.update({**failure, "request_key": key or new_token(12)})
        return render_private(
            request, "referrals/new.html", context, status_code=int(failure["status"])
        )
    return RedirectResponse(f"/referrals/{created.referral.id}", status_code=303)


# The down-referral -------------------------------------------------------------------------


def _parse_nested(data: Mapping[str, Any]) -> DownReferralIn:
    """Validate the down form, naming the input at fault by its full path
    (``follow_ups[0].due_date``, ``discharge.diagnoses[1].text``)."""
    try:
        return DownReferralIn.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        path = ""
        for part in first.get("loc", ()):
            path += f"[{part}]" if isinstance(part, int) else (f".{part}" if path else str(part))
        raise Invalid(
            validation_message(str(first.get("type", ""))),
            code=str(first.get("type", "invalid")),
            field=path or None,
        ) from None


def _row_field(field: str | None, kept: dict[str, list[int]]) -> str | None:
    """The form row of a field named by its place in the rows sent (empty rows are not
    sent): ``follow_ups[0].due_date`` is the second row when the first was left empty."""
    if not field:
        return field
    match = _ROW_FIELD.match(field)
    if match is None:
        return field
    rows = kept.get(match.group(1), [])
    index = int(match.group(2))
    row = rows[index] if index < len(rows) else index
    return f"{match.group(1)}[{row}]{field[match.end() :]}"


def _down_data(
    values: Mapping[str, Any], form: FormData, r_patient: int, parent_id: int
) -> tuple[dict[str, Any], dict[str, list[int]]]:
    """The down-referral's input from the form, without its empty rows; and which form row
    each row sent came from."""
    lists: dict[str, list[dict[str, str]]] = {}
    kept: dict[str, list[int]] = {}
    for name, (inputs, count) in ROWS.items():
        lists[name], kept[name] = [], []
        for index in range(count):
            row = {i: str(values.get(f"{name}[{index}].{i}", "")).strip() for i in inputs}
            if any(row.values()):
                lists[name].append({k: v for k, v in row.items() if v})
                kept[name].append(index)
    procedures = str(values.get("discharge.procedures", ""))
    discharge: dict[str, Any] = {
        "diagnoses": lists["discharge.diagnoses"],
        "procedures": [line.strip() for line in procedures.splitlines() if line.strip()],
        "medications": lists["discharge.medications"],
    }
    if values.get("discharge.follow_up_plan"):
        discharge["follow_up_plan"] = values["discharge.follow_up_plan"]
    data: dict[str, Any] = {
        "patient_id": r_patient,
        "parent_id": parent_id,
        "discharge": discharge,
        "follow_ups": lists["follow_ups"],
        "shared_items": _shared_items(form),
    }
    for name in ("target_institution_id", "reason", "rehab_plan"):
        if values.get(name):
            data[name] = values[name]
    return data, kept


def _down_context(
    request: Request, session: Session, principal: Principal, referral_id: int
) -> dict[str, Any]:
    """The up-referral ended (a doctor or expert of the receiving institution, while the
    patient is there), the institutions that refer to this one (the referring one first)."""
    locale = locale_of(request)
    r = svc.open_for_down(session, principal, referral_id)
    mine = find_institution(session, r.target_institution_id)
    below = served_institutions(session, mine, Paging(limit=100))[0] if mine else []
    targets = sorted(
        [(i.id, i.name) for i in below], key=lambda t: (t[0] != r.sender_institution_id, t[1])
    )
    card = patient_card(session, r.patient_id)
    return {
        **page_labels(locale),
        "r": r,
        "patient_name": card.name if card else "",
        "targets": targets,
        "entries": _entries(session, principal, r.patient_id),
        "rows": {name: range(count) for name, (_inputs, count) in ROWS.items()},
    }


@router.get("/referrals/{referral_id}/down/new", response_class=HTMLResponse)
def new_down(
    request: Request, session: DbSession, principal: PagePrincipal, referral_id: Id
) -> Response:
    context = _down_context(request, session, principal, referral_id)
    r = context["r"]
    context["values"] = {
        "target_institution_id": str(r.sender_institution_id),
        "discharge.diagnoses[0].code": r.diagnosis_code,
        "discharge.diagnoses[0].text": r.diagnosis_text,
        "shared": [],
    }
    context["request_key"] = new_token(12)
    return render_private(request, "referrals/down.html", context)


@router.post("/referrals/{referral_id}/down/new", response_class=HTMLResponse)
async def create_down(
    request: Request, session: DbSession, principal: PagePrincipal, referral_id: Id
) -> Response:
    form = await request.form()
    values = form_values(form)
    values["shared"] = [str(s) for s in form.getlist("shared")]
    key = str(values.get("request_key", ""))[:64] or None
    kept: dict[str, list[int]] = {}
    try:
        context = _down_context(request, session, principal, referral_id)
        data, kept = _down_data(values, form, context["r"].patient_id, referral_id)
        created = svc.create_down(
            session,
            principal,
            _parse_nested(data),
            services(request).settings.referral,
            idempotency_key=key,
        )
    except XietongError as exc:
        failure = form_error(request, session, exc)
        failure["field"] = _row_field(failure["field"], kept)
        context = _down_context(request, session, principal, referral_id)
        context.update({**failure, "values": values, "request_key": key or new_token(12)})
        return render_private(
            request, "referrals/down.html", context, status_code=int(failure["status"])
        )
    return RedirectResponse(f"/referrals/{created.referral.id}", status_code=303)

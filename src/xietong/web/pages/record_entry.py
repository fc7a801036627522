"""The page of one clinical entry: its fields, source, recorder, revisions, and for the
holding institution's recorders the correction and "entered in error" forms. The services
decide who may see and change what; these routes parse and render."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.principal import Principal
from xietong.core.errors import N_, Conflict, Invalid, XietongError
from xietong.core.i18n import translate
from xietong.core.validation import MAX_ID
from xietong.directory.models import Department, Institution, Practitioner
from xietong.identity.models import User
from xietong.patients.access import access_patient
from xietong.patients.models import Patient
from xietong.records import icd10
from xietong.records import service as svc
from xietong.records.kinds import FLAG_LABELS, KIND_LABELS, RecordKind, code_label
from xietong.records.models import EntryColumns, RecordRevision
from xietong.records.schemas import (
    EnteredInErrorIn,
)
from xietong.records.service.common import RECORD_ROLES
from xietong.records.service.timeline import describe
from xietong.records.service.values import snapshot
from xietong.web.deps import DbSession, PagePrincipal
from xietong.web.pages.directory_common import form_data
from xietong.web.pages.forms import locale_of
from xietong.web.pages.patients_common import form_text, render_private
from xietong.web.pages.record_common import (
    CHANGE_LABELS,
    NOTICES,
    china_time,
    entry_kind,
    field_choices,
    form_failure,
    keep_current,
    kept_value,
    names_by_id,
    own_encounters,
    see_other,
    submitted_values,
    validate_input,
)
from xietong.web.pages.record_fields import (
    FIELDS,
    FieldSpec,
    choice_label,
    correction_changes,
    form_values,
    number_text,
    required_missing,
    spec_of,
)

router = APIRouter(include_in_schema=False)

EntryId = Annotated[int, Path(ge=1, le=MAX_ID)]
KindPath = Annotated[str, Path(max_length=32)]
Form = Annotated[FormData, Depends(form_data)]


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
        return china_time(moment)
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
                "at": china_time(revision.changed_at),
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
        "department": names_by_id(
            session, Department.id, Department.name, (s.get("department_id") for s in states)
        ),
        "practitioner": names_by_id(
            session,
            Practitioner.id,
            Practitioner.name,
            (s.get("attending_practitioner_id") for s in states),
        ),
        "users": names_by_id(
            session,
            User.id,
            User.display_name,
            [r.changed_by_user_id for r in rows]
            + [entry.recorded_by_user_id, entry.error_by_user_id, entry.corrected_by_user_id],
        ),
        "institutions": names_by_id(
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
        "recorded_at": china_time(entry.recorded_at),
        "corrected_at": china_time(entry.corrected_at),
        "corrected_by": names["users"].get(entry.corrected_by_user_id or 0, ""),
        "error_at": china_time(entry.error_at),
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
            encounters = own_encounters(session, principal, entry.patient_id, entry.institution_id)
        choices = field_choices(request, session, kind, entry.institution_id, encounters)
        context["choices"] = keep_current(choices, context["values"])
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
    return _entry_page(request, session, principal, entry_kind(kind), entry_id, notice=done)


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
        body: EnteredInErrorIn = validate_input(EnteredInErrorIn, {"reason": text})
    except Invalid as exc:
        exc.field = name
        raise
    return body.reason


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
    record_kind = entry_kind(kind)
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
        failure = form_failure(request, session, exc)
        return _entry_page(
            request,
            session,
            principal,
            record_kind,
            entry_id,
            failure=failure,
            values=raw or submitted_values(form),
            reason=kept_value(form, "reason"),
        )
    done = "corrected" if entry.version != version else "unchanged"
    return see_other(f"/records/{record_kind}/{entry_id}?done={done}")


@router.post("/records/{kind}/{entry_id}/entered-in-error", response_class=HTMLResponse)
def entered_in_error(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    kind: KindPath,
    entry_id: EntryId,
    form: Form,
) -> Response:
    record_kind = entry_kind(kind)
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
        failure = form_failure(request, session, exc) | {"failed_form": "entered_in_error"}
        return _entry_page(
            request,
            session,
            principal,
            record_kind,
            entry_id,
            failure=failure,
            error_reason=kept_value(form, "error_reason"),
        )
    return see_other(f"/records/{record_kind}/{entry_id}?done=entered_in_error")

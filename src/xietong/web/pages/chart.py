"""The patient's chart: one timeline of everything the user may see of the patient, across
institutions (encounters, diagnoses, lab results with abnormal values marked, orders,
vital signs, allergies, and documents with their thumbnails), with filters; usable on a
phone. The services decide what is visible and audit the read; this route parses and
renders.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, Response

from xietong.core.errors import N_, Forbidden, Invalid, XietongError
from xietong.core.i18n import translate
from xietong.core.validation import MAX_ID, has_control_characters
from xietong.identity.roles import Role
from xietong.patients import service as patient_service
from xietong.records import rules
from xietong.records import service as records
from xietong.records.kinds import KIND_LABELS, RecordKind, code_label
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.pages.forms import locale_of
from xietong.web.pages.imaging_viewer import chart_studies
from xietong.web.pages.patients_common import CLINICAL_ROLES, break_glass_page, render_private
from xietong.web.pages.reads import chart_reads
from xietong.web.pages.referrals import chart_referrals

router = APIRouter(include_in_schema=False)
PatientId = Annotated[int, Path(ge=1, le=MAX_ID)]
PAGE_SIZE = 30
DOCUMENT = "document"
KIND_CHOICES: list[tuple[str, str]] = [
    (DOCUMENT, N_("Documents")),
    *((k.value, KIND_LABELS[k.value]) for k in RecordKind),
]
FLAG_LABELS = {
    "H": N_("High"),
    "HH": N_("Critically high"),
    "L": N_("Low"),
    "LL": N_("Critically low"),
    "A": N_("Abnormal"),
}


def _date(raw: str, field: str) -> date | None:
    if not raw:
        return None
    try:
        return date.fromisoformat(raw)
    except ValueError:
        raise Invalid(N_("Give a date as YYYY-MM-DD."), code="invalid_date", field=field) from None


def _filters(request: Request) -> tuple[dict[str, Any], records.TimelineQuery]:
    params = request.query_params
    kinds = [k for k in params.getlist("kind")[: len(KIND_CHOICES)] if k]
    known = {code for code, _label in KIND_CHOICES}
    unknown = [k for k in kinds if k not in known]
    if unknown:
        raise Invalid(N_("Choose a value from the list."), code="invalid_choice", field="kind")
    institution = params.get("institution_id", "")
    if institution and not (institution.isdigit() and 1 <= int(institution) <= MAX_ID):
        raise Invalid(
            N_("Choose a value from the list."), code="invalid_choice", field="institution_id"
        )
    offset_text = params.get("offset", "0") or "0"
    if not offset_text.isdigit() or int(offset_text) > 1_000_000:
        raise Invalid(N_("This value is too large."), code="invalid_offset", field="offset")
    date_from = params.get("date_from", "")[:10]
    date_to = params.get("date_to", "")[:10]
    abnormal_only = params.get("abnormal_only", "") in ("1", "true", "on")
    raw: dict[str, Any] = {
        "kind": kinds,
        "institution_id": institution,
        "date_from": date_from,
        "date_to": date_to,
        "abnormal_only": abnormal_only,
    }
    record_kinds = frozenset(RecordKind(k) for k in kinds if k != DOCUMENT)
    query = records.TimelineQuery(
        kinds=record_kinds if kinds else frozenset(RecordKind),
        documents=not kinds or DOCUMENT in kinds,
        institution_id=int(institution) if institution else None,
        date_from=_date(date_from, "date_from"),
        date_to=_date(date_to, "date_to"),
        abnormal_only=abnormal_only,
        limit=PAGE_SIZE,
        offset=int(offset_text),
    )
    return raw, query


def _link(patient_id: int, raw: dict[str, Any], offset: int, reason: str | None) -> str:
    pairs: list[tuple[str, str]] = [("kind", k) for k in raw["kind"]]
    pairs += [(k, str(raw[k])) for k in ("institution_id", "date_from", "date_to") if raw[k]]
    if raw["abnormal_only"]:
        pairs.append(("abnormal_only", "1"))
    if reason:
        pairs.append(("reason", reason))
    pairs.append(("offset", str(offset)))
    return f"/patients/{patient_id}/chart?{urlencode(pairs)}"


def _grouped(entries: list[records.TimelineEntry], locale: str) -> list[dict[str, Any]]:
    """Entries by calendar day (China time), newest first, each with its labels."""
    days: list[dict[str, Any]] = []
    for entry in entries:
        day = entry.date
        if not days or days[-1]["date"] != day:
            days.append({"date": day, "entries": []})
        label = translate(locale, code_label(entry.kind, entry.subtype))
        days[-1]["entries"].append(
            {
                "e": entry,
                "label": label,
                "kind_label": translate(locale, KIND_LABELS.get(entry.kind, N_("Documents"))),
                "time": entry.at.astimezone(rules.CHINA_TZ).strftime("%H:%M")
                if entry.precise
                else "",
                "flag_label": translate(locale, FLAG_LABELS[entry.abnormal_flag])
                if entry.abnormal_flag in FLAG_LABELS
                else "",
                "href": f"/documents/{entry.id}"
                if entry.kind == DOCUMENT
                else f"/records/{entry.kind}/{entry.id}",
            }
        )
    return days


@router.get("/patients/{patient_id}/chart", response_class=HTMLResponse)
def chart_page(
    request: Request, session: DbSession, principal: PagePrincipal, patient_id: PatientId
) -> Response:
    reason = request.query_params.get("reason", "").strip()[:500] or None
    if reason and has_control_characters(reason):
        reason = None
    locale = locale_of(request)
    try:
        detail = patient_service.get_patient(
            session, principal, services(request).pii, patient_id, reason=reason
        )
    except Forbidden as exc:
        if exc.code != "break_glass_reason_required":
            raise
        return break_glass_page(request, patient_id, "detail")
    error: XietongError | None = None
    try:
        raw, query = _filters(request)
        entries, total = records.timeline(session, principal, patient_id, query, reason=reason)
    except Invalid as exc:
        error = exc
        raw = {
            "kind": [],
            "institution_id": "",
            "date_from": "",
            "date_to": "",
            "abnormal_only": False,
        }
        query = records.TimelineQuery(limit=PAGE_SIZE)
        entries, total = [], 0
    offset = query.offset
    context = {
        "p": detail,
        "days": _grouped(entries, locale),
        "total": total,
        "raw": raw,
        "kind_choices": [(code, translate(locale, label)) for code, label in KIND_CHOICES],
        "institutions": detail.institutions,
        "shown_from": offset + 1 if total else 0,
        "shown_to": min(offset + PAGE_SIZE, total),
        "prev": _link(patient_id, raw, max(offset - PAGE_SIZE, 0), reason) if offset else None,
        "next": _link(patient_id, raw, offset + PAGE_SIZE, reason)
        if offset + PAGE_SIZE < total
        else None,
        "reason": reason or "",
        "can_record": principal.has(*records.RECORD_ROLES) and principal.institution_id is not None,
        "can_request_consultation": principal.has(Role.APPLICANT_DOCTOR)
        and principal.institution_id is not None,
        "record_kinds": [(k.value, translate(locale, KIND_LABELS[k.value])) for k in RecordKind],
        # The patient's referrals the user takes part in (the referral service decides).
        "referrals": chart_referrals(request, session, principal, patient_id),
        # The patient's imaging reads the user takes part in, with their final reports.
        "reads": chart_reads(session, principal, patient_id),
        "shows_referrals": bool(principal.roles & CLINICAL_ROLES),
        # The patient's imaging studies the user may read (the imaging service decides).
        "studies": chart_studies(session, principal, patient_id),
        "error": translate(locale, error.message, **error.params) if error else None,
        "error_code": error.code if error else None,
        "field": error.field if error else None,
    }
    status = error.status if error else 200
    return render_private(request, "records/chart.html", context, status_code=status)

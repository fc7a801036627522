"""The applicant's new-request page: from a patient's chart, the request, the target centre
(upward of the applicant's institution), the material to share, submit now or save a draft.
The consultation services decide; these routes parse and render."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.principal import Principal
from xietong.consultation import service as svc
from xietong.consultation.labels import MODE_LABELS, URGENCY_LABELS
from xietong.consultation.models import MODES, URGENCIES
from xietong.consultation.schemas import (
    ConsultationIn,
)
from xietong.core.errors import XietongError
from xietong.core.i18n import translate
from xietong.core.security import new_token
from xietong.core.validation import MAX_ID
from xietong.directory.specialties import SPECIALTIES
from xietong.patients.access import access_patient
from xietong.records import service as records
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.pages.consultations import (
    TIMELINE_LIMIT,
    centre_choices,
    form_values,
    page_labels,
)
from xietong.web.pages.forms import form_error, locale_of, parse
from xietong.web.pages.patients_common import render_private

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=MAX_ID)]


def _new_context(
    request: Request, session: Session, principal: Principal, patient_id: int
) -> dict[str, Any]:
    locale = locale_of(request)
    patient, _chart = access_patient(
        session, principal, patient_id, action="consultation.form", field="patient_id"
    )
    entries, _total = records.timeline(
        session, principal, patient_id, records.TimelineQuery(limit=TIMELINE_LIMIT)
    )
    return {
        **page_labels(locale),
        "patient": patient,
        "entries": [
            {"key": f"{e.kind}:{e.id}", "date": e.date.isoformat(), "title": e.title, "e": e}
            for e in entries
        ],
        "specialties": [(s.code, s.label(locale)) for s in SPECIALTIES],
        "urgencies": [(u, translate(locale, URGENCY_LABELS[u])) for u in URGENCIES],
        "modes": [(m, translate(locale, MODE_LABELS[m])) for m in MODES],
        "centres": centre_choices(session, principal.institution_id),
    }


@router.get("/patients/{patient_id}/consultations/new", response_class=HTMLResponse)
def new_consultation(
    request: Request, session: DbSession, principal: PagePrincipal, patient_id: Id
) -> Response:
    context = _new_context(request, session, principal, patient_id)
    context["values"] = {"urgency": "routine", "mode": "async", "shared": []}
    context["request_key"] = new_token(12)
    return render_private(request, "consultations/new.html", context)


def _shared_items(form: FormData) -> list[dict[str, Any]]:
    items = []
    for raw in form.getlist("shared"):
        kind, _sep, ident = str(raw).partition(":")
        items.append({"kind": kind, "id": ident})
    return items


@router.post("/patients/{patient_id}/consultations/new", response_class=HTMLResponse)
async def create_consultation(
    request: Request, session: DbSession, principal: PagePrincipal, patient_id: Id
) -> Response:
    form = await request.form()
    values = form_values(form)
    key = str(values.get("request_key", ""))[:64] or None
    try:
        data = parse(
            ConsultationIn,
            {
                "patient_id": patient_id,
                "purpose": values.get("purpose", ""),
                "clinical_summary": values.get("clinical_summary", ""),
                "questions": values.get("questions", ""),
                "specialty": values.get("specialty", ""),
                "urgency": values.get("urgency", ""),
                "mode": values.get("mode", ""),
                "target_institution_id": values.get("target_institution_id", ""),
                "shared_items": _shared_items(form),
                "submit": values.get("submit") == "now",
            },
        )
        created = svc.create_consultation(
            session,
            principal,
            data,
            services(request).settings.consultation,
            idempotency_key=key,
        )
    except XietongError as exc:
        failure = form_error(request, session, exc)
        context = _new_context(request, session, principal, patient_id)
        values["shared"] = [str(s) for s in form.getlist("shared")]
        context.update({**failure, "values": values, "request_key": key or new_token(12)})
        return render_private(
            request, "consultations/new.html", context, status_code=int(failure["status"])
        )
    return RedirectResponse(f"/consultations/{created.consultation.id}", status_code=303)

"""Imaging read pages (ADR 0017): the radiologists' worklist, one read (its studies with a
link to the viewer, the structured report with a template picker, the sign-off buttons
each part may use, the history), and the PDF. Messages and the applicant's other actions
are the consultation's pages (a read is a consultation). The services decide who may do
what; a refused form re-renders the page naming the field.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.consultation import service as svc
from xietong.consultation import workflow as wf
from xietong.consultation.labels import READ_STATUS_LABELS
from xietong.consultation.read_schemas import ReadAmendIn, ReadReportIn, SignOffIn
from xietong.consultation.read_templates import BY_KEY, MODALITIES, TEMPLATES, prefill
from xietong.consultation.schemas import AcceptIn
from xietong.consultation.service import read_reports, reads
from xietong.core.errors import N_, Invalid, XietongError
from xietong.core.i18n import translate
from xietong.core.validation import MAX_ID
from xietong.directory.lookup import find_institution
from xietong.directory.models import Practitioner
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.identity.service import display_names
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.navigation import NavItem, register
from xietong.web.pages.consultations import (
    ACTION_LABELS,
    STATE_LABELS,
    form_values,
    page_labels,
)
from xietong.web.pages.forms import form_error, locale_of, parse
from xietong.web.pages.patients_common import render_private
from xietong.web.report_pdf import read_pdf_response

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=MAX_ID)]

register(
    NavItem(
        "reads",
        N_("Imaging reads"),
        "/reads",
        roles=frozenset({str(Role.RADIOLOGIST)}),
        order=31,
    )
)

READ_STATE_LABELS = STATE_LABELS | {
    "preliminary": N_("Preliminary report"),
    "report_signed": N_("Final report"),
}
READ_ACTION_LABELS = {
    "accept": N_("Accept and assign radiologists"),
    "start": N_("Start reading"),
    **{action: ACTION_LABELS[action] for action in wf.READ_ACTIONS},
}
ReadAction = Literal["accept", "start", "sign_preliminary", "finalise", "countersign", "amend_read"]


def _labels(locale: str) -> dict[str, Any]:
    return page_labels(locale) | {
        "state_labels": {k: translate(locale, v) for k, v in READ_STATE_LABELS.items()},
        "read_action_labels": {k: translate(locale, v) for k, v in READ_ACTION_LABELS.items()},
        "status_labels": {k: translate(locale, v) for k, v in READ_STATUS_LABELS.items()},
    }


@router.get("/reads", response_class=HTMLResponse)
def worklist_page(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    modality: Annotated[str, Query(max_length=16)] = "",
    state: Annotated[str, Query(max_length=16)] = "",
) -> Response:
    locale = locale_of(request)
    chosen_modality = modality if modality in MODALITIES else None
    chosen_state = state if state in READ_STATE_LABELS else None
    rows, total = reads.worklist(
        session, principal, modality=chosen_modality, state=chosen_state, limit=200
    )
    context = {
        **_labels(locale),
        "rows": rows,
        "total": total,
        "modalities": MODALITIES,
        "modality": chosen_modality or "",
        "state": chosen_state or "",
        "states": (*reads.WORKLIST_STATES, "report_signed", "completed"),
    }
    return render_private(request, "reads/worklist.html", context)


def _actions(opened: svc.Opened) -> list[str]:
    c = opened.consultation
    found = [
        t.action
        for t in wf.TRANSITIONS
        if t.source == c.state and t.roles & opened.roles and t.action in READ_ACTION_LABELS
    ]
    return list(dict.fromkeys(found))


def _radiologists(session: Session, institution_id: int) -> list[tuple[int, str]]:
    """The reading centre's radiologists with an account, to assign."""
    rows = session.execute(
        select(Practitioner.id, Practitioner.name, User)
        .join(User, User.practitioner_id == Practitioner.id)
        .where(
            Practitioner.institution_id == institution_id,
            Practitioner.is_active.is_(True),
            User.is_active.is_(True),
        )
        .order_by(Practitioner.name, Practitioner.id)
    ).all()
    return [(pid, name) for pid, name, user in rows if Role.RADIOLOGIST in user.role_names]


def read_context(
    request: Request, session: Session, principal: Principal, read_id: int
) -> dict[str, Any]:
    locale = locale_of(request)
    opened = reads.get_read(session, principal, read_id)
    c = opened.consultation
    out = svc.consultation_out(session, opened)
    report_rows = read_reports.read_reports(session, principal, read_id)
    actions = _actions(opened)
    chosen = request.query_params.get("template", "")
    latest = report_rows[0] if report_rows else None
    if chosen in BY_KEY:
        form = prefill(BY_KEY[chosen], locale)
    elif latest is not None:
        form = {
            k: getattr(latest, k)
            for k in ("template_key", "technique", "findings", "impression", "recommendation")
        }
    else:
        form = {"template_key": ""}
    return {
        **_labels(locale),
        "c": c,
        "out": out,
        "patient_name": out["patient_name"],
        "applicant": find_institution(session, c.applicant_institution_id),
        "target": find_institution(session, c.target_institution_id),
        "studies": reads.studies_of(session, c),
        "reports": report_rows,
        "latest": latest,
        "actions": actions,
        "templates": [(t.key, translate(locale, t.label)) for t in TEMPLATES],
        "form": form,
        "radiologists": _radiologists(session, c.target_institution_id)
        if "accept" in actions
        else [],
        "names": {a["practitioner_id"]: a["name"] for a in out["assignments"]}
        | _practitioner_names(session, report_rows),
        "actors": display_names(
            session, {h["actor_user_id"] for h in out["history"] if h["actor_user_id"]}
        ),
        "values": {},
    }


def _practitioner_names(session: Session, rows: list[Any]) -> dict[int, str]:
    ids = {r.countersigned_by_practitioner_id for r in rows if r.countersigned_by_practitioner_id}
    ids |= {r.signed_by_practitioner_id for r in rows}
    if not ids:
        return {}
    found = session.execute(
        select(Practitioner.id, Practitioner.name).where(Practitioner.id.in_(ids))
    ).all()
    return dict(found)


@router.get("/reads/{read_id}", response_class=HTMLResponse)
def read_page(
    request: Request, session: DbSession, principal: PagePrincipal, read_id: Id
) -> Response:
    return render_private(
        request, "reads/detail.html", read_context(request, session, principal, read_id)
    )


@router.get("/reads/{read_id}/report.pdf")
def read_report_pdf(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    read_id: Id,
    version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    return read_pdf_response(
        request, read_reports.printable_read(session, principal, read_id, version)
    )


def _report_values(values: dict[str, Any]) -> dict[str, Any]:
    data = {k: values.get(k, "") for k in ReadReportIn.model_fields if k != "critical_finding"}
    data["critical_finding"] = bool(values.get("critical_finding"))
    return data


def _act(
    request: Request,
    session: Session,
    principal: Principal,
    read_id: int,
    action: str,
    values: dict[str, Any],
    experts: list[str],
) -> None:
    app = services(request)
    archive = read_reports.Archive(app.blobs, app.pii)
    if action == "accept":
        if not experts:
            raise Invalid(N_("Choose at least one radiologist."), code="missing", field="experts")
        body = {"experts": experts, "lead": values.get("lead", ""), "note": values.get("note", "")}
        reads.open_read(session, principal, read_id, action="read.accept", audit_success=False)
        svc.accept(session, principal, read_id, parse(AcceptIn, body))
    elif action == "start":
        reads.open_read(session, principal, read_id, action="read.start", audit_success=False)
        svc.start(session, principal, read_id)
    elif action == "sign_preliminary":
        data = parse(ReadReportIn, _report_values(values))
        read_reports.sign_preliminary(session, principal, read_id, data)
    elif action in ("finalise", "countersign"):
        note = parse(SignOffIn, {"note": values.get("note", "")})
        sign_off = read_reports.finalise if action == "finalise" else read_reports.countersign
        sign_off(session, principal, read_id, note, archive)
    else:
        amend = parse(ReadAmendIn, _report_values(values) | {"reason": values.get("reason", "")})
        read_reports.amend_read(session, principal, read_id, amend, archive)


@router.post("/reads/{read_id}/{action}", response_class=HTMLResponse)
async def read_action(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    read_id: Id,
    action: ReadAction,
) -> Response:
    form = await request.form()
    values = form_values(form)
    experts = [str(v) for v in form.getlist("experts")]
    try:
        _act(request, session, principal, read_id, action, values, experts)
    except XietongError as exc:
        failure = form_error(request, session, exc)
        context = read_context(request, session, principal, read_id)
        context.update(failure)
        context["failed_action"] = action
        context["values"] = values
        context["form"] = {**context["form"], **values}
        return render_private(
            request, "reads/detail.html", context, status_code=int(failure["status"])
        )
    return RedirectResponse(f"/reads/{read_id}", status_code=303)


def chart_reads(session: Session, principal: Principal, patient_id: int) -> list[dict[str, Any]]:
    """The patient's reads the user takes part in, with their final report, for the chart."""
    found = reads.patient_reads(session, principal, patient_id)
    finals = read_reports.final_reports(session, [c.id for c in found])
    return [{"c": c, "report": finals.get(c.id)} for c in found]

"""Referral pages (双向转诊 / 转检): the user's lists (what the institution sent, the
referral desk's inbox, the receiving clinicians' worklist), one referral with its place,
report, discharge summary, follow-ups and history and a form per action the user may take
now, the follow-up record form of the lower institution, and the closed loop.

Who may see or do what is decided by :mod:`xietong.referral.service`; the forms post
``csrf_token`` and redirect back (303), a refused form re-renders the page naming the
field, 403/404 render the error page. The create forms are in ``referral_forms.py``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, XietongError
from xietong.core.i18n import translate
from xietong.core.validation import MAX_ID, as_utc
from xietong.directory.lookup import department_names, institution_names
from xietong.identity.roles import Role
from xietong.identity.service import display_names
from xietong.patients.workflow_view import patient_card
from xietong.records.documents import list_documents
from xietong.referral import service as svc
from xietong.referral import slots
from xietong.referral import workflow as wf
from xietong.referral.models import KINDS, STATES
from xietong.referral.schemas import (
    AcceptIn,
    DecisionIn,
    ExamReportIn,
    FollowUpIn,
    NoteIn,
    OptionalNoteIn,
    ResubmitIn,
)
from xietong.referral.service.common import CLINICAL_ROLES
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.navigation import NavItem, register
from xietong.web.pages.consultations import STATE_LABELS as CONSULTATION_STATE_LABELS
from xietong.web.pages.forms import form_error, locale_of, parse
from xietong.web.pages.patients_common import render_private
from xietong.web.pages.referral_common import (
    VIEWS,
    china_time,
    form_values,
    page_labels,
    shared_links,
    slot_choices,
    tr,
)
from xietong.web.pages.referral_thread import thread_context

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=MAX_ID)]

register(
    NavItem(
        "referrals",
        N_("Referrals"),
        "/referrals",
        roles=frozenset(
            {
                str(Role.APPLICANT_DOCTOR),
                str(Role.COORDINATOR),
                str(Role.EXPERT),
                str(Role.RADIOLOGIST),
            }
        ),
        order=32,
    )
)

# Who sees which list (the service checks it again).
VIEW_ROLES: dict[str, frozenset[str]] = {
    "sent": CLINICAL_ROLES,
    "inbox": frozenset({str(Role.COORDINATOR)}),
    "worklist": frozenset({str(Role.APPLICANT_DOCTOR), str(Role.EXPERT), str(Role.RADIOLOGIST)}),
}
Action = Literal[
    "accept",
    "return",
    "reject",
    "cancel",
    "resubmit",
    "check_in",
    "no_show",
    "start",
    "complete",
    "report",
    "decide",
]
Simple = Literal["return", "reject", "cancel", "start", "complete", "no_show"]
SIMPLE: dict[str, Simple] = {
    "return": "return",
    "reject": "reject",
    "cancel": "cancel",
    "start": "start",
    "complete": "complete",
    "no_show": "no_show",
}
NOTE_REQUIRED = frozenset({"return", "reject"})
LIST_LIMIT = 100
# A sender of a down-referral (the service decides again).


# The lists ---------------------------------------------------------------------------------


def _tabs(principal: Principal) -> list[str]:
    return [code for code, _label in VIEWS if VIEW_ROLES[code] & principal.roles]


@router.get("/referrals", response_class=HTMLResponse)
def referral_list(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    locale = locale_of(request)
    tabs = _tabs(principal)
    params = request.query_params
    chosen = params.get("view", "")
    default = "inbox" if "inbox" in tabs else (tabs[0] if tabs else "")
    current = chosen if chosen in tabs else default
    kind = params.get("kind", "")
    kind = kind if kind in KINDS else ""
    state = params.get("state", "")
    state = state if state in STATES else ""
    rows: list[dict[str, Any]] = []
    total = 0
    if current:
        found, total = svc.list_referrals(
            session,
            principal,
            current,  # type: ignore[arg-type]
            kind=kind or None,
            state=state or None,
            limit=LIST_LIMIT,
        )
        names = institution_names(
            session, {i for r in found for i in (r.sender_institution_id, r.target_institution_id)}
        )
        rows = [
            {
                "r": out,
                "sender": names.get(out["sender_institution_id"], ""),
                "target": names.get(out["target_institution_id"], ""),
            }
            for out in svc.summaries_out(session, found)
        ]
    labels = page_labels(locale)
    context = {
        **labels,
        "tabs": [(code, translate(locale, label)) for code, label in VIEWS if code in tabs],
        "current": current,
        "kind": kind,
        "state": state,
        "kind_choices": list(labels["kind_labels"].items()),
        "state_choices": list(labels["state_labels"].items()),
        "rows": rows,
        "total": total,
    }
    return render_private(request, "referrals/list.html", context)


# One referral ------------------------------------------------------------------------------


def available(opened: svc.Opened, booking: dict[str, Any] | None) -> list[str]:
    """The actions the user may take now (the services still decide when they post): the
    transitions of the referral's table from its state for the user's parts; a no-show
    once the booked appointment has begun."""
    r = opened.referral
    found: list[str] = []
    for t in wf.WORKFLOWS[r.kind].transitions:
        if t.source != r.state or not (t.roles & opened.roles) or t.action == "expire":
            continue
        if t.action == "no_show" and booking and as_utc(booking["starts_at"]) > now():
            continue
        found.append(t.action)
    return found


def _report_documents(
    session: Session, principal: Principal, patient_id: int, institution_id: int
) -> list[dict[str, Any]]:
    """The patient's current documents held by the receiving institution: what an
    examination report may be (the records service decides what the user sees)."""
    return [
        {"id": d.id, "label": f"{d.document_date.isoformat()} · {d.title}"}
        for d, _first in list_documents(session, principal, patient_id)
        if d.institution_id == institution_id and d.status == "current"
    ]


def detail_context(
    request: Request, session: Session, principal: Principal, referral_id: int
) -> dict[str, Any]:
    locale = locale_of(request)
    opened = svc.get_referral(session, principal, referral_id)
    out = svc.referral_out(session, opened)
    r = opened.referral
    booking = out["booking"]
    actions = available(opened, booking)
    institutions = institution_names(session, {r.sender_institution_id, r.target_institution_id})
    departments = department_names(
        session, {r.target_department_id, booking["department_id"] if booking else None}
    )
    context: dict[str, Any] = {
        **page_labels(locale),
        "r": out,
        "patient_name": out["patient_name"],
        "sender": institutions.get(r.sender_institution_id, ""),
        "target": institutions.get(r.target_institution_id, ""),
        "department": departments.get(r.target_department_id or 0, ""),
        "booking": booking,
        "booking_department": departments.get(booking["department_id"], "") if booking else "",
        "shared": shared_links(locale, r.shared_items),
        "discharge": out["discharge"] or {},
        "actors": display_names(session, {h["actor_user_id"] for h in out["history"]}),
        "actions": actions,
        "can_follow_up": r.kind == "down"
        and r.state == "accepted"
        and bool(opened.roles & {wf.DESK, wf.CLINICIAN}),
        "can_send_down": r.state == "in_treatment" and svc.may_send_down(principal, opened),
        "slot_choices": [],
        "documents": [],
        "departments": [],
        "values": {},
        **thread_context(locale, session, principal, referral_id),
    }
    if r.kind != "down" and {"accept", "resubmit"} & set(actions):
        context["slot_choices"] = slot_choices(
            request,
            session,
            principal,
            r.target_institution_id,
            kind=r.kind,
            department_id=r.target_department_id,
            exam_type=r.exam_type,
            priority=r.priority,
        )
    if "report" in actions:
        context["documents"] = _report_documents(
            session, principal, r.patient_id, r.target_institution_id
        )
    if "decide" in actions:
        context["departments"] = [
            (d.id, d.name) for d in slots.departments_of(session, r.target_institution_id)
        ]
    return context


@router.get("/referrals/{referral_id}", response_class=HTMLResponse)
def referral_page(
    request: Request, session: DbSession, principal: PagePrincipal, referral_id: Id
) -> Response:
    context = detail_context(request, session, principal, referral_id)
    return render_private(request, "referrals/detail.html", context)


def _act(
    request: Request,
    session: Session,
    principal: Principal,
    referral_id: int,
    action: str,
    values: dict[str, Any],
) -> None:
    settings = services(request).settings.referral
    note = values.get("note", "")
    if action == "accept":
        data = parse(AcceptIn, {"slot_id": values.get("slot_id", ""), "note": note})
        svc.accept(session, principal, referral_id, data)
    elif action == "resubmit":
        fields = ("note", "summary", "slot_id")
        again = parse(ResubmitIn, {k: values.get(k, "") for k in fields})
        svc.resubmit(session, principal, referral_id, again, settings)
    elif action == "check_in":
        svc.check_in(session, principal, referral_id, parse(OptionalNoteIn, {"note": note}).note)
    elif action == "report":
        report = {"document_id": values.get("document_id", ""), "note": note}
        svc.attach_report(session, principal, referral_id, parse(ExamReportIn, report))
    elif action == "decide":
        fields = ("decision", "note", "target_department_id")
        decision = parse(DecisionIn, {k: values.get(k, "") for k in fields})
        svc.decide(session, principal, referral_id, decision, settings)
    else:
        text = (
            parse(NoteIn, {"note": note}).note
            if action in NOTE_REQUIRED
            else parse(OptionalNoteIn, {"note": note}).note
        )
        svc.simple_action(session, principal, referral_id, SIMPLE[action], text)


def _refused(
    request: Request,
    session: Session,
    principal: Principal,
    referral_id: int,
    exc: XietongError,
    failed: str,
    values: dict[str, Any],
) -> Response:
    """The page again, the refused form naming its field (403 and 404 are error pages)."""
    failure = form_error(request, session, exc)
    context = detail_context(request, session, principal, referral_id)
    context.update(failure)
    context["failed_action"] = failed
    context["values"] = values
    return render_private(
        request, "referrals/detail.html", context, status_code=int(failure["status"])
    )


@router.post("/referrals/{referral_id}/follow-ups/{follow_up_id}", response_class=HTMLResponse)
async def follow_up_record(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    referral_id: Id,
    follow_up_id: Id,
) -> Response:
    """The lower institution records a planned follow-up as done or missed."""
    values = form_values(await request.form())
    try:
        data = parse(FollowUpIn, {"status": values.get("status", ""), "note": values.get("note")})
        svc.record_follow_up(session, principal, referral_id, follow_up_id, data)
    except XietongError as exc:
        failed = f"follow_up_{follow_up_id}"
        return _refused(request, session, principal, referral_id, exc, failed, values)
    return RedirectResponse(f"/referrals/{referral_id}#follow-ups", status_code=303)


@router.post("/referrals/{referral_id}/{action}", response_class=HTMLResponse)
async def referral_action(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    referral_id: Id,
    action: Action,
) -> Response:
    values = form_values(await request.form())
    try:
        _act(request, session, principal, referral_id, action, values)
    except XietongError as exc:
        return _refused(request, session, principal, referral_id, exc, action, values)
    return RedirectResponse(f"/referrals/{referral_id}", status_code=303)


# The closed loop ---------------------------------------------------------------------------


@router.get("/referrals/{referral_id}/chain", response_class=HTMLResponse)
def chain_page(
    request: Request, session: DbSession, principal: PagePrincipal, referral_id: Id
) -> Response:
    """Consultation → up-referral → exam → down-referral → follow-ups, as far as the user
    takes part (the service leaves the rest out)."""
    locale = locale_of(request)
    found = svc.chain(session, principal, referral_id)
    links = found["links"]
    names = institution_names(
        session, {i for link in links for i in (link["institution_from"], link["institution_to"])}
    )
    labels = page_labels(locale)
    consultation_states = tr(locale, CONSULTATION_STATE_LABELS)
    shown = []
    for link in links:
        is_consultation = link["kind"] == "consultation"
        shown.append(
            {
                **link,
                "href": f"/consultations/{link['id']}"
                if is_consultation
                else f"/referrals/{link['id']}",
                "kind_label": translate(locale, N_("Consultation"))
                if is_consultation
                else labels["kind_labels"].get(link["kind"], link["kind"]),
                "state_label": (
                    consultation_states if is_consultation else labels["state_labels"]
                ).get(link["state"], link["state"]),
                "from_name": names.get(link["institution_from"], ""),
                "to_name": names.get(link["institution_to"], ""),
                "current": not is_consultation and link["id"] == referral_id,
            }
        )
    card = patient_card(session, found["patient_id"])
    context = {
        **labels,
        "referral_id": referral_id,
        "patient_name": card.name if card else "",
        "links": shown,
    }
    return render_private(request, "referrals/chain.html", context)


def chart_referrals(
    request: Request, session: Session, principal: Principal, patient_id: int
) -> list[dict[str, Any]]:
    """The patient's referrals the user takes part in, for the chart page (none for
    whoever has no clinical role: they take part in no referral)."""
    if not principal.roles & CLINICAL_ROLES:
        return []
    found = svc.referrals_of_patient(session, principal, patient_id)
    labels = page_labels(locale_of(request))
    names = institution_names(
        session, {i for r in found for i in (r.sender_institution_id, r.target_institution_id)}
    )
    return [
        {
            "id": r.id,
            "kind": r.kind,
            "kind_label": labels["kind_labels"][r.kind],
            "state": r.state,
            "state_label": labels["state_labels"][r.state],
            "priority": r.priority,
            "at": china_time(r.created_at),
            "from_name": names.get(r.sender_institution_id, ""),
            "to_name": names.get(r.target_institution_id, ""),
        }
        for r in found
    ]

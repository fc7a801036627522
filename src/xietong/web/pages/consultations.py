"""Consultation pages: the user's lists (my requests, the centre's inbox, the expert's
worklist), one consultation with a form per action the user may take now, and the
applicant's new-request form on a patient.

Who may see or do what is decided by :mod:`xietong.consultation.service`; the forms post
``csrf_token`` and redirect back (303), a refused form re-renders the page naming the
field, 403/404 render the error page.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.principal import Principal
from xietong.consultation import service as svc
from xietong.consultation import workflow as wf
from xietong.consultation.labels import MODE_LABELS, URGENCY_LABELS
from xietong.consultation.schemas import (
    AcceptIn,
    AmendIn,
    NoteIn,
    OpinionIn,
    OptionalNoteIn,
    RateIn,
    ReportIn,
    ResubmitIn,
    ScheduleIn,
)
from xietong.core.errors import N_, Invalid, XietongError
from xietong.core.i18n import translate
from xietong.core.validation import MAX_ID, as_utc
from xietong.directory.lookup import find_institution, institution_names
from xietong.directory.service.links import upward_centres
from xietong.directory.specialties import specialty_label
from xietong.identity.roles import Role
from xietong.identity.service import display_names
from xietong.records.kinds import KIND_LABELS
from xietong.records.rules import CHINA_TZ
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.navigation import NavItem, register
from xietong.web.pages.consultation_thread import PAGE_MESSAGES, thread_context
from xietong.web.pages.directory_common import WEEKDAYS
from xietong.web.pages.forms import form_error, locale_of, parse
from xietong.web.pages.patients_common import render_private
from xietong.web.report_pdf import pdf_response

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=MAX_ID)]

register(
    NavItem(
        "consultations",
        N_("Consultations"),
        "/consultations",
        roles=frozenset({str(Role.APPLICANT_DOCTOR), str(Role.COORDINATOR), str(Role.EXPERT)}),
        order=30,
    )
)

STATE_LABELS = {
    "draft": N_("Draft"),
    "submitted": N_("Submitted"),
    "returned": N_("Returned for information"),
    "resubmitted": N_("Resubmitted"),
    "accepted": N_("Accepted"),
    "scheduled": N_("Scheduled"),
    "in_progress": N_("In progress"),
    "preliminary": N_("Preliminary report"),
    "report_signed": N_("Report signed"),
    "completed": N_("Completed"),
    "rejected": N_("Rejected"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired"),
}
ACTION_LABELS = {
    "submit": N_("Submit"),
    "resubmit": N_("Resubmit"),
    "accept": N_("Accept"),
    "return": N_("Return for information"),
    "reject": N_("Reject"),
    "cancel": N_("Cancel the request"),
    "schedule": N_("Schedule"),
    "reschedule": N_("Reschedule"),
    "start": N_("Start"),
    "expire": N_("Expired"),
    "opinion": N_("Write my opinion"),
    "sign": N_("Sign the report"),
    "amend": N_("Amend the report"),
    "complete": N_("Complete and rate"),
    # An imaging read's steps (its page offers them; the conversation names them).
    "sign_preliminary": N_("Sign as preliminary"),
    "finalise": N_("Make final"),
    "countersign": N_("Countersign (final)"),
    "amend_read": N_("Amend the final report"),
}
MISSING_LABELS = {
    "outside_hours": N_("outside their hours"),
    "other_session": N_("in another live session"),
}
REASON_LABELS = {
    "specialty_match": N_("specialty matches"),
    "specialty_other": N_("another specialty"),
    "no_window_before_deadline": N_("no hours before the deadline"),
    "named_by_applicant": N_("named by the applicant"),
    "available_windows": N_("{n} available windows"),
    "open_load": N_("{n} open assignments"),
}
VIEWS: tuple[tuple[str, str, frozenset[str]], ...] = (
    ("applicant", N_("My requests"), frozenset({str(Role.APPLICANT_DOCTOR)})),
    ("inbox", N_("Inbox"), frozenset({str(Role.COORDINATOR)})),
    ("worklist", N_("Worklist"), frozenset({str(Role.EXPERT)})),
)
Action = Literal[
    "submit",
    "resubmit",
    "accept",
    "return",
    "reject",
    "cancel",
    "schedule",
    "reschedule",
    "start",
    "opinion",
    "sign",
    "amend",
    "complete",
]
# Steps of an imaging read that its read page offers (with radiologists to assign).
READ_PAGE = frozenset({"accept", "start"})
ACTIONS = frozenset(Action.__args__)  # type: ignore[attr-defined]
LIST_LIMIT = 100
TIMELINE_LIMIT = 100  # the timeline's largest page


def china_time(moment: datetime | None) -> str:
    return as_utc(moment).astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def page_labels(locale: str) -> dict[str, Any]:
    def tr(table: dict[str, str]) -> dict[str, str]:
        return {k: translate(locale, v) for k, v in table.items()}

    return {
        "state_labels": tr(STATE_LABELS),
        "urgency_labels": tr(URGENCY_LABELS),
        "mode_labels": tr(MODE_LABELS),
        "action_labels": tr(ACTION_LABELS),
        "china_time": china_time,
        "specialty_name": lambda code: specialty_label(code, locale),
    }


# The lists ---------------------------------------------------------------------------------


@router.get("/consultations", response_class=HTMLResponse)
def consultation_list(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    locale = locale_of(request)
    tabs = [(code, label) for code, label, roles in VIEWS if roles & principal.roles]
    chosen = request.query_params.get("view", "")
    current = chosen if chosen in {code for code, _ in tabs} else (tabs[0][0] if tabs else "")
    rows: list[dict[str, Any]] = []
    total = 0
    if current:
        found, total = svc.list_consultations(session, principal, current, limit=LIST_LIMIT)  # type: ignore[arg-type]
        rows = [
            {"c": c, "patient_name": out["patient_name"]}
            for c, out in zip(found, svc.summaries_out(session, found), strict=True)
        ]
    context = {
        **page_labels(locale),
        "tabs": [(code, translate(locale, label)) for code, label in tabs],
        "current": current,
        "rows": rows,
        "total": total,
    }
    return render_private(request, "consultations/list.html", context)


# One consultation --------------------------------------------------------------------------


def _available(opened: svc.Opened) -> list[str]:
    """The actions the user may take now (the services still decide when they post)."""
    c = opened.consultation
    found: list[str] = []
    for t in wf.TRANSITIONS:
        if t.source != c.state or not (t.roles & opened.roles) or t.action == "expire":
            continue
        if t.action in wf.READ_ACTIONS or (c.kind == wf.IMAGING_READ and t.action in READ_PAGE):
            continue  # an imaging read's own steps are on its read page
        if t.action == "schedule" and c.mode != "live":
            continue
        if t.action == "start" and c.state == "accepted" and c.mode != "async":
            continue
        if t.action not in found:
            found.append(t.action)
    if c.state == "in_progress" and wf.EXPERT in opened.roles:
        found.insert(0, "opinion")
    return found


def _reason(locale: str, raw: str) -> str:
    key, _sep, value = raw.partition(":")
    label = REASON_LABELS.get(key)
    if label is None:
        return raw
    return translate(locale, label, n=value) if value else translate(locale, label)


def _shared(locale: str, items: list[dict[str, object]]) -> list[dict[str, Any]]:
    """Links to the shared items; the records and document pages decide who opens them."""
    shown = []
    for item in items:
        kind, ident = str(item.get("kind")), item.get("id")
        href = f"/documents/{ident}" if kind == "document" else f"/records/{kind}/{ident}"
        label = translate(locale, KIND_LABELS.get(kind) or N_("Document"))
        shown.append({"kind": kind, "id": ident, "href": href, "label": label})
    return shown


def _session_times(
    request: Request, session: Session, principal: Principal, consultation_id: int
) -> dict[str, Any]:
    """The proposed live-session times for the schedule and reschedule forms: each a radio
    whose value is the ``datetime-local`` text of its start (China time)."""
    locale = locale_of(request)
    settings = services(request).settings.consultation
    found = svc.propose_session_times(session, principal, consultation_id, settings)
    slots = []
    for slot in found.slots:
        start, end = slot.start.astimezone(CHINA_TZ), slot.end.astimezone(CHINA_TZ)
        weekday = translate(locale, WEEKDAYS[start.weekday()])
        missing = [
            translate(
                locale,
                N_("{name} ({reason})"),
                name=e.name,
                reason=translate(locale, MISSING_LABELS.get(e.reason, e.reason)),
            )
            for e in slot.missing
        ]
        slots.append(
            {
                "value": start.strftime("%Y-%m-%dT%H:%M"),
                "label": f"{start:%Y-%m-%d} {weekday} {start:%H:%M}–{end:%H:%M}",
                "partial": slot.partial,
                "missing": ", ".join(missing),
            }
        )
    return {
        "slots": slots,
        "duration": found.duration_minutes,
        "partial": any(s["partial"] for s in slots),
    }


def detail_context(
    request: Request, session: Session, principal: Principal, consultation_id: int
) -> dict[str, Any]:
    locale = locale_of(request)
    opened = svc.get_consultation(session, principal, consultation_id)
    out = svc.consultation_out(session, opened)
    c = opened.consultation
    opinion_rows = svc.opinions(session, principal, consultation_id)
    report_rows = svc.reports(session, principal, consultation_id)
    names = {a["practitioner_id"]: a["name"] for a in out["assignments"]}
    actions = _available(opened)
    recommendations: list[dict[str, Any]] = []
    if "accept" in actions:
        recommendations = [
            {
                "id": r.practitioner_id,
                "name": r.name,
                "score": r.score,
                "reasons": [_reason(locale, x) for x in r.reasons],
            }
            for r in svc.recommend_experts(session, principal, consultation_id)
        ]
    session_times = None
    if {"schedule", "reschedule"} & set(actions):
        session_times = _session_times(request, session, principal, consultation_id)
    mine = None
    if opened.assignment is not None:
        mine = next(
            (o for o in opinion_rows if o.practitioner_id == opened.assignment.practitioner_id),
            None,
        )
    target = find_institution(session, c.target_institution_id)
    applicant = find_institution(session, c.applicant_institution_id)
    return {
        **page_labels(locale),
        "c": c,
        "out": out,
        "patient_name": out["patient_name"],
        "target": target,
        "applicant": applicant,
        "shared": _shared(locale, c.shared_items),
        "actors": display_names(
            session, {h["actor_user_id"] for h in out["history"] if h["actor_user_id"]}
        ),
        "referral_names": institution_names(
            session, {r.referral_institution_id for r in report_rows if r.referral_institution_id}
        ),
        "opinions": [
            {"o": o, "name": names.get(o.practitioner_id, ""), "at": china_time(o.updated_at)}
            for o in opinion_rows
        ],
        "reports": report_rows,
        "names": names,
        "actions": actions,
        "recommendations": recommendations,
        "session_times": session_times,
        "my_opinion": mine.text if mine else "",
        "latest": report_rows[0] if report_rows else None,
        # The applicant refers the patient when the latest report recommends it.
        "can_refer": bool(report_rows)
        and report_rows[0].referral_recommended
        and wf.APPLICANT in opened.roles
        and principal.has(Role.APPLICANT_DOCTOR),
        # Referral targets offered: the centres the applicant's institution sends work to.
        "referral_choices": centre_choices(session, c.applicant_institution_id)
        if {"sign", "amend"} & set(actions)
        else [],
        "values": {},
        **conversation_panel(locale, session, principal, consultation_id),
    }


def conversation_panel(
    locale: str, session: Session, principal: Principal, consultation_id: int
) -> dict[str, Any]:
    """The latest messages and a fresh client id for the message form (a double post of
    the same rendered form makes one message); also shown beside a video session."""
    thread = svc.read_messages(session, principal, consultation_id, tail=PAGE_MESSAGES)
    return thread_context(locale, thread, principal.user_id, page_labels(locale))


@router.get("/consultations/{consultation_id}", response_class=HTMLResponse)
def consultation_page(
    request: Request, session: DbSession, principal: PagePrincipal, consultation_id: Id
) -> Response:
    context = detail_context(request, session, principal, consultation_id)
    return render_private(request, "consultations/detail.html", context)


@router.get("/consultations/{consultation_id}/report.pdf")
def consultation_report_pdf(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    consultation_id: Id,
    version: Annotated[int | None, Query(ge=1, le=MAX_ID)] = None,
) -> Response:
    """A signed report version (the latest without ``version``) as a printable PDF."""
    return pdf_response(request, svc.printable_report(session, principal, consultation_id, version))


def form_values(form: FormData) -> dict[str, Any]:
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def _scheduled_at(values: dict[str, Any]) -> str:
    """The typed ``datetime-local`` value, or else the chosen proposal (``proposed_at``,
    the same format); either is China time."""
    name = "scheduled_at" if values.get("scheduled_at") else "proposed_at"
    raw = str(values.get(name, ""))
    if not raw:
        return raw
    try:
        moment = datetime.fromisoformat(raw)
    except ValueError:
        raise Invalid(N_("Give a date and time."), code="invalid_datetime", field=name) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=CHINA_TZ)
    return moment.isoformat()


def _report(values: dict[str, Any]) -> dict[str, Any]:
    data = {
        k: values.get(k, "")
        for k in ("impression", "recommendations", "referral_institution_id", "reason")
    }
    data["referral_recommended"] = "true" if values.get("referral_recommended") else ""
    return data


def _act(
    request: Request,
    session: Session,
    principal: Principal,
    consultation_id: int,
    action: str,
    form: FormData,
) -> None:
    values = form_values(form)
    settings = services(request).settings.consultation
    if action == "submit":
        svc.submit(session, principal, consultation_id, settings)
    elif action == "resubmit":
        data = parse(ResubmitIn, {k: values.get(k, "") for k in ResubmitIn.model_fields})
        svc.resubmit(session, principal, consultation_id, data, settings)
    elif action == "accept":
        accept = {
            "experts": form.getlist("experts"),
            "lead": values.get("lead", ""),
            "note": values.get("note", ""),
        }
        if not accept["experts"]:
            raise Invalid(N_("Choose at least one expert."), code="missing", field="experts")
        svc.accept(session, principal, consultation_id, parse(AcceptIn, accept))
    elif action in ("return", "reject"):
        note = parse(NoteIn, {"note": values.get("note", "")})
        verb: Literal["return", "reject"] = "return" if action == "return" else "reject"
        svc.simple_action(session, principal, consultation_id, verb, note.note)
    elif action == "cancel":
        optional = parse(OptionalNoteIn, {"note": values.get("note", "")})
        svc.simple_action(session, principal, consultation_id, "cancel", optional.note)
    elif action in ("schedule", "reschedule"):
        when = _scheduled_at(values)
        data_s = parse(ScheduleIn, {"scheduled_at": when, "note": values.get("note", "")})
        step: Literal["schedule", "reschedule"] = (
            "schedule" if action == "schedule" else "reschedule"
        )
        svc.schedule(session, principal, consultation_id, data_s, action=step)
    elif action == "start":
        svc.start(session, principal, consultation_id)
    elif action == "opinion":
        opinion = parse(OpinionIn, {"text": values.get("text", "")})
        svc.write_opinion(session, principal, consultation_id, opinion)
    elif action == "sign":
        report = _report(values)
        report.pop("reason")
        svc.sign_report(session, principal, consultation_id, parse(ReportIn, report))
    elif action == "amend":
        svc.amend_report(session, principal, consultation_id, parse(AmendIn, _report(values)))
    elif action == "complete":
        rate = {"rating": values.get("rating", ""), "comment": values.get("comment", "")}
        svc.complete(session, principal, consultation_id, parse(RateIn, rate))


@router.post("/consultations/{consultation_id}/{action}", response_class=HTMLResponse)
async def consultation_action(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    consultation_id: Id,
    action: Action,
) -> Response:
    form = await request.form()
    try:
        _act(request, session, principal, consultation_id, action, form)
    except XietongError as exc:
        failure = form_error(request, session, exc)
        context = detail_context(request, session, principal, consultation_id)
        context.update(failure)
        context["failed_action"] = action
        context["values"] = form_values(form)
        return render_private(
            request, "consultations/detail.html", context, status_code=int(failure["status"])
        )
    return RedirectResponse(f"/consultations/{consultation_id}", status_code=303)


# A new request -----------------------------------------------------------------------------


def centre_choices(session: Session, institution_id: int | None) -> list[tuple[int, str]]:
    """The service centres an institution sends work to (the directory's upward links), by
    name: the targets of a request and of a referral recommendation."""
    institution = find_institution(session, institution_id) if institution_id else None
    if institution is None:
        return []
    centres = sorted(upward_centres(session, institution), key=lambda i: (i.name, i.id))
    return [(i.id, i.name) for i in centres]

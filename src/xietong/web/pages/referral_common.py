"""What the referral pages share: the names of the referral codes (English msgids,
translated for the page), China-time display, the shared-material links and the slot
choices of the slot picker (through :mod:`xietong.referral.slots`, never the tables)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.principal import Principal
from xietong.core.errors import N_
from xietong.core.i18n import translate
from xietong.core.validation import as_utc
from xietong.records.kinds import KIND_LABELS as RECORD_KIND_LABELS
from xietong.records.rules import CHINA_TZ
from xietong.referral import slots
from xietong.referral.service.requests import SLOT_KINDS
from xietong.referral.slot_labels import CHANNEL_LABELS, EXAM_LABELS
from xietong.referral.slot_labels import KIND_LABELS as SLOT_KIND_LABELS
from xietong.web.pages.directory_common import WEEKDAYS
from xietong.web.pages.forms import locale_of

KIND_LABELS = {
    "up": N_("Up-referral"),
    "exam": N_("Exam referral"),
    "down": N_("Down-referral"),
}
STATE_LABELS = {
    "requested": N_("Awaiting acceptance"),
    "returned": N_("Returned for information"),
    "accepted": N_("Accepted"),
    "arrived": N_("Arrived"),
    "in_treatment": N_("In treatment"),
    "reported": N_("Report attached"),
    "completed": N_("Completed"),
    "rejected": N_("Rejected"),
    "cancelled": N_("Cancelled"),
    "expired": N_("Expired"),
    "no_show": N_("No-show"),
}
ACTION_LABELS = {
    "request": N_("Referral sent"),
    "admit": N_("Admitted by the decision"),
    "accept": N_("Accept"),
    "return": N_("Return for information"),
    "reject": N_("Reject"),
    "cancel": N_("Cancel the referral"),
    "resubmit": N_("Resubmit"),
    "expire": N_("Expired"),
    "check_in": N_("Check the patient in"),
    "no_show": N_("Mark as no-show"),
    "start": N_("Start treatment"),
    "complete": N_("Complete"),
    "report": N_("Attach the examination report"),
    "decide": N_("Decide"),
}
PRIORITY_LABELS = {
    "normal": N_("Normal priority"),
    "green": N_("Green channel"),
}
DECISION_LABELS = {
    "stay": N_("Stay at the lower institution, with advice"),
    "refer_up": N_("Refer up for treatment here"),
    "admit": N_("Admit now (transfer)"),
}
FOLLOW_UP_LABELS = {
    "planned": N_("Planned"),
    "done": N_("Done"),
    "missed": N_("Missed"),
}
# Where the referral lists and forms take them from.
VIEWS: tuple[tuple[str, str], ...] = (
    ("sent", N_("Sent")),
    ("inbox", N_("Referral desk")),
    ("worklist", N_("Worklist")),
)


def china_time(moment: datetime | None) -> str:
    return as_utc(moment).astimezone(CHINA_TZ).strftime("%Y-%m-%d %H:%M") if moment else ""


def tr(locale: str, table: dict[str, str]) -> dict[str, str]:
    return {k: translate(locale, v) for k, v in table.items()}


def page_labels(locale: str) -> dict[str, Any]:
    """The labels every referral page uses (translated) and the China-time formatter."""
    return {
        "kind_labels": tr(locale, KIND_LABELS),
        "state_labels": tr(locale, STATE_LABELS),
        "action_labels": tr(locale, ACTION_LABELS),
        "priority_labels": tr(locale, PRIORITY_LABELS),
        "decision_labels": tr(locale, DECISION_LABELS),
        "follow_up_labels": tr(locale, FOLLOW_UP_LABELS),
        "exam_labels": tr(locale, EXAM_LABELS),
        "slot_kind_labels": tr(locale, SLOT_KIND_LABELS),
        "channel_labels": tr(locale, CHANNEL_LABELS),
        "china_time": china_time,
    }


def form_values(form: FormData) -> dict[str, Any]:
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


def shared_links(locale: str, items: list[dict[str, object]]) -> list[dict[str, Any]]:
    """Links to the shared items; the records and document pages decide who opens them."""
    shown = []
    for item in items:
        kind, ident = str(item.get("kind")), item.get("id")
        href = f"/documents/{ident}" if kind == "document" else f"/records/{kind}/{ident}"
        label = translate(locale, RECORD_KIND_LABELS.get(kind) or N_("Document"))
        shown.append({"kind": kind, "id": ident, "href": href, "label": label})
    return shown


def slot_choices(
    request: Request,
    session: Session,
    principal: Principal,
    institution_id: int,
    *,
    kind: str,
    department_id: int | None,
    exam_type: str,
    priority: str,
) -> list[dict[str, Any]]:
    """The places the principal may book at the institution for a referral of ``kind``:
    outpatient and admission slots for an up-referral, the examination's slots for an exam
    (none until it is chosen), green-channel places for a green one; each a radio with its
    China-time start and free places. The slot service decides who may look (404)."""
    if kind not in SLOT_KINDS or (kind == "exam" and not exam_type):
        return []
    locale = locale_of(request)
    channel: Literal["normal", "green"] = "green" if priority == "green" else "normal"
    found = slots.slots_for_sender(
        session,
        principal,
        institution_id,
        department_id=department_id,
        kinds=SLOT_KINDS[kind],
        exam_type=exam_type if kind == "exam" else None,
        start=slots.china_today(),
        channel=channel,
    )
    kinds = tr(locale, SLOT_KIND_LABELS)
    exams = tr(locale, EXAM_LABELS)
    choices = []
    for s in found:
        start = as_utc(s.starts_at).astimezone(CHINA_TZ)
        end = as_utc(s.ends_at).astimezone(CHINA_TZ)
        weekday = translate(locale, WEEKDAYS[start.weekday()])
        what = exams.get(s.exam_type, s.exam_type) if s.exam_type else kinds.get(s.kind, s.kind)
        who = f" · {s.practitioner_name}" if s.practitioner_name else ""
        choices.append(
            {
                "id": s.slot_id,
                "when": f"{start:%Y-%m-%d} {weekday} {start:%H:%M}–{end:%H:%M}",
                "what": f"{s.department_name} · {what}{who}",
                "free": s.free,
            }
        )
    return choices

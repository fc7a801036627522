"""Group conversations between colleagues (消息): /messages lists mine with their unread
counts and starts a new one (a title and colleagues found by a search among the network's
staff); /messages/{id} is the conversation, followed live like a consultation's
(:mod:`xietong.web.pages.conversation`), with its members, a form to add members and a
button to leave. Who may do what is decided in :mod:`xietong.messaging.groups`.

The colleague search works without JavaScript (a GET form re-renders the page with the
results to tick); with htmx the results come as one types (``/messages/colleagues``) and
static/group_form.js keeps the ticked ones when the search changes.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from xietong.access.principal import Principal
from xietong.core.errors import N_, Invalid, XietongError
from xietong.core.i18n import translate
from xietong.core.validation import MAX_ID
from xietong.messaging import group_messages, groups
from xietong.messaging.models import Message
from xietong.web.deps import DbSession, PagePrincipal, PollingPrincipal
from xietong.web.navigation import NavItem, register
from xietong.web.pages.conversation import (
    PAGE_MESSAGES,
    Conversation,
    back_to,
    form_values,
    post_form,
    thread_context,
)
from xietong.web.pages.forms import form_error, locale_of
from xietong.web.pages.patients_common import render_private
from xietong.web.pages.referral_common import china_time

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
UPLOAD_PATHS = (r"^/messages/\d+/messages$",)
# The forms the ticked colleagues belong to (their ``form`` attribute).
PICKER_FORMS = ("form-create", "form-members")

register(
    NavItem(
        "messages",
        N_("Messages"),
        "/messages",
        roles=frozenset(str(r) for r in groups.STAFF_ROLES),
        order=34,
    )
)

EVENTS = {
    "group.create": N_("Conversation started"),
    "group.add": N_("Added {name}"),
    "group.leave": N_("Left the conversation"),
}


def _event(locale: str, m: Message) -> str:
    label = EVENTS.get(m.body)
    if label is None:
        return m.body
    return translate(locale, label, name=str(m.data.get("name") or ""))


def _member_ids(form: FormData) -> list[int]:
    """The ticked colleagues; 422 naming ``member_ids`` for anything but ids."""
    values = form.getlist("member_ids")
    if len(values) > groups.MAX_MEMBERS or not all(
        isinstance(v, str) and v.isdigit() and len(v) <= 10 for v in values
    ):
        raise Invalid(N_("Not found."), code="member_not_found", field="member_ids")
    return [int(str(v)) for v in values]


def _search(session: Session, principal: Principal, q: str) -> list[groups.Colleague]:
    return groups.search_colleagues(session, principal, q) if q.strip() else []


def _list_context(
    request: Request, session: Session, principal: Principal, q: str
) -> dict[str, Any]:
    summaries = groups.list_groups(session, principal)
    return {
        "rows": [
            {
                "c": s.conversation,
                "members": "、".join(m.name for m in s.members if m.user_id != principal.user_id),
                "count": len(s.members),
                "unread": s.unread,
                "at": china_time(groups.last_activity(s)),
            }
            for s in summaries
        ],
        "q": q,
        "results": _search(session, principal, q),
        "values": {},
        "chosen": [],
    }


@router.get("/messages", response_class=HTMLResponse)
def conversation_list(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    q: Annotated[str, Query(max_length=groups.MAX_QUERY)] = "",
) -> Response:
    return render_private(
        request, "messages/list.html", _list_context(request, session, principal, q)
    )


@router.get("/messages/colleagues", response_class=HTMLResponse)
def colleague_results(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    q: Annotated[str, Query(max_length=groups.MAX_QUERY)] = "",
    form: Annotated[str, Query(max_length=20)] = PICKER_FORMS[0],
) -> Response:
    """The search results to tick for the form ``form`` (htmx fragment)."""
    context = {
        "results": _search(session, principal, q),
        "q": q,
        "picker_form": form if form in PICKER_FORMS else PICKER_FORMS[0],
    }
    return render_private(request, "messages/_colleagues.html", context)


@router.post("/messages", response_class=HTMLResponse)
async def create(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    form = await request.form()
    title = form.get("title")
    try:
        member_ids = _member_ids(form)
        c = groups.create_group(
            session, principal, title if isinstance(title, str) else "", member_ids
        )
    except XietongError as exc:
        failure = form_error(request, session, exc)
        context = _list_context(request, session, principal, "")
        chosen = [i for i in form.getlist("member_ids") if isinstance(i, str) and i.isdigit()]
        context |= {
            **failure,
            "failed_action": "create",
            "values": form_values(form),
            "chosen": groups.colleagues(session, [int(i) for i in chosen[: groups.MAX_MEMBERS]]),
        }
        return render_private(
            request, "messages/list.html", context, status_code=int(failure["status"])
        )
    return RedirectResponse(f"/messages/{c.id}", status_code=303)


# One conversation ------------------------------------------------------------------------


def _conversation(conversation_id: int) -> Conversation:
    return Conversation(
        key=f"group:{conversation_id}",
        poll_url=f"/messages/{conversation_id}/messages",
        post_url=f"/messages/{conversation_id}/messages",
        api_base=f"/api/v1/conversations/{conversation_id}/messages",
        closed_note="",
    )


def _thread(
    locale: str, thread: group_messages.Thread, me: int | None, after: int = 0
) -> dict[str, Any]:
    c = thread.conversation
    return thread_context(
        locale,
        thread,
        me,
        _conversation(c.id),
        event_label=lambda m: _event(locale, m),
        china_time=china_time,
        after=after,
    )


def conversation_panel(
    locale: str, session: Session, principal: Principal, conversation_id: int
) -> dict[str, Any]:
    """The latest messages of a group and its form; also shown beside a video session."""
    thread = group_messages.read_messages(session, principal, conversation_id, tail=PAGE_MESSAGES)
    return _thread(locale, thread, principal.user_id)


def _detail_context(
    request: Request, session: Session, principal: Principal, conversation_id: int, q: str = ""
) -> dict[str, Any]:
    locale = locale_of(request)
    thread = group_messages.read_messages(session, principal, conversation_id, tail=PAGE_MESSAGES)
    return {
        **_thread(locale, thread, principal.user_id),
        "c": thread.conversation,
        "members": groups.colleagues(session, thread.member_ids),
        "q": q,
        "results": _search(session, principal, q),
        "values": {},
        "chosen": [],
    }


@router.get("/messages/{conversation_id}", response_class=HTMLResponse)
def conversation_page(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    conversation_id: Id,
    q: Annotated[str, Query(max_length=groups.MAX_QUERY)] = "",
) -> Response:
    context = _detail_context(request, session, principal, conversation_id, q)
    return render_private(request, "messages/detail.html", context)


@router.get("/messages/{conversation_id}/messages", response_class=HTMLResponse)
def poll_messages(
    request: Request,
    session: DbSession,
    principal: PollingPrincipal,
    conversation_id: Id,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Response:
    """What came after ``after``, appended out of band, and the next poll."""
    thread = group_messages.read_messages(
        session, principal, conversation_id, after=after, limit=PAGE_MESSAGES
    )
    context = _thread(locale_of(request), thread, principal.user_id, after)
    return render_private(request, "conversations/_poll.html", context)


def _refused(
    request: Request,
    session: Session,
    principal: Principal,
    conversation_id: int,
    failure: dict[str, Any],
    action: str,
    form: FormData,
) -> Response:
    context = _detail_context(request, session, principal, conversation_id)
    context |= {**failure, "failed_action": action, "values": form_values(form)}
    return render_private(
        request, "messages/detail.html", context, status_code=int(failure["status"])
    )


@router.post("/messages/{conversation_id}/messages", response_class=HTMLResponse)
async def post_message(
    request: Request, session: DbSession, principal: PagePrincipal, conversation_id: Id
) -> Response:
    form = await request.form()
    failure = post_form(
        request, session, principal, form, group_messages.post_message, conversation_id
    )
    if failure is not None:
        return _refused(request, session, principal, conversation_id, failure, "message", form)
    return RedirectResponse(back_to(form, f"/messages/{conversation_id}"), status_code=303)


@router.post("/messages/{conversation_id}/members", response_class=HTMLResponse)
async def add_members(
    request: Request, session: DbSession, principal: PagePrincipal, conversation_id: Id
) -> Response:
    form = await request.form()
    try:
        groups.add_members(session, principal, conversation_id, _member_ids(form))
    except XietongError as exc:
        failure = form_error(request, session, exc)
        return _refused(request, session, principal, conversation_id, failure, "members", form)
    return RedirectResponse(f"/messages/{conversation_id}#members", status_code=303)


@router.post("/messages/{conversation_id}/leave", response_class=HTMLResponse)
def leave(
    request: Request, session: DbSession, principal: PagePrincipal, conversation_id: Id
) -> Response:
    groups.leave_group(session, principal, conversation_id)
    return RedirectResponse("/messages", status_code=303)

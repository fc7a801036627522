"""The consultation page's messages: the polling fragment and the message form
(:mod:`xietong.web.pages.conversation` has what every conversation page shares)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from xietong.consultation import service as svc
from xietong.core.validation import MAX_ID
from xietong.web.deps import DbSession, PagePrincipal, PollingPrincipal
from xietong.web.pages.consultation_thread import PAGE_MESSAGES, thread_context
from xietong.web.pages.consultations import Id, detail_context, page_labels
from xietong.web.pages.conversation import back_to, form_values, post_form
from xietong.web.pages.forms import locale_of
from xietong.web.pages.patients_common import render_private

router = APIRouter(include_in_schema=False)
UPLOAD_PATHS = (r"^/consultations/\d+/messages$",)


@router.get("/consultations/{consultation_id}/messages", response_class=HTMLResponse)
def poll_messages(
    request: Request,
    session: DbSession,
    principal: PollingPrincipal,
    consultation_id: Id,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Response:
    """What came after ``after``, appended to the list out of band, and the next poll."""
    locale = locale_of(request)
    thread = svc.read_messages(
        session, principal, consultation_id, after=after, limit=PAGE_MESSAGES
    )
    context = {
        **page_labels(locale),
        **thread_context(locale, thread, principal.user_id, page_labels(locale), after),
        "c": thread.consultation,
    }
    return render_private(request, "conversations/_poll.html", context)


@router.post("/consultations/{consultation_id}/messages", response_class=HTMLResponse)
async def post_message(
    request: Request, session: DbSession, principal: PagePrincipal, consultation_id: Id
) -> Response:
    form = await request.form()
    failure = post_form(request, session, principal, form, svc.post_message, consultation_id)
    if failure is not None:
        context = detail_context(request, session, principal, consultation_id)
        context.update(failure)
        context["failed_action"] = "message"
        context["values"] = form_values(form)
        return render_private(
            request, "consultations/detail.html", context, status_code=int(failure["status"])
        )
    return RedirectResponse(back_to(form, f"/consultations/{consultation_id}"), status_code=303)

"""The referral page's messages: the polling fragment and the message form
(:mod:`xietong.web.pages.conversation` has what every conversation page shares)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from xietong.core.validation import MAX_ID
from xietong.referral.service import messages as svc
from xietong.web.deps import DbSession, PagePrincipal, PollingPrincipal
from xietong.web.pages.conversation import PAGE_MESSAGES, back_to, form_values, post_form
from xietong.web.pages.forms import locale_of
from xietong.web.pages.patients_common import render_private
from xietong.web.pages.referral_thread import context_of
from xietong.web.pages.referrals import Id, detail_context

router = APIRouter(include_in_schema=False)
UPLOAD_PATHS = (r"^/referrals/\d+/messages$",)


@router.get("/referrals/{referral_id}/messages", response_class=HTMLResponse)
def poll_messages(
    request: Request,
    session: DbSession,
    principal: PollingPrincipal,
    referral_id: Id,
    after: Annotated[int, Query(ge=0, le=MAX_ID)] = 0,
) -> Response:
    """What came after ``after``, appended to the list out of band, and the next poll."""
    thread = svc.read_messages(session, principal, referral_id, after=after, limit=PAGE_MESSAGES)
    context = context_of(locale_of(request), thread, principal.user_id, after)
    return render_private(request, "conversations/_poll.html", context)


@router.post("/referrals/{referral_id}/messages", response_class=HTMLResponse)
async def post_message(
    request: Request, session: DbSession, principal: PagePrincipal, referral_id: Id
) -> Response:
    form = await request.form()
    failure = post_form(request, session, principal, form, svc.post_message, referral_id)
    if failure is not None:
        context = detail_context(request, session, principal, referral_id)
        context.update(failure)
        context["failed_action"] = "message"
        context["values"] = form_values(form)
        return render_private(
            request, "referrals/detail.html", context, status_code=int(failure["status"])
        )
    return RedirectResponse(back_to(form, f"/referrals/{referral_id}"), status_code=303)

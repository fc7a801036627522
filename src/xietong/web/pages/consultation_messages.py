"""The consultation page's messages: the polling fragment (htmx: fetched at once when the
WebSocket pushes a message, static/live_chat.js, and every few seconds without it) and the
message form (text and an
optional photo or PDF, multipart).

The poll does not count as activity (web.deps.PollingPrincipal): an open consultation page
never keeps an idle session alive. The form works without JavaScript: it posts, then
redirects back to the conversation (303); a refused message re-renders the page naming the
field. The form carries a client id made when the page was rendered, so posting the same
form twice (a double click, a resend after a timeout) makes one message.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from starlette.datastructures import UploadFile

from xietong.consultation import service as svc
from xietong.core.errors import XietongError
from xietong.core.validation import MAX_ID
from xietong.messaging.service import Attachment
from xietong.web.deps import DbSession, PagePrincipal, PollingPrincipal, services
from xietong.web.pages.consultation_thread import PAGE_MESSAGES, thread_context
from xietong.web.pages.consultations import Id, detail_context, form_values, page_labels
from xietong.web.pages.forms import form_error, locale_of
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
    return render_private(request, "consultations/_message_poll.html", context)


def _attachment(value: object, limit: int) -> Attachment | None:
    if not isinstance(value, UploadFile) or not (value.filename or value.size):
        return None
    return Attachment(value.filename or "", value.content_type, value.file.read(limit + 1))


@router.post("/consultations/{consultation_id}/messages", response_class=HTMLResponse)
async def post_message(
    request: Request, session: DbSession, principal: PagePrincipal, consultation_id: Id
) -> Response:
    app = services(request)
    form = await request.form()
    text = form.get("text")
    client_id = form.get("client_id")
    try:
        svc.post_message(
            session,
            principal,
            consultation_id,
            text=text if isinstance(text, str) else "",
            client_id=client_id if isinstance(client_id, str) else None,
            attachment=_attachment(form.get("file"), app.settings.upload.max_document_bytes),
            blobs=app.blobs,
            limits=app.settings.upload,
        )
    except XietongError as exc:
        failure = form_error(request, session, exc)
        context = detail_context(request, session, principal, consultation_id)
        context.update(failure)
        context["failed_action"] = "message"
        context["values"] = form_values(form)
        return render_private(
            request, "consultations/detail.html", context, status_code=int(failure["status"])
        )
    return RedirectResponse(f"/consultations/{consultation_id}#conversation", status_code=303)

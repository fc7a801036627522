"""The video session pages: /live/{id} for those who may see the session's subject,
/live/join/{token} for a guest holding a join link (signed in; they wait in the lobby), and
POST /live/instant, the "join video" button of a subject's page (the subject's open session,
or a new instant one). The call itself runs in the browser (static/live/) over /ws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.core.errors import NotFound, XietongError
from xietong.core.validation import MAX_ID
from xietong.live import lobby
from xietong.live import service as svc
from xietong.live.schemas import SUBJECT_ID, SUBJECT_KIND, InstantIn
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.pages import consultations, messages, referral_thread
from xietong.web.pages.forms import locale_of
from xietong.web.pages.patients_common import render_private
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)
# The subject's conversation beside the call: (locale, session, principal, subject id) →
# the context of conversations/_section.html.
Panel = Callable[[str, Session, Principal, int], dict[str, Any]]
PANELS: dict[str, Panel] = {
    "consultation": consultations.conversation_panel,
    "referral": referral_thread.thread_context,
    "group": messages.conversation_panel,
}
SessionId = Annotated[int, Path(ge=1, le=MAX_ID)]
Token = Annotated[str, Path(min_length=1, max_length=200)]


@router.post("/live/instant")
def instant(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    subject_kind: Annotated[str, Form(pattern=SUBJECT_KIND)],
    subject_id: Annotated[str, Form(pattern=SUBJECT_ID)],
) -> Response:
    body = InstantIn(subject_kind=subject_kind, subject_id=subject_id)
    opened, _created = svc.instant_session(
        session, principal, body, services(request).settings.live
    )
    return RedirectResponse(svc.session_url(opened.live.id), status_code=303)


@router.get("/live/{session_id}", response_class=HTMLResponse)
def session_page(
    request: Request, session_id: SessionId, session: DbSession, principal: PagePrincipal
) -> Response:
    opened = svc.get_session(session, principal, session_id)
    live = svc.session_out(session, opened)
    context = {"live": live, "link": None, "guest": False, "values": {}}
    context |= _conversation(request, session, principal, live)
    return render_private(request, "live/session.html", context)


def _conversation(
    request: Request, session: Session, principal: Principal, live: dict[str, Any]
) -> dict[str, Any]:
    """The subject's conversation (a consultation's, its imaging reads included; a
    referral's; a group's) when the reader may read it; the message form comes back here."""
    panel_of = PANELS.get(live["subject_kind"])
    if panel_of is None:
        return {}
    try:
        panel = panel_of(locale_of(request), session, principal, int(live["subject_id"]))
    except XietongError:
        return {}
    return {**panel, "return_to": svc.session_url(int(live["id"]))}


@router.get("/live/join/{token}", response_class=HTMLResponse)
def guest_page(
    request: Request, token: Token, session: DbSession, principal: PagePrincipal
) -> Response:
    """A guest's page: the session's id only; whether the link is still valid, and whether
    the host admits them, is decided when they join."""
    session_id = lobby.session_of_token(session, token)
    if session_id is None:
        raise NotFound(code="live_link_not_found", field="token")
    live = {"id": session_id, "title": "", "state": "open", "is_host": False, "mode": "mesh"}
    return render(request, "live/session.html", {"live": live, "link": token, "guest": True})

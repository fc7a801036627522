"""The role-aware home page."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from xietong.identity.roles import ROLE_LABELS, Role
from xietong.web.deps import DbSession, resolve_principal
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/", response_class=HTMLResponse)
def home(request: Request, session: DbSession) -> Response:
    principal = resolve_principal(request, session)
    if principal.user_id is None:
        return RedirectResponse("/login", status_code=303)
    roles = [
        ROLE_LABELS[Role(r)] for r in sorted(principal.roles) if r in Role.__members__.values()
    ]
    return render(request, "home.html", {"role_labels": roles})

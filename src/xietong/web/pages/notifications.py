"""The notification centre: /notifications (the user's own, unread first), following one
(/notifications/{id}/open marks it read, then goes to its subject), "mark all read", and the
unread-count badge of the top bar (/notifications/badge, polled by htmx every 60 seconds).

The badge poll does not count as activity: it resolves the session without refreshing the
idle timer (web.deps.PollingPrincipal), so an open tab never keeps an idle session alive.
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from xietong.core.errors import N_
from xietong.core.validation import MAX_ID
from xietong.notifications import service as svc
from xietong.notifications.models import Notification
from xietong.web.deps import DbSession, PagePrincipal, PollingPrincipal, services
from xietong.web.navigation import NavItem, register
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=MAX_ID)]
PAGE_SIZE = 20
CHINA = ZoneInfo("Asia/Shanghai")

register(NavItem("notifications", N_("Notifications"), "/notifications", order=5))


def _locale(request: Request) -> str:
    chosen: str | None = getattr(request.state, "locale", None)
    return chosen or services(request).settings.i18n.default_locale


def _when(at: datetime) -> str:
    return at.astimezone(CHINA).strftime("%Y-%m-%d %H:%M")


def _item(row: Notification, locale: str) -> dict[str, Any]:
    return {
        "id": row.id,
        "title": svc.title_text(row, locale),
        "kind": row.kind,
        "when": _when(row.created_at),
        "unread": row.read_at is None,
        "href": f"/notifications/{row.id}/open",
    }


@router.get("/notifications", response_class=HTMLResponse)
def notification_centre(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    page: Annotated[int, Query(ge=1, le=10_000)] = 1,
    unread_only: bool = False,
) -> Response:
    found = svc.list_for(
        session,
        principal,
        unread_only=unread_only,
        limit=PAGE_SIZE,
        offset=(page - 1) * PAGE_SIZE,
    )
    locale = _locale(request)
    return render(
        request,
        "notifications/list.html",
        {
            "items": [_item(row, locale) for row in found.items],
            "total": found.total,
            "unread": found.unread,
            "page": page,
            "pages": max(1, -(-found.total // PAGE_SIZE)),
            "unread_only": unread_only,
            "unread_notifications": found.unread,
        },
    )


@router.get("/notifications/badge", response_class=HTMLResponse)
def badge(request: Request, session: DbSession, principal: PollingPrincipal) -> Response:
    """The top bar's badge, re-rendered by its own poll (not counted as activity)."""
    return render(
        request,
        "notifications/_badge.html",
        {"unread_notifications": svc.unread_count(session, principal)},
        headers={"Cache-Control": "no-store"},
    )


@router.get("/notifications/{notification_id}/open")
def open_notification(
    notification_id: Id, session: DbSession, principal: PagePrincipal
) -> Response:
    """Mark read, then go to the subject (a local path, checked when it was written)."""
    row = svc.mark_read(session, principal, notification_id)
    return RedirectResponse(svc.check_link(row.link), status_code=303)


@router.post("/notifications/read-all")
def read_all(session: DbSession, principal: PagePrincipal) -> Response:
    svc.mark_all_read(session, principal)
    return RedirectResponse("/notifications", status_code=303)

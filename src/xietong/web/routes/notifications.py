"""The notification centre's JSON API under /api/v1/notifications: the signed-in user's own
notifications (paged, unread first), the unread count, mark one read, mark all read.

Nobody sees another user's notification: its id answers 404, and the refusal is audited.
The unread count is meant for polling and does not count as activity for the idle timeout.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from xietong.core.validation import MAX_ID
from xietong.notifications import service as svc
from xietong.notifications.models import Notification
from xietong.notifications.schemas import (
    ListParams,
    NotificationOut,
    NotificationPage,
    ReadAllOut,
    UnreadCountOut,
)
from xietong.web.deps import CurrentPrincipal, DbSession, PollingPrincipal, services

router = APIRouter(prefix="/api/v1/notifications", tags=["notifications"])

NotificationId = Annotated[int, Path(ge=1, le=MAX_ID)]


def request_locale(request: Request) -> str:
    chosen: str | None = getattr(request.state, "locale", None)
    return chosen or services(request).settings.i18n.default_locale


def notification_out(row: Notification, locale: str) -> NotificationOut:
    return NotificationOut(
        id=row.id,
        kind=row.kind,
        subject_kind=row.subject_kind,
        subject_id=row.subject_id,
        title=svc.title_text(row, locale),
        link=row.link,
        open_url=f"/notifications/{row.id}/open",
        actor_user_id=row.actor_user_id,
        created_at=row.created_at,
        read_at=row.read_at,
        read=row.read_at is not None,
    )


@router.get("", response_model=NotificationPage)
def list_notifications(
    params: Annotated[ListParams, Query()],
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> NotificationPage:
    """The caller's notifications, unread first, then newest first."""
    found = svc.list_for(
        session,
        principal,
        unread_only=params.unread_only,
        limit=params.limit,
        offset=params.offset,
    )
    locale = request_locale(request)
    return NotificationPage(
        items=[notification_out(row, locale) for row in found.items],
        total=found.total,
        unread=found.unread,
        limit=params.limit,
        offset=params.offset,
    )


@router.get("/unread-count", response_model=UnreadCountOut)
def unread_count(session: DbSession, principal: PollingPrincipal) -> UnreadCountOut:
    """How many are unread; polling it does not extend an idle session."""
    return UnreadCountOut(unread=svc.unread_count(session, principal))


@router.post("/read-all", response_model=ReadAllOut)
def read_all(session: DbSession, principal: CurrentPrincipal) -> ReadAllOut:
    marked = svc.mark_all_read(session, principal)
    return ReadAllOut(marked=marked, unread=svc.unread_count(session, principal))


@router.post("/{notification_id}/read", response_model=NotificationOut)
def read_one(
    notification_id: NotificationId,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> NotificationOut:
    row = svc.mark_read(session, principal, notification_id)
    return notification_out(row, request_locale(request))

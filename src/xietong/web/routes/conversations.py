"""Group conversations between colleagues under /api/v1/conversations: start one, list
mine (members, last activity, unread count), add members, leave, and its messages
(:mod:`xietong.web.routes.conversation_api`); /api/v1/colleagues finds whom to add.
Who may do what is decided in :mod:`xietong.messaging.groups`."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Query, Response

from xietong.core.validation import MAX_ID
from xietong.messaging import group_messages, groups
from xietong.messaging.schemas import (
    ColleagueOut,
    GroupIn,
    GroupListOut,
    GroupOut,
    MembersIn,
)
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal
from xietong.web.routes.conversation_api import ConversationService, add_conversation_routes

router = APIRouter(
    prefix="/api/v1/conversations",
    tags=["conversations"],
    dependencies=[Depends(current_principal)],
)
colleague_router = APIRouter(
    prefix="/api/v1/colleagues", tags=["conversations"], dependencies=[Depends(current_principal)]
)
ConversationId = Annotated[int, Path(ge=1, le=MAX_ID)]
UPLOAD_PATHS = (r"^/api/v1/conversations/\d+/messages/files$",)


def group_out(summary: groups.Summary) -> dict[str, Any]:
    c = summary.conversation
    return {
        "id": c.id,
        "title": c.title or "",
        "members": [
            {"user_id": m.user_id, "name": m.name, "institution": m.institution}
            for m in summary.members
        ],
        "last_message_at": c.last_message_at,
        "last_seq": c.last_seq,
        "unread": summary.unread,
        "created_at": c.created_at,
    }


@router.post("", response_model=GroupOut, status_code=201)
def create(body: GroupIn, session: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    """Start a conversation with 1–49 colleagues (active staff of any institution)."""
    c = groups.create_group(session, principal, body.title, body.member_ids)
    return group_out(groups.summary_of(session, principal, c))


@router.get("", response_model=GroupListOut)
def mine(session: DbSession, principal: CurrentPrincipal) -> dict[str, Any]:
    """My conversations, the latest activity first."""
    return {"items": [group_out(s) for s in groups.list_groups(session, principal)]}


@router.post("/{conversation_id}/members", response_model=GroupOut)
def add_members(
    conversation_id: ConversationId,
    body: MembersIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    """Add colleagues (those already in it stay as they are); members only."""
    groups.add_members(session, principal, conversation_id, body.member_ids)
    opened = groups.open_group(session, principal, conversation_id, action="group.read")
    return group_out(groups.summary_of(session, principal, opened.conversation))


@router.delete("/{conversation_id}/members/me", status_code=204)
def leave(
    conversation_id: ConversationId, session: DbSession, principal: CurrentPrincipal
) -> Response:
    """Leave the conversation: it disappears from my list; the others see that I left."""
    groups.leave_group(session, principal, conversation_id)
    return Response(status_code=204)


add_conversation_routes(
    router,
    "conversation_id",
    ConversationService(
        read=group_messages.read_messages,
        post=group_messages.post_message,
        attachment=group_messages.message_attachment,
        render=group_messages.message_out,
    ),
)


@colleague_router.get("", response_model=list[ColleagueOut])
def search(
    session: DbSession,
    principal: CurrentPrincipal,
    q: Annotated[str, Query(min_length=1, max_length=groups.MAX_QUERY)],
) -> list[dict[str, Any]]:
    """Active staff of the network whose name or username holds ``q`` (at most 20)."""
    return [
        {"user_id": c.user_id, "name": c.name, "username": c.username, "institution": c.institution}
        for c in groups.search_colleagues(session, principal, q)
    ]

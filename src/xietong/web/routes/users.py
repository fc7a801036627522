"""Account administration API: /api/v1/users (platform and institution admins).

Who may do what is decided in :mod:`xietong.access.accounts`; these routes parse, call one
use case and answer.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request, Response

from xietong.access import accounts
from xietong.core.validation import MAX_ID
from xietong.identity.schemas import (
    PasswordResetIn,
    UserCreateIn,
    UserListQuery,
    UserOut,
    UserPage,
    UserUpdateIn,
)
from xietong.web.deps import AdminPrincipal, DbSession, services

router = APIRouter(prefix="/api/v1/users", tags=["users"])

UserId = Annotated[int, Path(ge=1, le=MAX_ID)]


@router.get("", response_model=UserPage)
def list_users(
    session: DbSession, principal: AdminPrincipal, query: Annotated[UserListQuery, Query()]
) -> UserPage:
    """Platform admin: every account (filters: institution_id, role, q). Institution admin:
    the accounts of their own institution."""
    rows, total = accounts.list_users(
        session,
        principal,
        accounts.UserFilter(
            institution_id=query.institution_id,
            role=str(query.role) if query.role else None,
            q=query.q,
            limit=query.limit,
            offset=query.offset,
        ),
    )
    return UserPage(
        items=[UserOut.of(u) for u in rows], total=total, limit=query.limit, offset=query.offset
    )


@router.post("", response_model=UserOut, status_code=201)
def create_user(
    request: Request,
    response: Response,
    body: UserCreateIn,
    session: DbSession,
    principal: AdminPrincipal,
) -> UserOut:
    user = accounts.create_user(session, principal, body, services(request).settings.security)
    response.headers["Location"] = f"/api/v1/users/{user.id}"
    return UserOut.of(user)


@router.get("/{user_id}", response_model=UserOut)
def get_user(user_id: UserId, session: DbSession, principal: AdminPrincipal) -> UserOut:
    return UserOut.of(accounts.get_user(session, principal, user_id))


@router.patch("/{user_id}", response_model=UserOut)
def update_user(
    user_id: UserId, body: UserUpdateIn, session: DbSession, principal: AdminPrincipal
) -> UserOut:
    return UserOut.of(accounts.update_user(session, principal, user_id, body))


@router.post("/{user_id}/unlock", response_model=UserOut)
def unlock_user(user_id: UserId, session: DbSession, principal: AdminPrincipal) -> UserOut:
    return UserOut.of(accounts.unlock_user(session, principal, user_id))


@router.post("/{user_id}/password", status_code=204)
def reset_password(
    request: Request,
    user_id: UserId,
    body: PasswordResetIn,
    session: DbSession,
    principal: AdminPrincipal,
) -> Response:
    """Set a temporary password: the user must change it, and their sessions end."""
    accounts.reset_password(
        session, principal, user_id, body.new_password, services(request).settings.security
    )
    return Response(status_code=204)


@router.post("/{user_id}/totp/reset", response_model=UserOut)
def reset_totp(user_id: UserId, session: DbSession, principal: AdminPrincipal) -> UserOut:
    return UserOut.of(accounts.reset_totp(session, principal, user_id))

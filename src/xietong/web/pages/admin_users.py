"""Account administration pages: list and filters, create, detail with role editing,
unlock, password reset, second-factor reset, (de)activation."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Form, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from sqlalchemy.orm import Session

from xietong.access import accounts
from xietong.access.principal import Principal
from xietong.core.errors import N_, XietongError
from xietong.core.validation import MAX_ID
from xietong.identity.models import User
from xietong.identity.roles import ROLE_LABELS, Role
from xietong.identity.schemas import UserCreateIn, UserListQuery, UserOut, UserUpdateIn
from xietong.web.deps import AdminPagePrincipal, DbSession, services
from xietong.web.navigation import NavItem, register
from xietong.web.pages.forms import form_error, parse
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)

register(
    NavItem(
        "admin.users",
        N_("Users"),
        "/admin/users",
        roles=frozenset({Role.PLATFORM_ADMIN.value, Role.INSTITUTION_ADMIN.value}),
        order=800,
    )
)

UserId = Annotated[int, Path(ge=1, le=MAX_ID)]
LIST_FILTERS = ("institution_id", "role", "q", "limit", "offset")
DONE_MESSAGES = {
    "created": N_("The account was created."),
    "saved": N_("Saved."),
    "unlocked": N_("The account was unlocked."),
    "password": N_("The password was reset; the user must change it at next sign-in."),
    "totp": N_("The second factor was removed; the user can set it up again."),
    "activated": N_("The account was activated."),
    "deactivated": N_("The account was deactivated and its sessions ended."),
}


def _role_context(principal: Principal) -> dict[str, Any]:
    return {
        "role_labels": {r.value: ROLE_LABELS[r] for r in Role},
        "grantable": [r.value for r in accounts.grantable_roles(principal)],
    }


@router.get("/admin/users", response_class=HTMLResponse)
def users_page(request: Request, session: DbSession, principal: AdminPagePrincipal) -> Response:
    raw = {k: request.query_params.get(k, "") for k in LIST_FILTERS}
    context: dict[str, Any] = {"filters": raw, **_role_context(principal)}
    status = 200
    try:
        query = parse(UserListQuery, raw)
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
    except XietongError as exc:
        # A role refusal (403) or a foreign institution (404) is the error page.
        context |= form_error(request, session, exc)
        status = exc.status
        rows, total, query = [], 0, UserListQuery()
    kept = {k: v for k, v in raw.items() if v and k not in ("offset", "limit")}
    context |= {
        "users": [UserOut.of(u) for u in rows],
        "total": total,
        "offset": query.offset,
        "limit": query.limit,
        "prev_url": _page_url(kept, query.offset - query.limit) if query.offset > 0 else None,
        "next_url": _page_url(kept, query.offset + query.limit)
        if query.offset + query.limit < total
        else None,
        "institution_names": accounts.institution_names(
            session, {u.institution_id for u in rows if u.institution_id is not None}
        ),
        "institutions": accounts.administrable_institutions(session, principal)
        if principal.is_platform_admin
        else [],
    }
    template = (
        "admin/users_table.html"
        if request.headers.get("hx-request") == "true"
        else "admin/users.html"
    )
    return render(request, template, context, status_code=status)


def _page_url(kept: dict[str, str], offset: int) -> str:
    return "/admin/users?" + urlencode({**kept, "offset": max(offset, 0)})


def _new_form(request: Request, session: Session, principal: Principal, **extra: Any) -> Response:
    institutions = accounts.administrable_institutions(session, principal)
    context: dict[str, Any] = {
        "institutions": institutions,
        "form": {"roles": []},
        **_role_context(principal),
    }
    context.update(extra)
    status = extra.get("status", 200)
    return render(request, "admin/user_new.html", context, status_code=int(status))


@router.get("/admin/users/new", response_class=HTMLResponse)
def new_user_page(request: Request, session: DbSession, principal: AdminPagePrincipal) -> Response:
    # Same refusal as the API for those who may not create accounts.
    accounts.require_user_admin(session, principal, action="user.create")
    return _new_form(request, session, principal)


@router.post("/admin/users/new", response_class=HTMLResponse)
def new_user_submit(
    request: Request,
    session: DbSession,
    principal: AdminPagePrincipal,
    username: Annotated[str, Form()] = "",
    display_name: Annotated[str, Form()] = "",
    password: Annotated[str, Form()] = "",
    roles: Annotated[list[str] | None, Form()] = None,
    institution_id: Annotated[str, Form()] = "",
    practitioner_id: Annotated[str, Form()] = "",
    jurisdiction_code: Annotated[str, Form()] = "",
) -> Response:
    form = {
        "username": username,
        "display_name": display_name,
        "roles": roles or [],
        "institution_id": institution_id,
        "practitioner_id": practitioner_id,
        "jurisdiction_code": jurisdiction_code,
    }
    try:
        data = parse(UserCreateIn, {**form, "password": password, "roles": roles or None})
        user = accounts.create_user(session, principal, data, services(request).settings.security)
    except XietongError as exc:
        return _new_form(
            request, session, principal, form=form, **form_error(request, session, exc)
        )
    return RedirectResponse(f"/admin/users/{user.id}?done=created", status_code=303)


def _detail(
    request: Request, session: Session, principal: Principal, user: User, **extra: Any
) -> Response:
    ids = {user.institution_id} if user.institution_id is not None else set()
    institutions = accounts.institution_names(session, ids)
    done = request.query_params.get("done", "")
    context: dict[str, Any] = {
        "user": UserOut.of(user),
        "institution_name": institutions.get(user.institution_id or 0, ""),
        "is_self": user.id == principal.user_id,
        "is_platform_admin": principal.is_platform_admin,
        "done": DONE_MESSAGES.get(done),
        **_role_context(principal),
    }
    context.update(extra)
    status = extra.get("status", 200)
    return render(request, "admin/user_detail.html", context, status_code=int(status))


@router.get("/admin/users/{user_id}", response_class=HTMLResponse)
def user_page(
    request: Request, user_id: UserId, session: DbSession, principal: AdminPagePrincipal
) -> Response:
    user = accounts.get_user(session, principal, user_id)
    return _detail(request, session, principal, user)


def _after(user_id: int, done: str) -> Response:
    return RedirectResponse(f"/admin/users/{user_id}?done={done}", status_code=303)


def _refused(
    request: Request, session: Session, principal: Principal, user_id: int, exc: XietongError
) -> Response:
    error = form_error(request, session, exc)
    return _detail(
        request, session, principal, accounts.get_user(session, principal, user_id), **error
    )


@router.post("/admin/users/{user_id}", response_class=HTMLResponse)
def user_edit(
    request: Request,
    user_id: UserId,
    session: DbSession,
    principal: AdminPagePrincipal,
    display_name: Annotated[str, Form()] = "",
    roles: Annotated[list[str] | None, Form()] = None,
    jurisdiction_code: Annotated[str | None, Form()] = None,
) -> Response:
    # Every box unticked is an empty list (refused: "too few items"), never "keep them".
    values: dict[str, Any] = {"display_name": display_name, "roles": roles or []}
    if principal.is_platform_admin and jurisdiction_code:
        values["jurisdiction_code"] = jurisdiction_code
    try:
        data = parse(UserUpdateIn, values)
        accounts.update_user(session, principal, user_id, data)
    except XietongError as exc:
        return _refused(request, session, principal, user_id, exc)
    return _after(user_id, "saved")


@router.post("/admin/users/{user_id}/active", response_class=HTMLResponse)
def user_active(
    request: Request,
    user_id: UserId,
    session: DbSession,
    principal: AdminPagePrincipal,
    active: Annotated[str, Form(max_length=1)] = "",
) -> Response:
    wanted = active == "1"
    try:
        accounts.update_user(session, principal, user_id, UserUpdateIn(is_active=wanted))
    except XietongError as exc:
        return _refused(request, session, principal, user_id, exc)
    return _after(user_id, "activated" if wanted else "deactivated")


@router.post("/admin/users/{user_id}/unlock", response_class=HTMLResponse)
def user_unlock(
    request: Request, user_id: UserId, session: DbSession, principal: AdminPagePrincipal
) -> Response:
    try:
        accounts.unlock_user(session, principal, user_id)
    except XietongError as exc:
        return _refused(request, session, principal, user_id, exc)
    return _after(user_id, "unlocked")


@router.post("/admin/users/{user_id}/password", response_class=HTMLResponse)
def user_password(
    request: Request,
    user_id: UserId,
    session: DbSession,
    principal: AdminPagePrincipal,
    new_password: Annotated[str, Form()] = "",
) -> Response:
    policy = services(request).settings.security
    try:
        accounts.reset_password(session, principal, user_id, new_password, policy)
    except XietongError as exc:
        return _refused(request, session, principal, user_id, exc)
    return _after(user_id, "password")


@router.post("/admin/users/{user_id}/totp/reset", response_class=HTMLResponse)
def user_totp_reset(
    request: Request, user_id: UserId, session: DbSession, principal: AdminPagePrincipal
) -> Response:
    try:
        accounts.reset_totp(session, principal, user_id)
    except XietongError as exc:
        return _refused(request, session, principal, user_id, exc)
    return _after(user_id, "totp")

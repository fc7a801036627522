"""Sign-in, second factor, sign-out, password change and the language switch (pages)."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlsplit

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from xietong.access import audit
from xietong.access.authentication import complete_second_factor, login, logout
from xietong.core.db import rollback_keep_durable
from xietong.core.errors import XietongError
from xietong.core.i18n import normalise_locale, translate
from xietong.identity import service as identity
from xietong.web.deps import (
    LANG_COOKIE,
    SESSION_COOKIE,
    TOTP_ENROLMENT_PAGE,
    CurrentPrincipal,
    DbSession,
    client_address,
    request_locale,
    resolve_principal,
    services,
)
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)


def safe_next(target: str | None) -> str:
    """Only local paths: never an open redirect."""
    if not target:
        return "/"
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return "/"
    return target


def _set_session_cookie(request: Request, response: Response, token: str) -> None:
    settings = services(request).settings
    response.set_cookie(
        SESSION_COOKIE,
        token,
        httponly=True,
        samesite="lax",
        secure=settings.security.cookie_secure,
        max_age=settings.security.session_absolute_hours * 3600,
    )


@router.get("/login", response_class=HTMLResponse)
def login_page(request: Request, session: DbSession, next: str | None = None) -> Response:
    principal = resolve_principal(request, session)
    if principal.user_id is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return render(request, "auth/login.html", {"next": safe_next(next), "username": ""})


@router.post("/login", response_class=HTMLResponse)
def login_submit(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form(max_length=64)] = "",
    password: Annotated[str, Form(max_length=256)] = "",
    next: Annotated[str, Form(max_length=500)] = "/",
) -> Response:
    resolve_principal(request, session)
    policy = services(request).settings.security
    try:
        result = login(
            session,
            username=username,
            password=password,
            otp=None,
            kind="cookie",
            policy=policy,
            client_address=client_address(request),
        )
    except XietongError as exc:
        # Failed attempts are audited durably inside login(); answer with the form again.
        rollback_keep_durable(session)
        locale = request_locale(request)
        return render(
            request,
            "auth/login.html",
            {
                "next": safe_next(next),
                "username": username,
                "error": translate(locale, exc.message, **exc.params),
                "error_code": exc.code,
            },
            status_code=exc.status,
        )
    if result.mfa_pending:
        target = "/login/otp"
    elif result.password_expired:
        target = "/account/password?expired=1"
    elif result.totp_enrolment_required:
        target = TOTP_ENROLMENT_PAGE
    else:
        target = safe_next(next)
    response = RedirectResponse(target, status_code=303)
    _set_session_cookie(request, response, result.token)
    if result.user.locale:
        response.set_cookie(LANG_COOKIE, result.user.locale, samesite="lax", max_age=31536000)
    return response


@router.get("/login/otp", response_class=HTMLResponse)
def otp_page(request: Request, session: DbSession) -> Response:
    resolve_principal(request, session, allow_mfa_pending=True)
    return render(request, "auth/otp.html")


@router.post("/login/otp", response_class=HTMLResponse)
def otp_submit(
    request: Request, session: DbSession, otp: Annotated[str, Form(max_length=6)] = ""
) -> Response:
    token = request.cookies.get(SESSION_COOKIE, "")
    policy = services(request).settings.security
    try:
        complete_second_factor(session, token, otp, policy, client_address(request))
    except XietongError as exc:
        rollback_keep_durable(session)
        locale = request_locale(request)
        return render(
            request,
            "auth/otp.html",
            {"error": translate(locale, exc.message, **exc.params)},
            status_code=exc.status,
        )
    return RedirectResponse("/", status_code=303)


@router.post("/logout")
def logout_submit(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    logout(session, principal, request.cookies.get(SESSION_COOKIE, ""))
    response = RedirectResponse("/login", status_code=303)
    response.delete_cookie(SESSION_COOKIE)
    return response


@router.get("/lang/{code}")
def switch_language(
    request: Request, session: DbSession, code: str, next: str | None = None
) -> Response:
    """Switch the interface language; a signed-in user keeps it as a preference."""
    locale = normalise_locale(code) or services(request).settings.i18n.default_locale
    principal = resolve_principal(request, session)
    if principal.user_id is not None:
        user = identity.get_user(session, principal.uid)
        user.locale = locale
    referer = request.headers.get("referer")
    fallback = urlsplit(referer).path if referer else "/"
    response = RedirectResponse(safe_next(next or fallback), status_code=303)
    response.set_cookie(LANG_COOKIE, locale, samesite="lax", max_age=31536000)
    return response


@router.get("/account/password", response_class=HTMLResponse)
def password_page(request: Request, principal: CurrentPrincipal, expired: int = 0) -> Response:
    return render(request, "auth/password.html", {"expired": bool(expired)})


@router.post("/account/password", response_class=HTMLResponse)
def password_submit(
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    current_password: Annotated[str, Form(max_length=256)] = "",
    new_password: Annotated[str, Form(max_length=256)] = "",
) -> Response:
    user = identity.get_user(session, principal.uid)
    try:
        identity.change_password(
            session, user, current_password, new_password, services(request).settings.security
        )
    except XietongError as exc:
        locale = request_locale(request, principal)
        return render(
            request,
            "auth/password.html",
            {"error": translate(locale, exc.message, **exc.params), "field": exc.field},
            status_code=exc.status,
        )
    audit.record(session, principal, "user.password_change", object_kind="user", object_id=user.id)
    return render(request, "auth/password.html", {"done": True})

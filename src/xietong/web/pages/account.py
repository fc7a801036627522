"""My account: profile, language preference, and enrolment of an authenticator app."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from xietong.access import audit
from xietong.core.errors import N_, XietongError
from xietong.core.i18n import available, normalise_locale
from xietong.directory.lookup import find_institution, find_region
from xietong.identity import service as identity
from xietong.identity.roles import ROLE_LABELS, Role
from xietong.web.deps import LANG_COOKIE, DbSession, PagePrincipal
from xietong.web.navigation import NavItem, register
from xietong.web.pages.forms import form_error
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)

register(NavItem("account", N_("My account"), "/account", order=900))

NO_STORE = {"Cache-Control": "no-store"}


@router.get("/account", response_class=HTMLResponse)
def profile(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    user = identity.get_user(session, principal.uid)
    institution = find_institution(session, user.institution_id) if user.institution_id else None
    region = find_region(session, user.jurisdiction_code) if user.jurisdiction_code else None
    return render(
        request,
        "account/profile.html",
        {
            "user": user,
            "institution": institution,
            "region": region,
            "role_labels": [ROLE_LABELS[Role(r)] for r in user.role_names if r in set(Role)],
            "locales": available(),
            "saved": request.query_params.get("saved") == "1",
        },
    )


@router.post("/account/preferences")
def save_preferences(
    session: DbSession,
    principal: PagePrincipal,
    locale: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    chosen = normalise_locale(locale)
    user = identity.get_user(session, principal.uid)
    user.locale = chosen
    response = RedirectResponse("/account?saved=1", status_code=303)
    if chosen:
        response.set_cookie(LANG_COOKIE, chosen, samesite="lax", max_age=31536000)
    return response


def _totp_page(
    request: Request, session: DbSession, principal: PagePrincipal, **extra: object
) -> Response:
    user = identity.get_user(session, principal.uid)
    pending = bool(user.totp_secret) and not user.totp_enabled
    context: dict[str, object] = {
        "user": user,
        "pending": pending,
        "secret": user.totp_secret if pending else None,
        "uri": identity.provisioning_uri(user) if pending else None,
        "required": request.query_params.get("required") == "1",
        "done": request.query_params.get("done") == "1",
    }
    context.update(extra)
    status = extra.get("status")
    return render(
        request,
        "account/totp.html",
        context,
        status_code=status if isinstance(status, int) else 200,
        headers=NO_STORE,
    )


@router.get("/account/totp", response_class=HTMLResponse)
def totp_page(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    return _totp_page(request, session, principal)


@router.post("/account/totp/start")
def totp_start(request: Request, session: DbSession, principal: PagePrincipal) -> Response:
    user = identity.get_user(session, principal.uid)
    if user.totp_enabled:
        return RedirectResponse("/account/totp", status_code=303)
    identity.start_totp_enrolment(user)
    audit.record(session, principal, "user.totp_start", object_kind="user", object_id=user.id)
    keep = "?required=1" if request.query_params.get("required") == "1" else ""
    return RedirectResponse(f"/account/totp{keep}", status_code=303)


@router.post("/account/totp/confirm", response_class=HTMLResponse)
def totp_confirm(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    otp: Annotated[str, Form(max_length=16)] = "",
) -> Response:
    user = identity.get_user(session, principal.uid)
    try:
        identity.confirm_totp_enrolment(session, user, otp)
    except XietongError as exc:
        return _totp_page(request, session, principal, **form_error(request, session, exc))
    audit.record(session, principal, "user.totp_enable", object_kind="user", object_id=user.id)
    return RedirectResponse("/account/totp?done=1", status_code=303)

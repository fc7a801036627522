"""FastAPI dependencies: the unit of work, the acting principal, the locale, CSRF."""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from typing import Annotated
from urllib.parse import quote

from fastapi import Depends, Request
from starlette.requests import HTTPConnection
from fastapi.security import OAuth2PasswordBearer
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.authentication import needs_totp_enrolment, principal_for
from xietong.access.principal import ANONYMOUS, Principal
from xietong.config import Settings
from xietong.core.db import session_scope
from xietong.core.errors import N_, Forbidden, Unauthorized
from xietong.core.i18n import negotiate, normalise_locale
from xietong.core.security import new_token, sign, unsign
from xietong.identity import service as identity
from xietong.web.context import AppServices
from xietong.web.errors import PageRedirect

SESSION_COOKIE = "xt_session"
CSRF_COOKIE = "xt_csrf"
LANG_COOKIE = "xt_lang"
SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


def services(request: Request) -> AppServices:
    svc: AppServices = request.app.state.services
    return svc


def settings_dep(request: Request) -> Settings:
    return services(request).settings


def db_session(request: Request) -> Iterator[Session]:
    """One transaction per request, committed before the response is sent."""
    with session_scope(services(request).session_factory) as session:
        request.state.db = session
        yield session


DbSession = Annotated[Session, Depends(db_session, scope="function")]


def client_address(request: Request) -> str:
    settings = services(request).settings
    peer = request.client.host if request.client else ""
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded and peer in settings.http.trusted_proxies:
        return forwarded.split(",")[0].strip()[:64]
    return peer[:64]


def request_locale(request: Request, principal: Principal | None = None) -> str:
    settings = services(request).settings
    chosen = (
        normalise_locale(request.query_params.get("lang"))
        or normalise_locale(request.cookies.get(LANG_COOKIE))
        or (principal.locale if principal else None)
    )
    return chosen or negotiate(request.headers.get("accept-language"), settings.i18n.default_locale)


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def resolve_principal(
    request: Request, session: Session, *, allow_mfa_pending: bool = False, touch: bool = True
) -> Principal:
    cached: Principal | None = getattr(request.state, "principal", None)
    if cached is not None:
        return cached
    policy = services(request).settings.security
    address = client_address(request)
    token = _bearer(request)
    kind = "bearer"
    if token is None:
        token = request.cookies.get(SESSION_COOKIE)
        kind = "cookie"
    principal = ANONYMOUS
    if token:
        found = identity.resolve_session(session, token, kind=kind, policy=policy, touch=touch)
        if found is not None and (allow_mfa_pending or not found[0].mfa_pending):
            principal = principal_for(session, found[1], client_address=address, session_kind=kind)
    if principal is ANONYMOUS:
        principal = Principal(user_id=None, username="", roles=frozenset(), client_address=address)
    request.state.principal = principal
    request.state.locale = request_locale(request, principal)
    return principal


def optional_principal(request: Request, session: DbSession) -> Principal:
    return resolve_principal(request, session)


# Declares the bearer scheme in the OpenAPI document (the "Authorize" button of /docs);
# the token itself is resolved by resolve_principal, which also accepts the session cookie.
oauth2_scheme = OAuth2PasswordBearer(tokenUrl="/api/v1/auth/token", auto_error=False)


def current_principal(
    request: Request,
    session: DbSession,
    _token: Annotated[str | None, Depends(oauth2_scheme)] = None,
) -> Principal:
    principal = resolve_principal(request, session)
    if principal.user_id is None:
        raise Unauthorized(headers={"WWW-Authenticate": "Bearer"})
    return principal


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def polling_principal(
    request: Request,
    session: DbSession,
    _token: Annotated[str | None, Depends(oauth2_scheme)] = None,
) -> Principal:
    """The signed-in user of a background poll: like :func:`current_principal`, but the
    request does not count as activity, so it never extends an idle cookie session."""
    principal = resolve_principal(request, session, touch=False)
    if principal.user_id is None:
        raise Unauthorized(headers={"WWW-Authenticate": "Bearer"})
    return principal


PollingPrincipal = Annotated[Principal, Depends(polling_principal)]
OptionalPrincipal = Annotated[Principal, Depends(optional_principal)]

TOTP_ENROLMENT_PAGE = "/account/totp?required=1"


def admin_principal(request: Request, session: DbSession, principal: CurrentPrincipal) -> Principal:
    """The principal of admin API routes: an admin who still has to enrol a second factor
    (XIETONG_SECURITY_REQUIRE_TOTP_FOR_ADMINS) is refused until they do."""
    if needs_totp_enrolment(principal, services(request).settings.security):
        audit.record_denial(
            session, principal, "admin.access", "user", principal.uid, reason="totp_required"
        )
        raise Forbidden(
            N_("Set up a second factor before using the administration."),
            code="totp_enrolment_required",
            field="otp",
        )
    return principal


def page_principal(request: Request, session: DbSession) -> Principal:
    """The signed-in user of a page; anybody else is sent to the sign-in page."""
    principal = resolve_principal(request, session)
    if principal.user_id is None:
        target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
        raise PageRedirect("/login?next=" + quote(target, safe=""))
    return principal


PagePrincipal = Annotated[Principal, Depends(page_principal)]


def admin_page_principal(request: Request, principal: PagePrincipal) -> Principal:
    """Admin pages: an admin who still has to enrol a second factor is sent to enrolment."""
    if needs_totp_enrolment(principal, services(request).settings.security):
        raise PageRedirect(TOTP_ENROLMENT_PAGE)
    return principal


AdminPrincipal = Annotated[Principal, Depends(admin_principal)]
AdminPagePrincipal = Annotated[Principal, Depends(admin_page_principal)]


# CSRF: a signed double-submit token. The cookie holds a signed random value; a form
# field ``csrf_token`` or the ``X-CSRF-Token`` header must repeat it. Bearer requests are
# exempt (a browser never attaches a bearer token by itself).


def csrf_token(request: Request) -> str:
    secret = services(request).settings.security.secret_key
    existing = request.cookies.get(CSRF_COOKIE)
    if existing and unsign(secret, existing):
        return existing
    token: str | None = getattr(request.state, "new_csrf", None)
    if token is None:
        token = sign(secret, new_token(16))
        request.state.new_csrf = token
    return token


async def csrf_protect(connection: HTTPConnection) -> None:
    """Applied to every route: unsafe requests from a browser must repeat the CSRF token.

    Browser requests are those that carry our session cookie, and every page route (outside
    /api/ and /dicomweb/, whose clients authenticate with a bearer token). The WebSocket
    checks its Origin at the handshake instead (web/realtime/endpoint.py).
    """
    if not isinstance(connection, Request):
        return
    request = connection
    if request.method in SAFE_METHODS or _bearer(request) is not None:
        return
    is_page = not request.url.path.startswith(("/api/", "/dicomweb/"))
    if not is_page and SESSION_COOKIE not in request.cookies:
        return
    form_value: str | None = None
    if request.headers.get("x-csrf-token") is None and request.headers.get(
        "content-type", ""
    ).startswith(("application/x-www-form-urlencoded", "multipart/form-data")):
        form = await request.form()
        value = form.get("csrf_token")
        form_value = value if isinstance(value, str) else None
    check_csrf(request, form_value)


def check_csrf(request: Request, form_value: str | None = None) -> None:
    secret = services(request).settings.security.secret_key
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.headers.get("x-csrf-token") or form_value or ""
    if not cookie or not unsign(secret, cookie) or not hmac.compare_digest(cookie, sent):
        raise Forbidden(
            N_("The form has expired; reload the page and try again."),
            code="csrf_failed",
            field="csrf_token",
        )

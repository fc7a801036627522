"""Jinja2 templates with per-request translations and the page chrome's context."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.core.i18n import available, translations
from xietong.core.masking import mask_phone, mask_resident_id
from xietong.notifications import service as notifications
from xietong.web.deps import CSRF_COOKIE, csrf_token, services
from xietong.web.navigation import navigation_for

TEMPLATE_DIR = Path(__file__).resolve().parent / "templates"

_env = Environment(
    loader=FileSystemLoader(TEMPLATE_DIR),
    autoescape=select_autoescape(["html"]),
    extensions=["jinja2.ext.i18n"],
    trim_blocks=True,
    lstrip_blocks=True,
)
_env.filters["mask_resident_id"] = mask_resident_id
_env.filters["mask_phone"] = mask_phone


def environment() -> Environment:
    return _env


def _gettext_funcs(locale: str) -> tuple[Callable[..., str], Callable[..., str]]:
    trans = translations(locale)

    def gettext(message: str, **params: Any) -> str:
        text = trans.gettext(message)
        return text.format(**params) if params else text

    def ngettext(singular: str, plural: str, n: int, **params: Any) -> str:
        text = trans.ngettext(singular, plural, n)
        return text.format(n=n, **params)

    return gettext, ngettext


def page_context(request: Request) -> dict[str, Any]:
    principal: Principal | None = getattr(request.state, "principal", None)
    locale: str = (
        getattr(request.state, "locale", None) or services(request).settings.i18n.default_locale
    )
    gettext, ngettext = _gettext_funcs(locale)
    return {
        "request": request,
        "principal": principal,
        "locale": locale,
        "html_lang": "zh-CN" if locale == "zh_CN" else "en",
        "locales": available(),
        "csrf_token": csrf_token(request),
        "nav": navigation_for(principal) if principal and principal.user_id else [],
        "_": gettext,
        "gettext": gettext,
        "ngettext": ngettext,
    }


def _unread_notifications(request: Request, principal: Principal | None) -> int | None:
    """The top bar's unread count, read in the request's unit of work (None without one:
    the badge then loads itself)."""
    session: Session | None = getattr(request.state, "db", None)
    if session is None or principal is None or principal.user_id is None:
        return None
    return notifications.unread_count(session, principal)


def render(
    request: Request,
    template: str,
    context: dict[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    full = page_context(request)
    full.update(context or {})
    if "unread_notifications" not in full:
        full["unread_notifications"] = _unread_notifications(request, full["principal"])
    html = _env.get_template(template).render(full)
    response = HTMLResponse(html, status_code=status_code, headers=headers)
    _ensure_csrf_cookie(request, response)
    return response


def _ensure_csrf_cookie(request: Request, response: HTMLResponse) -> None:
    new = getattr(request.state, "new_csrf", None)
    if new:
        settings = services(request).settings
        response.set_cookie(
            CSRF_COOKIE, new, httponly=True, samesite="lax", secure=settings.security.cookie_secure
        )


def render_error_html(
    request: Request,
    status: int,
    code: str,
    message: str,
    field: str | None,
    *,
    headers: dict[str, str] | None = None,
) -> HTMLResponse:
    template = "fragments/error.html" if request.headers.get("hx-request") else "error.html"
    extra = dict(headers or {})
    if request.headers.get("hx-request"):
        # Errors replace the form's message area, not the target of the request.
        extra.setdefault("HX-Retarget", "#messages")
        extra.setdefault("HX-Reswap", "innerHTML")
    context = {"status": status, "code": code, "message": message, "field": field}
    # The request's unit of work is over (rolled back): the badge loads its count itself.
    context["unread_notifications"] = None
    return render(request, template, context, status_code=status, headers=extra)

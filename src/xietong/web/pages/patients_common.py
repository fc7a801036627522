"""What the patient pages share: code labels, the break-glass reason of platform admins,
and the response headers of pages that show personal data."""

from __future__ import annotations

from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.datastructures import FormData

from xietong.access.principal import Principal
from xietong.core.errors import N_, Invalid
from xietong.core.validation import has_control_characters
from xietong.identity.roles import Role
from xietong.patients.access import CHART_ROLES
from xietong.patients.identifiers import IDENTIFIER_LABELS, SEX_LABELS
from xietong.web.templating import render

CLINICAL_ROLES = frozenset(str(r) for r in CHART_ROLES - {Role.PLATFORM_ADMIN})
MATCH_REASONS = {
    "name_birth_date": N_("same name and birth date"),
    "phone": N_("same phone number"),
}
BREAK_GLASS_NEXT = ("detail", "merge")


def labels() -> dict[str, Any]:
    """Template helpers naming codes (English msgids; the templates translate them)."""
    return {
        "sex_labels": SEX_LABELS,
        "sex_choices": list(SEX_LABELS.items()),
        "identifier_labels": {k.value: v for k, v in IDENTIFIER_LABELS.items()},
        "match_reasons": MATCH_REASONS,
    }


def needs_break_glass(principal: Principal) -> bool:
    """A platform admin without a clinical role opens patients only with a reason."""
    return principal.is_platform_admin and not (principal.roles & CLINICAL_ROLES)


def form_text(form: FormData, name: str, max_length: int = 500) -> str:
    value = form.get(name)
    text = value.strip() if isinstance(value, str) else ""
    if len(text) > max_length:
        raise Invalid(N_("This value is too long."), code="string_too_long", field=name)
    if has_control_characters(text):
        raise Invalid(
            N_("Control characters are not allowed."), code="control_characters", field=name
        )
    return text


def form_reason(form: FormData) -> str | None:
    return form_text(form, "reason") or None


def private(response: Response) -> Response:
    """Pages with personal data are not kept by the browser or a proxy."""
    response.headers["Cache-Control"] = "no-store"
    return response


def render_private(
    request: Request, template: str, context: dict[str, Any], *, status_code: int = 200
) -> Response:
    return private(render(request, template, {**labels(), **context}, status_code=status_code))


def break_glass_page(
    request: Request,
    patient_id: int,
    next_page: str,
    *,
    error: str | None = None,
) -> Response:
    """The form on which a platform admin states why they open a patient (403 until then)."""
    context = {
        "patient_id": patient_id,
        "next_page": next_page if next_page in BREAK_GLASS_NEXT else "detail",
        "error": error,
        "error_code": "break_glass_reason_required" if error else None,
        "field": "reason" if error else None,
    }
    return render_private(request, "patients/break_glass.html", context, status_code=403)

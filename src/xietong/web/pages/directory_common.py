"""What the directory pages share: code-set labels, form parsing, the sign-in redirect."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, TypeVar
from urllib.parse import quote

from fastapi import Request
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, ValidationError
from starlette.datastructures import FormData

from xietong.core.errors import N_, Invalid
from xietong.directory.levels import GRADES, LEVELS, grade_label, level_label
from xietong.directory.specialties import SPECIALTIES, specialty_label
from xietong.directory.titles import TITLES, title_label
from xietong.web.deps import services
from xietong.web.errors import _VALIDATION_MESSAGES

M = TypeVar("M", bound=BaseModel)

REGION_LEVELS = {
    "province": N_("Province"),
    "city": N_("City"),
    "county": N_("County"),
    "township": N_("Township"),
    "village": N_("Village"),
}
WEEKDAYS = (
    N_("Monday"),
    N_("Tuesday"),
    N_("Wednesday"),
    N_("Thursday"),
    N_("Friday"),
    N_("Saturday"),
    N_("Sunday"),
)


def page_locale(request: Request) -> str:
    chosen: str | None = getattr(request.state, "locale", None)
    return chosen or services(request).settings.i18n.default_locale


def code_labels(request: Request) -> dict[str, Any]:
    """Template helpers that name codes in the page's language."""
    locale = page_locale(request)

    def bind(func: Callable[[Any, str], str]) -> Callable[[Any], str]:
        return lambda code: func(code, locale)

    return {
        "level_label": bind(level_label),
        "grade_label": bind(grade_label),
        "title_label": bind(title_label),
        "specialty_label": bind(specialty_label),
        "level_choices": [(lv.code, lv.label(locale)) for lv in LEVELS],
        "grade_choices": [(g.code, g.label(locale)) for g in GRADES],
        "title_choices": [(t.code, t.label(locale)) for t in TITLES],
        "specialty_choices": [(s.code, s.label(locale)) for s in SPECIALTIES],
        "weekdays": WEEKDAYS,
        "region_levels": REGION_LEVELS,
    }


def to_login(request: Request) -> RedirectResponse:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return RedirectResponse(f"/login?next={quote(target, safe='')}", status_code=303)


async def form_data(request: Request) -> FormData:
    """The submitted form (already read, and cached, by the CSRF check)."""
    return await request.form()


def parse_form(
    model: type[M],
    form: FormData,
    *,
    lists: Iterable[str] = (),
    empty_is_none: Iterable[str] = (),
) -> M:
    """Build ``model`` from the form fields it declares that the form carries.

    Raises :class:`Invalid` naming the first bad field, like the JSON API would.
    """
    list_fields, none_fields = set(lists), set(empty_is_none)
    values: dict[str, Any] = {}
    for name in model.model_fields:
        if name in list_fields:
            if name in form or f"{name}_present" in form:
                values[name] = [v for v in form.getlist(name) if isinstance(v, str) and v]
            continue
        if name not in form:
            continue
        raw = form.get(name)
        value = raw.strip() if isinstance(raw, str) else raw
        values[name] = None if (name in none_fields and value == "") else value
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        kind = str(first.get("type", "value_error"))
        field = ".".join(str(p) for p in first.get("loc", ())) or None
        raise Invalid(
            _VALIDATION_MESSAGES.get(kind, N_("A value is not valid.")), code=kind, field=field
        ) from exc

"""Helpers of form pages: read a form into an input model, turn an error into a message
shown next to the form (instead of an error page), keep the refusal's audit rows."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from fastapi import Request
from pydantic import BaseModel, ValidationError
from sqlalchemy.orm import Session

from xietong.core.db import rollback_keep_durable
from xietong.core.errors import Invalid, XietongError
from xietong.core.i18n import translate
from xietong.web.deps import request_locale
from xietong.web.errors import validation_message

ModelT = TypeVar("ModelT", bound=BaseModel)

# Errors a form page answers by showing the form again; others (403, 404) become the
# error page.
# 413 and 415: a file of the form too large or of a refused type (the body limit answers
# before any form is read).
FORM_STATUSES = frozenset({400, 409, 413, 415, 422, 423})


def parse(model: type[ModelT], data: Mapping[str, Any]) -> ModelT:
    """Validate form values (empty strings mean "not given") or raise :class:`Invalid`
    naming the first field at fault."""
    values = {k: v for k, v in data.items() if v not in ("", None)}
    try:
        return model.model_validate(values)
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = [str(p) for p in first.get("loc", ())]
        raise Invalid(
            validation_message(str(first.get("type", ""))),
            code=str(first.get("type", "invalid")),
            field=loc[0] if loc else None,
        ) from None


def locale_of(request: Request) -> str:
    chosen: str | None = getattr(request.state, "locale", None)
    return chosen or request_locale(request)


def form_error(request: Request, session: Session, exc: XietongError) -> dict[str, Any]:
    """Undo the failed work (keeping durable audit rows) and describe the error; re-raise
    errors that are not about the form."""
    if exc.status not in FORM_STATUSES:
        raise exc
    rollback_keep_durable(session)
    return {
        "error": translate(locale_of(request), exc.message, **exc.params),
        "error_code": exc.code,
        "field": exc.field,
        "status": exc.status,
    }

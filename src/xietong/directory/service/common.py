"""Helpers shared by the directory's use cases: pages, text search, PATCH semantics."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xietong.core.errors import N_, Conflict, Invalid

MAX_LIMIT = 100
MAX_OFFSET = 1_000_000


@dataclass(frozen=True)
class Paging:
    limit: int = 20
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise Invalid(N_("This value is too large."), code="invalid_limit", field="limit")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise Invalid(N_("This value is too large."), code="invalid_offset", field="offset")


def sent_fields(data: BaseModel, required: Iterable[str] = ()) -> dict[str, Any]:
    """The fields a PATCH body actually carried; ``null`` refused for ``required`` ones."""
    values = {name: getattr(data, name) for name in data.model_fields_set}
    for name in required:
        if name in values and values[name] is None:
            raise Invalid(N_("This field is required."), code="missing", field=name)
    return values


def apply_changes(target: object, values: dict[str, Any]) -> dict[str, list[Any]]:
    """Set attributes; returns {field: [old, new]} for those that changed (for the audit)."""
    changes: dict[str, list[Any]] = {}
    for name, new in values.items():
        old = getattr(target, name)
        if old != new:
            setattr(target, name, new)
            changes[name] = [old, new]
    return changes


def flush_unique(session: Session, field: str, code: str = "duplicate") -> None:
    """Flush in a savepoint; a unique key a concurrent writer took first becomes a 409."""
    try:
        with session.begin_nested():
            session.flush()
    except IntegrityError as exc:
        raise Conflict(code=code, field=field) from exc

"""The base of every input model: unknown fields refused, no control characters, ids that
fit a database integer.

PostgreSQL refuses NUL in text and SQLite overflows past 64-bit integers: both would turn
hostile input into a 500, so both are refused at the edge with a 422 naming the field.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic_core import PydanticCustomError

MAX_ID = 2_147_483_647  # the largest value of an INTEGER column on every backend
Id = Annotated[int, Field(ge=1, le=MAX_ID)]

# C0 controls except tab, line feed and carriage return; DEL; C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def has_control_characters(value: str) -> bool:
    return _CONTROL.search(value) is not None


def strip_control_characters(value: str, replacement: str = "\ufffd") -> str:
    """For text that must be stored whatever it holds (the audit log)."""
    return _CONTROL.sub(replacement, value)


def as_utc(value: datetime) -> datetime:
    """A datetime without a zone is taken as UTC."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class StrictModel(BaseModel):
    """Input models: ``extra="forbid"``, stripped strings, no control characters."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        texts = value if isinstance(value, list | tuple | set | frozenset) else [value]
        for text in texts:
            if isinstance(text, str) and has_control_characters(text):
                raise PydanticCustomError(
                    "control_characters", "Control characters are not allowed."
                )
        if isinstance(value, datetime):
            return as_utc(value)
        return value

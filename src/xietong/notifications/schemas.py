"""Input and output shapes of the notification API."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from xietong.core.validation import StrictModel

MAX_LIMIT = 100


class ListParams(StrictModel):
    limit: int = Field(default=20, ge=1, le=MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=1_000_000)
    unread_only: bool = False


class NotificationOut(BaseModel):
    id: int
    kind: str
    subject_kind: str
    subject_id: int
    title: str  # translated into the reader's language
    link: str
    # Following this path marks the notification read, then goes to ``link``.
    open_url: str
    actor_user_id: int | None
    created_at: datetime
    read_at: datetime | None
    read: bool


class NotificationPage(BaseModel):
    items: list[NotificationOut]
    total: int
    unread: int
    limit: int
    offset: int


class UnreadCountOut(BaseModel):
    unread: int


class ReadAllOut(BaseModel):
    marked: int
    unread: int

"""The JSON shapes of every conversation's REST API (a consultation's, a referral's, a group
conversation's): one message in, one message out, a page of the thread."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from xietong.core.validation import Id, StrictModel

CLIENT_ID_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:-]*$"


class MessageIn(StrictModel):
    text: str = Field(min_length=1, max_length=4000)
    client_id: str | None = Field(
        default=None, min_length=1, max_length=64, pattern=CLIENT_ID_PATTERN
    )


class AttachmentOut(BaseModel):
    media_type: str
    size: int
    sha256: str
    filename: str | None
    width: int | None
    height: int | None
    pdf_pages: int | None
    url: str
    thumbnail_url: str | None


class MessageOut(BaseModel):
    seq: int
    kind: Literal["text", "image", "file", "system"]
    sender_user_id: int | None
    sender_name: str | None
    text: str
    event: str | None = Field(description="For a status event: consultation.accept, …")
    event_data: dict[str, Any] | None
    client_id: str | None
    created_at: datetime
    attachment: AttachmentOut | None


class ReadPositionOut(BaseModel):
    user_id: int
    name: str | None
    last_read_seq: int
    read_at: datetime


class ThreadOut(BaseModel):
    items: list[MessageOut]
    last_seq: int = Field(description="Ask again with after=last_seq for what comes next.")
    can_post: bool
    read_positions: list[ReadPositionOut]


# Group conversations ------------------------------------------------------------------------

MAX_TITLE = 100
MAX_OTHER_MEMBERS = 49


class GroupIn(StrictModel):
    title: str = Field(min_length=1, max_length=MAX_TITLE)
    member_ids: list[Id] = Field(min_length=1, max_length=MAX_OTHER_MEMBERS)


class MembersIn(StrictModel):
    member_ids: list[Id] = Field(min_length=1, max_length=MAX_OTHER_MEMBERS)


class MemberOut(BaseModel):
    user_id: int
    name: str
    institution: str | None


class GroupOut(BaseModel):
    id: int
    title: str
    members: list[MemberOut]
    last_message_at: datetime | None
    last_seq: int
    unread: int
    created_at: datetime


class GroupListOut(BaseModel):
    items: list[GroupOut]


class ColleagueOut(BaseModel):
    user_id: int
    name: str
    username: str
    institution: str | None

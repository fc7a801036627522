"""Input and output of the video session API."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field

from xietong.core.validation import StrictModel

SUBJECT_KIND = r"^[a-z][a-z_]{0,31}$"
SUBJECT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,63}$"


class SessionIn(StrictModel):
    subject_kind: str = Field(pattern=SUBJECT_KIND)
    subject_id: str = Field(pattern=SUBJECT_ID)
    title: str = Field(default="", max_length=200)
    # None: an instant session, open at once.
    scheduled_at: datetime | None = None
    planned_minutes: int = Field(default=30, ge=1, le=1440)
    # Expected participants: above XIETONG_LIVE_MESH_MAX_PARTICIPANTS it needs the SFU.
    size: int = Field(default=2, ge=2, le=100)


class InstantIn(StrictModel):
    subject_kind: str = Field(pattern=SUBJECT_KIND)
    subject_id: str = Field(pattern=SUBJECT_ID)


class LinkIn(StrictModel):
    label: str = Field(default="", max_length=100)


class PeerOut(StrictModel):
    peer: str
    user_id: int
    name: str
    muted: bool
    camera_off: bool


class SessionOut(StrictModel):
    id: int
    subject_kind: str
    subject_id: str
    subject_title: str
    subject_url: str
    title: str
    host_user_id: int
    host_name: str
    mode: Literal["mesh", "janus"]
    state: Literal["scheduled", "open", "ended", "cancelled"]
    scheduled_at: datetime | None
    planned_minutes: int
    created_at: datetime
    opened_at: datetime | None
    ended_at: datetime | None
    is_host: bool
    url: str
    peers: list[PeerOut]


class LinkOut(StrictModel):
    id: int
    session_id: int
    label: str
    created_at: datetime
    expires_at: datetime
    revoked_at: datetime | None
    # Only in the answer that creates it: the token is never stored.
    token: str | None = None
    url: str | None = None


class AttendanceRowOut(StrictModel):
    user_id: int
    name: str
    guest: bool
    joined_at: datetime
    left_at: datetime | None
    seconds: int | None


class AttendanceOut(StrictModel):
    session_id: int
    rows: list[AttendanceRowOut]
    # Per user: total seconds over all their joins (open joins counted up to now).
    totals: dict[str, int]

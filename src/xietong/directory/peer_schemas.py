"""API shapes of the known DICOM nodes (:mod:`xietong.directory.peer_models`)."""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from xietong.directory.schemas import Out, Strict

# PS3.5 VR AE: the default repertoire without backslash and control characters; leading
# and trailing spaces are not significant (stripped), so at least one other character.
AE_TITLE_PATTERN = r"^[ -\[\]-~]*[!-\[\]-~][ -\[\]-~]*$"
HOST_PATTERN = r"^[A-Za-z0-9]([A-Za-z0-9.:-]{0,253}[A-Za-z0-9])?$"
AeTitle = Field(min_length=1, max_length=16, pattern=AE_TITLE_PATTERN)


class DicomPeerCreateIn(Strict):
    ae_title: str = AeTitle
    host: str = Field(min_length=1, max_length=255, pattern=HOST_PATTERN)
    port: int = Field(ge=1, le=65535)
    description: str = Field(default="", max_length=128)
    may_query: bool = True
    may_retrieve: bool = True


class DicomPeerUpdateIn(Strict):
    """Only the fields sent are changed; ``is_active: false`` deactivates the peer."""

    ae_title: str | None = Field(
        default=None, min_length=1, max_length=16, pattern=AE_TITLE_PATTERN
    )
    host: str | None = Field(default=None, min_length=1, max_length=255, pattern=HOST_PATTERN)
    port: int | None = Field(default=None, ge=1, le=65535)
    description: str | None = Field(default=None, max_length=128)
    is_active: bool | None = None
    may_query: bool | None = None
    may_retrieve: bool | None = None


class DicomPeerOut(Out):
    id: int
    institution_id: int
    ae_title: str
    host: str
    port: int
    description: str
    is_active: bool
    may_query: bool
    may_retrieve: bool
    updated_at: datetime

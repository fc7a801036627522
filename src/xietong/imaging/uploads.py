"""Resumable web uploads of DICOM files and zips of them (docs/imaging.md, "Uploading studies").

The protocol is tus 1.0 core with a JSON creation step: :func:`create` declares a file
(name, size, kind, optional SHA-256, and a client request id that makes a retried create
return the same upload); :func:`append` takes the next chunk at the offset the server has;
:func:`xietong.imaging.upload_ingest.complete` ingests what arrived (and
:mod:`xietong.imaging.upload_expiry` expires what was abandoned). Chunks are written to a
partial file under the data folder whose name the server chose (``PartStore``), never
under the client's name and never into the blob store: only
:func:`xietong.imaging.service.ingest` puts bytes there.

Offsets: the upload row is locked (``FOR UPDATE``; SQLite serialises writers anyway) while
a chunk is written at its offset with ``pwrite`` after truncating the file to the committed
offset, so a chunk whose transaction did not commit leaves nothing that counts, and two
clients sending the same chunk cannot interleave.

Completion runs its own transactions: every file is ingested in a savepoint and committed
together with its item row, so one bad file loses nothing else, an acknowledged file is
committed, and a completion that stopped half-way (a crash, a dropped connection) resumes
after the last committed item; finishing twice ingests nothing twice. A zip is checked as
a whole before any entry is stored: unsafe entry names, symbolic links, nested archives,
too many entries, too many inflated bytes or a suspicious compression ratio refuse the
whole zip (422), with nothing stored. Entry names are only shown, never used as paths.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import secrets
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import deny_not_found, require_roles
from xietong.access.principal import Principal
from xietong.config import ImagingSettings, Settings
from xietong.core.clock import now
from xietong.core.errors import (
    N_,
    Conflict,
    Forbidden,
    PayloadTooLarge,
    TooManyRequests,
)
from xietong.imaging import service as imaging
from xietong.imaging.upload_files import (
    FIELD,
    display_name,
)
from xietong.imaging.upload_models import ImagingUpload

log = logging.getLogger("xietong.imaging.uploads")

OBJECT_KIND = "imaging_upload"
Kind = Literal["dicom", "zip"]
RECEIVING, INGESTING, COMPLETED, FAILED = "receiving", "ingesting", "completed", "failed"
EXPIRED, CANCELLED = "expired", "cancelled"
GONE = (EXPIRED, CANCELLED)
SHA256_PATTERN = r"^[0-9a-f]{64}$"
REQUEST_ID_PATTERN = r"^[A-Za-z0-9._:-]{1,64}$"
PUBLIC_ID_PATTERN = r"^[0-9a-f]{32}$"


# Partial files -------------------------------------------------------------------------------


class PartStore:
    """The folder of partial uploads; file names are the server's random tokens."""

    _NAME = re.compile(r"^[0-9a-f]{32}\.part$")

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def path(self, name: str) -> Path:
        if not self._NAME.fullmatch(name):
            raise ValueError("not a partial upload name")
        return self.root / name

    def create(self) -> str:
        name = secrets.token_hex(16) + ".part"
        # O_EXCL: a name is never reused, even if the random token repeated.
        os.close(os.open(self.path(name), os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
        return name

    def write_at(self, name: str, offset: int, data: bytes) -> None:
        """Write ``data`` at ``offset`` after dropping anything beyond it, then fsync."""
        fd = os.open(self.path(name), os.O_WRONLY)
        try:
            os.ftruncate(fd, offset)
            view = memoryview(data)
            position = offset
            while view:
                written = os.pwrite(fd, view, position)
                view = view[written:]
                position += written
            os.fsync(fd)
        finally:
            os.close(fd)

    def exists(self, name: str) -> bool:
        return self.path(name).is_file()

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.path(name).unlink()

    def names(self) -> Iterator[tuple[str, datetime]]:
        """(name, modification time) of every partial file."""
        for entry in os.scandir(self.root):
            if self._NAME.fullmatch(entry.name) and entry.is_file(follow_symlinks=False):
                modified = datetime.fromtimestamp(entry.stat().st_mtime).astimezone()
                yield entry.name, modified


def part_store(settings: Settings) -> PartStore:
    return PartStore(settings.data_dir / "imaging-uploads")


# Creating and finding ------------------------------------------------------------------------


@dataclass(frozen=True)
class Declared:
    file_name: str
    size: int
    kind: Kind
    sha256: str | None = None
    client_request_id: str | None = None


def require_uploader(session: Session, actor: Principal, action: str) -> int:
    """The same rule as STOW-RS: a clinical role, storing for the actor's institution."""
    require_roles(session, actor, imaging.STORE_ROLES, action=action, object_kind=OBJECT_KIND)
    if actor.institution_id is None or actor.user_id is None:
        raise Forbidden(
            N_("Only staff of the sending institution store its studies."),
            code="not_sender",
            field=FIELD,
        )
    return actor.institution_id


def create(
    session: Session,
    actor: Principal,
    settings: ImagingSettings,
    parts: PartStore,
    declared: Declared,
) -> tuple[ImagingUpload, bool]:
    """A new upload, or the earlier one with the same client request id (``created`` False)."""
    institution_id = require_uploader(session, actor, "imaging.upload.create")
    if declared.size > settings.upload_max_bytes:
        raise PayloadTooLarge(
            N_("The file is too large: at most {limit} bytes can be uploaded."),
            code="upload_too_large",
            field="size",
            params={"limit": settings.upload_max_bytes},
        )
    name = display_name(declared.file_name)
    if declared.client_request_id:
        earlier = _by_request(session, actor, declared.client_request_id)
        if earlier is not None:
            return _same_request(earlier, name, declared), False
    _check_quota(session, actor, settings)
    at = now()
    upload = ImagingUpload(
        public_id=secrets.token_hex(16),
        user_id=actor.user_id,
        institution_id=institution_id,
        client_request_id=declared.client_request_id,
        file_name=name,
        kind=declared.kind,
        size=declared.size,
        sha256=declared.sha256,
        received=0,
        storage_name=parts.create(),
        status=RECEIVING,
        created_at=at,
        updated_at=at,
        expires_at=at + timedelta(hours=settings.upload_expiry_hours),
    )
    try:
        with session.begin_nested():
            session.add(upload)
            session.flush()
    except IntegrityError:
        # A concurrent retry with the same request id won; answer with its upload.
        parts.delete(upload.storage_name)
        earlier = _by_request(session, actor, declared.client_request_id or "")
        if earlier is None:
            raise
        return _same_request(earlier, name, declared), False
    audit.record(
        session,
        actor,
        "imaging.upload.create",
        object_kind=OBJECT_KIND,
        object_id=upload.id,
        detail={"kind": upload.kind, "size": upload.size},
    )
    return upload, True


def _by_request(session: Session, actor: Principal, request_id: str) -> ImagingUpload | None:
    return session.execute(
        select(ImagingUpload).where(
            ImagingUpload.user_id == actor.user_id,
            ImagingUpload.client_request_id == request_id,
        )
    ).scalar_one_or_none()


def _same_request(earlier: ImagingUpload, name: str, declared: Declared) -> ImagingUpload:
    same = (earlier.file_name, earlier.size, earlier.kind, earlier.sha256) == (
        name,
        declared.size,
        declared.kind,
        declared.sha256,
    )
    if not same:
        raise Conflict(
            N_("This request id was already used for another file."),
            code="upload_request_reused",
            field="client_request_id",
        )
    return earlier


def _check_quota(session: Session, actor: Principal, settings: ImagingSettings) -> None:
    open_count = session.execute(
        select(func.count(ImagingUpload.id)).where(
            ImagingUpload.user_id == actor.user_id,
            ImagingUpload.status.in_((RECEIVING, INGESTING)),
            ImagingUpload.expires_at > now(),
        )
    ).scalar_one()
    if open_count >= settings.upload_max_open_per_user:
        raise TooManyRequests(
            N_("You have {limit} unfinished uploads; finish or cancel one first."),
            code="upload_quota",
            field=FIELD,
            params={"limit": settings.upload_max_open_per_user},
        )


def find(
    session: Session,
    actor: Principal,
    public_id: str,
    action: str = "imaging.upload.read",
    *,
    lock: bool = False,
) -> ImagingUpload:
    """The actor's own upload with this id; 404 (audited) for anybody else's, an unknown
    id, or an upload that expired or was cancelled."""
    query = select(ImagingUpload).where(
        ImagingUpload.public_id == public_id,
        ImagingUpload.user_id == (actor.user_id or 0),
        ImagingUpload.institution_id == (actor.institution_id or 0),
        ImagingUpload.status.not_in(GONE),
    )
    if lock:
        query = query.with_for_update()
    upload = (
        session.execute(query).scalar_one_or_none()
        if re.fullmatch(PUBLIC_ID_PATTERN, public_id)
        else None
    )
    if upload is None:
        raise deny_not_found(session, actor, action, OBJECT_KIND, public_id[:64], field=FIELD)
    return upload


def list_open(session: Session, actor: Principal) -> list[ImagingUpload]:
    """The actor's unfinished uploads, newest first (a page resumes them after a reload)."""
    return list(
        session.execute(
            select(ImagingUpload)
            .where(
                ImagingUpload.user_id == (actor.user_id or 0),
                ImagingUpload.institution_id == (actor.institution_id or 0),
                ImagingUpload.status.in_((RECEIVING, INGESTING)),
                ImagingUpload.expires_at > now(),
            )
            .order_by(ImagingUpload.created_at.desc())
            .limit(100)
        ).scalars()
    )


# Receiving chunks ----------------------------------------------------------------------------


def offset_mismatch(expected: int) -> Conflict:
    return Conflict(
        N_("The upload continues at byte {expected}."),
        code="upload_offset_mismatch",
        field="Upload-Offset",
        params={"expected": expected},
        headers={"Upload-Offset": str(expected)},
    )


def chunk_too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        N_("A chunk may hold at most {limit} bytes."),
        code="upload_chunk_too_large",
        field="body",
        params={"limit": limit},
    )


def append(
    session: Session,
    actor: Principal,
    settings: ImagingSettings,
    parts: PartStore,
    public_id: str,
    offset: int,
    data: bytes,
) -> ImagingUpload:
    """Write the chunk ``data`` at ``offset``; the upload's new offset is ``received``."""
    upload = find(session, actor, public_id, "imaging.upload.write", lock=True)
    if upload.status != RECEIVING:
        raise Conflict(
            N_("This upload is complete; it takes no more data."),
            code="upload_not_receiving",
            field=FIELD,
            headers={"Upload-Offset": str(upload.received)},
        )
    if len(data) > settings.upload_chunk_max_bytes:
        raise chunk_too_large(settings.upload_chunk_max_bytes)
    if offset != upload.received:
        raise offset_mismatch(upload.received)
    if offset + len(data) > upload.size:
        raise PayloadTooLarge(
            N_("The data goes beyond the declared size of {size} bytes."),
            code="upload_beyond_size",
            field="body",
            params={"size": upload.size},
        )
    if not parts.exists(upload.storage_name):
        raise Conflict(
            N_("The partial data of this upload is gone; please start again."),
            code="upload_data_lost",
            field=FIELD,
        )
    if data:
        parts.write_at(upload.storage_name, offset, data)
    at = now()
    upload.received = offset + len(data)
    upload.updated_at = at
    upload.expires_at = at + timedelta(hours=settings.upload_expiry_hours)
    session.flush()
    return upload


def cancel(session: Session, actor: Principal, parts: PartStore, public_id: str) -> None:
    """Abandon an unfinished upload and delete its partial data (tus termination)."""
    upload = find(session, actor, public_id, "imaging.upload.cancel", lock=True)
    if upload.status != RECEIVING:
        raise Conflict(
            N_("Only an unfinished upload can be cancelled."),
            code="upload_not_receiving",
            field=FIELD,
        )
    upload.status = CANCELLED
    upload.updated_at = now()
    session.flush()
    audit.record(
        session, actor, "imaging.upload.cancel", object_kind=OBJECT_KIND, object_id=upload.id
    )
    parts.delete(upload.storage_name)

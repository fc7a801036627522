"""Resumable web uploads of DICOM files and zips of them (docs/imaging.md, "Uploading studies").

The protocol is tus 1.0 core with a JSON creation step: :func:`create` declares a file
(name, size, kind, optional SHA-256, and a client request id that makes a retried create
return the same upload); :func:`append` takes the next chunk at the offset the server has;
:func:`complete` ingests what arrived. Chunks are written to a partial file under the data
folder whose name the server chose (``PartStore``), never under the client's name and never
into the blob store: only :func:`xietong.imaging.service.ingest` puts bytes there.

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
import hashlib
import logging
import os
import re
import secrets
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
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
    Invalid,
    PayloadTooLarge,
    TooManyRequests,
    XietongError,
)
from xietong.core.pii import PiiProtector
from xietong.core.storage import BlobStore
from xietong.imaging import service as imaging
from xietong.imaging.models import ImagingStudy
from xietong.imaging.upload_files import (
    FIELD,
    Entry,
    Refusal,
    display_name,
    read_entry,
    skip_reason,
    zip_entries,
)
from xietong.imaging.upload_models import ImagingUpload, ImagingUploadItem

log = logging.getLogger("xietong.imaging.uploads")

OBJECT_KIND = "imaging_upload"
Kind = Literal["dicom", "zip"]
RECEIVING, INGESTING, COMPLETED, FAILED = "receiving", "ingesting", "completed", "failed"
EXPIRED, CANCELLED = "expired", "cancelled"
GONE = (EXPIRED, CANCELLED)
# An ingest that has not committed a file for this long is taken to have died.
INGEST_LEASE = timedelta(minutes=10)
# Partial files younger than this without a row may belong to a create still in flight.
ORPHAN_GRACE = timedelta(hours=1)
READ_BLOCK = 1024 * 1024
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


# Completing: ingesting -----------------------------------------------------------------------


@dataclass(frozen=True)
class Services:
    """What ingesting needs besides the session: where bytes go, how PII is protected."""

    settings: ImagingSettings
    parts: PartStore
    blobs: BlobStore
    pii: PiiProtector


def complete(
    session: Session, actor: Principal, services: Services, public_id: str
) -> ImagingUpload:
    """Ingest a fully received upload. Commits: a claim, then each file with its item row,
    then the end. Finished or failed uploads are returned (or their failure raised) as they
    are; one that is being ingested by another request is a 409."""
    require_uploader(session, actor, "imaging.upload.complete")
    upload = find(session, actor, public_id, "imaging.upload.complete", lock=True)
    if upload.status == COMPLETED:
        return upload
    if upload.status == FAILED:
        raise _stored_failure(upload)
    if upload.status == RECEIVING and upload.received != upload.size:
        raise Conflict(
            N_("The upload is not complete: {received} of {size} bytes arrived."),
            code="upload_incomplete",
            field=FIELD,
            params={"received": upload.received, "size": upload.size},
            headers={"Upload-Offset": str(upload.received)},
        )
    if upload.status == INGESTING and upload.updated_at > now() - INGEST_LEASE:
        raise Conflict(
            N_("This upload is being stored; ask again in a moment."),
            code="upload_ingesting",
            field=FIELD,
        )
    _touch(upload, services.settings, INGESTING)
    session.commit()
    path = services.parts.path(upload.storage_name)
    try:
        _check_digest(upload, path)
        if upload.kind == "zip":
            _ingest_zip(session, actor, services, upload, path)
        else:
            _ingest_file(session, actor, services, upload, path)
    except XietongError as error:
        if error.status in (401, 403):
            raise
        session.rollback()
        _fail(session, actor, upload, error)
        session.commit()
        services.parts.delete(upload.storage_name)
        raise
    _finish(session, actor, upload)
    session.commit()
    services.parts.delete(upload.storage_name)
    return upload


def _touch(upload: ImagingUpload, settings: ImagingSettings, status: str) -> None:
    at = now()
    upload.status = status
    upload.updated_at = at
    upload.expires_at = at + timedelta(hours=settings.upload_expiry_hours)


def _check_digest(upload: ImagingUpload, path: Path) -> None:
    if not path.is_file() or path.stat().st_size != upload.size:
        raise Invalid(
            N_("The partial data of this upload is gone; please start again."),
            code="upload_data_lost",
            field=FIELD,
        )
    if upload.sha256 is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(READ_BLOCK), b""):
            digest.update(block)
    if digest.hexdigest() != upload.sha256:
        raise Invalid(
            N_("The received file does not match the declared SHA-256; please upload it again."),
            code="upload_checksum_mismatch",
            field="sha256",
        )


def _done_positions(session: Session, upload: ImagingUpload) -> set[int]:
    return set(
        session.execute(
            select(ImagingUploadItem.position).where(ImagingUploadItem.upload_id == upload.id)
        ).scalars()
    )


def _ingest_file(
    session: Session, actor: Principal, services: Services, upload: ImagingUpload, path: Path
) -> None:
    if 0 in _done_positions(session, upload):
        return
    if upload.size > services.settings.max_instance_bytes:
        outcome: Refusal | bytes = Refusal(
            "refused",
            "dicom_too_large",
            N_("The file is too large: at most {limit} bytes are accepted."),
            {"limit": services.settings.max_instance_bytes},
        )
    else:
        outcome = path.read_bytes()
    _store_one(session, actor, services, upload, Entry(0, upload.file_name, None), outcome)


def _ingest_zip(
    session: Session, actor: Principal, services: Services, upload: ImagingUpload, path: Path
) -> None:
    try:
        zf = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError) as exc:
        raise Invalid(
            N_("The file is not a readable zip archive."), code="zip_corrupt", field=FIELD
        ) from exc
    with zf:
        entries = zip_entries(zf, services.settings)
        done = _done_positions(session, upload)
        for entry in entries:
            if entry.position in done:
                continue
            assert entry.info is not None  # noqa: S101 - zip entries carry their info
            outcome: Refusal | bytes
            try:
                data = read_entry(zf, entry.info, services.settings.max_instance_bytes)
                outcome = skip_reason(entry.name, data) or data
            except Refusal as refusal:
                outcome = refusal
            _store_one(session, actor, services, upload, entry, outcome)


def _store_one(
    session: Session,
    actor: Principal,
    services: Services,
    upload: ImagingUpload,
    entry: Entry,
    outcome: Refusal | bytes,
) -> None:
    """Ingest one file in a savepoint and commit it together with its item row."""
    item = ImagingUploadItem(upload_id=upload.id, position=entry.position, name=entry.name)
    if isinstance(outcome, Refusal):
        _describe(item, outcome.outcome, outcome.code, outcome.message, outcome.params)
    else:
        try:
            with session.begin_nested():
                result = imaging.ingest(
                    session,
                    services.blobs,
                    services.pii,
                    outcome,
                    sender_institution_id=upload.institution_id,
                    actor=actor,
                    duplicate=services.settings.duplicate,
                    max_bytes=services.settings.max_instance_bytes,
                )
        except XietongError as error:
            if error.status in (401, 403):
                raise
            _describe(item, "refused", error.code, error.message, error.params)
        except SQLAlchemyError:
            raise  # the database failed, not the file: the completion stops and resumes later
        except Exception:
            # A parser bug on one odd file must not block every retry of the whole upload.
            log.exception("ingest of upload %s entry %s failed", upload.id, entry.position)
            _describe(
                item,
                "refused",
                "ingest_failed",
                N_("The file could not be read; it has been logged."),
                {},
            )
        else:
            item.outcome = "stored" if result.created else "already_stored"
            item.study_id = result.study.id
            item.sop_instance_uid = result.instance.sop_instance_uid
    session.add(item)
    _touch(upload, services.settings, INGESTING)
    session.commit()


def _describe(
    item: ImagingUploadItem, outcome: str, code: str, message: str, params: dict[str, Any]
) -> None:
    item.outcome = outcome
    item.code = code[:64]
    item.message = message[:255]
    item.params = {k: v for k, v in params.items() if isinstance(v, str | int | float)} or None


def _fail(session: Session, actor: Principal, upload: ImagingUpload, error: XietongError) -> None:
    upload.status = FAILED
    upload.error_code = error.code[:64]
    upload.error_message = error.message[:255]
    upload.error_params = {k: v for k, v in error.params.items() if isinstance(v, str | int)}
    upload.updated_at = upload.completed_at = now()
    session.add(upload)
    session.flush()
    audit.record(
        session,
        actor,
        "imaging.upload.complete",
        object_kind=OBJECT_KIND,
        object_id=upload.id,
        outcome="failed",
        detail={"code": upload.error_code},
    )


def _stored_failure(upload: ImagingUpload) -> XietongError:
    error_class = PayloadTooLarge if upload.error_code == "zip_too_large" else Invalid
    return error_class(
        upload.error_message or None,
        code=upload.error_code or "upload_failed",
        field=FIELD,
        params=dict(upload.error_params or {}),
    )


def _finish(session: Session, actor: Principal, upload: ImagingUpload) -> None:
    counts: dict[str, int] = dict(
        session.execute(
            select(ImagingUploadItem.outcome, func.count(ImagingUploadItem.id))
            .where(ImagingUploadItem.upload_id == upload.id)
            .group_by(ImagingUploadItem.outcome)
        ).all()
    )
    upload.status = COMPLETED
    upload.updated_at = upload.completed_at = now()
    session.flush()
    audit.record(
        session,
        actor,
        "imaging.upload.complete",
        object_kind=OBJECT_KIND,
        object_id=upload.id,
        detail={"kind": upload.kind, "size": upload.size, **counts},
    )


# Results -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class UploadResult:
    upload: ImagingUpload
    items: list[ImagingUploadItem]
    studies: list[ImagingStudy]
    counts: dict[str, int]


def result(session: Session, upload: ImagingUpload) -> UploadResult:
    """The files of an upload with their outcomes, and the studies they went into."""
    items = list(
        session.execute(
            select(ImagingUploadItem)
            .where(ImagingUploadItem.upload_id == upload.id)
            .order_by(ImagingUploadItem.position)
        ).scalars()
    )
    study_ids = {i.study_id for i in items if i.study_id is not None}
    studies = (
        list(
            session.execute(
                select(ImagingStudy)
                .where(ImagingStudy.id.in_(study_ids))
                .order_by(ImagingStudy.study_date.desc(), ImagingStudy.id)
            ).scalars()
        )
        if study_ids
        else []
    )
    counts = {"stored": 0, "already_stored": 0, "refused": 0, "skipped": 0}
    for item in items:
        counts[item.outcome] = counts.get(item.outcome, 0) + 1
    return UploadResult(upload, items, studies, counts)


# Expiry (xietong jobs uploads) ---------------------------------------------------------------


@dataclass(frozen=True)
class ExpiryRun:
    expired: int
    orphans: int


def expire(session: Session, parts: PartStore) -> ExpiryRun:
    """Expire unfinished uploads past their time and delete partial files nobody needs:
    those of finished, failed, expired or cancelled uploads, and unclaimed ones older than
    an hour (a create whose transaction never committed)."""
    at = now()
    stale = list(
        session.execute(
            select(ImagingUpload).where(
                ImagingUpload.status.in_((RECEIVING, INGESTING)), ImagingUpload.expires_at <= at
            )
        ).scalars()
    )
    for upload in stale:
        upload.status = EXPIRED
        upload.updated_at = at
    session.flush()
    live = set(
        session.execute(
            select(ImagingUpload.storage_name).where(
                ImagingUpload.status.in_((RECEIVING, INGESTING))
            )
        ).scalars()
    )
    orphans = 0
    for name, modified in list(parts.names()):
        if name in live or (modified > at - ORPHAN_GRACE and not _known(session, name)):
            continue
        parts.delete(name)
        orphans += 1
    return ExpiryRun(expired=len(stale), orphans=orphans)


def _known(session: Session, name: str) -> bool:
    found = session.execute(
        select(ImagingUpload.id).where(ImagingUpload.storage_name == name)
    ).first()
    return found is not None

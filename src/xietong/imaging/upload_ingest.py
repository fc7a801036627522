"""Completing a resumable upload (imaging/uploads.py has the protocol): the file, or every
entry of the zip, is ingested through :func:`xietong.imaging.service.ingest` in its own
savepoint and committed with its item row, so one bad file loses nothing else, and a
completion that stopped half-way resumes after the last committed item once its lease ran
out; finishing twice ingests nothing twice. A zip is checked whole before any entry is
stored (imaging/upload_files.py).
"""

from __future__ import annotations

import hashlib
import zipfile
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.config import ImagingSettings
from xietong.core.clock import now
from xietong.core.errors import (
    N_,
    Conflict,
    Invalid,
    PayloadTooLarge,
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
    read_entry,
    skip_reason,
    zip_entries,
)
from xietong.imaging.upload_models import ImagingUpload, ImagingUploadItem
from xietong.imaging.uploads import (
    COMPLETED,
    FAILED,
    INGESTING,
    OBJECT_KIND,
    RECEIVING,
    PartStore,
    find,
    log,
    require_uploader,
)

# An ingest that has not committed a file for this long is taken to have died.
INGEST_LEASE = timedelta(minutes=10)
READ_BLOCK = 1024 * 1024


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

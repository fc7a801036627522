"""Expiring abandoned resumable uploads and their partial files (``xietong jobs uploads``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.core.clock import now
from xietong.imaging.upload_models import ImagingUpload
from xietong.imaging.uploads import (
    EXPIRED,
    INGESTING,
    RECEIVING,
    PartStore,
)

# Partial files younger than this without a row may belong to a create still in flight.
ORPHAN_GRACE = timedelta(hours=1)


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

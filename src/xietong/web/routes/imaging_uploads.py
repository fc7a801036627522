"""Resumable uploads of DICOM files and zips: /api/v1/imaging/uploads (tus 1.0 core).

POST creates an upload from a JSON declaration (201; 200 for a retry with the same
``client_request_id``); HEAD answers the offset after a broken connection; PATCH with
``Upload-Offset`` and ``Content-Type: application/offset+octet-stream`` appends a chunk
(204 with the new ``Upload-Offset``; 409 with the expected one for a wrong offset);
POST …/complete ingests (idempotent); DELETE abandons. Every answer carries
``Tus-Resumable: 1.0.0``. The rules live in :mod:`xietong.imaging.uploads`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Path, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect

from xietong.core.errors import N_, BadRequest, UnsupportedMediaType, XietongError
from xietong.core.i18n import translate
from xietong.imaging import upload_ingest, uploads
from xietong.imaging.upload_models import ImagingUpload
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services

PREFIX = "/api/v1/imaging/uploads"
router = APIRouter(prefix=PREFIX, tags=["imaging"], dependencies=[Depends(current_principal)])
# Chunks are larger than a JSON body: the upload body limit applies to PATCH.
UPLOAD_PATHS = (rf"^{PREFIX}/[0-9a-f]{{32}}$",)
TUS_VERSION = "1.0.0"
CHUNK_TYPE = "application/offset+octet-stream"
PublicId = Annotated[str, Path(pattern=uploads.PUBLIC_ID_PATTERN)]
_OFFSET = re.compile(r"^[0-9]{1,19}$")


class UploadIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    file_name: str = Field(min_length=1, max_length=1000)
    size: int = Field(ge=1, le=2**53)
    kind: Literal["dicom", "zip"]
    sha256: str | None = Field(default=None, pattern=uploads.SHA256_PATTERN)
    client_request_id: str | None = Field(default=None, pattern=uploads.REQUEST_ID_PATTERN)


class PreconditionFailed(XietongError):
    status = 412
    default_code = "tus_version"
    default_message = N_("This server speaks tus 1.0.0 only.")


def _locale(request: Request) -> str:
    chosen: str | None = getattr(request.state, "locale", None)
    return chosen or services(request).settings.i18n.default_locale


def _services(request: Request) -> upload_ingest.Services:
    app = services(request)
    return upload_ingest.Services(
        settings=app.settings.imaging,
        parts=uploads.part_store(app.settings),
        blobs=app.blobs,
        pii=app.pii,
    )


def _tus_headers(upload: ImagingUpload | None = None) -> dict[str, str]:
    headers = {"Tus-Resumable": TUS_VERSION, "Cache-Control": "no-store"}
    if upload is not None:
        headers["Upload-Offset"] = str(upload.received)
        headers["Upload-Length"] = str(upload.size)
        headers["Location"] = f"{PREFIX}/{upload.public_id}"
    return headers


def _check_tus(request: Request) -> None:
    sent = request.headers.get("tus-resumable")
    if sent is not None and sent.strip() != TUS_VERSION:
        raise PreconditionFailed(field="Tus-Resumable", headers={"Tus-Version": TUS_VERSION})


def _when(at: datetime | None) -> str | None:
    return at.isoformat(timespec="seconds") if at is not None else None


def upload_json(request: Request, found: upload_ingest.UploadResult) -> dict[str, Any]:
    """An upload, its files and the studies they went into, messages in the user's language."""
    locale = _locale(request)
    upload = found.upload
    error = None
    if upload.error_code:
        error = {
            "code": upload.error_code,
            "message": translate(locale, upload.error_message or "", **(upload.error_params or {})),
        }
    return {
        "id": upload.public_id,
        "file_name": upload.file_name,
        "kind": upload.kind,
        "size": upload.size,
        "offset": upload.received,
        "status": upload.status,
        "created_at": _when(upload.created_at),
        "expires_at": _when(upload.expires_at),
        "completed_at": _when(upload.completed_at),
        "error": error,
        "counts": found.counts,
        "files": [
            {
                "name": item.name,
                "outcome": item.outcome,
                "code": item.code,
                "message": translate(locale, item.message, **(item.params or {}))
                if item.message
                else None,
                "sop_instance_uid": item.sop_instance_uid,
            }
            for item in found.items
        ],
        "studies": [
            {
                "study_uid": study.study_uid,
                "description": study.description,
                "study_date": study.study_date.isoformat() if study.study_date else None,
                "modalities": study.modalities.split("\\") if study.modalities else [],
                "patient_name": study.patient_name,
                "instance_count": study.instance_count,
                "patient_id": study.patient_id,
                "chart_href": f"/patients/{study.patient_id}" if study.patient_id else None,
                "viewer_href": f"/imaging/studies/{study.id}/view",
            }
            for study in found.studies
        ],
        "href": f"{PREFIX}/{upload.public_id}",
    }


@router.options("", summary="tus discovery: version, extensions, largest upload")
def discover(request: Request) -> Response:
    settings = services(request).settings.imaging
    headers = _tus_headers()
    headers.update(
        {
            "Tus-Version": TUS_VERSION,
            "Tus-Extension": "termination",
            "Tus-Max-Size": str(settings.upload_max_bytes),
        }
    )
    return Response(status_code=204, headers=headers)


@router.post("", summary="Declare an upload (a retry with the same client_request_id: 200)")
def create_upload(
    body: UploadIn,
    request: Request,
    response: Response,
    session: DbSession,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    _check_tus(request)
    app = _services(request)
    upload, created = uploads.create(
        session,
        principal,
        app.settings,
        app.parts,
        uploads.Declared(
            file_name=body.file_name,
            size=body.size,
            kind=body.kind,
            sha256=body.sha256,
            client_request_id=body.client_request_id,
        ),
    )
    response.status_code = 201 if created else 200
    response.headers.update(_tus_headers(upload))
    return upload_json(request, upload_ingest.result(session, upload))


@router.get("", summary="My unfinished uploads")
def list_uploads(
    request: Request, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    found = uploads.list_open(session, principal)
    return {"items": [upload_json(request, upload_ingest.result(session, u)) for u in found]}


@router.head("/{public_id}", summary="tus: the offset to continue at")
def upload_offset(public_id: PublicId, session: DbSession, principal: CurrentPrincipal) -> Response:
    upload = uploads.find(session, principal, public_id)
    return Response(status_code=200, headers=_tus_headers(upload))


@router.get("/{public_id}", summary="An upload, its files and their outcomes")
def upload_detail(
    public_id: PublicId,
    request: Request,
    response: Response,
    session: DbSession,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    upload = uploads.find(session, principal, public_id)
    response.headers.update(_tus_headers(upload))
    return upload_json(request, upload_ingest.result(session, upload))


async def _read_chunk(request: Request, limit: int) -> bytes:
    """The request body, refused as soon as it grows past ``limit``."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise uploads.chunk_too_large(limit)
    body = bytearray()
    try:
        async for piece in request.stream():
            body += piece
            if len(body) > limit:
                raise uploads.chunk_too_large(limit)
    except ClientDisconnect as exc:
        # Nothing of a chunk that did not arrive whole is kept; the client asks HEAD.
        raise BadRequest(code="upload_interrupted", field="body") from exc
    return bytes(body)


@router.patch("/{public_id}", status_code=204, summary="tus: append a chunk at Upload-Offset")
async def upload_chunk(
    public_id: PublicId, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    _check_tus(request)
    media = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if media != CHUNK_TYPE:
        raise UnsupportedMediaType(
            N_("Send chunks as {media}."),
            code="upload_media_type",
            field="content-type",
            params={"media": CHUNK_TYPE},
        )
    raw_offset = request.headers.get("upload-offset", "").strip()
    if not _OFFSET.fullmatch(raw_offset):
        raise BadRequest(
            N_("Upload-Offset must be a whole number of bytes."),
            code="upload_offset_invalid",
            field="Upload-Offset",
        )
    app = _services(request)
    # Signing in opened a transaction (on SQLite, the write lock): end it before the chunk
    # travels, which on a slow line takes long; append() opens the next one.
    await run_in_threadpool(session.commit)
    data = await _read_chunk(request, app.settings.upload_chunk_max_bytes)
    upload = await run_in_threadpool(
        uploads.append,
        session,
        principal,
        app.settings,
        app.parts,
        public_id,
        int(raw_offset),
        data,
    )
    headers = _tus_headers(upload)
    del headers["Location"]
    return Response(status_code=204, headers=headers)


@router.post("/{public_id}/complete", summary="Ingest a received upload (idempotent)")
def complete_upload(
    public_id: PublicId, request: Request, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    upload = upload_ingest.complete(session, principal, _services(request), public_id)
    return upload_json(request, upload_ingest.result(session, upload))


@router.delete("/{public_id}", status_code=204, summary="tus termination: abandon an upload")
def cancel_upload(
    public_id: PublicId, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    uploads.cancel(session, principal, _services(request).parts, public_id)
    return Response(status_code=204, headers=_tus_headers())

"""DICOMweb STOW-RS (PS3.18 §10.5) under /dicomweb: store instances, one study or several.

STOW bodies get the upload body limit (UPLOAD_PATHS); every part is ingested in its own
savepoint, so one bad file fails alone, and the answer (PS3.18 §10.5.3) is sent after the
commit: 200 all stored, 202 some failed, 409 none stored, 415 for a body that is not
``multipart/related; type="application/dicom"``. See src/xietong/imaging/README.md.
"""

from __future__ import annotations

import json
from io import BytesIO
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from pydicom import dcmread
from starlette.concurrency import run_in_threadpool

from xietong.access.principal import Principal
from xietong.core.errors import (
    N_,
    BadRequest,
    NotFound,
    UnsupportedMediaType,
    XietongError,
)
from xietong.imaging import service as imaging
from xietong.imaging.dicom import is_valid_uid
from xietong.web.context import AppServices
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services
from xietong.web.routes.dicomweb import DICOM_JSON, base_url, content_parameters

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"], dependencies=[Depends(current_principal)])

UPLOAD_PATHS = (r"^/dicomweb/studies$", r"^/dicomweb/studies/[0-9.]{1,64}$")
MAX_PARTS = 5000
# PS3.4 Annex GG / PS3.18 Table 10.5.3-1 failure reasons
FAILURE_PROCESSING = 0x0110
FAILURE_DUPLICATE = 0x0111
FAILURE_NOT_UNDERSTOOD = 0xC000
FAILURE_STUDY_MISMATCH = 0xA900
FAILURE_OUT_OF_RESOURCES = 0xA700


# Multipart ---------------------------------------------------------------------------------


def split_multipart(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """(content type, bytes) of each part of a multipart/related body of DICOM files."""
    media, params = content_parameters(content_type)
    kind = params.get("type", "application/dicom").lower()
    if media != "multipart/related" or kind != "application/dicom":
        raise UnsupportedMediaType(
            N_('Send multipart/related; type="application/dicom".'),
            code="stow_media_type",
            field="content-type",
        )
    boundary = params.get("boundary", "")
    if not 0 < len(boundary) <= 200:
        raise BadRequest(code="multipart_boundary", field="content-type")
    delimiter = b"--" + boundary.encode("latin-1")
    chunks = body.split(b"\r\n" + delimiter)
    first = chunks[0]
    if first.startswith(delimiter):
        chunks[0] = first[len(delimiter) :]
    else:
        chunks = chunks[1:]
    parts: list[tuple[str, bytes]] = []
    for chunk in chunks:
        if chunk.startswith(b"--"):
            break  # the close delimiter
        if len(parts) >= MAX_PARTS:
            raise BadRequest(code="multipart_too_many_parts", field="file")
        head, sep, content = chunk.partition(b"\r\n\r\n")
        if not sep:
            raise BadRequest(code="multipart_malformed", field="file")
        part_type = "application/dicom"
        for line in head.split(b"\r\n"):
            name, _, value = line.decode("latin-1").partition(":")
            if name.strip().lower() == "content-type":
                part_type = content_parameters(value)[0]
        parts.append((part_type, content))
    return parts


# STOW-RS -----------------------------------------------------------------------------------


def _sop_of(data: bytes) -> tuple[str, str]:
    """(SOP class, SOP instance) of a refused file, when they can be read at all."""
    try:
        ds = dcmread(BytesIO(data), stop_before_pixels=True, specific_tags=[0x00080016, 0x00080018])
        sop_class, sop_uid = str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", ""))
    except Exception:
        return "", ""
    return (
        sop_class if is_valid_uid(sop_class) else "",
        sop_uid if is_valid_uid(sop_uid) else "",
    )


def _reference(sop_class: str, sop_uid: str) -> dict[str, Any]:
    item: dict[str, Any] = {}
    if sop_class:
        item["00081150"] = {"vr": "UI", "Value": [sop_class]}
    if sop_uid:
        item["00081155"] = {"vr": "UI", "Value": [sop_uid]}
    return item


def _failure_reason(error: XietongError) -> int:
    if error.code == "instance_conflict":
        return FAILURE_DUPLICATE
    if error.status == 413:
        return FAILURE_OUT_OF_RESOURCES
    if error.status == 422:
        return FAILURE_NOT_UNDERSTOOD
    return FAILURE_PROCESSING


def _store_all(
    session: Any,
    app: AppServices,
    principal: Principal,
    parts: list[tuple[str, bytes]],
    study_uid: str | None,
    base_url: str,
) -> tuple[int, dict[str, Any]]:
    stored: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    settings = app.settings.imaging
    writes = imaging.BlobWrites()
    for part_type, data in parts:
        if part_type != "application/dicom":
            failed.append({**_reference("", ""), **_reason(FAILURE_NOT_UNDERSTOOD)})
            continue
        try:
            with session.begin_nested():
                result = imaging.ingest(
                    session,
                    app.blobs,
                    app.pii,
                    data,
                    sender_institution_id=principal.institution_id or 0,
                    actor=principal,
                    duplicate=settings.duplicate,
                    max_bytes=settings.max_instance_bytes,
                    writes=writes,
                )
                if study_uid is not None and result.study.study_uid != study_uid:
                    raise _StudyMismatch
        except _StudyMismatch:
            failed.append({**_reference(*_sop_of(data)), **_reason(FAILURE_STUDY_MISMATCH)})
            continue
        except XietongError as error:
            if error.status in (401, 403):
                raise
            failed.append({**_reference(*_sop_of(data)), **_reason(_failure_reason(error))})
            continue
        instance = result.instance
        url = (
            f"{base_url}/studies/{result.study.study_uid}/series/"
            f"{imaging.series_uid_of(session, instance)}/instances/{instance.sop_instance_uid}"
        )
        stored.append(
            {
                **_reference(instance.sop_class_uid, instance.sop_instance_uid),
                "00081190": {"vr": "UR", "Value": [url]},
            }
        )
    writes.wait()  # every stored part's file is durable before the commit and the answer
    answer: dict[str, Any] = {}
    if study_uid is not None or stored:
        uid = study_uid or stored[0]["00081190"]["Value"][0].split("/")[-5]
        answer["00081190"] = {"vr": "UR", "Value": [f"{base_url}/studies/{uid}"]}
    if failed:
        answer["00081198"] = {"vr": "SQ", "Value": failed}
    if stored:
        answer["00081199"] = {"vr": "SQ", "Value": stored}
    status = 200 if not failed else (202 if stored else 409)
    return status, answer


class _StudyMismatch(Exception):
    pass


def _reason(code: int) -> dict[str, Any]:
    return {"00081197": {"vr": "US", "Value": [code]}}


async def _stow(
    request: Request, session: DbSession, principal: CurrentPrincipal, study_uid: str | None
) -> Response:
    if study_uid is not None and not is_valid_uid(study_uid):
        raise NotFound(code="imaging_study_not_found")
    parts = split_multipart(await request.body(), request.headers.get("content-type", ""))
    status, answer = await run_in_threadpool(
        _store_all, session, services(request), principal, parts, study_uid, base_url(request)
    )
    return Response(json.dumps(answer), status_code=status, media_type=DICOM_JSON)


@router.post("/studies", summary="STOW-RS: store instances")
async def stow(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    return await _stow(request, session, principal, None)


@router.post("/studies/{study_uid}", summary="STOW-RS: store instances of one study")
async def stow_study(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    return await _stow(request, session, principal, study_uid)

"""DICOMweb (PS3.18) under /dicomweb: STOW-RS, QIDO-RS and WADO-RS (instances, metadata).

Bearer token or session, like the JSON API; only studies the principal may read appear.
STOW bodies get the upload body limit (UPLOAD_PATHS); every part is ingested in its own
savepoint, so one bad file fails alone, and the answer (PS3.18 §10.5.3) is sent after the
commit: 200 all stored, 202 some failed, 409 none stored, 415 for a body that is not
``multipart/related; type="application/dicom"``. See src/xietong/imaging/README.md.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterator
from io import BytesIO
from typing import Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse
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
from xietong.core.storage import BlobStore
from xietong.imaging import query as qido
from xietong.imaging import retrieve
from xietong.imaging import service as imaging
from xietong.imaging.dicom import is_valid_uid
from xietong.imaging.models import ImagingInstance
from xietong.web.context import AppServices
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"], dependencies=[Depends(current_principal)])
UPLOAD_PATHS = (r"^/dicomweb/studies$", r"^/dicomweb/studies/[0-9.]{1,64}$")
DICOM_JSON = "application/dicom+json"
MAX_PARTS = 5000
# PS3.4 Annex GG / PS3.18 Table 10.5.3-1 failure reasons
FAILURE_PROCESSING = 0x0110
FAILURE_DUPLICATE = 0x0111
FAILURE_NOT_UNDERSTOOD = 0xC000
FAILURE_STUDY_MISMATCH = 0xA900
FAILURE_OUT_OF_RESOURCES = 0xA700


# Multipart ---------------------------------------------------------------------------------


def _parameters(content_type: str) -> tuple[str, dict[str, str]]:
    head, *rest = content_type.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, _, value = item.strip().partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return head.strip().lower(), params


def split_multipart(body: bytes, content_type: str) -> list[tuple[str, bytes]]:
    """(content type, bytes) of each part of a multipart/related body of DICOM files."""
    media, params = _parameters(content_type)
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
                part_type = _parameters(value)[0]
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


def _base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/dicomweb"


async def _stow(
    request: Request, session: DbSession, principal: CurrentPrincipal, study_uid: str | None
) -> Response:
    if study_uid is not None and not is_valid_uid(study_uid):
        raise NotFound(code="imaging_study_not_found")
    parts = split_multipart(await request.body(), request.headers.get("content-type", ""))
    status, answer = await run_in_threadpool(
        _store_all, session, services(request), principal, parts, study_uid, _base_url(request)
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


# QIDO-RS -----------------------------------------------------------------------------------


def _check_accept(request: Request, *types: str) -> None:
    accept = request.headers.get("accept", "")
    if not accept:
        return
    offered = [_parameters(a)[0] for a in accept.split(",")]
    if any(o in ("*/*", "application/*", *types) for o in offered):
        return
    raise _NotAcceptable


class _NotAcceptable(XietongError):
    status = 406
    default_code = "not_acceptable"
    default_message = N_("This Accept type cannot be served.")


def _query(request: Request) -> tuple[qido.Query, list[str]]:
    query = qido.Query()
    warnings: list[str] = []
    include: list[str] = []
    for key, value in request.query_params.multi_items():
        if key == "includefield":
            for name in value.split(","):
                if name == "all":
                    query.include_all = True
                elif (keyword := qido.keyword_of(name)) is not None:
                    include.append(keyword)
        elif key in ("limit", "offset"):
            if not re.fullmatch(r"\d{1,7}", value):
                raise BadRequest(code="query_invalid", field=key)
            setattr(query, key, int(value))
        elif key == "fuzzymatching":
            if value.lower() == "true":
                warnings.append('299 xietong "fuzzymatching is not supported; exact matching"')
        elif (keyword := qido.keyword_of(key)) is not None:
            if value:
                query.match[keyword] = value
        else:
            warnings.append(f'299 xietong "the attribute {key[:64]} is not supported: ignored"')
    query.limit = max(1, min(query.limit, qido.MAX_LIMIT))
    query.include = tuple(include)
    return query, warnings


def _answer(page: qido.Page, warnings: list[str], limit: int) -> Response:
    if page.truncated:
        warnings.append(f'299 xietong "results truncated at limit={limit}: page with offset"')
    headers = {"Warning": ", ".join(warnings)} if warnings else {}
    if not page.items:
        return Response(status_code=204, headers=headers)
    return Response(
        json.dumps(page.items, ensure_ascii=False),
        media_type=DICOM_JSON,
        headers=headers,
    )


@router.get("/studies", summary="QIDO-RS: search studies")
def search_studies(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    _check_accept(request, DICOM_JSON, "application/json")
    query, warnings = _query(request)
    page = qido.search_studies(session, principal, query, _base_url(request))
    return _answer(page, warnings, query.limit)


@router.get("/studies/{study_uid}/series", summary="QIDO-RS: search the series of a study")
def search_series(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    _check_accept(request, DICOM_JSON, "application/json")
    query, warnings = _query(request)
    study = imaging.open_study(session, principal, study_uid, "imaging.search").study
    page = qido.search_series(session, principal, study, query, _base_url(request))
    return _answer(page, warnings, query.limit)


@router.get("/studies/{study_uid}/instances", summary="QIDO-RS: search the instances of a study")
def search_study_instances(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    _check_accept(request, DICOM_JSON, "application/json")
    query, warnings = _query(request)
    study = imaging.open_study(session, principal, study_uid, "imaging.search").study
    page = qido.search_instances(session, principal, study, None, query, _base_url(request))
    return _answer(page, warnings, query.limit)


@router.get(
    "/studies/{study_uid}/series/{series_uid}/instances",
    summary="QIDO-RS: search the instances of a series",
)
def search_instances(
    study_uid: str,
    series_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    _check_accept(request, DICOM_JSON, "application/json")
    query, warnings = _query(request)
    study = imaging.open_study(session, principal, study_uid, "imaging.search").study
    page = qido.search_instances(session, principal, study, series_uid, query, _base_url(request))
    return _answer(page, warnings, query.limit)


# WADO-RS -----------------------------------------------------------------------------------


def _check_dicom_accept(request: Request, instances: list[ImagingInstance]) -> None:
    """multipart/related; type="application/dicom" with transfer-syntax * or the stored
    one (no transcoding yet); anything else 406."""
    accept = request.headers.get("accept", "")
    if not accept:
        return
    for offer in accept.split(","):
        media, params = _parameters(offer)
        if media in ("*/*", "multipart/*"):
            return
        if media != "multipart/related":
            continue
        if params.get("type", "application/dicom").lower() != "application/dicom":
            continue
        syntax = params.get("transfer-syntax", "*")
        if syntax == "*" or all(i.transfer_syntax_uid == syntax for i in instances):
            return
    raise _NotAcceptable


def _multipart(blobs: BlobStore, instances: list[ImagingInstance]) -> StreamingResponse:
    boundary = uuid.uuid4().hex

    def parts() -> Iterator[bytes]:
        for instance in instances:
            yield (
                f"--{boundary}\r\nContent-Type: application/dicom; "
                f"transfer-syntax={instance.transfer_syntax_uid}\r\n"
                f"Content-Length: {instance.size}\r\n\r\n"
            ).encode()
            yield retrieve.read_bytes(blobs, instance)
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return StreamingResponse(
        parts(),
        media_type=f'multipart/related; type="application/dicom"; boundary={boundary}',
    )


def _retrieve(
    request: Request,
    session: DbSession,
    principal: Principal,
    study_uid: str,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> StreamingResponse:
    study = imaging.open_study(session, principal, study_uid, "imaging.retrieve").study
    instances = qido.instances_of(session, study, series_uid)
    if sop_uid is not None:
        instances = [i for i in instances if i.sop_instance_uid == sop_uid]
    if not instances:
        raise NotFound(code="imaging_instance_not_found")
    _check_dicom_accept(request, instances)
    return _multipart(services(request).blobs, instances)


@router.get("/studies/{study_uid}", summary="WADO-RS: retrieve a study")
def retrieve_study(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> StreamingResponse:
    return _retrieve(request, session, principal, study_uid)


@router.get("/studies/{study_uid}/series/{series_uid}", summary="WADO-RS: retrieve a series")
def retrieve_series(
    study_uid: str,
    series_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> StreamingResponse:
    return _retrieve(request, session, principal, study_uid, series_uid)


@router.get(
    "/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}",
    summary="WADO-RS: retrieve an instance",
)
def retrieve_instance(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> StreamingResponse:
    return _retrieve(request, session, principal, study_uid, series_uid, sop_uid)


@router.get(
    "/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}/metadata",
    summary="WADO-RS: the metadata of an instance (DICOM JSON)",
)
def instance_metadata(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    _check_accept(request, DICOM_JSON, "application/json")
    study = imaging.open_study(session, principal, study_uid, "imaging.retrieve").study
    instance = qido.find_instance(session, study, series_uid, sop_uid)
    if instance is None:
        raise NotFound(code="imaging_instance_not_found")
    url = f"{_base_url(request)}/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"
    body = [retrieve.metadata(services(request).blobs, instance, url)]
    return Response(json.dumps(body, ensure_ascii=False), media_type=DICOM_JSON)

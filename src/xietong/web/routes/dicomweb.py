"""DICOMweb (PS3.18) under /dicomweb: STOW-RS, QIDO-RS, WADO-RS (instances, metadata,
bulk data, frames, rendered, thumbnails) and WADO-URI. Negotiation, decoding and rendering
rules live in imaging/retrieve.py and imaging/pixels.py; these routes open the study
(access, audit) and shape the HTTP answer.

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
from collections.abc import Iterable, Iterator
from io import BytesIO
from itertools import chain
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
from xietong.imaging import pixels, retrieve
from xietong.imaging import query as qido
from xietong.imaging import service as imaging
from xietong.imaging.dicom import is_valid_uid
from xietong.imaging.models import ImagingInstance
from xietong.imaging.pixels import Frame
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

Part = tuple[str, bytes]  # (Content-Type of the part, its bytes)


def _multipart(parts: Iterator[Part], media: str) -> Response:
    """A multipart/related answer; the first part is made before the answer starts, so a
    decoding error is still a clean 4xx. One part is sent whole; several are streamed, one
    chunk per part (each chunk of a sync iterator is a hop to the thread pool)."""
    boundary = uuid.uuid4().hex
    content_type = f'multipart/related; type="{media}"; boundary={boundary}'
    first = next(parts, None)
    second = next(parts, None) if first is not None else None
    close = f"--{boundary}--\r\n".encode()

    def chunk(part: Part) -> bytes:
        part_type, data = part
        head = f"--{boundary}\r\nContent-Type: {part_type}\r\nContent-Length: {len(data)}\r\n\r\n"
        return b"".join((head.encode(), data, b"\r\n"))

    if second is None:
        body = chunk(first) + close if first is not None else close
        return Response(body, media_type=content_type)

    def body_chunks() -> Iterator[bytes]:
        for part in chain([first, second] if first is not None else [], parts):
            yield chunk(part)
        yield close

    return StreamingResponse(body_chunks(), media_type=content_type)


def _instance_url(request: Request, study: str, series: str, sop: str) -> str:
    return f"{_base_url(request)}/studies/{study}/series/{series}/instances/{sop}"


def _instances(
    session: DbSession,
    principal: Principal,
    study_uid: str,
    series_uid: str | None = None,
    sop_uid: str | None = None,
) -> list[ImagingInstance]:
    """The instances at a level of a study the principal may read (404 otherwise, audited)."""
    study = imaging.open_study(session, principal, study_uid, "imaging.retrieve").study
    if sop_uid is not None and series_uid is not None:
        found = qido.find_instance(session, study, series_uid, sop_uid)
        instances = [found] if found is not None else []
    else:
        instances = qido.instances_of(session, study, series_uid)
    if not instances:
        raise NotFound(code="imaging_instance_not_found")
    return instances


def _retrieve(request: Request, instances: list[ImagingInstance]) -> Response:
    syntax = retrieve.choose_syntax(
        request.headers.get("accept", ""), {i.transfer_syntax_uid for i in instances}
    )
    blobs = services(request).blobs

    def parts() -> Iterator[Part]:
        for instance in instances:
            data = retrieve.instance_bytes(blobs, instance, syntax)
            yield (
                f"{retrieve.DICOM}; transfer-syntax={syntax or instance.transfer_syntax_uid}",
                data,
            )

    return _multipart(parts(), retrieve.DICOM)


@router.get("/studies/{study_uid}", summary="WADO-RS: retrieve a study")
def retrieve_study(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    return _retrieve(request, _instances(session, principal, study_uid))


@router.get("/studies/{study_uid}/series/{series_uid}", summary="WADO-RS: retrieve a series")
def retrieve_series(
    study_uid: str,
    series_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    return _retrieve(request, _instances(session, principal, study_uid, series_uid))


INSTANCE = "/studies/{study_uid}/series/{series_uid}/instances/{sop_uid}"


@router.get(INSTANCE, summary="WADO-RS: retrieve an instance")
def retrieve_instance(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    return _retrieve(request, _instances(session, principal, study_uid, series_uid, sop_uid))


# Metadata and bulk data


def _metadata(
    request: Request, instances: list[ImagingInstance], study_uid: str, session: DbSession
) -> Response:
    _check_accept(request, DICOM_JSON, "application/json")
    series = qido.series_uids(session, instances)
    body = retrieve.metadata_json(
        services(request).blobs,
        [
            (i, _instance_url(request, study_uid, series[i.series_id], i.sop_instance_uid))
            for i in instances
        ],
    )
    return Response(body, media_type=DICOM_JSON)


@router.get("/studies/{study_uid}/metadata", summary="WADO-RS: the metadata of a study")
def study_metadata(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    return _metadata(request, _instances(session, principal, study_uid), study_uid, session)


@router.get(
    "/studies/{study_uid}/series/{series_uid}/metadata",
    summary="WADO-RS: the metadata of a series",
)
def series_metadata(
    study_uid: str,
    series_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    instances = _instances(session, principal, study_uid, series_uid)
    return _metadata(request, instances, study_uid, session)


@router.get(INSTANCE + "/metadata", summary="WADO-RS: the metadata of an instance")
def instance_metadata(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    instances = _instances(session, principal, study_uid, series_uid, sop_uid)
    return _metadata(request, instances, study_uid, session)


def _frame_parts(found: Iterable[Frame]) -> Iterator[Part]:
    for frame in found:
        yield f"{frame.media_type}; transfer-syntax={frame.transfer_syntax}", frame.data


@router.get(INSTANCE + "/bulkdata/{path:path}", summary="WADO-RS: a bulk data value")
def bulkdata(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    path: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    retrieve.check_bulk_path(path.upper())
    (instance,) = _instances(session, principal, study_uid, series_uid, sop_uid)
    accept = request.headers.get("accept", "")
    ds = retrieve.dataset(services(request).blobs, instance)
    if path.upper() == retrieve.PIXEL_DATA:
        choice = retrieve.choose_frames(accept, instance.transfer_syntax_uid)
        found = retrieve.pixel_bulk(ds, choice)
        if len(found) > 1:  # compressed frames: no byte ranges across parts
            return _multipart(_frame_parts(found), found[0].media_type)
        part_type, value = next(_frame_parts(found))
    else:
        retrieve.choose_frames(accept, pixels.EXPLICIT_LE)  # only octet-stream is offered
        part_type, value = pixels.OCTET_STREAM, retrieve.bulk_value(ds, path.upper())
    span = retrieve.byte_range(request.headers.get("range", ""), len(value))
    if span is None:
        return _multipart(iter([(part_type, value)]), part_type.split(";")[0])
    first, last = span
    answer = _multipart(iter([(part_type, value[first : last + 1])]), part_type.split(";")[0])
    answer.status_code = 206
    answer.headers["Content-Range"] = f"bytes {first}-{last}/{len(value)}"
    return answer


# Frames, rendered, thumbnails


@router.get(INSTANCE + "/frames/{frame_list}", summary="WADO-RS: frames of an instance")
def retrieve_frames(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    frame_list: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    numbers = pixels.parse_frame_list(frame_list)
    (instance,) = _instances(session, principal, study_uid, series_uid, sop_uid)
    pixels.check_frames(numbers, instance.frames or (1 if instance.rows else 0))
    choice = retrieve.choose_frames(request.headers.get("accept", ""), instance.transfer_syntax_uid)
    ds = retrieve.dataset(services(request).blobs, instance)
    pixels.check_frames(numbers, pixels.frame_count(ds))
    return _multipart(_frame_parts(retrieve.frames(ds, numbers, choice)), choice.media)


def _image(data: bytes, media: str) -> Response:
    return Response(data, media_type=media)


def _rendered(request: Request, instances: list[ImagingInstance]) -> Response:
    """Every frame of the instances, rendered: one image, or multipart for several."""
    media = retrieve.rendered_media(request.headers.get("accept", ""))
    options = retrieve.rendering(request.query_params, media)
    retrieve.renderable_frames(instances)
    retrieve.check_renderable(instances)
    images = retrieve.render_instances(services(request).blobs, instances, options)
    return _multipart(((media, image) for image in images), media)


@router.get("/studies/{study_uid}/rendered", summary="WADO-RS: a study, rendered")
def study_rendered(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    return _rendered(request, _instances(session, principal, study_uid))


@router.get(
    "/studies/{study_uid}/series/{series_uid}/rendered", summary="WADO-RS: a series, rendered"
)
def series_rendered(
    study_uid: str,
    series_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    return _rendered(request, _instances(session, principal, study_uid, series_uid))


def _rendered_frames(
    request: Request, instance: ImagingInstance, numbers: list[int] | None
) -> Response:
    media = retrieve.rendered_media(request.headers.get("accept", ""))
    options = retrieve.rendering(request.query_params, media)
    ds = retrieve.dataset(services(request).blobs, instance)
    count = pixels.frame_count(ds)
    numbers = numbers or list(range(1, count + 1))
    pixels.check_frames(numbers, count)
    images = retrieve.render_frames(ds, numbers, options)
    if len(numbers) == 1:
        return _image(next(images), media)
    return _multipart(((media, image) for image in images), media)


@router.get(INSTANCE + "/rendered", summary="WADO-RS: an instance, rendered")
def instance_rendered(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    (instance,) = _instances(session, principal, study_uid, series_uid, sop_uid)
    return _rendered_frames(request, instance, None)


@router.get(INSTANCE + "/frames/{frame_list}/rendered", summary="WADO-RS: frames, rendered")
def frames_rendered(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    frame_list: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    numbers = pixels.parse_frame_list(frame_list)
    (instance,) = _instances(session, principal, study_uid, series_uid, sop_uid)
    return _rendered_frames(request, instance, numbers)


def _thumbnail(
    request: Request, instances: list[ImagingInstance], frame: int | None = None
) -> Response:
    media = retrieve.rendered_media(request.headers.get("accept", ""))
    options = retrieve.rendering(request.query_params, media, thumbnail=True)
    instance = retrieve.representative(instances)
    return _image(retrieve.thumbnail(services(request).blobs, instance, frame, options), media)


@router.get("/studies/{study_uid}/thumbnail", summary="WADO-RS: a study's thumbnail")
def study_thumbnail(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    return _thumbnail(request, _instances(session, principal, study_uid))


@router.get(
    "/studies/{study_uid}/series/{series_uid}/thumbnail", summary="WADO-RS: a series' thumbnail"
)
def series_thumbnail(
    study_uid: str,
    series_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    return _thumbnail(request, _instances(session, principal, study_uid, series_uid))


@router.get(INSTANCE + "/thumbnail", summary="WADO-RS: an instance's thumbnail")
def instance_thumbnail(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    return _thumbnail(request, _instances(session, principal, study_uid, series_uid, sop_uid))


@router.get(INSTANCE + "/frames/{frame}/thumbnail", summary="WADO-RS: a frame's thumbnail")
def frame_thumbnail(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    frame: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    numbers = pixels.parse_frame_list(frame, "frame")
    if len(numbers) != 1:
        raise BadRequest(code="frame_list_invalid", field="frame")
    instances = _instances(session, principal, study_uid, series_uid, sop_uid)
    return _thumbnail(request, instances, numbers[0])


# WADO-URI (PS3.18 §9) ------------------------------------------------------------------------


@router.get("/wado", summary="WADO-URI: an instance, or one frame rendered")
def wado_uri(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    query = retrieve.parse_wado_uri(request.query_params)
    (instance,) = _instances(
        session, principal, query.study_uid, query.series_uid, query.object_uid
    )
    blobs = services(request).blobs
    if query.content_type == retrieve.DICOM:
        syntax = retrieve.wado_uri_syntax(query.syntax, instance.transfer_syntax_uid)
        return Response(retrieve.instance_bytes(blobs, instance, syntax), media_type=retrieve.DICOM)
    ds = retrieve.dataset(blobs, instance)
    count = pixels.frame_count(ds)
    pixels.check_frames([query.frame or 1], count, "frameNumber")
    return _image(pixels.render(ds, (query.frame or 1) - 1, query.rendering), query.content_type)

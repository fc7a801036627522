"""DICOMweb (PS3.18) under /dicomweb: QIDO-RS and WADO-RS (instances, metadata, bulk data,
frames), and the helpers the other DICOMweb modules share. STOW-RS is in dicomweb_stow.py;
rendered, thumbnails and WADO-URI in dicomweb_rendered.py. Negotiation, decoding and
rendering rules live in imaging/retrieve.py and imaging/pixels.py; these routes open the
study (access, audit) and shape the HTTP answer.

Bearer token or session, like the JSON API; only studies the principal may read appear.
See src/xietong/imaging/README.md.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Iterable, Iterator
from itertools import chain

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import StreamingResponse

from xietong.access.principal import Principal
from xietong.core.errors import (
    N_,
    BadRequest,
    NotFound,
    XietongError,
)
from xietong.imaging import pixels, retrieve
from xietong.imaging import query as qido
from xietong.imaging import service as imaging
from xietong.imaging.models import ImagingInstance
from xietong.imaging.pixels import Frame
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"], dependencies=[Depends(current_principal)])
DICOM_JSON = "application/dicom+json"


def content_parameters(content_type: str) -> tuple[str, dict[str, str]]:
    head, *rest = content_type.split(";")
    params: dict[str, str] = {}
    for item in rest:
        key, _, value = item.strip().partition("=")
        params[key.strip().lower()] = value.strip().strip('"')
    return head.strip().lower(), params


def base_url(request: Request) -> str:
    return str(request.base_url).rstrip("/") + "/dicomweb"


# QIDO-RS -----------------------------------------------------------------------------------


def _check_accept(request: Request, *types: str) -> None:
    accept = request.headers.get("accept", "")
    if not accept:
        return
    offered = [content_parameters(a)[0] for a in accept.split(",")]
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
    page = qido.search_studies(session, principal, query, base_url(request))
    return _answer(page, warnings, query.limit)


@router.get("/studies/{study_uid}/series", summary="QIDO-RS: search the series of a study")
def search_series(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    _check_accept(request, DICOM_JSON, "application/json")
    query, warnings = _query(request)
    study = imaging.open_study(session, principal, study_uid, "imaging.search").study
    page = qido.search_series(session, principal, study, query, base_url(request))
    return _answer(page, warnings, query.limit)


@router.get("/studies/{study_uid}/instances", summary="QIDO-RS: search the instances of a study")
def search_study_instances(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    _check_accept(request, DICOM_JSON, "application/json")
    query, warnings = _query(request)
    study = imaging.open_study(session, principal, study_uid, "imaging.search").study
    page = qido.search_instances(session, principal, study, None, query, base_url(request))
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
    page = qido.search_instances(session, principal, study, series_uid, query, base_url(request))
    return _answer(page, warnings, query.limit)


# WADO-RS -----------------------------------------------------------------------------------

Part = tuple[str, bytes]  # (Content-Type of the part, its bytes)


def multipart_answer(parts: Iterator[Part], media: str) -> Response:
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


def instance_url(request: Request, study: str, series: str, sop: str) -> str:
    return f"{base_url(request)}/studies/{study}/series/{series}/instances/{sop}"


def instances_of(
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

    return multipart_answer(parts(), retrieve.DICOM)


@router.get("/studies/{study_uid}", summary="WADO-RS: retrieve a study")
def retrieve_study(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    return _retrieve(request, instances_of(session, principal, study_uid))


@router.get("/studies/{study_uid}/series/{series_uid}", summary="WADO-RS: retrieve a series")
def retrieve_series(
    study_uid: str,
    series_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    return _retrieve(request, instances_of(session, principal, study_uid, series_uid))


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
    return _retrieve(request, instances_of(session, principal, study_uid, series_uid, sop_uid))


# Metadata and bulk data


def _metadata(
    request: Request, instances: list[ImagingInstance], study_uid: str, session: DbSession
) -> Response:
    _check_accept(request, DICOM_JSON, "application/json")
    series = qido.series_uids(session, instances)
    body = retrieve.metadata_json(
        services(request).blobs,
        [
            (i, instance_url(request, study_uid, series[i.series_id], i.sop_instance_uid))
            for i in instances
        ],
    )
    return Response(body, media_type=DICOM_JSON)


@router.get("/studies/{study_uid}/metadata", summary="WADO-RS: the metadata of a study")
def study_metadata(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    return _metadata(request, instances_of(session, principal, study_uid), study_uid, session)


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
    instances = instances_of(session, principal, study_uid, series_uid)
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
    instances = instances_of(session, principal, study_uid, series_uid, sop_uid)
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
    (instance,) = instances_of(session, principal, study_uid, series_uid, sop_uid)
    accept = request.headers.get("accept", "")
    ds = retrieve.dataset(services(request).blobs, instance)
    if path.upper() == retrieve.PIXEL_DATA:
        choice = retrieve.choose_frames(accept, instance.transfer_syntax_uid)
        found = retrieve.pixel_bulk(ds, choice)
        if len(found) > 1:  # compressed frames: no byte ranges across parts
            return multipart_answer(_frame_parts(found), found[0].media_type)
        part_type, value = next(_frame_parts(found))
    else:
        retrieve.choose_frames(accept, pixels.EXPLICIT_LE)  # only octet-stream is offered
        part_type, value = pixels.OCTET_STREAM, retrieve.bulk_value(ds, path.upper())
    span = retrieve.byte_range(request.headers.get("range", ""), len(value))
    if span is None:
        return multipart_answer(iter([(part_type, value)]), part_type.split(";")[0])
    first, last = span
    answer = multipart_answer(iter([(part_type, value[first : last + 1])]), part_type.split(";")[0])
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
    (instance,) = instances_of(session, principal, study_uid, series_uid, sop_uid)
    pixels.check_frames(numbers, instance.frames or (1 if instance.rows else 0))
    choice = retrieve.choose_frames(request.headers.get("accept", ""), instance.transfer_syntax_uid)
    ds = retrieve.dataset(services(request).blobs, instance)
    pixels.check_frames(numbers, pixels.frame_count(ds))
    return multipart_answer(_frame_parts(retrieve.frames(ds, numbers, choice)), choice.media)

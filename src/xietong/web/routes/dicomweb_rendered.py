"""DICOMweb rendered resources (PS3.18 §8.3.5): studies, series, instances and frames
rendered as JPEG or PNG, thumbnails at four levels, and WADO-URI (PS3.18 §9). Rendering
rules live in imaging/retrieve.py and imaging/pixels.py.
"""

from __future__ import annotations

from fastapi import APIRouter, Depends, Request, Response

from xietong.core.errors import (
    BadRequest,
)
from xietong.imaging import pixels, retrieve
from xietong.imaging import rendered as rendered_images
from xietong.imaging.models import ImagingInstance
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services
from xietong.web.routes.dicomweb import INSTANCE, instances_of, multipart_answer

router = APIRouter(prefix="/dicomweb", tags=["dicomweb"], dependencies=[Depends(current_principal)])


def _image(data: bytes, media: str) -> Response:
    return Response(data, media_type=media)


def _rendered(request: Request, instances: list[ImagingInstance]) -> Response:
    """Every frame of the instances, rendered: one image, or multipart for several."""
    media = rendered_images.rendered_media(request.headers.get("accept", ""))
    options = rendered_images.rendering(request.query_params, media)
    rendered_images.renderable_frames(instances)
    rendered_images.check_renderable(instances)
    images = rendered_images.render_instances(services(request).blobs, instances, options)
    return multipart_answer(((media, image) for image in images), media)


@router.get("/studies/{study_uid}/rendered", summary="WADO-RS: a study, rendered")
def study_rendered(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    return _rendered(request, instances_of(session, principal, study_uid))


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
    return _rendered(request, instances_of(session, principal, study_uid, series_uid))


def _rendered_frames(
    request: Request, instance: ImagingInstance, numbers: list[int] | None
) -> Response:
    media = rendered_images.rendered_media(request.headers.get("accept", ""))
    options = rendered_images.rendering(request.query_params, media)
    ds = retrieve.dataset(services(request).blobs, instance)
    count = pixels.frame_count(ds)
    numbers = numbers or list(range(1, count + 1))
    pixels.check_frames(numbers, count)
    images = rendered_images.render_frames(ds, numbers, options)
    if len(numbers) == 1:
        return _image(next(images), media)
    return multipart_answer(((media, image) for image in images), media)


@router.get(INSTANCE + "/rendered", summary="WADO-RS: an instance, rendered")
def instance_rendered(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    (instance,) = instances_of(session, principal, study_uid, series_uid, sop_uid)
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
    (instance,) = instances_of(session, principal, study_uid, series_uid, sop_uid)
    return _rendered_frames(request, instance, numbers)


def _thumbnail(
    request: Request, instances: list[ImagingInstance], frame: int | None = None
) -> Response:
    media = rendered_images.rendered_media(request.headers.get("accept", ""))
    options = rendered_images.rendering(request.query_params, media, thumbnail=True)
    instance = rendered_images.representative(instances)
    return _image(
        rendered_images.thumbnail(services(request).blobs, instance, frame, options), media
    )


@router.get("/studies/{study_uid}/thumbnail", summary="WADO-RS: a study's thumbnail")
def study_thumbnail(
    study_uid: str, request: Request, session: DbSession, principal: CurrentPrincipal
) -> Response:
    return _thumbnail(request, instances_of(session, principal, study_uid))


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
    return _thumbnail(request, instances_of(session, principal, study_uid, series_uid))


@router.get(INSTANCE + "/thumbnail", summary="WADO-RS: an instance's thumbnail")
def instance_thumbnail(
    study_uid: str,
    series_uid: str,
    sop_uid: str,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    return _thumbnail(request, instances_of(session, principal, study_uid, series_uid, sop_uid))


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
    instances = instances_of(session, principal, study_uid, series_uid, sop_uid)
    return _thumbnail(request, instances, numbers[0])


# WADO-URI (PS3.18 §9) ------------------------------------------------------------------------


@router.get("/wado", summary="WADO-URI: an instance, or one frame rendered")
def wado_uri(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    query = rendered_images.parse_wado_uri(request.query_params)
    (instance,) = instances_of(
        session, principal, query.study_uid, query.series_uid, query.object_uid
    )
    blobs = services(request).blobs
    if query.content_type == retrieve.DICOM:
        syntax = rendered_images.wado_uri_syntax(query.syntax, instance.transfer_syntax_uid)
        return Response(retrieve.instance_bytes(blobs, instance, syntax), media_type=retrieve.DICOM)
    ds = retrieve.dataset(blobs, instance)
    count = pixels.frame_count(ds)
    pixels.check_frames([query.frame or 1], count, "frameNumber")
    return _image(pixels.render(ds, (query.frame or 1) - 1, query.rendering), query.content_type)

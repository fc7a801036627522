"""Rendered images, thumbnails and WADO-URI (PS3.18 §8.3.5, §9): which media type, which
window and viewport, which frames, and the WADO-URI parameters. The pixel work itself is
:mod:`xietong.imaging.pixels`; reading the stored files is :mod:`xietong.imaging.retrieve`.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass

from pydicom.dataset import Dataset

from xietong.core.errors import N_, BadRequest, NotFound
from xietong.core.storage import BlobStore
from xietong.imaging import pixels
from xietong.imaging.dicom import is_valid_uid
from xietong.imaging.models import ImagingInstance
from xietong.imaging.pixels import EXPLICIT_LE, Rendering
from xietong.imaging.retrieve import (
    DICOM,
    MAX_RENDERED_FRAMES,
    dataset,
    media_matches,
    not_acceptable,
    parse_accept,
)

# Rendered and thumbnails -------------------------------------------------------------------


def rendered_media(accept: str) -> str:
    """image/jpeg or image/png from the Accept header (multipart offers count too)."""
    for offer in parse_accept(accept):
        for media in pixels.RENDERED_TYPES:
            if media_matches(offer.media, media):
                return media
    raise not_acceptable(list(pixels.RENDERED_TYPES))


def rendering(params: Mapping[str, str], media: str, thumbnail: bool = False) -> Rendering:
    """The rendering parameters of PS3.18 §8.3.5: window, viewport, quality."""
    window = pixels.parse_window(params["window"]) if "window" in params else None
    viewport = pixels.parse_viewport(params["viewport"]) if "viewport" in params else None
    if thumbnail and viewport is None:
        viewport = pixels.Viewport(pixels.THUMBNAIL_SIZE, pixels.THUMBNAIL_SIZE)
    quality = pixels.parse_quality(params["quality"]) if "quality" in params else 90
    return Rendering(media, window, viewport, quality)


def image_instances(instances: list[ImagingInstance]) -> list[ImagingInstance]:
    return [i for i in instances if i.rows]


def renderable_frames(instances: list[ImagingInstance]) -> int:
    """The number of frames a multipart rendered answer would hold; 400 above the cap."""
    total = sum(max(1, i.frames or 1) for i in image_instances(instances))
    if total > MAX_RENDERED_FRAMES:
        raise BadRequest(
            N_("Too many frames to render at once ({count}); ask for a series or instance."),
            code="rendered_too_many",
            field="frames",
            params={"count": total},
        )
    if total == 0:
        raise NotFound(code="imaging_instance_not_found", field="frames")
    return total


def render_frames(ds: Dataset, numbers: list[int], options: Rendering) -> Iterator[bytes]:
    for number in numbers:
        yield pixels.render(ds, number - 1, options)


def render_instances(
    blobs: BlobStore, instances: list[ImagingInstance], options: Rendering
) -> Iterator[bytes]:
    """Every frame of every image instance, rendered, in order (lazily: one file at a time)."""
    for instance in image_instances(instances):
        ds = dataset(blobs, instance)
        yield from render_frames(ds, list(range(1, pixels.frame_count(ds) + 1)), options)


def representative(instances: list[ImagingInstance]) -> ImagingInstance:
    """The middle image instance of the first series that has images."""
    images = image_instances(instances)
    if not images:
        raise NotFound(code="imaging_instance_not_found", field="thumbnail")
    first_series = [i for i in images if i.series_id == images[0].series_id]
    return first_series[len(first_series) // 2]


def thumbnail(
    blobs: BlobStore, instance: ImagingInstance, frame: int | None, options: Rendering
) -> bytes:
    ds = dataset(blobs, instance)
    count = pixels.frame_count(ds)
    if frame is not None:
        pixels.check_frames([frame], count)
    return pixels.render(ds, (frame or count // 2 + 1) - 1, options)


def check_renderable(instances: list[ImagingInstance]) -> None:
    """406 before a streamed answer starts, when a frame could not be decoded."""
    for instance in image_instances(instances):
        if not pixels.can_decode(instance.transfer_syntax_uid):
            raise pixels.Undecodable()


# WADO-URI ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class WadoUri:
    study_uid: str
    series_uid: str
    object_uid: str
    content_type: str
    frame: int | None
    syntax: str | None
    rendering: Rendering


WADO_URI_UNSUPPORTED = ("anonymize", "presentationUID", "presentationSeriesUID", "region")


def _uid(params: Mapping[str, str], name: str) -> str:
    value = params.get(name, "")
    if not value:
        raise BadRequest(
            N_("{name} is required."), code="wado_missing", field=name, params={"name": name}
        )
    if not is_valid_uid(value):
        raise BadRequest(code="wado_uid_invalid", field=name)
    return value


def _wado_content_type(value: str) -> str:
    for item in value.split(",") if value else [DICOM]:
        media = item.split(";")[0].strip().lower()
        if media in (DICOM, "application/*", "*/*"):
            return DICOM
        if media in (*pixels.RENDERED_TYPES, "image/*"):
            return pixels.JPEG if media == "image/*" else media
    raise not_acceptable([DICOM, *pixels.RENDERED_TYPES])


def parse_wado_uri(params: Mapping[str, str]) -> WadoUri:
    """The query of a WADO-URI request (PS3.18 §9); 400 naming the parameter at fault."""
    if params.get("requestType") != "WADO":
        raise BadRequest(code="wado_request_type", field="requestType")
    for name in WADO_URI_UNSUPPORTED:
        if name in params:
            raise BadRequest(
                N_("{name} is not supported."),
                code="wado_unsupported",
                field=name,
                params={"name": name},
            )
    study, series, sop = (_uid(params, name) for name in ("studyUID", "seriesUID", "objectUID"))
    content_type = _wado_content_type(params.get("contentType", ""))
    image = content_type != DICOM
    for name in ("frameNumber", "windowCenter", "windowWidth", "rows", "columns", "imageQuality"):
        if name in params and not image:
            raise BadRequest(code="wado_image_only", field=name)
    syntax = params.get("transferSyntax")
    if syntax is not None and (image or not is_valid_uid(syntax)):
        raise BadRequest(code="wado_transfer_syntax", field="transferSyntax")
    frame = None
    if "frameNumber" in params:
        numbers = pixels.parse_frame_list(params["frameNumber"], "frameNumber")
        if len(numbers) != 1:
            raise BadRequest(code="frame_list_invalid", field="frameNumber")
        frame = numbers[0]
    return WadoUri(
        study, series, sop, content_type, frame, syntax, _wado_rendering(params, content_type)
    )


def _wado_rendering(params: Mapping[str, str], media: str) -> Rendering:
    window = None
    if "windowCenter" in params or "windowWidth" in params:
        for name in ("windowCenter", "windowWidth"):
            if name not in params:
                raise BadRequest(
                    N_("{name} is required."),
                    code="wado_missing",
                    field=name,
                    params={"name": name},
                )
        center = pixels.parse_number(params["windowCenter"], "windowCenter")
        width = pixels.parse_number(params["windowWidth"], "windowWidth")
        window = pixels.window_of(center, width, "linear", "windowWidth")
    viewport = None
    if "rows" in params or "columns" in params:
        limit = str(pixels.MAX_VIEWPORT)
        rows = pixels.parse_dimension(params.get("rows", limit), "rows", 1, pixels.MAX_VIEWPORT)
        columns = pixels.parse_dimension(
            params.get("columns", limit), "columns", 1, pixels.MAX_VIEWPORT
        )
        viewport = pixels.Viewport(columns, rows)
    quality = 90
    if "imageQuality" in params:
        quality = pixels.parse_dimension(params["imageQuality"], "imageQuality", 1, 100)
    return Rendering(media, window, viewport, quality)


def wado_uri_syntax(requested: str | None, stored: str) -> str | None:
    """None = as stored; EXPLICIT_LE = transcode; else 406 (WADO-URI transferSyntax)."""
    if requested is None or requested == stored:
        return None
    if requested == EXPLICIT_LE and pixels.can_transcode(stored):
        return EXPLICIT_LE
    raise not_acceptable([stored, *([EXPLICIT_LE] if pixels.can_transcode(stored) else [])])

"""What the browser viewer needs from the archive: a study's manifest, one frame's decoded
pixels, a series thumbnail and an instance's attributes (ADR 0016: frames are decoded on
the server into raw little-endian samples and windowed in the browser).

Every function opens the study through :func:`xietong.imaging.service.open_study_id`, so
the reader's access is checked and audited on each call, and a study of another
institution is the same audited 404 as an absent one. Instance headers are parsed once per
blob and kept in memory: blobs are content-addressed (the key is the SHA-256 of the
bytes), so a cached header can never go stale.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.pixels.processing import apply_color_lut
from pydicom.pixels.utils import pixel_array as decode_frame
from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access.policies import deny_not_found
from xietong.access.principal import Principal
from xietong.core.errors import N_, Invalid, UnsupportedMediaType
from xietong.core.storage import BlobStore
from xietong.imaging.models import ImagingInstance, ImagingSeries, ImagingStudy
from xietong.imaging.service import open_study_id, readable_clause, require_reader

THUMBNAIL_SIZE = 128
MAX_TAG_TEXT = 200
HEADER_CACHE_SIZE = 50_000
# Sample types the browser understands (a typed array each), by (bits allocated, signed).
SAMPLE_TYPES = {(8, 0): "uint8", (8, 1): "int8", (16, 0): "uint16", (16, 1): "int16"}
RGB = "rgb8"
COLOUR = frozenset({"RGB", "PALETTE COLOR", "YBR_FULL", "YBR_FULL_422", "YBR_ICT", "YBR_RCT"})
# A plane's normal within this of the stack's first normal counts as parallel (cos 1°).
PARALLEL = math.cos(math.radians(1.0))


@dataclass(frozen=True)
class Header:
    """The attributes of one instance the viewer draws with (frame 1's geometry)."""

    number: int | None
    rows: int
    columns: int
    frames: int
    sample_type: str
    photometric: str
    position: tuple[float, float, float] | None
    orientation: tuple[float, ...] | None
    pixel_spacing: tuple[float, float] | None
    slice_thickness: float | None
    spacing_between_slices: float | None
    slope: float
    intercept: float
    window_center: float | None
    window_width: float | None


_cache: OrderedDict[str, Header] = OrderedDict()
_cache_lock = threading.Lock()


def _floats(value: Any, count: int) -> tuple[float, ...] | None:
    """``count`` finite numbers from a DS/IS/FD value (single or multi-valued), else None."""
    if value is None or value == "":
        return None
    items = list(value) if isinstance(value, (MultiValue, list, tuple)) else [value]
    try:
        numbers = tuple(float(v) for v in items[:count])
    except (TypeError, ValueError):
        return None
    if len(numbers) != count or not all(math.isfinite(n) for n in numbers):
        return None
    return numbers


def _first(value: Any) -> float | None:
    numbers = _floats(value[:1] if isinstance(value, MultiValue) else value, 1)
    return numbers[0] if numbers else None


def _sample_type(ds: Dataset) -> str:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip()
    if int(ds.get("SamplesPerPixel", 1) or 1) == 3 or photometric in COLOUR:
        return RGB
    bits = int(ds.get("BitsAllocated", 0) or 0)
    signed = int(ds.get("PixelRepresentation", 0) or 0)
    return SAMPLE_TYPES.get((bits, signed), "")


def header_of(ds: Dataset) -> Header:
    spacing = _floats(ds.get("PixelSpacing"), 2) or _floats(ds.get("ImagerPixelSpacing"), 2)
    position = _floats(ds.get("ImagePositionPatient"), 3)
    orientation = _floats(ds.get("ImageOrientationPatient"), 6)
    number = ds.get("InstanceNumber")
    return Header(
        number=int(number) if isinstance(number, int) or str(number or "").isdigit() else None,
        rows=int(ds.get("Rows", 0) or 0),
        columns=int(ds.get("Columns", 0) or 0),
        frames=max(int(ds.get("NumberOfFrames", 1) or 1), 1),
        sample_type=_sample_type(ds),
        photometric=str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip(),
        position=(position[0], position[1], position[2]) if position else None,
        orientation=orientation,
        pixel_spacing=(spacing[0], spacing[1]) if spacing else None,
        slice_thickness=_first(ds.get("SliceThickness")),
        spacing_between_slices=_first(ds.get("SpacingBetweenSlices")),
        slope=_first(ds.get("RescaleSlope")) or 1.0,
        intercept=_first(ds.get("RescaleIntercept")) or 0.0,
        window_center=_first(ds.get("WindowCenter")),
        window_width=_first(ds.get("WindowWidth")),
    )


def read_header(blobs: BlobStore, instance: ImagingInstance) -> Header:
    """The instance's header, parsed once per blob (pixel data is not read)."""
    with _cache_lock:
        cached = _cache.get(instance.sha256)
        if cached is not None:
            _cache.move_to_end(instance.sha256)
            return cached
    with blobs.open(instance.blob_key) as handle:
        header = header_of(dcmread(handle, stop_before_pixels=True))
    with _cache_lock:
        _cache[instance.sha256] = header
        while len(_cache) > HEADER_CACHE_SIZE:
            _cache.popitem(last=False)
    return header


# Ordering and geometry ---------------------------------------------------------------------


def _normal(orientation: tuple[float, ...]) -> NDArray[np.float64]:
    row = np.array(orientation[:3])
    column = np.array(orientation[3:6])
    normal = np.cross(row, column)
    length = float(np.linalg.norm(normal))
    return normal / length if length > 0 else normal


def order_slices(
    items: list[tuple[ImagingInstance, Header]],
) -> tuple[list[tuple[ImagingInstance, Header]], float | None]:
    """The series' instances in stack order and the distance between slices (mm).

    Along the normal of the image plane (ImagePositionPatient · normal) when every instance
    has a position and all planes are parallel; otherwise by InstanceNumber (then by
    arrival), and the spacing is only what the attributes declare."""
    by_number = sorted(items, key=lambda p: (p[1].number is None, p[1].number or 0, p[0].id))
    first = by_number[0][1] if by_number else None
    if first is None or first.orientation is None or any(h.position is None for _i, h in items):
        return by_number, _declared_spacing(first)
    normal = _normal(first.orientation)
    for _instance, header in items:
        if header.orientation is None or abs(float(_normal(header.orientation) @ normal)) < (
            PARALLEL
        ):
            return by_number, _declared_spacing(first)
    keyed = sorted(
        items, key=lambda p: (float(np.array(p[1].position) @ normal), p[1].number or 0, p[0].id)
    )
    distances = np.diff([float(np.array(h.position) @ normal) for _i, h in keyed])
    positive = distances[distances > 1e-4]
    if positive.size:
        return keyed, round(float(np.median(positive)), 4)
    return keyed, _declared_spacing(first)


def _declared_spacing(header: Header | None) -> float | None:
    if header is None:
        return None
    return header.spacing_between_slices or header.slice_thickness


# Manifest ----------------------------------------------------------------------------------


def _slice_entry(instance: ImagingInstance, header: Header, frame: int) -> dict[str, Any]:
    return {
        "instance": instance.id,
        "frame": frame,
        "number": header.number,
        "position": header.position,
        "slope": header.slope,
        "intercept": header.intercept,
        "window": [header.window_center, header.window_width]
        if header.window_center is not None and header.window_width
        else None,
    }


def _series_entry(
    session: Session, blobs: BlobStore, series: ImagingSeries
) -> dict[str, Any] | None:
    instances = session.execute(
        select(ImagingInstance).where(ImagingInstance.series_id == series.id)
    ).scalars()
    items = [(i, read_header(blobs, i)) for i in instances]
    items = [(i, h) for i, h in items if h.rows and h.columns]  # no image: nothing to view
    if not items:
        return None
    ordered, spacing = order_slices(items)
    slices = [
        _slice_entry(instance, header, frame)
        for instance, header in ordered
        for frame in range(1, header.frames + 1)
    ]
    first = ordered[0][1]
    uniform = all(
        (h.rows, h.columns, h.sample_type) == (first.rows, first.columns, first.sample_type)
        for _i, h in ordered
    )
    return {
        "id": series.id,
        "number": series.series_number,
        "modality": series.modality,
        "description": series.description,
        "body_part": series.body_part,
        "thumbnail": f"/imaging/series/{series.id}/thumbnail.png",
        "rows": first.rows,
        "columns": first.columns,
        "sample_type": first.sample_type,
        "photometric": first.photometric,
        "pixel_spacing": first.pixel_spacing,
        "slice_spacing": spacing,
        "slice_thickness": first.slice_thickness,
        "orientation": first.orientation,
        # A stack of same-sized greyscale planes along a known normal can be resliced.
        "volume": uniform
        and len(slices) >= 3
        and first.sample_type != RGB
        and spacing is not None
        and first.frames == 1,
        "slices": slices,
    }


def manifest(
    session: Session, principal: Principal, blobs: BlobStore, study_id: int
) -> dict[str, Any]:
    """The study, its series (by series number) and each series' slices in stack order."""
    study = open_study_id(session, principal, study_id, "imaging.viewer.open").study
    all_series = session.execute(
        select(ImagingSeries)
        .where(ImagingSeries.study_id == study.id)
        .order_by(ImagingSeries.series_number.is_(None), ImagingSeries.series_number)
        .order_by(ImagingSeries.id)
    ).scalars()
    series = [e for s in all_series if (e := _series_entry(session, blobs, s)) is not None]
    return {
        "study": {
            "id": study.id,
            "uid": study.study_uid,
            "description": study.description,
            "date": study.study_date.isoformat() if study.study_date else "",
            "modalities": study.modalities.split("\\") if study.modalities else [],
            "patient_name": study.patient_name,
            "patient_id": study.patient_id,
        },
        "series": series,
    }


# Pixels ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Pixels:
    data: bytes
    sample_type: str
    rows: int
    columns: int
    etag: str


def _instance_in_readable_study(
    session: Session, principal: Principal, instance_id: int, action: str
) -> ImagingInstance:
    require_reader(session, principal, action)
    instance = session.get(ImagingInstance, instance_id)
    if instance is None:
        raise deny_not_found(session, principal, action, "imaging_instance", instance_id)
    open_study_id(session, principal, instance.study_id, action)
    return instance


def _decoded(blobs: BlobStore, instance: ImagingInstance, frame: int) -> tuple[Dataset, Any]:
    with blobs.open(instance.blob_key) as handle:
        ds = dcmread(BytesIO(handle.read()))
    frames = max(int(ds.get("NumberOfFrames", 1) or 1), 1)
    if not 1 <= frame <= frames:
        raise Invalid(
            N_("This value is out of range."),
            code="frame_out_of_range",
            field="frame",
            params={"limit": frames},
        )
    try:
        array = decode_frame(ds, index=frame - 1 if frames > 1 else None)
        if str(ds.get("PhotometricInterpretation", "")).strip() == "PALETTE COLOR":
            array = apply_color_lut(array, ds)
    except Exception as exc:
        raise UnsupportedMediaType(
            N_("The images of this instance cannot be decoded ({attribute})."),
            code="pixels_undecodable",
            field="frame",
            params={"attribute": str(ds.file_meta.get("TransferSyntaxUID", ""))},
        ) from exc
    return ds, array


def pixels(
    session: Session, principal: Principal, blobs: BlobStore, instance_id: int, frame: int = 1
) -> Pixels:
    """One frame's samples, little-endian, row by row (RGB interleaved for colour)."""
    instance = _instance_in_readable_study(session, principal, instance_id, "imaging.viewer.pixels")
    ds, array = _decoded(blobs, instance, frame)
    sample_type = _sample_type(ds)
    if sample_type == RGB:
        out = np.clip(array, 0, 255).astype(np.uint8) if array.dtype != np.uint8 else array
        if out.ndim == 2:  # a palette-less single channel labelled as colour
            out = np.repeat(out[:, :, None], 3, axis=2)
    elif sample_type:
        out = array.astype(np.dtype(sample_type).newbyteorder("<"), copy=False)
    else:
        raise UnsupportedMediaType(
            N_("The images of this instance cannot be decoded ({attribute})."),
            code="pixels_unsupported",
            field="frame",
            params={"attribute": f"BitsAllocated={ds.get('BitsAllocated', '')}"},
        )
    rows, columns = int(out.shape[0]), int(out.shape[1])
    return Pixels(
        np.ascontiguousarray(out).tobytes(),
        sample_type,
        rows,
        columns,
        f"{instance.sha256[:32]}-{frame}",
    )


def _to_8bit(array: Any, header: Header) -> NDArray[np.uint8]:
    if array.ndim == 3:
        rgb: NDArray[np.uint8] = np.clip(array, 0, 255).astype(np.uint8)
        return rgb
    values = array.astype(np.float32) * header.slope + header.intercept
    if header.window_center is not None and header.window_width:
        low = header.window_center - header.window_width / 2
        high = header.window_center + header.window_width / 2
    else:
        low, high = (float(v) for v in np.percentile(values, (1, 99)))
    scaled = (values - low) / max(high - low, 1e-6) * 255
    grey: NDArray[np.uint8] = np.clip(scaled, 0, 255).astype(np.uint8)
    return np.subtract(255, grey, dtype=np.uint8) if header.photometric == "MONOCHROME1" else grey


def thumbnail(
    session: Session, principal: Principal, blobs: BlobStore, series_id: int
) -> tuple[bytes, str]:
    """A small PNG of the series' middle instance, windowed as the file suggests, and its
    ETag."""
    action = "imaging.viewer.thumbnail"
    require_reader(session, principal, action)
    series = session.get(ImagingSeries, series_id)
    if series is None:
        raise deny_not_found(session, principal, action, "imaging_series", series_id)
    open_study_id(session, principal, series.study_id, action)
    instances = list(
        session.execute(
            select(ImagingInstance)
            .where(ImagingInstance.series_id == series.id, ImagingInstance.rows.is_not(None))
            .order_by(ImagingInstance.instance_number, ImagingInstance.id)
        ).scalars()
    )
    if not instances:
        raise deny_not_found(session, principal, action, "imaging_series", series_id)
    middle = instances[len(instances) // 2]
    _ds, array = _decoded(blobs, middle, 1)
    image = Image.fromarray(_to_8bit(array, read_header(blobs, middle)))
    image.thumbnail((THUMBNAIL_SIZE, THUMBNAIL_SIZE))
    out = BytesIO()
    image.save(out, format="PNG")
    return out.getvalue(), f"{middle.sha256[:32]}-t{THUMBNAIL_SIZE}"


# Attributes --------------------------------------------------------------------------------

BINARY_VRS = frozenset({"OB", "OD", "OF", "OL", "OV", "OW", "UN"})


def _text(elem: Any) -> str:
    if elem.VR == "SQ":
        return f"[{len(elem.value)}]"
    if elem.VR in BINARY_VRS:
        size = len(elem.value) if elem.value is not None else 0
        return f"<{size} bytes>"
    if isinstance(elem.value, MultiValue):
        text = "\\".join(str(v) for v in elem.value)  # DICOM's own separator
    else:
        text = str(elem.value) if elem.value is not None else ""
    return text if len(text) <= MAX_TAG_TEXT else text[: MAX_TAG_TEXT - 1] + "…"


def tags(
    session: Session, principal: Principal, blobs: BlobStore, instance_id: int
) -> list[dict[str, str]]:
    """The instance's top-level attributes (file meta first) as text rows."""
    instance = _instance_in_readable_study(session, principal, instance_id, "imaging.viewer.tags")
    with blobs.open(instance.blob_key) as handle:
        ds = dcmread(handle, stop_before_pixels=True)
    rows = []
    for elem in [*ds.file_meta, *ds]:
        rows.append(
            {
                "tag": f"({elem.tag.group:04X},{elem.tag.element:04X})",
                "keyword": elem.keyword or ("Private" if elem.tag.is_private else ""),
                "vr": str(elem.VR),
                "value": _text(elem),
            }
        )
    return rows


# Lists -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StudyRow:
    id: int
    description: str
    date: str
    modalities: str
    series_count: int
    instance_count: int
    href: str


def patient_studies(session: Session, principal: Principal, patient_id: int) -> list[StudyRow]:
    """The patient's studies the principal may read, newest first. Not audited here: the
    caller opened the patient (the chart) or one of the studies, and that was audited."""
    rows = session.execute(
        select(ImagingStudy)
        .where(ImagingStudy.patient_id == patient_id, readable_clause(principal))
        .order_by(ImagingStudy.study_date.desc().nulls_last(), ImagingStudy.id.desc())
        .limit(100)
    ).scalars()
    return [
        StudyRow(
            id=s.id,
            description=s.description,
            date=s.study_date.isoformat() if s.study_date else "",
            modalities=s.modalities.replace("\\", "/"),
            series_count=s.series_count,
            instance_count=s.instance_count,
            href=f"/imaging/studies/{s.id}/view",
        )
        for s in rows
    ]

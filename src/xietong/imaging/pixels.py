"""Pixel data rules for DICOMweb: frames as stored, decoded frames, transcoding and
rendered images (PS3.18 §8.7.3 media types, §8.3.5 rendering parameters).

Frames are numbered from 1 on the wire and from 0 here. A frame "as stored" is the bytes
of that frame in the stored transfer syntax: the encapsulated fragment(s) of a compressed
frame with its image media type, or the native pixels of an uncompressed one (always
little endian: big-endian sources are swapped, as PS3.18 only has little-endian octet
streams). A "decoded" frame is native little-endian pixels, decoded with pydicom's pixel
handlers (pylibjpeg for JPEG 2000, RLE; Pillow for 8-bit JPEG). Rendering applies the
Modality LUT, then the VOI window (the request's, else the file's, else min/max),
inverts MONOCHROME1 and passes colour through; the result is 8-bit JPEG or PNG.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import numpy as np
from numpy.typing import NDArray
from PIL import Image
from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.encaps import get_frame
from pydicom.multival import MultiValue
from pydicom.pixels.decoders.base import get_decoder
from pydicom.pixels.processing import apply_color_lut, apply_modality_lut, apply_voi_lut
from pydicom.pixels.utils import get_expected_length, pack_bits, pixel_array
from pydicom.uid import UID, ExplicitVRLittleEndian

from xietong.core.errors import N_, BadRequest, NotFound, XietongError

EXPLICIT_LE = str(ExplicitVRLittleEndian)
BIG_ENDIAN = frozenset({"1.2.840.10008.1.2.2"})
OCTET_STREAM = "application/octet-stream"
JPEG, PNG = "image/jpeg", "image/png"
RENDERED_TYPES = (JPEG, PNG)
# The image media type of an encapsulated frame, by transfer syntax (PS3.18 Table 8.7.3-5).
FRAME_MEDIA: dict[str, tuple[str, ...]] = {
    "1.2.840.10008.1.2.5": ("image/dicom-rle", "image/x-dicom-rle"),
    "1.2.840.10008.1.2.4.50": (JPEG,),
    "1.2.840.10008.1.2.4.51": (JPEG,),
    "1.2.840.10008.1.2.4.57": (JPEG,),
    "1.2.840.10008.1.2.4.70": (JPEG,),
    "1.2.840.10008.1.2.4.80": ("image/jls", "image/x-jls"),
    "1.2.840.10008.1.2.4.81": ("image/jls", "image/x-jls"),
    "1.2.840.10008.1.2.4.90": ("image/jp2",),
    "1.2.840.10008.1.2.4.91": ("image/jp2",),
    "1.2.840.10008.1.2.4.92": ("image/jpx",),
    "1.2.840.10008.1.2.4.93": ("image/jpx",),
    "1.2.840.10008.1.2.4.201": ("image/jphc",),
    "1.2.840.10008.1.2.4.202": ("image/jphc",),
    "1.2.840.10008.1.2.4.203": ("image/jphc",),
}
MAX_VIEWPORT = 4096  # pixels per side of a rendered image: more is a 400, not a memory spike
# A compressed frame may claim 65535×65535 pixels: decoding it would take gigabytes.
MAX_DECODED_SAMPLES = 8192 * 8192 * 3
MAX_WINDOW = 1e7  # |center| and width: beyond any stored pixel value after rescale
WINDOW_FUNCTIONS = ("linear", "linear-exact", "sigmoid")
THUMBNAIL_SIZE = 128


class Undecodable(XietongError):
    """The pixel data cannot be decoded here (no decoder for its transfer syntax, or a
    damaged stream): 406, as nothing acceptable can be produced from it."""

    status = 406
    default_code = "pixel_undecodable"
    default_message = N_("The pixel data of this instance cannot be decoded on this server.")


@dataclass(frozen=True)
class Frame:
    data: bytes
    media_type: str
    transfer_syntax: str


def load(data: bytes) -> Dataset:
    """The whole dataset of a stored file (already checked at ingest)."""
    return dcmread(BytesIO(data))


def syntax_of(ds: Dataset) -> str:
    return str(ds.file_meta.get("TransferSyntaxUID", EXPLICIT_LE))


def is_encapsulated(syntax: str) -> bool:
    return UID(syntax).is_compressed


def can_decode(syntax: str) -> bool:
    if not is_encapsulated(syntax):
        return True
    try:
        return bool(get_decoder(syntax).is_available)
    except NotImplementedError:
        return False


def frame_count(ds: Dataset) -> int:
    if "PixelData" not in ds:
        return 0
    try:
        return max(1, int(ds.get("NumberOfFrames") or 1))
    except (TypeError, ValueError):
        return 1


FRAME_LIST = re.compile(r"[1-9][0-9]{0,8}(,[1-9][0-9]{0,8}){0,999}")


def parse_frame_list(value: str, field: str = "frames") -> list[int]:
    """``1,3,5`` → [1, 3, 5]: positive integers, at most 1000 of them; else 400."""
    if not FRAME_LIST.fullmatch(value):
        raise BadRequest(
            N_("Give frame numbers from 1, separated by commas (at most 1000)."),
            code="frame_list_invalid",
            field=field,
        )
    return [int(n) for n in value.split(",")]


def check_frames(numbers: list[int], count: int, field: str = "frames") -> None:
    if count == 0 or any(n > count for n in numbers):
        raise NotFound(
            N_("This instance has {count} frames."),
            code="frame_not_found",
            field=field,
            params={"count": count},
        )


def stored_frame(ds: Dataset, index: int) -> Frame:
    syntax = syntax_of(ds)
    if not is_encapsulated(syntax):
        return decoded_frame(ds, index)
    data = get_frame(ds.PixelData, index, number_of_frames=frame_count(ds))
    return Frame(data, FRAME_MEDIA.get(syntax, (OCTET_STREAM,))[0], syntax)


def decoded_frame(ds: Dataset, index: int) -> Frame:
    """Native little-endian pixels of one frame (PS3.5 §8.1.1 layout)."""
    syntax = syntax_of(ds)
    bits = int(ds.get("BitsAllocated", 8) or 8)
    if not is_encapsulated(syntax) and bits != 1:
        size = get_expected_length(ds, unit="bytes") // frame_count(ds)
        chunk = ds.PixelData[index * size : (index + 1) * size]
        if syntax in BIG_ENDIAN and bits > 8:
            width = bits // 8
            chunk = np.frombuffer(chunk, dtype=f">u{width}").astype(f"<u{width}").tobytes()
        return Frame(bytes(chunk), OCTET_STREAM, EXPLICIT_LE)
    array = decode(ds, index)
    if bits == 1:
        return Frame(pack_bits(array), OCTET_STREAM, EXPLICIT_LE)
    little = array.astype(array.dtype.newbyteorder("<"), copy=False)
    return Frame(little.tobytes(), OCTET_STREAM, EXPLICIT_LE)


def decode(ds: Dataset, index: int) -> NDArray[Any]:
    """One frame as a numpy array (colour converted to RGB, as ``pixel_array`` does)."""
    if not can_decode(syntax_of(ds)) or _too_large(ds):
        raise Undecodable(params={"syntax": syntax_of(ds)})
    try:
        return pixel_array(ds, index=index)
    except Exception as error:  # a damaged stream: every decoder raised
        raise Undecodable(params={"syntax": syntax_of(ds)}) from error


def can_transcode(syntax: str) -> bool:
    """Explicit VR Little Endian can be made from compressed (decodable), implicit and
    deflated sources; pydicom cannot rewrite a big-endian dataset as little endian."""
    return syntax not in BIG_ENDIAN and can_decode(syntax)


def _too_large(ds: Dataset) -> bool:
    samples = int(ds.get("Rows", 0) or 0) * int(ds.get("Columns", 0) or 0)
    return samples * int(ds.get("SamplesPerPixel", 1) or 1) > MAX_DECODED_SAMPLES


def transcode_to_explicit_le(ds: Dataset) -> bytes:
    """The instance with its pixel data decoded, as Explicit VR Little Endian Part 10."""
    syntax = syntax_of(ds)
    if not can_transcode(syntax) or (is_encapsulated(syntax) and _too_large(ds)):
        raise Undecodable()
    try:
        if is_encapsulated(syntax):
            ds.decompress()
        else:
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    except Exception as error:
        raise Undecodable() from error
    out = BytesIO()
    ds.save_as(out, enforce_file_format=True)
    return out.getvalue()


# Rendering ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Window:
    center: float
    width: float
    function: str = "linear"


@dataclass(frozen=True)
class Viewport:
    width: int
    height: int
    region: tuple[int, int, int, int] | None = None  # sx, sy, sw, sh


@dataclass(frozen=True)
class Rendering:
    media_type: str = JPEG
    window: Window | None = None
    viewport: Viewport | None = None
    quality: int = 90


def parse_number(text: str, field: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or abs(value) > MAX_WINDOW:
        raise BadRequest(
            N_("{field} needs finite numbers within ±{limit}."),
            code="window_invalid",
            field=field,
            params={"field": field, "limit": int(MAX_WINDOW)},
        )
    return value


def parse_window(value: str, field: str = "window") -> Window:
    """``center,width[,function]`` (PS3.18 §8.3.5.1.4)."""
    parts = value.split(",")
    if len(parts) not in (2, 3):
        raise BadRequest(
            N_("Give the window as center,width,function."), code="window_invalid", field=field
        )
    function = parts[2].strip().lower() if len(parts) == 3 else "linear"
    if function not in WINDOW_FUNCTIONS:
        raise BadRequest(
            N_("The window function is linear, linear-exact or sigmoid."),
            code="window_invalid",
            field=field,
        )
    return window_of(parse_number(parts[0], field), parse_number(parts[1], field), function, field)


def window_of(center: float, width: float, function: str, field: str) -> Window:
    if width < (1 if function == "linear" else 0) or width == 0:
        raise BadRequest(
            N_("The window width must be positive (at least 1 for linear)."),
            code="window_invalid",
            field=field,
        )
    return Window(center, width, function)


def parse_dimension(text: str, field: str, low: int, high: int) -> int:
    if not re.fullmatch(r"-?[0-9]{1,9}", text.strip()) or not low <= int(text) <= high:
        raise BadRequest(
            N_("{field} needs whole numbers from {low} to {high}."),
            code="viewport_invalid",
            field=field,
            params={"field": field, "low": low, "high": high},
        )
    return int(text)


def parse_viewport(value: str, field: str = "viewport") -> Viewport:
    """``vw,vh[,sx,sy,sw,sh]``; vw and vh at most MAX_VIEWPORT."""
    parts = value.split(",")
    if len(parts) not in (2, 6):
        raise BadRequest(
            N_("Give the viewport as vw,vh or vw,vh,sx,sy,sw,sh."),
            code="viewport_invalid",
            field=field,
        )
    width, height = (parse_dimension(p, field, 1, MAX_VIEWPORT) for p in parts[:2])
    if len(parts) == 2:
        return Viewport(width, height)
    sx, sy = (parse_dimension(p, field, 0, 1_000_000) for p in parts[2:4])
    sw, sh = (parse_dimension(p, field, -1_000_000, 1_000_000) for p in parts[4:6])
    return Viewport(width, height, (sx, sy, sw, sh))


def parse_quality(value: str, field: str = "quality") -> int:
    return parse_dimension(value, field, 1, 100)


def render(ds: Dataset, index: int, options: Rendering) -> bytes:
    """One frame as an 8-bit JPEG or PNG."""
    image = Image.fromarray(_eight_bit(ds, decode(ds, index), options.window))
    if options.viewport is not None:
        image = _fit(_crop(image, options.viewport.region), options.viewport)
    out = BytesIO()
    if options.media_type == PNG:
        image.save(out, format="PNG")
    else:
        image.save(out, format="JPEG", quality=options.quality)
    return out.getvalue()


def _eight_bit(ds: Dataset, array: NDArray[Any], window: Window | None) -> NDArray[np.uint8]:
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    if photometric == "PALETTE COLOR":
        return _scale_colour(apply_color_lut(array, ds))
    if array.ndim == 3:
        return _scale_colour(array)
    if window is None:
        window = _file_window(ds)
    # With a window the VOI LUT is not used (below), so the table gives the same bytes.
    table = _window_lut(ds, array, window) if window is not None else None
    if table is not None:
        return 255 - table if photometric == "MONOCHROME1" else table
    values = np.asarray(apply_modality_lut(array, ds), dtype=np.float64)
    if window is None and "VOILUTSequence" in ds:
        values = np.asarray(apply_voi_lut(values, ds, index=0), dtype=np.float64)
    out = _apply_window(values, window) if window is not None else _min_max(values)
    if photometric == "MONOCHROME1":
        out = 255 - out
    return out


LUT_MAX_ENTRIES = 65536


def _window_lut(ds: Dataset, array: NDArray[Any], window: Window) -> NDArray[np.uint8] | None:
    """The windowed image through a table of every stored value between the frame's
    minimum and maximum: the modality LUT and the window are per-pixel functions, so
    running them once per distinct value (a few thousand for CT) gives the same bytes as
    running them on every pixel. None when the samples are not integers or span too much."""
    if array.dtype.kind not in "iu" or array.size == 0:
        return None
    low, high = int(array.min()), int(array.max())
    if high - low >= LUT_MAX_ENTRIES or high - low + 1 >= array.size:
        return None
    stored = np.arange(low, high + 1, dtype=array.dtype)
    table = _apply_window(np.asarray(apply_modality_lut(stored, ds), dtype=np.float64), window)
    offsets = array.astype(np.int64) - low if low else array
    result: NDArray[np.uint8] = table[offsets]
    return result


def _scale_colour(array: NDArray[Any]) -> NDArray[np.uint8]:
    if array.dtype == np.uint8:
        return array
    top = float(array.max()) or 1.0
    return np.clip(array.astype(np.float64) * (255.0 / top), 0, 255).astype(np.uint8)


def _file_window(ds: Dataset) -> Window | None:
    center, width = ds.get("WindowCenter"), ds.get("WindowWidth")
    if center is None or width is None:
        return None
    try:
        c, w = float(_first(center)), float(_first(width))
    except (TypeError, ValueError, IndexError):
        return None
    function = str(ds.get("VOILUTFunction", "LINEAR") or "LINEAR").lower().replace("_", "-")
    if function not in WINDOW_FUNCTIONS or not (math.isfinite(c) and math.isfinite(w)):
        return None
    if w < (1 if function == "linear" else 0) or w == 0:
        return None
    return Window(c, w, function)


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, MultiValue) else value


def _apply_window(values: NDArray[np.float64], window: Window) -> NDArray[np.uint8]:
    """PS3.3 §C.11.2.1.2: linear, linear exact and sigmoid VOI functions onto 0..255."""
    c, w = window.center, window.width
    if window.function == "sigmoid":
        out = 255.0 / (1.0 + np.exp(np.clip(-4.0 * (values - c) / w, -700, 700)))
    elif window.function == "linear-exact":
        out = ((values - c) / w + 0.5) * 255.0
    else:
        out = ((values - (c - 0.5)) / max(w - 1, 1e-9) + 0.5) * 255.0
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _min_max(values: NDArray[np.float64]) -> NDArray[np.uint8]:
    low, high = float(values.min()), float(values.max())
    if high <= low:
        return np.zeros(values.shape, dtype=np.uint8)
    return np.rint((values - low) * (255.0 / (high - low))).astype(np.uint8)


def _crop(image: Image.Image, region: tuple[int, int, int, int] | None) -> Image.Image:
    if region is None:
        return image
    sx, sy, sw, sh = region
    sw = sw or image.width - sx  # 0: to the edge
    sh = sh or image.height - sy
    left, right = sorted((sx, sx + sw))
    top, bottom = sorted((sy, sy + sh))
    box = (max(0, left), max(0, top), min(image.width, right), min(image.height, bottom))
    if box[2] <= box[0] or box[3] <= box[1]:
        raise BadRequest(
            N_("The viewport region lies outside the image."),
            code="viewport_invalid",
            field="viewport",
        )
    image = image.crop(box)
    if sw < 0:
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    if sh < 0:
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    return image


def _fit(image: Image.Image, viewport: Viewport) -> Image.Image:
    """Scaled to fit the viewport, aspect ratio kept (PS3.18 §8.3.5.1.3)."""
    scale = min(viewport.width / image.width, viewport.height / image.height)
    size = (max(1, round(image.width * scale)), max(1, round(image.height * scale)))
    if size == image.size:
        return image
    return image.resize(size, Image.Resampling.LANCZOS)

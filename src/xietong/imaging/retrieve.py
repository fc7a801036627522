"""WADO-RS and WADO-URI retrieval: stored bytes, metadata, bulk data, frames, rendered
images and thumbnails, with the Accept negotiation of PS3.18 §8.7.

The caller has opened the study (``service.open_study``: access checked and audited) and
picked the instances; this module only reads their blobs. Metadata is read without the
pixel data; values larger than BULK_THRESHOLD and the pixel data are BulkDataURIs whose
path names the element (``bulkdata/00880200/1/7FE00010`` for an element inside item 1 of
a sequence), so nested values are never confused with top-level ones.
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any

import numpy as np
from pydicom import dcmread
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from xietong.core.errors import N_, BadRequest, NotFound, XietongError
from xietong.core.storage import BlobStore
from xietong.imaging import pixels
from xietong.imaging.models import ImagingInstance
from xietong.imaging.pixels import EXPLICIT_LE, OCTET_STREAM, Frame

BULK_THRESHOLD = 1024
PIXEL_DATA = "7FE00010"
DICOM = "application/dicom"
MAX_RENDERED_FRAMES = 1000  # frames in one multipart rendered answer (study, series)
BULK_PATH = re.compile(r"[0-9A-F]{8}(/[1-9][0-9]{0,5}/[0-9A-F]{8}){0,7}")
SWAP_WIDTH = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


class NotAcceptable(XietongError):
    status = 406
    default_code = "not_acceptable"
    default_message = N_("This Accept type cannot be served. Available: {available}")


def not_acceptable(available: list[str]) -> NotAcceptable:
    return NotAcceptable(field="accept", params={"available": ", ".join(available)})


def read_bytes(blobs: BlobStore, instance: ImagingInstance) -> bytes:
    with blobs.open(instance.blob_key) as handle:
        return handle.read()


def dataset(blobs: BlobStore, instance: ImagingInstance) -> Dataset:
    return pixels.load(read_bytes(blobs, instance))


# Accept ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Offer:
    media: str  # the media type of the parts (of a multipart offer) or of the body
    syntax: str | None  # transfer-syntax parameter, None when absent
    multipart: bool


def parse_accept(header: str) -> list[Offer]:
    """The offers of an Accept header, best quality first; empty header → ``*/*``."""
    ranked: list[tuple[float, int, Offer]] = []
    for position, item in enumerate(header.split(",")[:50] if header.strip() else ["*/*"]):
        head, *rest = item.split(";")
        params: dict[str, str] = {}
        for piece in rest:
            key, _, value = piece.strip().partition("=")
            params[key.strip().lower()] = value.strip().strip('"')
        media = head.strip().lower()
        try:
            quality = float(params.get("q", "1"))
        except ValueError:
            quality = 1.0
        if quality <= 0 or not media:
            continue
        multipart = media in ("multipart/related", "multipart/*")
        part = params.get("type", "*/*").lower() if multipart else media
        ranked.append((-quality, position, Offer(part, params.get("transfer-syntax"), multipart)))
    return [offer for _, _, offer in sorted(ranked, key=lambda r: (r[0], r[1]))]


def media_matches(wanted: str, media: str) -> bool:
    major = media.split("/")[0]
    return wanted in ("*/*", media, f"{major}/*", f"{major}/")


# Frames and pixel bulk data ----------------------------------------------------------------


@dataclass(frozen=True)
class FrameChoice:
    decoded: bool  # native little endian (decoded when compressed) or as stored
    media: str  # the media type to label the parts with


def frame_offers(syntax: str) -> list[str]:
    """What can be served for the frames of an instance in ``syntax`` (for a 406)."""
    available = []
    if pixels.can_decode(syntax):
        available.append(f'multipart/related; type="{OCTET_STREAM}"; transfer-syntax={EXPLICIT_LE}')
    if pixels.is_encapsulated(syntax):
        for media in pixels.FRAME_MEDIA.get(syntax, ()):
            available.append(f'multipart/related; type="{media}"; transfer-syntax={syntax}')
    available.append(f'multipart/related; type="{OCTET_STREAM}"; transfer-syntax=*')
    return available


def choose_frames(accept: str, syntax: str) -> FrameChoice:
    """PS3.18 §8.7.3.5 for frames and pixel bulk data of an instance stored in ``syntax``."""
    compressed = pixels.is_encapsulated(syntax)
    own = pixels.FRAME_MEDIA.get(syntax, (OCTET_STREAM,)) if compressed else (OCTET_STREAM,)
    for offer in parse_accept(accept):
        if offer.media in ("*/*", "image/*", "image/") and (
            offer.syntax in (None, "*", syntax) and (offer.media == "*/*" or compressed)
        ):
            return FrameChoice(False, own[0])
        if offer.media == "*/*" and offer.syntax == EXPLICIT_LE and pixels.can_decode(syntax):
            return FrameChoice(True, OCTET_STREAM)
        if offer.media == OCTET_STREAM:
            if offer.syntax == "*" or (offer.syntax == syntax and compressed):
                return FrameChoice(False, OCTET_STREAM)
            if offer.syntax in (None, EXPLICIT_LE) and pixels.can_decode(syntax):
                return FrameChoice(True, OCTET_STREAM)
        if compressed and offer.media in own and offer.syntax in (None, "*", syntax):
            return FrameChoice(False, offer.media)
    raise not_acceptable(frame_offers(syntax))


def frames(ds: Dataset, numbers: list[int], choice: FrameChoice) -> Iterator[Frame]:
    """The frames (numbered from 1, already checked) in the chosen form."""
    for number in numbers:
        frame = (
            pixels.decoded_frame(ds, number - 1)
            if choice.decoded
            else pixels.stored_frame(ds, number - 1)
        )
        yield Frame(frame.data, choice.media, frame.transfer_syntax)


def pixel_bulk(ds: Dataset, choice: FrameChoice) -> list[Frame]:
    """The pixel data value: native pixels as one part, compressed frames one part each."""
    count = pixels.frame_count(ds)
    if count == 0:
        raise NotFound(code="bulkdata_not_found", field="tag")
    parts = list(frames(ds, list(range(1, count + 1)), choice))
    if choice.media == OCTET_STREAM and all(p.transfer_syntax == EXPLICIT_LE for p in parts):
        return [Frame(b"".join(p.data for p in parts), OCTET_STREAM, EXPLICIT_LE)]
    return parts


# Whole instances ---------------------------------------------------------------------------


def choose_syntax(accept: str, syntaxes: set[str]) -> str | None:
    """The transfer syntax to send instances in: None = as stored (``*``, no parameter,
    or the stored one), EXPLICIT_LE = transcode the ones stored otherwise; else 406."""
    for offer in parse_accept(accept):
        if offer.media not in ("*/*", "application/*", DICOM):
            continue
        if offer.syntax in (None, "*") or {offer.syntax} == syntaxes:
            return None
        if offer.syntax == EXPLICIT_LE and all(pixels.can_transcode(s) for s in syntaxes):
            return EXPLICIT_LE
    available = [f'multipart/related; type="{DICOM}"; transfer-syntax=*']
    if len(syntaxes) == 1:
        available.append(f'multipart/related; type="{DICOM}"; transfer-syntax={min(syntaxes)}')
    if all(pixels.can_transcode(s) for s in syntaxes):
        available.append(f'multipart/related; type="{DICOM}"; transfer-syntax={EXPLICIT_LE}')
    raise not_acceptable(available)


def instance_bytes(blobs: BlobStore, instance: ImagingInstance, syntax: str | None) -> bytes:
    data = read_bytes(blobs, instance)
    if syntax is None or instance.transfer_syntax_uid == syntax:
        return data
    return pixels.transcode_to_explicit_le(pixels.load(data))


# Metadata and bulk data --------------------------------------------------------------------


def _paths(ds: Dataset, prefix: str = "") -> dict[int, str]:
    """id(element) → its bulk data path, for every element of the dataset and its items."""
    paths: dict[int, str] = {}
    for elem in ds:
        path = f"{prefix}{elem.tag:08X}"
        paths[id(elem)] = path
        if elem.VR == "SQ" and isinstance(elem.value, Sequence):
            for number, item in enumerate(elem.value, start=1):
                paths.update(_paths(item, f"{path}/{number}/"))
    return paths


def metadata(blobs: BlobStore, instance: ImagingInstance, instance_url: str) -> dict[str, Any]:
    """The instance's attributes as DICOM JSON; bulk values and pixel data as absolute
    BulkDataURIs under ``{instance_url}/bulkdata/``."""
    ds = dcmread(BytesIO(read_bytes(blobs, instance)), stop_before_pixels=True)
    paths = _paths(ds)

    def bulk(elem: DataElement) -> str:
        return f"{instance_url}/bulkdata/{paths.get(id(elem), f'{elem.tag:08X}')}"

    result: dict[str, Any] = ds.to_json_dict(
        bulk_data_threshold=BULK_THRESHOLD, bulk_data_element_handler=bulk
    )
    if instance.rows:
        vr = "OB" if pixels.is_encapsulated(instance.transfer_syntax_uid) else "OW"
        result[PIXEL_DATA] = {"vr": vr, "BulkDataURI": f"{instance_url}/bulkdata/{PIXEL_DATA}"}
    return result


class MetadataCache:
    """The DICOM JSON of stored instances, serialised, by blob key, least recently used
    dropped past ``max_bytes``.

    A blob is content-addressed (its key is the SHA-256 of the file), so its metadata never
    changes; only the instance URL of the BulkDataURIs depends on the request. It is kept
    as the JSON split at a marker that no stored value can hold (a random per-process token
    between NULs, which JSON escapes in values), and joined with the escaped URL on use.
    The cache is read only after the study was opened (access checked and audited).
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes
        self._marker = f"\x00{uuid.uuid4().hex}\x00"
        self._entries: OrderedDict[tuple[str, int, str], tuple[list[str], int]] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()

    def json(self, blobs: BlobStore, instance: ImagingInstance, instance_url: str) -> str:
        """The metadata of one instance, as a JSON object text."""
        key = (instance.blob_key, instance.rows or 0, instance.transfer_syntax_uid)
        with self._lock:
            entry = self._entries.get(key)
            if entry is not None:
                self._entries.move_to_end(key)
        if entry is None:
            text = json.dumps(metadata(blobs, instance, self._marker), ensure_ascii=False)
            marker = json.dumps(self._marker, ensure_ascii=False)[1:-1]
            entry = (text.split(marker), len(text))
            self._put(key, entry)
        url = json.dumps(instance_url, ensure_ascii=False)[1:-1]
        return url.join(entry[0])

    def _put(self, key: tuple[str, int, str], entry: tuple[list[str], int]) -> None:
        if entry[1] > self.max_bytes:
            return
        with self._lock:
            if key in self._entries:
                return
            self._entries[key] = entry
            self._size += entry[1]
            while self._size > self.max_bytes:
                _, (_, size) = self._entries.popitem(last=False)
                self._size -= size


METADATA_CACHE = MetadataCache(max_bytes=32 * 1_048_576)


def metadata_json(blobs: BlobStore, instances: list[tuple[ImagingInstance, str]]) -> str:
    """The DICOM JSON array of the metadata of (instance, its URL) pairs."""
    return "[" + ", ".join(METADATA_CACHE.json(blobs, i, url) for i, url in instances) + "]"


def check_bulk_path(path: str) -> None:
    if not BULK_PATH.fullmatch(path):
        raise BadRequest(
            N_("Give a bulk data path of tags and item numbers, as in the metadata."),
            code="bulkdata_path_invalid",
            field="tag",
        )


def bulk_value(ds: Dataset, path: str) -> bytes:
    """The value bytes (little endian) of the element a BulkDataURI path names."""
    steps = path.split("/")
    current: Dataset = ds
    for position in range(0, len(steps) - 1, 2):
        elem = current.get(int(steps[position], 16))
        number = int(steps[position + 1])
        if elem is None or elem.VR != "SQ" or not 1 <= number <= len(elem.value):
            raise NotFound(code="bulkdata_not_found", field="tag")
        current = elem.value[number - 1]
    elem = current.get(int(steps[-1], 16))
    if elem is None or not isinstance(elem.value, bytes | bytearray):
        raise NotFound(code="bulkdata_not_found", field="tag")
    value = bytes(elem.value)
    width = SWAP_WIDTH.get(str(elem.VR))
    if width and not ds.original_encoding[1] and len(value) % width == 0:
        value = np.frombuffer(value, dtype=f">u{width}").astype(f"<u{width}").tobytes()
    return value


class RangeNotSatisfiable(XietongError):
    status = 416
    default_code = "range_not_satisfiable"
    default_message = N_("The byte range lies outside the value ({size} bytes).")


RANGE = re.compile(r"bytes=(\d{1,15})-(\d{0,15})|bytes=-(\d{1,15})")


def byte_range(header: str, size: int) -> tuple[int, int] | None:
    """The (first, last) bytes of a single-range ``Range`` header (RFC 9110 §14.1.2);
    None without one or for a form we do not serve (several ranges): the whole value."""
    match = RANGE.fullmatch(header.strip().replace(" ", ""))
    if match is None:
        return None
    first, last, suffix = match.groups()
    if suffix is not None:
        start, end = max(0, size - int(suffix)), size - 1
    else:
        start, end = int(first), min(size - 1, int(last) if last else size - 1)
    if size == 0 or start >= size or end < start:
        raise RangeNotSatisfiable(
            field="range", params={"size": size}, headers={"Content-Range": f"bytes */{size}"}
        )
    return start, end

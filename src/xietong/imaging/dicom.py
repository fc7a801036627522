"""Reading one DICOM Part 10 file safely: structure first, then attributes.

pydicom is lenient by design: it reads a truncated file without complaint and seeks past
a declared length that runs beyond the end. So before pydicom sees the bytes,
:func:`check_structure` walks every element header (file meta, dataset, nested sequences
and encapsulated pixel data, to a bounded depth) and refuses any length that leaves the
file. Only then does pydicom read the attributes, with large values deferred: pixel data
is never decoded at ingest. Every UID must follow the DICOM grammar (PS3.5 §9.1: digit
components separated by dots, no leading zeros, at most 64 characters), so a UID can
never carry a path separator or ``..``; it never becomes a path anyway (blobs are keyed by
their SHA-256).
"""

from __future__ import annotations

import re
import struct
import zlib
from dataclasses import dataclass
from datetime import date
from io import BytesIO
from typing import Any

from pydicom import dcmread
from pydicom.dataset import Dataset
from pydicom.errors import InvalidDicomError

from xietong.core.errors import N_, Invalid, PayloadTooLarge

FIELD = "file"
PREAMBLE = 128
MAX_DEPTH = 16
DEFER_SIZE = 64 * 1024
UNDEFINED = 0xFFFFFFFF
_UID = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")
# Explicit VRs with a 2-byte reserved field and a 4-byte length (PS3.5 §7.1.2).
_LONG_VRS = frozenset(
    {b"OB", b"OD", b"OF", b"OL", b"OV", b"OW", b"SQ", b"SV", b"UC", b"UN", b"UR", b"UT", b"UV"}
)
_ITEM = (0xFFFE, 0xE000)
_ITEM_END = (0xFFFE, 0xE00D)
_SEQUENCE_END = (0xFFFE, 0xE0DD)
IMPLICIT_LITTLE = "1.2.840.10008.1.2"
EXPLICIT_BIG = "1.2.840.10008.1.2.2"
DEFLATED = ("1.2.840.10008.1.2.1.99", "1.2.840.10008.1.2.8.1")
REQUIRED = ("SOPClassUID", "SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "Modality")


def is_valid_uid(value: str) -> bool:
    return 0 < len(value) <= 64 and _UID.fullmatch(value) is not None


def _not_dicom() -> Invalid:
    return Invalid(
        N_("The file is not a DICOM Part 10 file (no DICM prefix after the preamble)."),
        code="dicom_not_dicom",
        field=FIELD,
    )


def _corrupt(attribute: str) -> Invalid:
    return Invalid(
        N_("The DICOM file is truncated or malformed at {attribute}."),
        code="dicom_malformed",
        field=FIELD,
        params={"attribute": attribute},
    )


def _tag_name(group: int, element: int) -> str:
    return f"({group:04X},{element:04X})"


# Structure ---------------------------------------------------------------------------------


class _Walker:
    def __init__(self, data: bytes, *, explicit: bool, little: bool) -> None:
        self.data = data
        self.explicit = explicit
        self.endian = "<" if little else ">"

    def header(self, pos: int, end: int, explicit: bool) -> tuple[int, int, bytes | None, int]:
        """(group, element, vr, length) of the element at ``pos`` and its header size."""
        if pos + 8 > end:
            raise _corrupt(f"offset {pos}")
        group, element = struct.unpack_from(self.endian + "HH", self.data, pos)
        if group == 0xFFFE or not explicit:
            (length,) = struct.unpack_from(self.endian + "I", self.data, pos + 4)
            return group, element, None, length
        vr = self.data[pos + 4 : pos + 6]
        if vr in _LONG_VRS:
            if pos + 12 > end:
                raise _corrupt(_tag_name(group, element))
            (length,) = struct.unpack_from(self.endian + "I", self.data, pos + 8)
            return group, element, vr, length
        if not vr.isalpha() or not vr.isupper():
            raise _corrupt(_tag_name(group, element))
        (length,) = struct.unpack_from(self.endian + "H", self.data, pos + 6)
        return group, element, vr, length

    def dataset(self, pos: int, end: int, depth: int, *, explicit: bool, in_item: bool) -> int:
        """Walk elements from ``pos``; the position after the last one (or after the item
        delimiter when ``in_item`` and the item has undefined length)."""
        if depth > MAX_DEPTH:
            raise _corrupt("nesting depth")
        while pos < end:
            group, element, vr, length = self.header(pos, end, explicit)
            name = _tag_name(group, element)
            size = 12 if vr in _LONG_VRS else 8
            if (group, element) == _ITEM_END:
                if not in_item:
                    raise _corrupt(name)
                return pos + 8
            if group == 0xFFFE:
                raise _corrupt(name)
            pos += size
            if length == UNDEFINED:
                # A sequence, encapsulated pixel data, or UN holding an implicit sequence.
                inner_explicit = explicit and vr != b"UN"
                pos = self.items(pos, end, depth + 1, explicit=inner_explicit, tag=name)
                continue
            if pos + length > end:
                raise _corrupt(name)
            pos += length
        if in_item:
            raise _corrupt("item delimitation")
        return pos

    def items(self, pos: int, end: int, depth: int, *, explicit: bool, tag: str) -> int:
        while True:
            group, element, _vr, length = self.header(pos, end, False)
            pos += 8
            if (group, element) == _SEQUENCE_END:
                return pos
            if (group, element) != _ITEM:
                raise _corrupt(tag)
            if length == UNDEFINED:
                pos = self.dataset(pos, end, depth, explicit=explicit, in_item=True)
                continue
            if pos + length > end:
                raise _corrupt(tag)
            pos += length


def check_structure(data: bytes, *, max_inflated: int) -> None:
    """Refuse non-DICOM, truncated and hostile files before pydicom reads them."""
    if len(data) < PREAMBLE + 4 or data[PREAMBLE : PREAMBLE + 4] != b"DICM":
        raise _not_dicom()
    end = len(data)
    meta = _Walker(data, explicit=True, little=True)
    pos = PREAMBLE + 4
    transfer_syntax = ""
    while pos + 2 <= end:
        if struct.unpack_from("<H", data, pos)[0] != 0x0002:
            break
        group, element, _vr, length = meta.header(pos, end, True)
        size = 12 if _vr in _LONG_VRS else 8
        if length == UNDEFINED or pos + size + length > end:
            raise _corrupt(_tag_name(group, element))
        if element == 0x0010:
            transfer_syntax = (
                data[pos + size : pos + size + length].rstrip(b"\x00 ").decode("ascii", "replace")
            )
        pos += size + length
    if not transfer_syntax:
        raise _missing("TransferSyntaxUID")
    if not is_valid_uid(transfer_syntax):
        raise _bad_uid("TransferSyntaxUID")
    body = data
    if transfer_syntax in DEFLATED:
        body = data[:pos] + _inflate(data[pos:], max_inflated)
        end = len(body)
    walker = _Walker(
        body, explicit=transfer_syntax != IMPLICIT_LITTLE, little=transfer_syntax != EXPLICIT_BIG
    )
    walker.dataset(pos, end, 0, explicit=walker.explicit, in_item=False)


def _inflate(raw: bytes, limit: int) -> bytes:
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)
    try:
        out = inflater.decompress(raw, limit + 1)
    except zlib.error as exc:
        raise _corrupt("deflated dataset") from exc
    if len(out) > limit:
        raise PayloadTooLarge(code="dicom_too_large", field=FIELD, params={"limit": limit})
    return out


# Attributes --------------------------------------------------------------------------------


def _missing(attribute: str) -> Invalid:
    return Invalid(
        N_("The DICOM attribute {attribute} is missing or empty."),
        code="dicom_attribute_missing",
        field=FIELD,
        params={"attribute": attribute},
    )


def _bad_uid(attribute: str) -> Invalid:
    return Invalid(
        N_("The DICOM attribute {attribute} is not a valid UID (digits and dots, 64 at most)."),
        code="dicom_uid_invalid",
        field=FIELD,
        params={"attribute": attribute},
    )


@dataclass(frozen=True)
class ParsedInstance:
    """The attributes the archive indexes, as plain values."""

    sop_class_uid: str
    sop_instance_uid: str
    study_uid: str
    series_uid: str
    transfer_syntax_uid: str
    modality: str
    patient_key: str
    patient_name: str
    patient_birth_date: str
    patient_sex: str
    other_patient_ids: tuple[str, ...]
    accession_number: str
    study_date: date | None
    study_time: str
    study_id: str
    study_description: str
    referring_physician: str
    series_number: int | None
    series_description: str
    body_part: str
    instance_number: int | None
    rows: int | None
    columns: int | None
    frames: int | None


def _text(ds: Dataset, keyword: str, size: int) -> str:
    try:
        value = ds.get(keyword)
    except Exception as exc:  # pydicom raises many kinds on a bad value
        raise _corrupt(keyword) from exc
    if value is None:
        return ""
    if isinstance(value, list | tuple) or type(value).__name__ == "MultiValue":
        text = "\\".join(str(v) for v in value)
    else:
        text = str(value)
    return text.replace("\x00", "").strip()[:size]


def _int(ds: Dataset, keyword: str) -> int | None:
    text = _text(ds, keyword, 16)
    try:
        number = int(float(text)) if text else None
    except ValueError:
        return None
    return number if number is not None and 0 <= number < 2**31 else None


def _uid(ds: Dataset, keyword: str) -> str:
    value = _text(ds, keyword, 200)
    if not value:
        raise _missing(keyword)
    if not is_valid_uid(value):
        raise _bad_uid(keyword)
    return value


def _date(text: str) -> date | None:
    if len(text) != 8 or not text.isdigit():
        return None
    try:
        return date(int(text[:4]), int(text[4:6]), int(text[6:]))
    except ValueError:
        return None


def _other_ids(ds: Dataset) -> tuple[str, ...]:
    found = [v for v in _text(ds, "OtherPatientIDs", 400).split("\\") if v]
    try:
        sequence: Any = ds.get("OtherPatientIDsSequence") or []
        found.extend(str(item.get("PatientID", "")) for item in sequence)
    except Exception as exc:
        raise _corrupt("OtherPatientIDsSequence") from exc
    return tuple(v.strip() for v in found if v and v.strip())[:8]


def read_instance(data: bytes, *, max_inflated: int) -> ParsedInstance:
    """Check the structure, then read the indexed attributes; 422 naming ``file`` and the
    attribute at fault."""
    check_structure(data, max_inflated=max_inflated)
    try:
        ds = dcmread(BytesIO(data), defer_size=DEFER_SIZE, stop_before_pixels=False)
    except InvalidDicomError as exc:
        raise _not_dicom() from exc
    except Exception as exc:
        raise _corrupt("dataset") from exc
    transfer_syntax = str(getattr(ds.file_meta, "TransferSyntaxUID", "") or "")
    if not is_valid_uid(transfer_syntax):
        raise _bad_uid("TransferSyntaxUID")
    uids = {keyword: _uid(ds, keyword) for keyword in REQUIRED if keyword.endswith("UID")}
    modality = _text(ds, "Modality", 16)
    if not modality:
        raise _missing("Modality")
    return ParsedInstance(
        sop_class_uid=uids["SOPClassUID"],
        sop_instance_uid=uids["SOPInstanceUID"],
        study_uid=uids["StudyInstanceUID"],
        series_uid=uids["SeriesInstanceUID"],
        transfer_syntax_uid=transfer_syntax,
        modality=modality,
        patient_key=_text(ds, "PatientID", 64),
        patient_name=_text(ds, "PatientName", 324),
        patient_birth_date=_text(ds, "PatientBirthDate", 8),
        patient_sex=_text(ds, "PatientSex", 16),
        other_patient_ids=_other_ids(ds),
        accession_number=_text(ds, "AccessionNumber", 16),
        study_date=_date(_text(ds, "StudyDate", 8)),
        study_time=_text(ds, "StudyTime", 16),
        study_id=_text(ds, "StudyID", 16),
        study_description=_text(ds, "StudyDescription", 64),
        referring_physician=_text(ds, "ReferringPhysicianName", 324),
        series_number=_int(ds, "SeriesNumber"),
        series_description=_text(ds, "SeriesDescription", 64),
        body_part=_text(ds, "BodyPartExamined", 16),
        instance_number=_int(ds, "InstanceNumber"),
        rows=_int(ds, "Rows"),
        columns=_int(ds, "Columns"),
        frames=_int(ds, "NumberOfFrames") or (1 if "PixelData" in ds else None),
    )

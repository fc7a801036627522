"""The files of a completed upload: one DICOM file, or the entries of a zip checked as a
whole before any is stored (imaging/uploads.py ingests them).

A zip is refused whole, with nothing stored, for an entry name that could leave a folder
(absolute, a drive letter, a ``..`` component), a symbolic link, an entry that is itself an
archive, too many entries, too many inflated bytes, or an entry whose compression ratio
betrays a zip bomb. Entries are never extracted to disk: each is read into memory, bounded
by its declared size (an entry that inflates to more fails its CRC). Names are only shown.
"""

from __future__ import annotations

import logging
import re
import stat
import zipfile
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import Any, Literal

from xietong.config import ImagingSettings
from xietong.core.errors import N_, Invalid, PayloadTooLarge
from xietong.core.validation import strip_control_characters

log = logging.getLogger("xietong.imaging.uploads")

FIELD = "upload"
Outcome = Literal["stored", "already_stored", "refused", "skipped"]
DICOMDIR_CLASS = b"1.2.840.10008.1.3.10"
# Leading bytes of archives that a zip of DICOM files has no business carrying.
_ARCHIVE_MAGIC = (
    b"PK\x03\x04",
    b"PK\x05\x06",
    b"PK\x07\x08",
    b"\x1f\x8b",
    b"7z\xbc\xaf",
    b"Rar!",
    b"BZh",
)
_DRIVE = re.compile(r"^[A-Za-z]:")
_ZIP_ERRORS = (zipfile.BadZipFile, NotImplementedError, OSError, EOFError, RuntimeError)


def display_name(name: str) -> str:
    """A client's file or entry name as shown: no control characters, at most 255."""
    return strip_control_characters(name.replace("\\", "/"), "").strip()[:255] or "-"


@dataclass(frozen=True)
class Entry:
    position: int
    name: str
    info: zipfile.ZipInfo | None  # None: the upload is this one file


def _hostile(message: str, code: str, name: str = "") -> Invalid:
    return Invalid(message, code=code, field=FIELD, params={"name": display_name(name)[:120]})


def _check_name(raw: str) -> None:
    name = raw.replace("\\", "/")
    parts = PurePosixPath(name).parts
    if "\x00" in name or name.startswith("/") or _DRIVE.match(name) or ".." in parts:
        raise _hostile(
            N_("The zip holds an entry with an unsafe name ({name}); nothing was stored."),
            "zip_unsafe_name",
            raw,
        )


def _is_symlink(info: zipfile.ZipInfo) -> bool:
    mode = info.external_attr >> 16
    return info.create_system == 3 and stat.S_ISLNK(mode)  # 3: made on Unix


def zip_entries(zf: zipfile.ZipFile, settings: ImagingSettings) -> list[Entry]:
    """The files of the zip to ingest, after checking the zip as a whole; raises 422/413."""
    infos = zf.infolist()
    if len(infos) > settings.upload_zip_max_entries:
        raise Invalid(
            N_("The zip holds more than {limit} entries; nothing was stored."),
            code="zip_too_many_entries",
            field=FIELD,
            params={"limit": settings.upload_zip_max_entries},
        )
    total = 0
    entries: list[Entry] = []
    for position, info in enumerate(infos):
        _check_name(info.filename)
        if _is_symlink(info):
            raise _hostile(
                N_("The zip holds a symbolic link ({name}); nothing was stored."),
                "zip_symlink",
                info.filename,
            )
        if info.is_dir():
            continue
        total += info.file_size
        if total > settings.upload_zip_max_uncompressed_bytes:
            raise PayloadTooLarge(
                N_("The zip inflates to more than {limit} bytes; nothing was stored."),
                code="zip_too_large",
                field=FIELD,
                params={"limit": settings.upload_zip_max_uncompressed_bytes},
            )
        if info.file_size > settings.upload_zip_max_ratio * max(info.compress_size, 1):
            raise _hostile(
                N_(
                    "The zip entry {name} is compressed suspiciously well (a zip bomb?); "
                    "nothing was stored."
                ),
                "zip_bomb",
                info.filename,
            )
        if _is_archive(zf, info):
            raise _hostile(
                N_(
                    "The zip holds another archive ({name}); unpack it and upload the files; "
                    "nothing was stored."
                ),
                "zip_nested",
                info.filename,
            )
        entries.append(Entry(position, display_name(info.filename), info))
    return entries


def _is_archive(zf: zipfile.ZipFile, info: zipfile.ZipInfo) -> bool:
    if info.flag_bits & 0x1:
        return False  # encrypted: refused on its own when read
    try:
        with zf.open(info) as handle:
            head = handle.read(8)
    except _ZIP_ERRORS:
        return False  # refused on its own when read
    return head.startswith(_ARCHIVE_MAGIC)


class Refusal(Exception):
    """A file of the upload that is reported, not ingested."""

    def __init__(self, outcome: Outcome, code: str, message: str, params: dict[str, Any]):
        super().__init__(code)
        self.outcome = outcome
        self.code = code
        self.message = message
        self.params = params


def read_entry(zf: zipfile.ZipFile, info: zipfile.ZipInfo, max_bytes: int) -> bytes:
    if info.flag_bits & 0x1:
        raise Refusal("refused", "zip_entry_encrypted", N_("The file is encrypted in the zip."), {})
    if info.file_size > max_bytes:
        raise Refusal(
            "refused",
            "dicom_too_large",
            N_("The file is too large: at most {limit} bytes are accepted."),
            {"limit": max_bytes},
        )
    try:
        with zf.open(info) as handle:
            # The declared size bounds the read; inflating more fails its CRC below.
            return handle.read(info.file_size + 1)
    except _ZIP_ERRORS as exc:
        log.info("unreadable zip entry: %s", exc)
        raise Refusal(
            "refused",
            "zip_entry_corrupt",
            N_("The file is damaged in the zip or uses an unsupported compression."),
            {},
        ) from exc


def skip_reason(name: str, data: bytes) -> Refusal | None:
    """Files of a zip that are not instances to store, with the reason shown."""
    if PurePosixPath(name).name.upper() == "DICOMDIR" or DICOMDIR_CLASS in data[128:512]:
        return Refusal(
            "skipped",
            "dicomdir",
            N_("A DICOMDIR index, not an image; the files it lists are read from the zip."),
            {},
        )
    if data[128:132] != b"DICM":
        return Refusal(
            "skipped",
            "not_dicom",
            N_("Not a DICOM file (no DICM prefix after the preamble); skipped."),
            {},
        )
    return None

"""Blob storage behind a Protocol; the local-folder adapter is the embedded default.

Keys are derived from the content's SHA-256 (``ab/cd/abcd…``), never from a caller's name,
so a key can never leave the storage root; writes go to a temporary file, are fsynced and
renamed into place, so a crash leaves either the whole blob or none of it. An existing blob
is never overwritten: the same content gives the same key.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol

from xietong.core.errors import NotFound, PayloadTooLarge

_KEY_PATTERN = re.compile(r"^[0-9a-f]{2}/[0-9a-f]{2}/[0-9a-f]{64}$")
CHUNK = 1024 * 1024


@dataclass(frozen=True)
class BlobRef:
    key: str
    sha256: str
    size: int


class BlobStore(Protocol):
    def put(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> BlobRef: ...

    def put_bytes(self, data: bytes) -> BlobRef: ...

    def open(self, key: str) -> BinaryIO: ...

    def exists(self, key: str) -> bool: ...

    def verify(self, key: str) -> bool: ...


def key_for_digest(digest: str) -> str:
    return f"{digest[:2]}/{digest[2:4]}/{digest}"


def validate_key(key: str) -> str:
    if not _KEY_PATTERN.fullmatch(key):
        raise NotFound(code="blob_not_found")
    return key


class LocalBlobStore:
    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        (self.root / ".tmp").mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        path = (self.root / validate_key(key)).resolve()
        if self.root not in path.parents:  # belt and braces: the pattern already forbids it
            raise NotFound(code="blob_not_found")
        return path

    def put(self, chunks: Iterable[bytes], *, max_bytes: int | None = None) -> BlobRef:
        digest = hashlib.sha256()
        size = 0
        fd, tmp_name = tempfile.mkstemp(dir=self.root / ".tmp", prefix="put-")
        try:
            with os.fdopen(fd, "wb") as tmp:
                for chunk in chunks:
                    size += len(chunk)
                    if max_bytes is not None and size > max_bytes:
                        raise PayloadTooLarge(field="file", params={"limit": max_bytes})
                    digest.update(chunk)
                    tmp.write(chunk)
                tmp.flush()
                os.fsync(tmp.fileno())
            hexdigest = digest.hexdigest()
            key = key_for_digest(hexdigest)
            final = self._path(key)
            if final.exists():
                os.unlink(tmp_name)
            else:
                final.parent.mkdir(parents=True, exist_ok=True)
                os.replace(tmp_name, final)
                _fsync_dir(final.parent)
            return BlobRef(key=key, sha256=hexdigest, size=size)
        except BaseException:
            if os.path.exists(tmp_name):
                os.unlink(tmp_name)
            raise

    def put_bytes(self, data: bytes) -> BlobRef:
        return self.put([data])

    def open(self, key: str) -> BinaryIO:
        path = self._path(key)
        if not path.is_file():
            raise NotFound(code="blob_not_found")
        return path.open("rb")

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def verify(self, key: str) -> bool:
        """True when the stored bytes still hash to the key."""
        digest = hashlib.sha256()
        with self.open(key) as handle:
            for chunk in iter(lambda: handle.read(CHUNK), b""):
                digest.update(chunk)
        return key.endswith(digest.hexdigest())


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)

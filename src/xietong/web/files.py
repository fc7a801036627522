"""Stored files over HTTP: streamed from the blob store, never cached by a shared cache,
never sniffed by the browser, and never run as a page of ours."""

from __future__ import annotations

from collections.abc import Iterator
from urllib.parse import quote

from fastapi.responses import StreamingResponse

from xietong.core.storage import BlobStore

CHUNK = 256 * 1024


def content_disposition(filename: str, disposition: str = "inline") -> str:
    """A Content-Disposition header for any file name: an ASCII fallback and the UTF-8 name
    (RFC 6266 / RFC 5987), so 病历.pdf survives and a quote cannot break the header."""
    fallback = "".join(ch if 32 <= ord(ch) < 127 and ch not in '"\\;' else "_" for ch in filename)
    return f"{disposition}; filename=\"{fallback}\"; filename*=UTF-8''{quote(filename, safe='')}"


def blob_response(
    blobs: BlobStore,
    key: str,
    media_type: str,
    *,
    filename: str = "",
    sha256: str | None = None,
) -> StreamingResponse:
    handle = blobs.open(key)

    def chunks() -> Iterator[bytes]:
        with handle:
            while block := handle.read(CHUNK):
                yield block

    headers = {
        "Cache-Control": "private, no-store",
        "X-Content-Type-Options": "nosniff",
        # A stored PDF opens in the browser's own viewer, never as a page of ours.
        "Content-Security-Policy": "sandbox; default-src 'none'; img-src 'self'",
    }
    if filename:
        headers["Content-Disposition"] = content_disposition(filename)
    if sha256:
        headers["ETag"] = f'"{sha256}"'
    return StreamingResponse(chunks(), media_type=media_type, headers=headers)

"""HTML to PDF with weasyprint, fetching nothing.

weasyprint resolves every URL of the document (images, style sheets, fonts given by
``url()``) through a URL fetcher. :class:`NoFetching` fetches ``data:`` URIs only and
refuses everything else (http, https, file, ftp …) with a logged warning, so that a PDF is
made from the HTML string alone and nothing is downloaded or read from disk at run time,
whatever the HTML holds. The HTML has no base URL either. Fonts come from the system by
family name (fontconfig), not through the fetcher.

Importing weasyprint loads Pango and HarfBuzz (system libraries, docs/operations.md) and
sets Pillow's process-wide ``ImageFile.LOAD_TRUNCATED_IMAGES`` to True, which would let
truncated photos through the upload vetting (core/uploads.py). This module puts the flag
back as it was right after the import; it is imported when the application is built
(through the page and API routes), before any request runs, so no upload is vetted while
the flag is changed.
"""

from __future__ import annotations

import logging
from typing import Any

from PIL import ImageFile

_LOAD_TRUNCATED_IMAGES = ImageFile.LOAD_TRUNCATED_IMAGES

from weasyprint import HTML  # noqa: E402
from weasyprint.urls import URLFetcher  # noqa: E402

ImageFile.LOAD_TRUNCATED_IMAGES = _LOAD_TRUNCATED_IMAGES  # weasyprint.images set it

log = logging.getLogger("xietong.pdf")


class NoFetching(URLFetcher):  # type: ignore[misc]  # weasyprint ships no type hints
    """A URL fetcher for ``data:`` URIs only; other URLs are refused and remembered in
    ``refused`` (tests read it)."""

    def __init__(self) -> None:
        super().__init__(allowed_protocols=("data",), allow_redirects=False, timeout=1)
        self.refused: list[str] = []

    def fetch(self, url: str, headers: Any = None) -> Any:
        if not url.strip().lower().startswith("data:"):
            self.refused.append(url)
            log.warning("refused to fetch %s while making a PDF", url[:200])
            raise ValueError("external resources are not fetched")
        return super().fetch(url, headers)


def html_to_pdf(html: str, *, fetcher: NoFetching | None = None) -> bytes:
    """The PDF of ``html`` (print media), made without fetching anything."""
    document = HTML(string=html, url_fetcher=fetcher or NoFetching(), media_type="print")
    pdf: bytes = document.write_pdf()
    return pdf

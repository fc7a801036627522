"""What a PDF holds, asked of two parsers: pypdf walks every object for scripts, automatic
actions, attachments and rich media; PDFium (the engine of Chromium's viewer) must open the
file, find no scripts or attachments either, and renders the first page for the thumbnail.
Used by :mod:`xietong.core.uploads` (ADR 13).
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import pypdfium2
from PIL import Image
from pypdf import PdfReader
from pypdf.generic import ArrayObject, DictionaryObject, IndirectObject, NameObject

from xietong.core.errors import N_, Invalid

log = logging.getLogger("xietong.uploads")

# PDFium is not thread-safe and sync routes run in a thread pool.
_pdfium_lock = threading.Lock()

# PDF features that make a document do something instead of showing something.
_ACTIVE_ACTIONS = frozenset(
    {
        "/JavaScript",
        "/Launch",
        "/SubmitForm",
        "/ImportData",
        "/GoToE",
        "/GoToR",
        "/Rendition",
        "/RichMediaExecute",
        "/Movie",
        "/Sound",
    }
)
_ACTIVE_KEYS = {
    "/JS": "JavaScript",
    "/JavaScript": "JavaScript",
    "/EmbeddedFiles": "embedded file",
    "/EF": "embedded file",
    "/XFA": "XFA form",
    "/RichMediaContent": "rich media",
}
_ACTIVE_SUBTYPES = frozenset(
    {"/FileAttachment", "/RichMedia", "/Screen", "/Movie", "/Sound", "/3D"}
)
_AUTOMATIC_TRIGGERS = ("/OpenAction", "/AA")
_MAX_ACTION_CHAIN = 100


def corrupt_pdf(field: str) -> Invalid:
    return Invalid(
        N_("The PDF is damaged or incomplete; please export it again."),
        code="pdf_corrupt",
        field=field,
    )


def active_content(reader: PdfReader) -> str | None:
    """The first active feature found in any object of the file, or None.

    Walks every object listed in the cross-reference tables as well as everything reachable
    from the trailer, without decoding stream data; names arrive unescaped (#xx) from pypdf.
    """
    stack: list[Any] = [reader.trailer]
    for generation, table in reader.xref.items():
        stack.extend(IndirectObject(number, generation, reader) for number in table)
    stack.extend(IndirectObject(number, 0, reader) for number in reader.xref_objStm)
    seen: set[tuple[int, int]] = set()
    while stack:
        item = stack.pop()
        if isinstance(item, IndirectObject):
            ref = (item.idnum, item.generation)
            if ref in seen:
                continue
            seen.add(ref)
            item = item.get_object()
        if isinstance(item, DictionaryObject):
            feature = _active_feature(item)
            if feature is not None:
                return feature
            stack.extend(dict.values(item))
        elif isinstance(item, ArrayObject):
            stack.extend(list.__iter__(item))
    return None


def _resolved(value: Any) -> Any:
    return value.get_object() if isinstance(value, IndirectObject) else value


def _active_feature(obj: DictionaryObject) -> str | None:
    for key in dict.keys(obj):
        if key in _ACTIVE_KEYS:
            return _ACTIVE_KEYS[key]
    action = _resolved(dict.get(obj, "/S"))
    if isinstance(action, NameObject) and action in _ACTIVE_ACTIONS:
        return f"{action[1:]} action"
    if _resolved(dict.get(obj, "/Type")) == "/EmbeddedFile":
        return "embedded file"
    subtype = _resolved(dict.get(obj, "/Subtype"))
    if isinstance(subtype, NameObject) and subtype in _ACTIVE_SUBTYPES:
        return f"{subtype[1:]} annotation"
    for trigger in _AUTOMATIC_TRIGGERS:
        if trigger in obj:
            kind = _automatic_action(_resolved(dict.get(obj, trigger)), trigger)
            if kind is not None:
                return kind
    return None


def _automatic_action(value: Any, trigger: str) -> str | None:
    """An action run without a click (on opening, on page or field events) that does more
    than go to a place in the document itself."""
    if not isinstance(value, DictionaryObject):
        return None  # an /OpenAction destination array: just the page to show first
    actions: list[Any] = list(dict.values(value)) if trigger == "/AA" else [value]
    budget = _MAX_ACTION_CHAIN
    while actions:
        budget -= 1
        if budget < 0:
            return "automatic action chain"
        action = _resolved(actions.pop())
        if not isinstance(action, DictionaryObject):
            continue
        kind = _resolved(dict.get(action, "/S"))
        if kind != "/GoTo":
            return f"automatic {kind if isinstance(kind, str) else 'unknown'} action"
        following = _resolved(dict.get(action, "/Next"))
        if isinstance(following, ArrayObject):
            actions.extend(list.__iter__(following))
        elif following is not None:
            actions.append(following)
    return None


def pdfium_check_and_render(
    data: bytes, field: str, thumbnail_size: int
) -> tuple[str | None, Image.Image | None]:
    """Ask PDFium, the engine of Chromium's PDF viewer, what it sees: a second parser that
    must open the file and find no scripts or attachments either. Returns (feature, thumb)."""
    with _pdfium_lock:
        try:
            document = pypdfium2.PdfDocument(data)
        except Exception as exc:  # PdfiumError: the viewer could not open it either
            raise corrupt_pdf(field) from exc
        try:
            if pypdfium2.raw.FPDFDoc_GetJavaScriptActionCount(document.raw) > 0:
                return "JavaScript", None
            if document.count_attachments() > 0:
                return "embedded file", None
            if len(document) < 1:
                raise Invalid(N_("The PDF has no pages."), code="pdf_no_pages", field=field)
            return None, _render_first_page(document, thumbnail_size)
        finally:
            document.close()


def _render_first_page(document: Any, size: int) -> Image.Image | None:
    try:
        page = document[0]
        try:
            width, height = page.get_size()
            longest = max(float(width), float(height))
            if longest <= 0:
                return None
            scale = min(size / longest, 8.0)
            bitmap = page.render(scale=scale, fill_color=(255, 255, 255, 255))
            image: Image.Image = bitmap.to_pil()
        finally:
            page.close()
        image.thumbnail((size, size), Image.Resampling.LANCZOS)
        if image.mode not in ("L", "RGB"):
            image = image.convert("RGB")
        return image
    except Exception:  # the file opened; no thumbnail is no reason to refuse it
        log.warning("PDF first page could not be rendered", exc_info=True)
        return None

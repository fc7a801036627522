"""Vetting of uploaded clinical documents: the content decides, nothing is trusted.

Analogue capture (a phone photo or a scan of a paper record) and digital capture (a PDF
exported by another system) arrive as bytes with a declared Content-Type and a file name.
Neither is believed. :func:`vet` turns the bytes into a :class:`VettedFile` that is safe to
store and to show, or raises one of the kernel's typed errors:

- the type comes from the content's signature (:func:`sniff`) and is then confirmed by a
  real decoder: JPEG, PNG and HEIC through Pillow (pillow-heif), PDF through pypdf and
  PDFium. Anything else is a 415 naming the field;
- images are opened only by the plugin of the sniffed format, their pixel count is checked
  from the header before a single pixel is decoded (decompression bombs), they are decoded
  completely (truncated files are refused), turned upright from their EXIF orientation and
  re-encoded without metadata: no EXIF, no GPS position, no comments, no XMP. JPEG and HEIC
  become JPEG (quality 90), PNG stays PNG;
- PDFs are kept byte for byte (a signed or certified PDF stays verifiable), after checking
  that they parse, are complete, are not encrypted, have between 1 and ``max_pdf_pages``
  pages and carry no active content (JavaScript, launch, submit or import actions,
  automatic actions other than "go to a page", embedded files, rich media, XFA forms);
- a JPEG thumbnail (longest side ``thumbnail_size``) is made for every accepted file; for a
  PDF it is the first page rendered by PDFium (pypdfium2 ships it, no system library).

Structured documents (CDA, FHIR bundles, HL7 messages) are not uploads: they arrive through
the FHIR and HL7 interfaces with their own validation.
"""

from __future__ import annotations

import hashlib
import io
import logging
from dataclasses import dataclass
from typing import Any, Final

import pillow_heif
import puremagic
from PIL import Image, ImageOps
from pypdf import PdfReader

from xietong.core.errors import N_, Invalid, PayloadTooLarge, UnsupportedMediaType
from xietong.core.pdf_inspection import active_content, corrupt_pdf, pdfium_check_and_render

log = logging.getLogger("xietong.uploads")

JPEG: Final = "image/jpeg"
PNG: Final = "image/png"
HEIC: Final = "image/heic"
PDF: Final = "application/pdf"
ACCEPTED_MEDIA_TYPES: Final = (JPEG, PNG, HEIC, PDF)
"""What :func:`sniff` accepts. HEIC is converted to JPEG, so it is never stored."""

# Defaults of the XIETONG_UPLOAD_* settings (config.UploadSettings; a test keeps them equal).
DEFAULT_MAX_DOCUMENT_BYTES: Final = 32 * 1024 * 1024
DEFAULT_MAX_IMAGE_PIXELS: Final = 50_000_000
DEFAULT_MAX_PDF_PAGES: Final = 200
DEFAULT_THUMBNAIL_SIZE: Final = 320

PHOTO_QUALITY: Final = 90
THUMBNAIL_QUALITY: Final = 80
# zlib level 3: on an A4 300 dpi page, level 6 takes twice the time for a 30 % smaller text
# scan and three times the time for a larger photo; uploads are encoded in the request.
PNG_COMPRESS_LEVEL: Final = 3

_JPEG_MAGIC = b"\xff\xd8\xff"
_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
_PDF_MAGIC = b"%PDF-"
# ISO/IEC 23008-12 brands of HEVC-coded HEIF files (what phone cameras write). The generic
# brands mif1/msf1 count only together with one of these: AVIF shares them.
_HEIC_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx"})
_HEIF_GENERIC_BRANDS = frozenset({b"mif1", b"msf1"})
_PILLOW_FORMATS = {JPEG: ("JPEG", "MPO"), PNG: ("PNG",), HEIC: ("HEIF",)}

# HEIC through Pillow; no embedded thumbnails, depth maps or auxiliary images are decoded.
pillow_heif.register_heif_opener(thumbnails=False, depth_images=False, aux_images=False)


@dataclass(frozen=True)
class VettedFile:
    """An accepted upload, normalised; ``data`` is what to store."""

    media_type: str
    """Stored type: image/jpeg, image/png or application/pdf."""
    data: bytes
    sha256: str
    size: int
    original_media_type: str
    """Sniffed type of the upload (image/heic for a converted HEIC photo)."""
    original_sha256: str
    original_size: int
    width: int | None = None
    height: int | None = None
    page_count: int | None = None
    thumbnail: bytes | None = None
    thumbnail_media_type: str | None = None


def sniff(data: bytes, declared_type: str | None, field: str) -> str:
    """The media type of ``data`` from its leading bytes; the declared type only gets logged.

    Raises Invalid (``file_empty``) for no bytes and UnsupportedMediaType for content that is
    not one of :data:`ACCEPTED_MEDIA_TYPES`.
    """
    if not data:
        raise Invalid(N_("The file is empty."), code="file_empty", field=field)
    sniffed = _signature(data)
    declared = _normalise_declared(declared_type)
    if sniffed is None:
        detected = _describe(data)
        log.info("refused upload: declared %s, content %s", declared or "-", detected)
        raise UnsupportedMediaType(
            N_(
                "Only JPEG, PNG or HEIC photos and PDF documents can be uploaded; "
                "the content of this file is none of them."
            ),
            field=field,
            params={"declared": declared or "", "detected": detected},
        )
    if declared and declared != sniffed:
        log.info("upload declared %s but its content is %s; the content decides", declared, sniffed)
    return sniffed


def vet(
    data: bytes,
    *,
    declared_type: str | None = None,
    field: str = "file",
    max_bytes: int = DEFAULT_MAX_DOCUMENT_BYTES,
    max_image_pixels: int = DEFAULT_MAX_IMAGE_PIXELS,
    max_pdf_pages: int = DEFAULT_MAX_PDF_PAGES,
    thumbnail_size: int = DEFAULT_THUMBNAIL_SIZE,
) -> VettedFile:
    """Check, normalise and thumbnail one uploaded file (one photo, scan or PDF).

    Every refusal is a :class:`~xietong.core.errors.XietongError` naming ``field``:
    PayloadTooLarge ``file_too_large`` (413), UnsupportedMediaType (415), Invalid (422)
    ``file_empty``, ``image_too_large``, ``image_corrupt``, ``pdf_corrupt``, ``pdf_encrypted``,
    ``pdf_active_content``, ``pdf_no_pages``, ``pdf_too_many_pages``.
    """
    if len(data) > max_bytes:
        raise PayloadTooLarge(
            N_("The file is too large: at most {limit} are accepted."),
            code="file_too_large",
            field=field,
            params={"limit": _human_size(max_bytes), "max_bytes": max_bytes},
        )
    media_type = sniff(data, declared_type, field)
    if media_type == PDF:
        return _vet_pdf(data, field, max_pdf_pages, thumbnail_size)
    return _vet_image(data, media_type, field, max_image_pixels, thumbnail_size)


# --- type -------------------------------------------------------------------------------


def _signature(data: bytes) -> str | None:
    if data.startswith(_JPEG_MAGIC):
        return JPEG
    if data.startswith(_PNG_MAGIC):
        return PNG
    if data.startswith(_PDF_MAGIC):
        return PDF
    if _is_heic(data):
        return HEIC
    return None


def _is_heic(data: bytes) -> bool:
    """An ISO base media file whose first box is ``ftyp`` with an HEVC-image brand."""
    if len(data) < 16 or data[4:8] != b"ftyp":
        return False
    box_size = int.from_bytes(data[0:4], "big")
    end = min(max(box_size, 16), len(data), 1024)
    major = data[8:12]
    compatible = {data[i : i + 4] for i in range(16, end - 3, 4)}
    if major in _HEIC_BRANDS:
        return True
    return major in _HEIF_GENERIC_BRANDS and bool(compatible & _HEIC_BRANDS)


def _normalise_declared(declared_type: str | None) -> str | None:
    if not declared_type:
        return None
    value = declared_type.split(";", 1)[0].strip().lower()
    return value[:100] or None


def _describe(data: bytes) -> str:
    """puremagic's best guess at refused content, for the log and the error's params."""
    try:
        guess = puremagic.from_string(data[:65536], mime=True)
    except Exception:  # puremagic raises PureError or worse on odd input; a guess only
        return "unknown"
    return str(guess) or "unknown"


def _human_size(size: int) -> str:
    mib = 1024 * 1024
    if size >= mib:
        return f"{size / mib:.3g} MB"
    if size >= 1024:
        return f"{size / 1024:.3g} KB"
    return f"{size} B"


# --- images -----------------------------------------------------------------------------


def _too_large(field: str, max_pixels: int) -> Invalid:
    return Invalid(
        N_("The image is too large: at most {limit} megapixels are accepted."),
        code="image_too_large",
        field=field,
        params={"limit": f"{max_pixels / 1_000_000:g}", "max_pixels": max_pixels},
    )


def _corrupt_image(field: str) -> Invalid:
    return Invalid(
        N_("The image is damaged or incomplete; please take or export it again."),
        code="image_corrupt",
        field=field,
    )


def _open_image(data: bytes, media_type: str, field: str, max_pixels: int) -> Image.Image:
    """Open (header only) with the sniffed format's plugin alone and check the pixel count."""
    image = Image.open(io.BytesIO(data), formats=_PILLOW_FORMATS[media_type])
    width, height = image.size
    if width < 1 or height < 1:
        image.close()
        raise _corrupt_image(field)
    if width * height > max_pixels:
        image.close()
        raise _too_large(field, max_pixels)
    return image


def _vet_image(
    data: bytes, media_type: str, field: str, max_pixels: int, thumbnail_size: int
) -> VettedFile:
    try:
        with _open_image(data, media_type, field, max_pixels) as probe:
            probe.verify()  # PNG: chunk checksums; the full decode below catches the rest
        with _open_image(data, media_type, field, max_pixels) as image:
            image.load()  # a truncated or corrupt stream fails here, not in a viewer
            upright = ImageOps.exif_transpose(image)
            icc_profile = image.info.get("icc_profile")
            dpi = image.info.get("dpi")
            transparency = image.info.get("transparency")
    except (Invalid, UnsupportedMediaType):
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # Pillow's own limits (the warning is raised where warnings are errors)
        raise _too_large(field, max_pixels) from exc
    except Exception as exc:  # decoders raise OSError, SyntaxError, ValueError …
        raise _corrupt_image(field) from exc

    stored_type = PNG if media_type == PNG else JPEG
    try:
        clean = _strip(upright, stored_type)
        options: dict[str, Any] = {}
        if isinstance(icc_profile, bytes) and icc_profile:
            options["icc_profile"] = icc_profile  # colour, not identity: kept
        if _valid_dpi(dpi):
            options["dpi"] = dpi  # a scan prints at its real size
        if stored_type == PNG:
            if transparency is not None and clean.mode == image.mode:  # same palette/levels
                options["transparency"] = transparency
            normalised = _encode(clean, "PNG", compress_level=PNG_COMPRESS_LEVEL, **options)
        else:
            normalised = _encode(clean, "JPEG", quality=PHOTO_QUALITY, **options)
        thumbnail = _thumbnail(clean, thumbnail_size)
    except Exception as exc:  # an encoder refusing odd pixel data: treat as corrupt input
        raise _corrupt_image(field) from exc
    return VettedFile(
        media_type=stored_type,
        data=normalised,
        sha256=hashlib.sha256(normalised).hexdigest(),
        size=len(normalised),
        original_media_type=media_type,
        original_sha256=hashlib.sha256(data).hexdigest(),
        original_size=len(data),
        width=clean.width,
        height=clean.height,
        page_count=None,
        thumbnail=thumbnail,
        thumbnail_media_type=JPEG,
    )


def _valid_dpi(dpi: object) -> bool:
    return (
        isinstance(dpi, tuple)
        and len(dpi) == 2
        and all(isinstance(v, int | float) and 1 <= v <= 10_000 for v in dpi)
    )


def _strip(image: Image.Image, stored_type: str) -> Image.Image:
    """Pixels only, in a mode the target format stores; every metadata entry dropped."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        image = image.convert("I").point(lambda value: value * (1 / 257)).convert("L")
    elif image.mode == "F":
        image = image.convert("L")
    if stored_type == PNG:
        if image.mode == "PA":
            image = image.convert("RGBA")
        elif image.mode not in ("1", "L", "LA", "P", "RGB", "RGBA"):
            image = image.convert("RGB")
    elif image.mode in ("RGBA", "LA", "PA", "P"):
        image = _flatten(image)
    elif image.mode not in ("L", "RGB"):
        image = image.convert("RGB")
    image.info = {}
    return image


def _flatten(image: Image.Image) -> Image.Image:
    """Transparent areas on white, as they look on paper."""
    rgba = image.convert("RGBA")
    background = Image.new("RGB", rgba.size, (255, 255, 255))
    background.paste(rgba, mask=rgba.getchannel("A"))
    return background


def _encode(image: Image.Image, fmt: str, **options: Any) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def _thumbnail(image: Image.Image, size: int) -> bytes:
    thumb = image.copy()
    thumb.thumbnail((size, size), Image.Resampling.LANCZOS)
    if thumb.mode in ("RGBA", "LA", "PA", "P"):
        thumb = _flatten(thumb)
    elif thumb.mode not in ("L", "RGB"):
        thumb = thumb.convert("RGB")
    thumb.info = {}
    return _encode(thumb, "JPEG", quality=THUMBNAIL_QUALITY)


# --- PDF --------------------------------------------------------------------------------


def _vet_pdf(data: bytes, field: str, max_pages: int, thumbnail_size: int) -> VettedFile:
    if b"%%EOF" not in data[-1024:]:  # ISO 32000: the file ends with %%EOF; cut files do not
        raise corrupt_pdf(field)
    try:
        reader = PdfReader(io.BytesIO(data), strict=False)
        if reader.is_encrypted:
            raise Invalid(
                N_(
                    "The PDF is password-protected or encrypted; please upload an unprotected copy."
                ),
                code="pdf_encrypted",
                field=field,
            )
        page_count = len(reader.pages)
        if page_count < 1:
            raise Invalid(N_("The PDF has no pages."), code="pdf_no_pages", field=field)
        if page_count > max_pages:
            raise Invalid(
                N_("The PDF has {pages} pages; at most {limit} are accepted."),
                code="pdf_too_many_pages",
                field=field,
                params={"pages": page_count, "limit": max_pages},
            )
        feature = active_content(reader)
    except Invalid:
        raise
    except Exception as exc:  # pypdf raises PdfReadError, ValueError, KeyError, RecursionError …
        raise corrupt_pdf(field) from exc
    thumbnail: bytes | None = None
    if feature is None:
        feature, first_page = pdfium_check_and_render(data, field, thumbnail_size)
        if first_page is not None:
            thumbnail = _encode(first_page, "JPEG", quality=THUMBNAIL_QUALITY)
    if feature is not None:
        log.info("refused PDF with active content: %s", feature)
        raise Invalid(
            N_(
                "The PDF contains scripts, automatic actions or embedded files, which a medical "
                "record may not hold; please print it to a new PDF and upload that."
            ),
            code="pdf_active_content",
            field=field,
            params={"feature": feature},
        )
    digest = hashlib.sha256(data).hexdigest()
    return VettedFile(
        media_type=PDF,
        data=data,
        sha256=digest,
        size=len(data),
        original_media_type=PDF,
        original_sha256=digest,
        original_size=len(data),
        page_count=page_count,
        thumbnail=thumbnail,
        thumbnail_media_type=JPEG if thumbnail is not None else None,
    )

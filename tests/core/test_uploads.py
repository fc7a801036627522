"""Upload vetting on real files made here: photos, scans, PDFs, and what attackers send."""

from __future__ import annotations

import contextlib
import hashlib
import io
import random
import resource
import struct
import zipfile
import zlib

import pillow_heif
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image
from pypdf import PdfReader, PdfWriter
from pypdf.actions import JavaScript

from xietong.config import UploadSettings
from xietong.core import pdf_inspection, uploads
from xietong.core.errors import Invalid, PayloadTooLarge, UnsupportedMediaType, XietongError
from xietong.core.i18n import translate
from xietong.core.uploads import VettedFile, sniff, vet

ORIENTATION = 0x0112
GPS_IFD = 0x8825


# --- makers -----------------------------------------------------------------------------


def _photo(size: tuple[int, int] = (400, 200), mode: str = "RGB") -> Image.Image:
    """A photo-like image: gradients and noise, so its JPEG is not trivially short."""
    across = Image.linear_gradient("L").rotate(90).resize(size)
    down = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 64)
    bands = [across, down, noise] + ([Image.new("L", size, 128)] if mode == "RGBA" else [])
    return Image.merge(mode, bands)


def _phone_jpeg(orientation: int = 6) -> bytes:
    """What a phone writes for a portrait shot: landscape pixels, Orientation 6, GPS."""
    exif = Image.Exif()
    exif[ORIENTATION] = orientation
    exif[0x010F] = "PhoneMaker"  # Make
    gps = exif.get_ifd(GPS_IFD)
    gps[1] = "N"
    gps[2] = (34.0, 45.0, 30.0)
    gps[3] = "E"
    gps[4] = (113.0, 37.0, 12.0)
    buffer = io.BytesIO()
    _photo((400, 200)).save(buffer, "JPEG", exif=exif, comment=b"Zhang San, Zhengzhou")
    return buffer.getvalue()


def _png(image: Image.Image, **options: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, "PNG", **options)
    return buffer.getvalue()


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _bomb_png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG whose pixels are all black: huge when decoded, tiny on the wire."""
    row = b"\x00" * (1 + (width + 7) // 8)
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(row) for _ in range(height)]
    parts.append(compressor.flush())
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def _raw_pdf(objects: list[bytes], trailer_extra: bytes = b"") -> bytes:
    """A PDF written byte by byte (object 1 is the catalog), with a correct xref table."""
    out = bytearray(b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    for offset in offsets:
        out += b"%010d 00000 n \n" % offset
    out += b"trailer\n<< /Size %d /Root 1 0 R %s>>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        trailer_extra,
        xref,
    )
    return bytes(out)


def _stream(content: bytes, extra: bytes = b"") -> bytes:
    return b"<< /Length %d %s>>\nstream\n" % (len(content), extra) + content + b"\nendstream"


def _scan_pdf(pages: int = 3, catalog_extra: bytes = b"", page_extra: bytes = b"") -> bytes:
    """A multi-page A4 PDF with a drawn rectangle on each page, like a scanner's output."""
    kids = b" ".join(b"%d 0 R" % (3 + 2 * i) for i in range(pages))
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R " + catalog_extra + b">>",
        b"<< /Type /Pages /Kids [" + kids + b"] /Count %d >>" % pages,
    ]
    for i in range(pages):
        objects.append(
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] /Contents %d 0 R %s>>"
            % (4 + 2 * i, page_extra)
        )
        objects.append(_stream(b"0 0 0 rg 50 %d 495 40 re f" % (700 - 60 * i)))
    return _raw_pdf(objects)


def _pypdf_pdf(pages: int = 2) -> PdfWriter:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(595, 842)
    return writer


def _written(writer: PdfWriter) -> bytes:
    buffer = io.BytesIO()
    writer.write(buffer)
    return buffer.getvalue()


def _refusal(data: bytes, **kwargs: object) -> XietongError:
    with pytest.raises(XietongError) as caught:
        vet(data, field="page", **kwargs)  # type: ignore[arg-type]
    assert caught.value.field == "page"
    return caught.value


# --- photos and scans -------------------------------------------------------------------


def test_phone_photo_is_turned_upright_and_loses_exif_gps_and_comments() -> None:
    original = _phone_jpeg(orientation=6)
    assert Image.open(io.BytesIO(original)).getexif().get_ifd(GPS_IFD)  # the input has GPS

    result = vet(original, declared_type="image/jpeg", field="page")

    assert result.media_type == "image/jpeg"
    assert (result.width, result.height) == (200, 400)  # rotated: 400x200 → 200x400
    stored = Image.open(io.BytesIO(result.data))
    assert stored.format == "JPEG"
    assert stored.size == (200, 400)
    assert len(stored.getexif()) == 0
    assert "exif" not in stored.info
    assert "comment" not in stored.info
    assert b"Exif" not in result.data
    assert b"Zhang San" not in result.data
    assert b"PhoneMaker" not in result.data


def test_orientation_6_puts_the_top_left_corner_at_the_top_right() -> None:
    image = Image.new("RGB", (400, 200), "white")
    image.paste((255, 0, 0), (0, 0, 40, 40))  # a red mark in the stored top-left corner
    exif = Image.Exif()
    exif[ORIENTATION] = 6  # "rotate 90° clockwise to display"
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif, quality=95)

    stored = Image.open(io.BytesIO(vet(buffer.getvalue()).data)).convert("RGB")

    assert stored.size == (200, 400)
    top_right = stored.getpixel((stored.width - 10, 10))
    top_left = stored.getpixel((10, 10))
    assert isinstance(top_right, tuple)
    assert isinstance(top_left, tuple)
    assert top_right[0] > 200  # the red mark
    assert top_right[1] < 60
    assert min(top_left) > 200  # white


def test_result_carries_hashes_sizes_and_a_thumbnail() -> None:
    original = _phone_jpeg()
    result = vet(original)
    assert isinstance(result, VettedFile)
    assert result.original_sha256 == hashlib.sha256(original).hexdigest()
    assert result.original_size == len(original)
    assert result.original_media_type == "image/jpeg"
    assert result.sha256 == hashlib.sha256(result.data).hexdigest()
    assert result.size == len(result.data)
    assert result.page_count is None
    assert result.thumbnail is not None
    assert result.thumbnail_media_type == "image/jpeg"
    thumb = Image.open(io.BytesIO(result.thumbnail))
    assert thumb.format == "JPEG"
    assert thumb.size == (160, 320)  # longest side 320, upright like the image


def test_thumbnail_size_is_a_parameter_and_never_enlarges() -> None:
    large = vet(_png(_photo((1000, 500))), thumbnail_size=100)
    assert large.thumbnail is not None
    assert Image.open(io.BytesIO(large.thumbnail)).size == (100, 50)
    small = vet(_png(_photo((60, 30))), thumbnail_size=100)
    assert small.thumbnail is not None
    assert Image.open(io.BytesIO(small.thumbnail)).size == (60, 30)


def test_png_stays_png_without_text_or_exif_chunks() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "patient Li Si, 410105199001011234")
    exif = Image.Exif()
    exif[0x010F] = "ScannerMaker"
    original = _png(_photo((300, 120)), pnginfo=info, exif=exif)
    assert b"tEXt" in original
    assert b"eXIf" in original

    result = vet(original, declared_type="image/png")

    assert result.media_type == "image/png"
    assert (result.width, result.height) == (300, 120)
    assert result.data.startswith(b"\x89PNG")
    assert b"tEXt" not in result.data
    assert b"eXIf" not in result.data
    assert b"410105199001011234" not in result.data
    assert Image.open(io.BytesIO(result.data)).format == "PNG"


def test_transparent_png_keeps_its_alpha_and_its_thumbnail_is_flattened() -> None:
    result = vet(_png(_photo((80, 40), mode="RGBA")))
    assert Image.open(io.BytesIO(result.data)).mode == "RGBA"
    assert result.thumbnail is not None
    assert Image.open(io.BytesIO(result.thumbnail)).mode == "RGB"


def test_heic_photo_becomes_a_jpeg_without_metadata() -> None:
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"
    buffer = io.BytesIO()
    _photo((128, 64)).save(buffer, format="HEIF", quality=80, exif=exif.tobytes())
    original = buffer.getvalue()
    assert sniff(original, "application/octet-stream", "page") == "image/heic"

    result = vet(original, declared_type="image/heic")

    assert result.media_type == "image/jpeg"
    assert result.original_media_type == "image/heic"
    assert (result.width, result.height) == (128, 64)
    stored = Image.open(io.BytesIO(result.data))
    assert stored.format == "JPEG"
    assert len(stored.getexif()) == 0
    assert b"PhoneMaker" not in result.data


def test_heic_orientation_is_applied_once() -> None:
    image = Image.new("RGB", (128, 64), "white")
    image.paste((255, 0, 0), (0, 0, 16, 16))
    exif = Image.Exif()
    exif[ORIENTATION] = 6
    buffer = io.BytesIO()
    image.save(buffer, format="HEIF", quality=90, exif=exif.tobytes())

    result = vet(buffer.getvalue())

    assert (result.width, result.height) == (64, 128)
    stored = Image.open(io.BytesIO(result.data)).convert("RGB")
    top_right = stored.getpixel((stored.width - 5, 5))
    assert isinstance(top_right, tuple)
    assert top_right[0] > 200
    assert top_right[1] < 60


def test_multi_picture_jpeg_keeps_only_its_primary_image() -> None:
    # Phone cameras write MPO: a JPEG followed by further pictures (depth, previews).
    buffer = io.BytesIO()
    primary, hidden = Image.new("RGB", (100, 50), "blue"), Image.new("RGB", (100, 50), "green")
    primary.save(buffer, format="MPO", save_all=True, append_images=[hidden])
    assert getattr(Image.open(io.BytesIO(buffer.getvalue())), "n_frames", 1) == 2

    result = vet(buffer.getvalue())

    stored = Image.open(io.BytesIO(result.data))
    assert stored.format == "JPEG"
    assert getattr(stored, "n_frames", 1) == 1
    assert result.size < len(buffer.getvalue())


def test_cmyk_jpeg_is_stored_as_rgb() -> None:
    buffer = io.BytesIO()
    _photo((64, 64)).convert("CMYK").save(buffer, "JPEG")
    result = vet(buffer.getvalue())
    assert Image.open(io.BytesIO(result.data)).mode == "RGB"


def test_the_content_decides_not_the_declared_type() -> None:
    jpeg = _phone_jpeg()
    assert sniff(jpeg, "image/png", "page") == "image/jpeg"
    assert sniff(jpeg, None, "page") == "image/jpeg"
    assert vet(jpeg, declared_type="application/pdf").media_type == "image/jpeg"


# --- refusals: images -------------------------------------------------------------------


def test_decompression_bomb_is_refused_from_the_header_without_decoding() -> None:
    bomb = _bomb_png(30_000, 30_000)  # 900 Mpx: Pillow would allocate 900 MB for them
    assert len(bomb) < 1_000_000
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KiB on Linux

    error = _refusal(bomb, declared_type="image/png")

    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 100
    assert isinstance(error, Invalid)
    assert error.status == 422
    assert error.code == "image_too_large"


def test_image_over_the_pixel_setting_is_refused_before_pillow_would_warn() -> None:
    bomb = _bomb_png(8_000, 8_000)  # 64 Mpx: under Pillow's own limit, over our 50 Mpx
    error = _refusal(bomb)
    assert error.code == "image_too_large"
    assert error.params["max_pixels"] == uploads.DEFAULT_MAX_IMAGE_PIXELS
    small_limit = _refusal(_png(_photo((300, 200))), max_image_pixels=50_000)
    assert small_limit.code == "image_too_large"


def test_truncated_jpeg_is_corrupt() -> None:
    whole = _phone_jpeg()
    error = _refusal(whole[: len(whole) // 2])
    assert isinstance(error, Invalid)
    assert error.code == "image_corrupt"


def test_png_with_a_bad_checksum_is_corrupt() -> None:
    data = bytearray(_png(_photo((50, 50))))
    idat = data.index(b"IDAT")
    data[idat + 10] ^= 0xFF
    assert _refusal(bytes(data)).code == "image_corrupt"


def test_jpeg_magic_followed_by_garbage_is_corrupt_not_a_crash() -> None:
    error = _refusal(b"\xff\xd8\xff\xe0" + random.Random(3).randbytes(2000))
    assert error.code == "image_corrupt"


# --- PDFs -------------------------------------------------------------------------------


def test_multi_page_scan_pdf_is_kept_as_is_with_page_count_and_thumbnail() -> None:
    original = _scan_pdf(pages=3)
    result = vet(original, declared_type="application/pdf", field="page")
    assert result.media_type == "application/pdf"
    assert result.data == original
    assert result.sha256 == result.original_sha256 == hashlib.sha256(original).hexdigest()
    assert result.page_count == 3
    assert result.width is None
    assert result.height is None
    assert result.thumbnail is not None
    assert result.thumbnail_media_type == "image/jpeg"
    thumb = Image.open(io.BytesIO(result.thumbnail)).convert("L")
    assert max(thumb.size) == 320
    assert thumb.size[1] > thumb.size[0]  # A4 portrait
    assert thumb.getextrema()[0] < 50  # the black bar was rendered, not just a white page


def test_pdf_written_by_pypdf_is_accepted() -> None:
    data = _written(_pypdf_pdf(pages=4))
    result = vet(data)
    assert result.page_count == 4
    assert PdfReader(io.BytesIO(result.data)).get_num_pages() == 4


def test_benign_open_action_to_fit_the_first_page_is_accepted() -> None:
    # Word processors and scanners write this; it only chooses the first view.
    data = _scan_pdf(pages=1, catalog_extra=b"/OpenAction [3 0 R /Fit] ")
    assert vet(data).page_count == 1


def test_pdf_over_the_page_limit_is_refused() -> None:
    error = _refusal(_scan_pdf(pages=3), max_pdf_pages=2)
    assert error.code == "pdf_too_many_pages"
    assert error.params == {"pages": 3, "limit": 2}


def test_pdf_without_pages_is_refused() -> None:
    data = _raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] /Count 0 >>"])
    assert _refusal(data).code == "pdf_no_pages"


@pytest.mark.parametrize("user_password", ["secret", ""])
def test_encrypted_pdf_is_refused(user_password: str) -> None:
    writer = _pypdf_pdf()
    writer.encrypt(user_password=user_password, owner_password="owner")
    error = _refusal(_written(writer))
    assert isinstance(error, Invalid)
    assert error.code == "pdf_encrypted"


def test_pdf_with_document_javascript_is_refused() -> None:
    writer = _pypdf_pdf()
    writer.add_open_action(JavaScript("app.alert('hello');"))
    error = _refusal(_written(writer))
    assert error.code == "pdf_active_content"
    assert error.params["feature"] == "JavaScript"


@pytest.mark.parametrize(
    ("catalog_extra", "page_extra"),
    [
        (b"/OpenAction << /S /JavaScript /JS (app.alert(1)) >> ", b""),
        (b"/OpenAction << /S /J#61vaScript /J#53 (app.alert(1)) >> ", b""),  # escaped names
        (b"/OpenAction << /S /Launch /F (cmd.exe) >> ", b""),
        (b"/OpenAction << /S /URI /URI (http://example.invalid/) >> ", b""),
        (b"/OpenAction << /S /GoTo /D [3 0 R /Fit] /Next << /S /URI /URI (x) >> >> ", b""),
        (b"/AcroForm << /Fields [] /XFA 9 0 R >> ", b""),
        (b"", b"/AA << /O << /S /SubmitForm /F (http://example.invalid/) >> >> "),
        (b"", b"/Annots [<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A << /S /Launch >> >>] "),
        (b"", b"/Annots [<< /Type /Annot /Subtype /FileAttachment /Rect [0 0 9 9] >>] "),
    ],
)
def test_pdf_with_active_content_is_refused(catalog_extra: bytes, page_extra: bytes) -> None:
    error = _refusal(_scan_pdf(pages=1, catalog_extra=catalog_extra, page_extra=page_extra))
    assert isinstance(error, Invalid)
    assert error.code == "pdf_active_content"


def test_pdf_with_an_embedded_file_is_refused() -> None:
    writer = _pypdf_pdf()
    writer.add_attachment("payload.exe", b"MZ\x90\x00")
    error = _refusal(_written(writer))
    assert error.code == "pdf_active_content"
    assert error.params["feature"] == "embedded file"


def test_unreferenced_javascript_object_is_found_too() -> None:
    # Left behind by an incremental update or a repaired xref; a viewer may still find it.
    data = _scan_pdf(pages=1)
    orphan = _raw_pdf(
        [
            b"<< /Type /Catalog /Pages 2 0 R >>",
            b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] >>",
            b"<< /S /JavaScript /JS (app.alert(1)) >>",
        ]
    )
    assert vet(data).page_count == 1
    assert _refusal(orphan).code == "pdf_active_content"


def test_links_to_web_pages_are_not_active_content() -> None:
    link = b"/Annots [<< /Type /Annot /Subtype /Link /Rect [0 0 9 9] /A << /S /URI /URI (x) >> >>] "
    assert vet(_scan_pdf(pages=1, page_extra=link)).page_count == 1


def test_truncated_pdf_is_corrupt() -> None:
    whole = _scan_pdf(pages=3)
    error = _refusal(whole[: len(whole) * 2 // 3])
    assert isinstance(error, Invalid)
    assert error.code == "pdf_corrupt"


@pytest.mark.parametrize("end", ["before-xref", "inside-eof-marker"])
def test_pdf_cut_near_its_end_is_corrupt_though_a_reader_could_repair_it(end: str) -> None:
    whole = _scan_pdf(pages=2)
    # Every page is whole in both; pypdf alone would accept the second with a warning.
    cut = whole[: whole.index(b"xref")] if end == "before-xref" else whole[:-3]
    assert _refusal(cut).code == "pdf_corrupt"


def test_pdfium_finds_scripts_and_attachments_too() -> None:
    # The second opinion, from the engine that shows PDFs in Chromium.
    scripted = _pypdf_pdf()
    scripted.add_open_action(JavaScript("app.alert(1);"))
    attached = _pypdf_pdf()
    attached.add_attachment("a.txt", b"x")
    check = pdf_inspection.pdfium_check_and_render
    assert check(_written(scripted), "file", 320) == ("JavaScript", None)
    assert check(_written(attached), "file", 320) == ("embedded file", None)
    feature, thumbnail = check(_written(_pypdf_pdf()), "file", 320)
    assert feature is None
    assert thumbnail is not None


def test_pdf_header_followed_by_garbage_is_corrupt() -> None:
    data = b"%PDF-1.7\n" + random.Random(5).randbytes(3000) + b"\n%%EOF\n"
    assert _refusal(data).code == "pdf_corrupt"


def test_a_file_named_pdf_that_is_html_is_unsupported() -> None:
    page = b"<!DOCTYPE html><html><body><script>alert(1)</script></body></html>"
    error = _refusal(page, declared_type="application/pdf")
    assert isinstance(error, UnsupportedMediaType)
    assert error.status == 415


# --- refusals: not an accepted type -----------------------------------------------------


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("record.txt", "not a photo")
    return buffer.getvalue()


@pytest.mark.parametrize(
    ("data", "declared"),
    [
        (b"<!DOCTYPE html><html><body><img src=x onerror=alert(1)></body></html>", "image/jpeg"),
        (
            b'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg">'
            b"<script>alert(1)</script></svg>",
            "image/svg+xml",
        ),
        (_zip(), "application/zip"),
        (random.Random(11).randbytes(4096), "image/jpeg"),
        (b"GIF89a\x01\x00\x01\x00\x00\x00\x00;", "image/gif"),
        (b"BM" + b"\x00" * 60, "image/bmp"),
        (b'{"resourceType": "Bundle"}', "application/json"),
        (b"  %PDF-1.7\n%%EOF\n", "application/pdf"),  # the header must come first
        (b"\x00\x00\x00\x1cftypavif\x00\x00\x00\x00mif1avif" + b"\x00" * 32, "image/heic"),
    ],
    ids=["html-as-jpg", "svg", "zip", "random", "gif", "bmp", "json", "late-pdf-header", "avif"],
)
def test_other_content_is_unsupported_and_names_the_accepted_types(
    data: bytes, declared: str
) -> None:
    error = _refusal(data, declared_type=declared)
    assert isinstance(error, UnsupportedMediaType)
    assert error.status == 415
    assert error.code == "unsupported_media_type"
    for name in ("JPEG", "PNG", "HEIC", "PDF"):
        assert name in error.message
    assert error.params["declared"] == declared


def test_refused_content_is_described_for_the_log() -> None:
    html = b"<!DOCTYPE html><html><body>hello</body></html>"
    error = _refusal(html, declared_type="image/jpeg; charset=binary")
    assert error.params == {"declared": "image/jpeg", "detected": "text/html"}


def test_empty_file_is_invalid() -> None:
    error = _refusal(b"")
    assert isinstance(error, Invalid)
    assert error.code == "file_empty"
    with pytest.raises(Invalid):
        sniff(b"", "image/jpeg", "page")


def test_file_over_max_bytes_is_payload_too_large() -> None:
    data = _phone_jpeg()
    error = _refusal(data, max_bytes=len(data) - 1)
    assert isinstance(error, PayloadTooLarge)
    assert error.status == 413
    assert error.code == "file_too_large"
    assert error.params["max_bytes"] == len(data) - 1
    assert vet(data, max_bytes=len(data)).media_type == "image/jpeg"


# --- every path ends in a typed error ---------------------------------------------------

PREFIXES = [
    b"",
    b"\xff\xd8\xff",
    b"\xff\xd8\xff\xe0\x00\x10JFIF\x00",
    b"\x89PNG\r\n\x1a\n",
    b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR",
    b"%PDF-1.7\n",
    b"\x00\x00\x00\x18ftypheic",
]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(prefix=st.sampled_from(PREFIXES), body=st.binary(max_size=2048), eof=st.booleans())
def test_random_bytes_only_ever_raise_kernel_errors(prefix: bytes, body: bytes, eof: bool) -> None:
    data = prefix + body + (b"\n%%EOF\n" if eof else b"")
    outcome: VettedFile | XietongError
    try:
        outcome = vet(data, max_image_pixels=4_000_000)
    except XietongError as error:
        outcome = error
    if isinstance(outcome, XietongError):
        assert outcome.status in (413, 415, 422)
        assert outcome.field == "file"
    else:
        assert outcome.media_type in ("image/jpeg", "image/png", "application/pdf")


def test_truncations_of_valid_files_only_ever_raise_kernel_errors() -> None:
    for whole in (_phone_jpeg(), _png(_photo((60, 40))), _scan_pdf(pages=2)):
        for cut in range(1, len(whole), max(1, len(whole) // 60)):
            with contextlib.suppress(XietongError):  # anything else fails the test
                vet(whole[:cut])


# --- settings and messages --------------------------------------------------------------


def test_settings_defaults_are_the_kernel_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    section = UploadSettings()
    assert section.max_document_bytes == uploads.DEFAULT_MAX_DOCUMENT_BYTES
    assert section.max_image_pixels == uploads.DEFAULT_MAX_IMAGE_PIXELS
    assert section.max_pdf_pages == uploads.DEFAULT_MAX_PDF_PAGES
    assert section.thumbnail_size == uploads.DEFAULT_THUMBNAIL_SIZE
    monkeypatch.setenv("XIETONG_UPLOAD_MAX_PDF_PAGES", "12")
    assert UploadSettings().max_pdf_pages == 12


def test_every_refusal_message_has_a_chinese_translation() -> None:
    errors = [
        _refusal(b""),
        _refusal(b"x" * 20, max_bytes=10),
        _refusal(b"<html></html>"),
        _refusal(_bomb_png(8_000, 8_000)),
        _refusal(b"\xff\xd8\xff\xe0garbage"),
        _refusal(b"%PDF-1.7\ngarbage"),
        _refusal(_scan_pdf(pages=3), max_pdf_pages=1),
        _refusal(_raw_pdf([b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [] >>"])),
        _refusal(_scan_pdf(1, catalog_extra=b"/OpenAction << /S /Launch >> ")),
    ]
    writer = _pypdf_pdf()
    writer.encrypt("pw")
    errors.append(_refusal(_written(writer)))
    for error in errors:
        english = translate("en", error.message, **error.params)
        chinese = translate("zh_CN", error.message, **error.params)
        assert chinese != english, error.message
        assert "{" not in chinese
        assert "{" not in english


def test_heic_support_is_registered() -> None:
    assert pillow_heif.libheif_info()["decoders"]  # a decoder ships in the wheel

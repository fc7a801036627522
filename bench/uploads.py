"""Benchmark: vetting uploaded documents (core/uploads.vet) against the bare library work.

    .venv/bin/python bench/uploads.py [--rounds 5]

For a 12-megapixel phone photo (JPEG with EXIF orientation), a scanned A4 page (PNG) and a
10-page PDF, prints the median seconds of ``vet()`` and of a reference measured in the same
run: Pillow decoding, rotating and re-encoding the same image (what any upright, metadata-
free copy costs), and pypdf parsing the PDF plus PDFium rendering its first page. The ratio
is our overhead: type sniffing, pixel checks, verification, thumbnails, active-content scan.
"""

from __future__ import annotations

import argparse
import io
import statistics
import time
from collections.abc import Callable

import pypdfium2
from PIL import Image, ImageOps
from pypdf import PdfReader, PdfWriter

from xietong.core.uploads import vet


def phone_photo() -> bytes:
    image = Image.effect_noise((4000, 3000), 40).convert("RGB")  # camera-like noise
    exif = Image.Exif()
    exif[0x0112] = 6
    out = io.BytesIO()
    image.save(out, "JPEG", quality=92, exif=exif)
    return out.getvalue()


def scanned_page() -> bytes:
    image = Image.new("L", (2480, 3508), 255)  # A4 at 300 dpi
    for y in range(200, 3300, 60):
        image.paste(0, (200, y, 2200, y + 12))
    out = io.BytesIO()
    image.save(out, "PNG")
    return out.getvalue()


def pdf(pages: int = 10) -> bytes:
    writer = PdfWriter()
    for _ in range(pages):
        writer.add_blank_page(width=595, height=842)
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def reference_image(data: bytes) -> None:
    with Image.open(io.BytesIO(data)) as image:
        upright = ImageOps.exif_transpose(image)
        out = io.BytesIO()
        upright.save(out, "JPEG" if image.format == "JPEG" else "PNG", quality=90)


def reference_pdf(data: bytes) -> None:
    reader = PdfReader(io.BytesIO(data))
    _ = len(reader.pages)
    document = pypdfium2.PdfDocument(data)
    document[0].render(scale=0.5).to_pil()
    document.close()


def median_seconds(work: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        work()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    rounds = parser.parse_args().rounds
    cases = [
        ("12 Mpx phone photo (JPEG)", phone_photo(), reference_image),
        ("A4 scan at 300 dpi (PNG)", scanned_page(), reference_image),
        ("10-page PDF", pdf(), reference_pdf),
    ]
    print(f"{'file':28} {'size':>9} {'vet() s':>9} {'reference s':>12} {'ratio':>6}")
    for name, data, reference in cases:
        ours = median_seconds(lambda d=data: vet(d), rounds)  # type: ignore[misc]
        ref = median_seconds(lambda d=data, r=reference: r(d), rounds)  # type: ignore[misc]
        size = f"{len(data) / 1_048_576:.1f} MiB"
        print(f"{name:28} {size:>9} {ours:9.3f} {ref:12.3f} {ours / ref:6.2f}")


if __name__ == "__main__":
    main()

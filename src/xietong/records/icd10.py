"""ICD-10 codes: validation and the diagnosis picker's search, from the shipped lists.

The code list is WHO ICD-10 2019 (categories and subcategories); Chinese titles come from
GNU Health's translation where it has one (data/README.md, docs/records.md). Codes are
accepted with or without the dot and in any case (``e119`` → ``E11.9``); anything not in
the list is refused with ``icd10_unknown`` on the caller's field.
"""

from __future__ import annotations

import bisect
import csv
import gzip
import io
import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

from xietong.core.errors import N_, Invalid

WHO_FILE = "icd10_who2019.tsv.gz"
ZH_FILE = "icd10_zh_gnuhealth.tsv.gz"
MAX_RESULTS = 50
_CODE = re.compile(r"^[A-Z][0-9]{2}(\.[0-9]{1,2})?$")
_CODE_PREFIX = re.compile(r"^[A-Z]([0-9]{1,2}(\.?[0-9]{0,2})?)?$")
# Chapters a title search ranks last: external causes (V–Y), factors influencing health
# status (Z) and codes for special purposes (U) are rarely what a clinician looks for.
_SECONDARY_CHAPTERS = dict.fromkeys("UVWXYZ", 1)


@dataclass(frozen=True)
class Icd10Code:
    code: str  # with the dot: "E11.9"
    name_en: str
    name_zh: str  # "" where the shipped Chinese list has no title
    leaf: bool
    zh_source_differs: bool = False

    def name(self, locale: str = "zh_CN") -> str:
        """The title in the given locale, English when no Chinese title is shipped."""
        if locale.startswith("zh") and self.name_zh:
            return self.name_zh
        return self.name_en

    @property
    def recorded_name(self) -> str:
        """The title a diagnosis records when the user gives none: Chinese first."""
        return self.name_zh or self.name_en


@dataclass(frozen=True)
class Icd10Catalogue:
    codes: tuple[Icd10Code, ...]  # sorted by code
    by_code: dict[str, Icd10Code]
    keys: tuple[str, ...]  # the codes without dots, in the same order

    def get(self, code: str) -> Icd10Code | None:
        normal = normalise(code)
        return self.by_code.get(normal) if normal else None


def _read(name: str) -> list[dict[str, str]]:
    path = resources.files("xietong.records").joinpath("data", name)
    if not path.is_file():
        return []
    text = gzip.decompress(path.read_bytes()).decode("utf-8")
    return list(csv.DictReader(io.StringIO(text), delimiter="\t"))


@cache
def catalogue() -> Icd10Catalogue:
    zh = {row["code"]: row for row in _read(ZH_FILE)}
    codes: list[Icd10Code] = []
    for row in _read(WHO_FILE):
        chinese = zh.get(row["code"])
        codes.append(
            Icd10Code(
                code=row["code"],
                name_en=row["name_en"],
                name_zh=chinese["name_zh"] if chinese else "",
                leaf=row["leaf"] == "1",
                zh_source_differs=bool(chinese and chinese["source_differs"] == "1"),
            )
        )
    codes.sort(key=lambda c: c.code.replace(".", ""))
    return Icd10Catalogue(
        codes=tuple(codes),
        by_code={c.code: c for c in codes},
        keys=tuple(c.code.replace(".", "") for c in codes),
    )


def normalise(code: str) -> str | None:
    """``e119`` / ``E11.9`` / `` E11.9 `` → ``E11.9``; None when it cannot be a code."""
    text = code.strip().upper().replace(" ", "")
    if len(text) > 3 and "." not in text:
        text = f"{text[:3]}.{text[3:]}"
    return text if _CODE.match(text) else None


def lookup(code: str, *, field: str = "code") -> Icd10Code:
    """The code's entry; 422 ``icd10_unknown`` on ``field`` when the list has no such code."""
    found = catalogue().get(code)
    if found is None:
        raise Invalid(
            N_("This is not an ICD-10 code of the shipped list."),
            code="icd10_unknown",
            field=field,
        )
    return found


def search(query: str, *, limit: int = 20) -> list[Icd10Code]:
    """Codes starting with ``query`` (dot optional), or else titles containing it (Chinese
    or English, case-insensitive): the shortest titles first (the most general), those of
    the external-cause, health-factor and special chapters last."""
    text = query.strip()
    limit = max(1, min(limit, MAX_RESULTS))
    cat = catalogue()
    compact = text.upper().replace(".", "").replace(" ", "")
    if compact and _CODE_PREFIX.match(text.upper().replace(" ", "")):
        start = bisect.bisect_left(cat.keys, compact)
        found: list[Icd10Code] = []
        for index in range(start, len(cat.keys)):
            if not cat.keys[index].startswith(compact) or len(found) >= limit:
                break
            found.append(cat.codes[index])
        if found:
            return found
    needle = text.casefold()
    if not needle:
        return []
    ranked: list[tuple[int, int, int, str, Icd10Code]] = []
    for entry in cat.codes:
        best: tuple[int, int] | None = None
        for title in (entry.name_zh, entry.name_en):
            position = title.casefold().find(needle) if title else -1
            if position >= 0:
                candidate = (len(title), position)
                best = candidate if best is None else min(best, candidate)
        if best is not None:
            ranked.append((_SECONDARY_CHAPTERS.get(entry.code[0], 0), *best, entry.code, entry))
    ranked.sort(key=lambda item: item[:4])
    return [item[4] for item in ranked[:limit]]

"""Translations from Babel catalogs: zh-CN by default, English on request.

The ``.po`` catalogs are compiled in memory at start-up (no build step, no binary files in
the repository). Message ids are English; ``zh_CN`` translates them.
"""

from __future__ import annotations

import gettext
import io
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po
from babel.support import Translations

SUPPORTED_LOCALES: tuple[str, ...] = ("zh_CN", "en")
LOCALE_LABELS = {"zh_CN": "中文", "en": "English"}
LOCALE_DIR = Path(__file__).resolve().parent.parent / "locale"


@lru_cache(maxsize=8)
def translations(locale: str) -> gettext.NullTranslations:
    po_path = LOCALE_DIR / locale / "LC_MESSAGES" / "messages.po"
    if locale not in SUPPORTED_LOCALES or not po_path.exists():
        return gettext.NullTranslations()
    with po_path.open("rb") as handle:
        catalog = read_po(handle, locale=locale)
    buffer = io.BytesIO()
    write_mo(buffer, catalog)
    buffer.seek(0)
    return Translations(buffer)


def normalise_locale(value: str | None) -> str | None:
    if not value:
        return None
    tag = value.strip().replace("-", "_").lower()
    if tag.startswith("zh"):
        return "zh_CN"
    if tag.startswith("en"):
        return "en"
    return None


def negotiate(accept_language: str | None, default: str) -> str:
    """Pick a supported locale from an Accept-Language header, by its q-values."""
    if not accept_language:
        return default
    ranked: list[tuple[float, int, str]] = []
    for index, part in enumerate(accept_language.split(",")[:20]):
        tag, _, params = part.strip().partition(";")
        quality = 1.0
        if params.strip().startswith("q="):
            try:
                quality = float(params.strip()[2:])
            except ValueError:
                quality = 0.0
        locale = normalise_locale(tag)
        if locale and quality > 0:
            ranked.append((-quality, index, locale))
    return sorted(ranked)[0][2] if ranked else default


def gettext_for(locale: str) -> gettext.NullTranslations:
    return translations(locale)


def translate(locale: str, message: str, **params: object) -> str:
    text = translations(locale).gettext(message)
    return text.format(**params) if params else text


def available(locales: Iterable[str] = SUPPORTED_LOCALES) -> list[tuple[str, str]]:
    return [(code, LOCALE_LABELS[code]) for code in locales]

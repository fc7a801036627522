"""Masking of personal identifiers for lists, exports and logs.

Resident ID 410102199001011234 → 4101**********1234; phone 13812345678 → 138****5678.
Anything too short to mask meaningfully is masked entirely.
"""

from __future__ import annotations


def mask_resident_id(value: str | None) -> str:
    if not value:
        return ""
    text = value.strip()
    if len(text) < 9:
        return "*" * len(text)
    return text[:4] + "*" * (len(text) - 8) + text[-4:]


def mask_phone(value: str | None) -> str:
    if not value:
        return ""
    text = value.strip().replace(" ", "").replace("-", "")
    if len(text) < 8:
        return "*" * len(text)
    return text[:3] + "*" * (len(text) - 7) + text[-4:]


def mask_name(value: str | None) -> str:
    """张三丰 → 张**; used where a list must not show a full patient name."""
    if not value:
        return ""
    return value[0] + "*" * (len(value) - 1)

"""Professional titles of practitioners (卫生专业技术职称): doctors, technicians, nurses.

``rank`` orders titles within a track (4 = senior/正高, 3 = associate senior/副高,
2 = intermediate/中级, 1 = junior/初级); expert-library members normally hold rank 3 or 4.
"""

from __future__ import annotations

from dataclasses import dataclass

from xietong.core.errors import N_, Invalid


@dataclass(frozen=True)
class Title:
    code: str
    name_zh: str
    name_en: str
    track: str  # physician | technician | nurse
    rank: int

    def label(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


TITLES: tuple[Title, ...] = (
    Title("chief_physician", "主任医师", "Chief physician", "physician", 4),
    Title("associate_chief_physician", "副主任医师", "Associate chief physician", "physician", 3),
    Title("attending_physician", "主治医师", "Attending physician", "physician", 2),
    Title("resident_physician", "住院医师", "Resident physician", "physician", 1),
    Title("physician", "医师", "Physician", "physician", 1),
    Title("village_doctor", "乡村医生", "Village doctor", "physician", 1),
    Title("chief_technologist", "主任技师", "Chief technologist", "technician", 4),
    Title(
        "associate_chief_technologist",
        "副主任技师",
        "Associate chief technologist",
        "technician",
        3,
    ),
    Title("supervising_technologist", "主管技师", "Supervising technologist", "technician", 2),
    Title("technologist", "技师", "Technologist", "technician", 1),
    Title("chief_nurse", "主任护师", "Chief nurse", "nurse", 4),
    Title("associate_chief_nurse", "副主任护师", "Associate chief nurse", "nurse", 3),
    Title("supervising_nurse", "主管护师", "Supervising nurse", "nurse", 2),
    Title("nurse", "护师", "Nurse", "nurse", 1),
)

BY_CODE: dict[str, Title] = {t.code: t for t in TITLES}
SENIOR_TITLES = frozenset(t.code for t in TITLES if t.rank >= 3)


def title_label(code: str, locale: str) -> str:
    found = BY_CODE.get(code)
    return found.label(locale) if found else code


def validate_title(code: str, field: str = "title") -> str:
    if code not in BY_CODE:
        raise Invalid(
            N_("This title is not in the list of titles."), code="unknown_title", field=field
        )
    return code

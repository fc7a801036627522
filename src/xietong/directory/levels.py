"""Institution levels (机构层级) and hospital grades (医院等级).

Collaboration is tiered: an institution may send work only to a strictly higher level
(provincial > city > county > township > village).
"""

from __future__ import annotations

from dataclasses import dataclass

from xietong.core.errors import N_, Invalid


@dataclass(frozen=True)
class Level:
    code: str
    rank: int  # higher is higher up the tiers
    region_depth: int  # the shallowest region level such an institution may sit in
    name_zh: str
    name_en: str

    def label(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


LEVELS: tuple[Level, ...] = (
    Level("provincial", 5, 0, "省级医院", "Provincial hospital"),
    Level("city", 4, 1, "市级医院", "City hospital"),
    Level("county", 3, 2, "县级医院", "County hospital"),
    Level("township", 2, 3, "乡镇卫生院/社区卫生服务中心", "Township health centre"),
    Level("village", 1, 4, "村卫生室/社区卫生服务站", "Village clinic"),
)
LEVEL_BY_CODE: dict[str, Level] = {lv.code: lv for lv in LEVELS}
LEVEL_CODES: tuple[str, ...] = tuple(lv.code for lv in LEVELS)


@dataclass(frozen=True)
class Grade:
    code: str
    name_zh: str
    name_en: str

    def label(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


GRADES: tuple[Grade, ...] = (
    Grade("3A", "三级甲等", "Tertiary, class A"),
    Grade("3B", "三级乙等", "Tertiary, class B"),
    Grade("2A", "二级甲等", "Secondary, class A"),
    Grade("2B", "二级乙等", "Secondary, class B"),
    Grade("1A", "一级甲等", "Primary, class A"),
    Grade("1", "一级", "Primary"),
    Grade("ungraded", "未定级", "Not graded"),
)
GRADE_BY_CODE: dict[str, Grade] = {g.code: g for g in GRADES}


def level_rank(code: str) -> int:
    return LEVEL_BY_CODE[code].rank


def level_label(code: str, locale: str) -> str:
    found = LEVEL_BY_CODE.get(code)
    return found.label(locale) if found else code


def grade_label(code: str | None, locale: str) -> str:
    if code is None:
        return ""
    found = GRADE_BY_CODE.get(code)
    return found.label(locale) if found else code


def validate_level(code: str, field: str = "level") -> str:
    if code not in LEVEL_BY_CODE:
        raise Invalid(
            N_("This value is not one of the allowed choices."), code="unknown_level", field=field
        )
    return code


def validate_grade(code: str | None, field: str = "grade") -> str | None:
    if code is not None and code not in GRADE_BY_CODE:
        raise Invalid(
            N_("This value is not one of the allowed choices."), code="unknown_grade", field=field
        )
    return code


def is_upward_level(applicant_level: str, centre_level: str) -> bool:
    """True when the centre sits strictly higher in the tiers than the applicant."""
    return level_rank(centre_level) > level_rank(applicant_level)

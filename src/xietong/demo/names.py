"""Made-up people with plausible Chinese names, and names of primary-care institutions."""

from __future__ import annotations

import random

# Common surnames, roughly by frequency in Henan (weights are relative).
SURNAMES = (
    ("王", 95),
    ("李", 90),
    ("张", 88),
    ("刘", 70),
    ("陈", 45),
    ("杨", 42),
    ("赵", 35),
    ("黄", 22),
    ("周", 25),
    ("吴", 20),
    ("郭", 24),
    ("孙", 20),
    ("马", 20),
    ("胡", 15),
    ("朱", 16),
    ("高", 18),
    ("徐", 14),
    ("宋", 15),
    ("何", 10),
    ("郑", 12),
    ("韩", 11),
    ("冯", 10),
    ("曹", 9),
    ("许", 9),
    ("邓", 6),
    ("彭", 5),
    ("曾", 4),
    ("田", 8),
    ("董", 8),
    ("袁", 7),
    ("潘", 4),
    ("于", 7),
    ("蒋", 5),
    ("蔡", 5),
    ("余", 5),
    ("杜", 7),
    ("叶", 4),
    ("程", 7),
    ("苏", 6),
    ("魏", 8),
    ("吕", 6),
    ("丁", 6),
    ("任", 6),
    ("沈", 4),
    ("姚", 5),
    ("卢", 5),
    ("姜", 5),
    ("崔", 6),
    ("谭", 3),
    ("范", 6),
    ("石", 5),
    ("贾", 6),
    ("白", 5),
    ("孟", 6),
    ("秦", 5),
    ("薛", 4),
    ("闫", 6),
    ("段", 4),
    ("侯", 5),
    ("史", 5),
    ("牛", 5),
    ("申", 4),
    ("常", 5),
    ("岳", 4),
    ("付", 5),
    ("耿", 3),
    ("翟", 3),
    ("尚", 3),
    ("司马", 1),
)
MALE_CHARS = "伟强军磊洋勇杰涛明超亮刚斌浩鹏辉建国志华文博宇峰新东海波卫民晓龙俊飞彬凯"
FEMALE_CHARS = "芳娜敏静丽艳秀英霞玲燕红梅婷雪慧琳颖倩丹萍洁佳欣悦晓璐瑶蕾晶"
SHARED_CHARS = "子一春晨宏立永玉金云振庆安嘉思雨"

_surnames = [s for s, _ in SURNAMES]
_weights = [w for _, w in SURNAMES]


def person_name(rng: random.Random, sex: str) -> str:
    """A surname and one or two given-name characters (sex "1" male, "2" female)."""
    surname = rng.choices(_surnames, weights=_weights)[0]
    pool = (MALE_CHARS if sex == "1" else FEMALE_CHARS) + SHARED_CHARS
    size = 1 if rng.random() < 0.3 else 2
    return surname + "".join(rng.choice(pool) for _ in range(size))


VILLAGE_SUFFIXES = ("村民委员会", "村委会")
COMMUNITY_SUFFIXES = ("社区居民委员会", "社区居委会", "居民委员会", "居委会", "社区")


def is_village_committee(code: str) -> bool:
    """村民委员会: statistical codes 2xx/3xx (1xx are residents' committees)."""
    return len(code) == 12 and code[9] in "23"


def township_short(township_name: str, county_name: str) -> str:
    """ "新安县石寺镇" → "石寺镇"; "济源市沁园街道" → "沁园街道"."""
    return township_name.removeprefix(county_name)


def township_centre_name(township_name: str, county_name: str) -> str:
    short = township_short(township_name, county_name)
    kind = "社区卫生服务中心" if short.endswith("街道") else "卫生院"
    return f"{county_name}{short}{kind}"


def village_clinic_name(village_name: str, township_name: str, village_code: str) -> str:
    """ "磨五村村民委员会" → "石寺镇磨五村卫生室"; residents' committees get a 社区卫生服务站."""
    base = village_name
    if township_name and township_name in base:  # "河南省…陶湾镇常湾村村民委员会"
        base = base.split(township_name, 1)[1]
    if is_village_committee(village_code):
        for suffix in VILLAGE_SUFFIXES:
            base = base.removesuffix(suffix)
        base = base if base.endswith("村") else base + "村"
        return f"{township_name}{base}卫生室"
    for suffix in COMMUNITY_SUFFIXES:
        if base.endswith(suffix):
            base = base.removesuffix(suffix)
            break
    return f"{township_name}{base}社区卫生服务站"

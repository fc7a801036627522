"""Which institutions the demo network has, where they stand and whom they send work to.

``demo`` is the first-phase network (6 provincial, 18 city, 18 county hospitals, three
townships per county and two or three villages per township); ``province`` is every county,
township and village committee of the shipped region data. Codes are stable, so a second
run recognises what the first one made.
"""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.demo.catalogue import (
    CITY_HOSPITALS,
    CITY_SPECIALTIES,
    COUNTY_SPECIALTIES,
    JIYUAN,
    JIYUAN_COUNTY_HOSPITAL,
    PROVINCIAL,
    TOWNSHIP_DEPARTMENTS,
)
from xietong.demo.names import (
    is_village_committee,
    township_centre_name,
    township_short,
    village_clinic_name,
)
from xietong.directory.models import Region
from xietong.directory.specialties import BY_CODE as SPECIALTY_BY_CODE


@dataclass
class Spec:
    code: str
    name: str
    level: str
    region_code: str
    grade: str | None = None
    name_en: str = ""
    centres: tuple[str, ...] = ()  # codes of its upward service centres
    departments: tuple[tuple[str, str | None], ...] = ()  # (name, specialty)


@dataclass(frozen=True)
class RegionRow:
    code: str
    name: str
    level: str
    parent_code: str | None


@dataclass
class RegionIndex:
    by_code: dict[str, RegionRow] = field(default_factory=dict)
    children: dict[str, list[RegionRow]] = field(default_factory=lambda: defaultdict(list))

    @classmethod
    def load(cls, session: Session) -> RegionIndex:
        index = cls()
        rows = session.execute(
            select(Region.code, Region.name, Region.level, Region.parent_code).order_by(Region.code)
        )
        for code, name, level, parent in rows:
            row = RegionRow(code, name, level, parent)
            index.by_code[code] = row
            if parent:
                index.children[parent].append(row)
        return index

    def kids(self, code: str) -> list[RegionRow]:
        return self.children.get(code, [])


def departments_for(specialties: Iterable[str]) -> tuple[tuple[str, str | None], ...]:
    return tuple((SPECIALTY_BY_CODE[s].name_zh, s) for s in specialties)


PROVINCIAL_CODES = tuple(h.code for h in PROVINCIAL)


def plan_network(index: RegionIndex, scale: str, rng: random.Random) -> list[Spec]:
    """Every institution of the network, higher levels first."""
    specs = [
        Spec(
            code=h.code,
            name=h.name,
            level="provincial",
            region_code=h.region_code,
            grade=h.grade,
            name_en=h.name_en,
            departments=departments_for(h.specialties),
        )
        for h in PROVINCIAL
    ]
    for city in index.kids("410000"):
        specs.extend(_plan_city(index, city, scale, rng))
    order = {"provincial": 0, "city": 1, "county": 2, "township": 3, "village": 4}
    return sorted(specs, key=lambda s: order[s.level])


def _plan_city(index: RegionIndex, city: RegionRow, scale: str, rng: random.Random) -> list[Spec]:
    districts = index.kids(city.code) if city.code != JIYUAN else []
    seat = next((d for d in districts if d.name.endswith("区")), None)
    city_spec = Spec(
        code=f"HN-C{city.code}",
        name=CITY_HOSPITALS[city.code],
        level="city",
        region_code=seat.code if seat else city.code,
        grade="3A",
        centres=PROVINCIAL_CODES,
        departments=departments_for(CITY_SPECIALTIES),
    )
    specs = [city_spec]
    if city.code == JIYUAN:
        name, region_code = JIYUAN_COUNTY_HOSPITAL
        counties = [(RegionRow(region_code, city.name, "county", city.code), name, city)]
    else:
        chosen = districts if scale == "province" else [_demo_county(districts)]
        counties = [(c, f"{c.name}人民医院", c) for c in chosen]
    for county, hospital_name, township_parent in counties:
        county_spec = Spec(
            code=f"HN-X{county.code if city.code != JIYUAN else city.code}",
            name=hospital_name,
            level="county",
            region_code=county.code,
            grade=rng.choices(("3B", "2A", "2B"), weights=(2, 7, 1))[0],
            centres=(city_spec.code, *PROVINCIAL_CODES),
            departments=departments_for(COUNTY_SPECIALTIES),
        )
        specs.append(county_spec)
        specs.extend(_plan_townships(index, township_parent, county_spec, scale, rng))
    return specs


def _demo_county(districts: list[RegionRow]) -> RegionRow:
    """A county (县) of the city for the first phase; a county-level city otherwise."""
    for suffix in ("县", "市"):
        for d in districts:
            if d.name.endswith(suffix):
                return d
    return districts[0]


def _demo_townships(townships: list[RegionRow]) -> list[RegionRow]:
    """One sub-district (街道) if there is one, then towns and townships (镇/乡): three."""
    streets = [t for t in townships if t.name.endswith("街道")][:1]
    towns = [t for t in townships if not t.name.endswith("街道")]
    return (streets + towns)[:3]


def _plan_townships(
    index: RegionIndex, parent: RegionRow, county: Spec, scale: str, rng: random.Random
) -> list[Spec]:
    townships = index.kids(parent.code)
    chosen = townships if scale == "province" else _demo_townships(townships)
    specs: list[Spec] = []
    for township in chosen:
        centre = Spec(
            code=f"HN-T{township.code}",
            name=township_centre_name(township.name, parent.name),
            level="township",
            region_code=township.code,
            grade=rng.choices(("1A", "1", "ungraded"), weights=(3, 5, 2))[0],
            centres=(county.code,),
            departments=TOWNSHIP_DEPARTMENTS,
        )
        specs.append(centre)
        short = township_short(township.name, parent.name)
        for village in _villages(index.kids(township.code), scale, rng):
            specs.append(
                Spec(
                    code=f"HN-V{village.code}",
                    name=village_clinic_name(village.name, short, village.code),
                    level="village",
                    region_code=village.code,
                    centres=(centre.code, county.code),
                )
            )
    return specs


def _villages(villages: list[RegionRow], scale: str, rng: random.Random) -> list[RegionRow]:
    committees = [v for v in villages if is_village_committee(v.code)]
    if scale == "province":
        return committees
    want = rng.choice((2, 3))
    others = [v for v in villages if not is_village_committee(v.code)]
    return (committees + others)[:want]

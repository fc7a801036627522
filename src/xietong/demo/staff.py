"""Practitioners of the demo network: titles fit the level, specialties fit the department,
and senior doctors of provincial and city hospitals join the expert library with a profile
and weekly hours. Deterministic for a given seed."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xietong.core.clock import now
from xietong.demo.bulk import Progress, insert_plain, insert_returning_ids
from xietong.demo.catalogue import EXPERTISE, TECH_SPECIALTIES, TECH_TITLE, TITLE_MIX
from xietong.demo.names import person_name
from xietong.demo.plan import Spec
from xietong.directory.models import (
    ExpertAvailability,
    ExpertProfile,
    Practitioner,
    PractitionerSpecialty,
)
from xietong.directory.specialties import BY_CODE as SPECIALTY_BY_CODE
from xietong.directory.titles import BY_CODE as TITLE_BY_CODE

PROVINCE_PRACTITIONERS = 200_000
DEMO_PER_LEVEL = {"provincial": 10, "city": 4, "county": 3, "township": 1}
PROVINCE_PER_LEVEL = {"provincial": 1500, "city": 800, "township": 20}
EXPERT_LEVELS = frozenset({"provincial", "city"})
EXPERT_TITLES = frozenset({"chief_physician", "associate_chief_physician"})
HALF_DAYS = ((time(8, 0), time(12, 0)), (time(14, 30), time(17, 30)))

Departments = dict[int, list[tuple[int, str | None]]]


@dataclass
class StaffReport:
    practitioners: int = 0
    specialties: int = 0
    experts: int = 0
    windows: int = 0
    expert_ids: list[int] = field(default_factory=list)


def staff_counts(
    session: Session, new: Sequence[Spec], scale: str, rng: random.Random
) -> dict[str, int]:
    """How many practitioners each new institution gets."""
    counts: dict[str, int] = {}
    if scale != "province":
        seen_townships: set[str] = set()
        for s in new:
            if s.level == "village":
                township = s.centres[0]
                counts[s.code] = 0 if township in seen_townships else 1
                seen_townships.add(township)
            else:
                counts[s.code] = DEMO_PER_LEVEL[s.level]
        return counts
    for s in new:
        if s.level == "village":
            counts[s.code] = 1 + (rng.random() < 0.2)
        elif s.level != "county":
            counts[s.code] = PROVINCE_PER_LEVEL[s.level]
    existing = session.execute(select(func.count()).select_from(Practitioner)).scalar_one()
    counties = [s.code for s in new if s.level == "county"]
    remainder = max(PROVINCE_PRACTITIONERS - existing - sum(counts.values()), 0)
    for index, code in enumerate(counties):
        counts[code] = remainder // len(counties) + (index < remainder % len(counties))
    return counts


def _title(rng: random.Random, level: str, specialty: str | None) -> str:
    codes, weights = zip(*TITLE_MIX[level], strict=True)
    title: str = rng.choices(codes, weights=weights)[0]
    if specialty in TECH_SPECIALTIES and rng.random() < 0.5:
        return TECH_TITLE.get(title, title)
    return title


def _person(
    rng: random.Random, spec: Spec, institution_id: int, departments: list[tuple[int, str | None]]
) -> tuple[dict[str, Any], list[str]]:
    dept_id, specialty = rng.choice(departments) if departments else (None, None)
    title = _title(rng, spec.level, specialty)
    sex = rng.choice("12")
    specialties = [specialty or "general_practice"]
    others = [s for _, s in departments if s and s not in specialties]
    if others and rng.random() < 0.15:
        specialties.append(rng.choice(others))
    is_expert = spec.level in EXPERT_LEVELS and title in EXPERT_TITLES
    row = {
        "institution_id": institution_id,
        "department_id": dept_id,
        "name": person_name(rng, sex),
        "sex": sex,
        "title": title,
        "is_expert": is_expert,
        "is_active": True,
        "created_at": now(),
    }
    return row, specialties


def insert_staff(
    session: Session,
    new: Sequence[Spec],
    ids: dict[str, int],
    departments: Departments,
    counts: dict[str, int],
    rng: random.Random,
    progress: Progress,
) -> StaffReport:
    rows: list[dict[str, Any]] = []
    specialties: list[list[str]] = []
    for spec in new:
        institution_id = ids[spec.code]
        for _ in range(counts.get(spec.code, 0)):
            row, codes = _person(rng, spec, institution_id, departments.get(institution_id, []))
            rows.append(row)
            specialties.append(codes)
    progress.start("practitioners", len(rows))
    new_ids = insert_returning_ids(session, Practitioner, rows, progress)
    specialty_rows = [
        {"practitioner_id": pid, "specialty": code}
        for pid, codes in zip(new_ids, specialties, strict=True)
        for code in codes
    ]
    progress.start("specialties", len(specialty_rows))
    insert_plain(session, PractitionerSpecialty, specialty_rows, progress)
    report = StaffReport(practitioners=len(rows), specialties=len(specialty_rows))
    experts = [
        (pid, row, codes)
        for pid, row, codes in zip(new_ids, rows, specialties, strict=True)
        if row["is_expert"]
    ]
    _insert_experts(session, experts, rng, progress, report)
    return report


def _insert_experts(
    session: Session,
    experts: list[tuple[int, dict[str, Any], list[str]]],
    rng: random.Random,
    progress: Progress,
    report: StaffReport,
) -> None:
    profiles: list[dict[str, Any]] = []
    windows: list[dict[str, Any]] = []
    for pid, row, codes in experts:
        profiles.append(expert_profile_row(pid, row["title"], codes[0], rng))
        windows.extend(weekly_hours(pid, rng))
    progress.start("expert profiles", len(profiles))
    insert_plain(session, ExpertProfile, profiles, progress)
    progress.start("expert hours", len(windows))
    insert_plain(session, ExpertAvailability, windows, progress)
    report.experts = len(profiles)
    report.windows = len(windows)
    report.expert_ids = [pid for pid, _, _ in experts]


def expert_profile_row(
    practitioner_id: int, title: str, specialty: str, rng: random.Random
) -> dict[str, Any]:
    label = SPECIALTY_BY_CODE[specialty].name_zh
    expertise = EXPERTISE.get(specialty, f"{label}常见病、多发病及疑难危重症的诊治")
    years = rng.randint(12, 32)
    summary = (
        f"{TITLE_BY_CODE[title].name_zh}，从事{label}临床工作{years}年，参与远程会诊与基层带教。"
    )
    return {
        "practitioner_id": practitioner_id,
        "summary": summary,
        "expertise": f"擅长{expertise}。",
        "accepts_requests": rng.random() < 0.9,
        "updated_at": now(),
    }


def weekly_hours(practitioner_id: int, rng: random.Random) -> list[dict[str, Any]]:
    """One to three half-days a week, Monday to Friday, never overlapping."""
    slots = rng.sample([(d, h) for d in range(5) for h in range(2)], k=rng.randint(1, 3))
    return [
        {
            "practitioner_id": practitioner_id,
            "weekday": day,
            "start_time": HALF_DAYS[half][0],
            "end_time": HALF_DAYS[half][1],
        }
        for day, half in sorted(slots)
    ]

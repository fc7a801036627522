"""The region tree: loading the shipped GB/T 2260 data, prefixes, children and subtrees."""

from __future__ import annotations

import csv
import gzip
import io
from collections.abc import Iterator, Sequence
from importlib import resources

from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from xietong.core.errors import N_, Invalid, NotFound
from xietong.directory.models import Region

LEVELS = ("province", "city", "county", "township", "village")
LEVEL_DEPTH = {name: depth for depth, name in enumerate(LEVELS)}
DATA_FILE = "henan_regions.csv.gz"


def prefix_for(code: str, level: str) -> str:
    """The code prefix shared by a region and all regions below it."""
    if level == "province":
        return code[:2]
    if level == "city":
        # Prefecture-level cities end in 00; 济源 (419001) is a county-level code.
        return code[:4] if code.endswith("00") else code[:6]
    if level == "county":
        return code[:6]
    if level == "township":
        return code[:9]
    return code


def iter_region_rows(levels: Sequence[str] = LEVELS) -> Iterator[dict[str, object]]:
    raw = resources.files("xietong.directory").joinpath("data", DATA_FILE).read_bytes()
    text = gzip.decompress(raw).decode("utf-8")
    wanted = set(levels)
    for row in csv.DictReader(io.StringIO(text)):
        if row["level"] not in wanted:
            continue
        yield {
            "code": row["code"],
            "name": row["name"],
            "parent_code": row["parent_code"] or None,
            "level": row["level"],
            "prefix": prefix_for(row["code"], row["level"]),
            "depth": LEVEL_DEPTH[row["level"]],
        }


def load_regions(session: Session, levels: Sequence[str] = LEVELS, batch: int = 5000) -> int:
    """Insert the shipped regions that are not there yet; returns how many were added."""
    existing = set(session.execute(select(Region.code)).scalars())
    pending: list[dict[str, object]] = []
    added = 0
    for row in iter_region_rows(levels):
        if row["code"] in existing:
            continue
        pending.append(row)
        if len(pending) >= batch:
            session.execute(insert(Region), pending)
            added += len(pending)
            pending = []
    if pending:
        session.execute(insert(Region), pending)
        added += len(pending)
    session.flush()
    return added


def validate_region_code(code: str, field: str = "region_code") -> str:
    if not code.isdigit() or len(code) not in (6, 9, 12):
        raise Invalid(
            N_("A region code has 6, 9 or 12 digits."), code="invalid_region_code", field=field
        )
    return code


def get_region(session: Session, code: str, field: str = "region_code") -> Region:
    region = session.get(Region, validate_region_code(code, field))
    if region is None:
        raise NotFound(N_("No region has this code."), code="region_not_found", field=field)
    return region


def children(session: Session, code: str) -> Sequence[Region]:
    get_region(session, code, field="code")
    return (
        session.execute(select(Region).where(Region.parent_code == code).order_by(Region.code))
        .scalars()
        .all()
    )


def ancestors(session: Session, region: Region) -> list[Region]:
    chain: list[Region] = []
    current = region
    while current.parent_code:
        parent = session.get(Region, current.parent_code)
        if parent is None:
            break
        chain.append(parent)
        current = parent
    return list(reversed(chain))


def child_counts(session: Session, codes: Sequence[str]) -> dict[str, int]:
    if not codes:
        return {}
    rows = session.execute(
        select(Region.parent_code, func.count())
        .where(Region.parent_code.in_(codes))
        .group_by(Region.parent_code)
    ).all()
    return {parent: count for parent, count in rows if parent}


def path_of(session: Session, region: Region) -> list[Region]:
    """The region's ancestors from the top, then the region itself."""
    return [*ancestors(session, region), region]


def search_regions(
    session: Session, q: str, *, level: str | None = None, limit: int = 20
) -> Sequence[Region]:
    """Regions whose name contains ``q``, higher levels first."""
    text = q.strip()
    if not text:
        raise Invalid(N_("This field is required."), code="missing", field="q")
    stmt = select(Region).where(Region.name.contains(text, autoescape=True))
    if level is not None:
        if level not in LEVEL_DEPTH:
            raise Invalid(
                N_("This value is not one of the allowed choices."),
                code="unknown_level",
                field="level",
            )
        stmt = stmt.where(Region.level == level)
    return session.execute(stmt.order_by(Region.depth, Region.code).limit(limit)).scalars().all()

"""C-FIND and the retrieve side of C-MOVE / C-GET (PS3.4 C.4) over the archive's index.

The matching of QIDO-RS (:mod:`xietong.imaging.query`) serves here too: single value,
``*``/``?`` wildcards, UID lists and date ranges (PS3.4 C.2.2.2); in addition ranges on
PatientBirthDate and StudyTime. Keys of every level at or above the query level are
matched (patient and study keys also narrow series and image queries). Results only ever
come from studies the calling node's institution may read
(:func:`xietong.imaging.service.readable_clause`), and each query or retrieval writes one
audit row. Values are returned as Python text (the edge encodes them as UTF-8).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, func, select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.core.errors import N_, Invalid
from xietong.imaging.models import ImagingInstance, ImagingSeries, ImagingStudy
from xietong.imaging.query import (
    _instance_filters,
    _series_filters,
    _study_filters,
    instance_values,
    series_values,
    study_values,
)
from xietong.imaging.service import ITEM_KIND, readable_clause

LEVELS = ("PATIENT", "STUDY", "SERIES", "IMAGE")
# The unique key of each level: a retrieval names at least one value of it.
UNIQUE_KEY = {
    "PATIENT": "PatientID",
    "STUDY": "StudyInstanceUID",
    "SERIES": "SeriesInstanceUID",
    "IMAGE": "SOPInstanceUID",
}
PATIENT_KEYS = ("PatientName", "PatientID", "PatientBirthDate", "PatientSex")
# Matched here rather than by the QIDO-RS filters (ranges on text columns).
_RANGED_TEXT = {
    "PatientBirthDate": ImagingStudy.patient_birth_date,
    "StudyTime": ImagingStudy.study_time,
}


@dataclass(frozen=True)
class Matches:
    rows: list[dict[str, object]]
    truncated: bool  # more matches than the cap


def _bad(keyword: str) -> Invalid:
    return Invalid(
        N_("The query value of {attribute} is not valid."),
        code="query_invalid",
        field=keyword,
        params={"attribute": keyword},
    )


def _text_range(keyword: str, value: str) -> list[ColumnElement[bool]]:
    column = _RANGED_TEXT[keyword]
    if not re.fullmatch(r"[0-9.:]*(-[0-9.:]*)?", value) or value == "-":
        raise _bad(keyword)
    if "-" not in value:
        # StudyTime: a single value matches the times it is a prefix of (1030 ~ 103000).
        return [column.startswith(value)] if keyword == "StudyTime" else [column == value]
    start, _, end = value.partition("-")
    filters: list[ColumnElement[bool]] = []
    if start:
        filters.append(column >= start)
    if end:
        # "...-1030" includes 103059.99: compare against the end padded as a prefix.
        filters.append(column <= end + "\x7f" if keyword == "StudyTime" else column <= end)
    return filters


def _study_level_filters(match: Mapping[str, str]) -> list[ColumnElement[bool]]:
    plain = {k: v for k, v in match.items() if k not in _RANGED_TEXT}
    filters = _study_filters(plain)
    for keyword in _RANGED_TEXT:
        if keyword in match:
            filters.extend(_text_range(keyword, match[keyword]))
    return filters


def patient_values(study: ImagingStudy) -> dict[str, object]:
    return {
        "PatientName": study.patient_name,
        "PatientID": study.patient_key,
        "PatientBirthDate": study.patient_birth_date,
        "PatientSex": study.patient_sex,
    }


def _study_row(study: ImagingStudy) -> dict[str, object]:
    values = study_values(study, "")
    values.pop("RetrieveURL")
    return values


def _series_row(study: ImagingStudy, series: ImagingSeries) -> dict[str, object]:
    values = {**_study_row(study), **series_values(study, series, "")}
    values.pop("RetrieveURL")
    return values


def _instance_row(
    study: ImagingStudy, series: ImagingSeries, instance: ImagingInstance
) -> dict[str, object]:
    values = {**_series_row(study, series), **instance_values(study, series, instance, "")}
    values.pop("RetrieveURL")
    return values


def _patients(
    session: Session, principal: Principal, match: Mapping[str, str], cap: int
) -> list[dict[str, object]]:
    patient_match = {k: v for k, v in match.items() if k in PATIENT_KEYS}
    stmt = (
        select(
            ImagingStudy.patient_key,
            func.max(ImagingStudy.patient_name),
            func.max(ImagingStudy.patient_birth_date),
            func.max(ImagingStudy.patient_sex),
            func.count(ImagingStudy.id),
            func.sum(ImagingStudy.series_count),
            func.sum(ImagingStudy.instance_count),
        )
        .where(readable_clause(principal), *_study_level_filters(patient_match))
        .group_by(ImagingStudy.patient_key)
        .order_by(ImagingStudy.patient_key)
        .limit(cap + 1)
    )
    return [
        {
            "SpecificCharacterSet": "ISO_IR 192",
            "PatientID": key,
            "PatientName": name,
            "PatientBirthDate": birth,
            "PatientSex": sex,
            "NumberOfPatientRelatedStudies": studies,
            "NumberOfPatientRelatedSeries": int(series or 0),
            "NumberOfPatientRelatedInstances": int(instances or 0),
        }
        for key, name, birth, sex, studies, series, instances in session.execute(stmt)
    ]


def _level_query(
    principal: Principal, level: str, match: Mapping[str, str]
) -> Select[*tuple[Any, ...]]:
    readable = readable_clause(principal)
    if level == "STUDY":
        return (
            select(ImagingStudy)
            .where(readable, *_study_level_filters(match))
            .order_by(ImagingStudy.study_date.desc(), ImagingStudy.id.desc())
        )
    if level == "SERIES":
        return (
            select(ImagingSeries, ImagingStudy)
            .join(ImagingStudy, ImagingStudy.id == ImagingSeries.study_id)
            .where(readable, *_study_level_filters(match), *_series_filters(match))
            .order_by(ImagingStudy.id, ImagingSeries.series_number, ImagingSeries.id)
        )
    return (
        select(ImagingInstance, ImagingSeries, ImagingStudy)
        .join(ImagingSeries, ImagingSeries.id == ImagingInstance.series_id)
        .join(ImagingStudy, ImagingStudy.id == ImagingInstance.study_id)
        .where(
            readable,
            *_study_level_filters(match),
            *_series_filters(match),
            *_instance_filters(match),
        )
        .order_by(ImagingSeries.id, ImagingInstance.instance_number, ImagingInstance.id)
    )


def _check_level(level: str) -> str:
    if level not in LEVELS:
        raise _bad("QueryRetrieveLevel")
    return level


def find(
    session: Session, principal: Principal, level: str, match: Mapping[str, str], cap: int
) -> Matches:
    """The matches of a C-FIND at ``level`` (keyword → value for each), at most ``cap``."""
    _check_level(level)
    if level == "PATIENT":
        rows = _patients(session, principal, match, cap)
        study_ids: list[int] = []
    else:
        results = list(session.execute(_level_query(principal, level, match).limit(cap + 1)))
        if level == "STUDY":
            rows = [_study_row(r[0]) for r in results]
            study_ids = [r[0].id for r in results]
        elif level == "SERIES":
            rows = [_series_row(r[1], r[0]) for r in results]
            study_ids = [r[1].id for r in results]
        else:
            rows = [_instance_row(r[2], r[1], r[0]) for r in results]
            study_ids = [r[2].id for r in results]
    audit.record(
        session,
        principal,
        "imaging.dimse.find",
        object_kind=ITEM_KIND,
        object_id=",".join(str(i) for i in sorted(set(study_ids))[:20]),
        detail={"level": level, "keys": sorted(match), "results": min(len(rows), cap)},
    )
    return Matches(rows[:cap], len(rows) > cap)


def retrieve(
    session: Session,
    principal: Principal,
    level: str,
    match: Mapping[str, str],
    *,
    action: str,
    destination: str = "",
) -> list[ImagingInstance]:
    """The instances a C-MOVE or C-GET names, of studies the principal may read; the
    identifier must carry the unique key of its level (else 422 ``query_invalid``)."""
    _check_level(level)
    if not match.get(UNIQUE_KEY[level]):
        raise _bad(UNIQUE_KEY[level])
    keys = {k: v for k, v in match.items() if k in {*UNIQUE_KEY.values()}}
    for keyword, value in keys.items():
        if "*" in value or "?" in value:  # unique keys name instances, never a pattern
            raise _bad(keyword)
    rows = list(session.execute(_level_query(principal, "IMAGE", keys)))
    instances = [r[0] for r in rows]
    audit.record(
        session,
        principal,
        action,
        object_kind=ITEM_KIND,
        object_id=",".join(str(i) for i in sorted({r[2].id for r in rows})[:20]),
        detail={
            "level": level,
            "keys": {k: v[:200] for k, v in keys.items()},
            "instances": len(instances),
            "destination": destination,
        },
    )
    return instances

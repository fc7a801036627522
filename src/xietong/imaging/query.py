"""QIDO-RS (PS3.18 §10.6) over the archive's index: matching, paging and DICOM JSON.

Matching follows PS3.4 C.2.2.2: single value (exact), wildcards ``*`` and ``?`` (on
PN, LO, SH, CS and the like), UID lists (``\\``- or comma-separated) and date ranges
``YYYYMMDD-YYYYMMDD`` (either end open). Values arrive percent-decoded as UTF-8 (the edge
decodes them), so Chinese names match. Lists only ever hold studies the principal may
read (:func:`xietong.imaging.service.readable_clause`); one audit row per query.
Fuzzy matching is not offered: the edge says so in a 299 warning.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date
from typing import Any, TypeVar

from sqlalchemy import ColumnElement, Select, and_, exists, or_, select
from sqlalchemy.orm import InstrumentedAttribute, Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.core.errors import N_, Invalid
from xietong.imaging.dicom import is_valid_uid
from xietong.imaging.models import ImagingInstance, ImagingSeries, ImagingStudy
from xietong.imaging.service import ITEM_KIND, readable_clause, require_reader

T = TypeVar("T")
MAX_LIMIT = 1000
DEFAULT_LIMIT = 100

# keyword → (tag, VR)
ATTRIBUTES: dict[str, tuple[str, str]] = {
    "SpecificCharacterSet": ("00080005", "CS"),
    "StudyDate": ("00080020", "DA"),
    "StudyTime": ("00080030", "TM"),
    "AccessionNumber": ("00080050", "SH"),
    "Modality": ("00080060", "CS"),
    "ModalitiesInStudy": ("00080061", "CS"),
    "ReferringPhysicianName": ("00080090", "PN"),
    "StudyDescription": ("00081030", "LO"),
    "SeriesDescription": ("0008103E", "LO"),
    "RetrieveURL": ("00081190", "UR"),
    "SOPClassUID": ("00080016", "UI"),
    "SOPInstanceUID": ("00080018", "UI"),
    "PatientName": ("00100010", "PN"),
    "PatientID": ("00100020", "LO"),
    "PatientBirthDate": ("00100030", "DA"),
    "PatientSex": ("00100040", "CS"),
    "BodyPartExamined": ("00180015", "CS"),
    "StudyInstanceUID": ("0020000D", "UI"),
    "SeriesInstanceUID": ("0020000E", "UI"),
    "StudyID": ("00200010", "SH"),
    "SeriesNumber": ("00200011", "IS"),
    "InstanceNumber": ("00200013", "IS"),
    "NumberOfStudyRelatedSeries": ("00201206", "IS"),
    "NumberOfStudyRelatedInstances": ("00201208", "IS"),
    "NumberOfSeriesRelatedInstances": ("00201209", "IS"),
    "Rows": ("00280010", "US"),
    "Columns": ("00280011", "US"),
    "NumberOfFrames": ("00280008", "IS"),
    "TransferSyntaxUID": ("00020010", "UI"),
}
BY_TAG = {tag: keyword for keyword, (tag, _vr) in ATTRIBUTES.items()}

STUDY_DEFAULT = (
    "SpecificCharacterSet",
    "StudyDate",
    "StudyTime",
    "AccessionNumber",
    "ModalitiesInStudy",
    "ReferringPhysicianName",
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyInstanceUID",
    "StudyID",
    "NumberOfStudyRelatedSeries",
    "NumberOfStudyRelatedInstances",
    "RetrieveURL",
)
STUDY_EXTRA = ("StudyDescription",)
SERIES_DEFAULT = (
    "SpecificCharacterSet",
    "Modality",
    "SeriesDescription",
    "SeriesInstanceUID",
    "SeriesNumber",
    "NumberOfSeriesRelatedInstances",
    "RetrieveURL",
)
SERIES_EXTRA = ("BodyPartExamined", "StudyInstanceUID")
INSTANCE_DEFAULT = (
    "SpecificCharacterSet",
    "SOPClassUID",
    "SOPInstanceUID",
    "InstanceNumber",
    "Rows",
    "Columns",
    "NumberOfFrames",
    "RetrieveURL",
)
INSTANCE_EXTRA = ("StudyInstanceUID", "SeriesInstanceUID", "TransferSyntaxUID")


def keyword_of(key: str) -> str | None:
    """A query key as a keyword: ``PatientName`` or its tag ``00100010``."""
    if key in ATTRIBUTES:
        return key
    return BY_TAG.get(key.upper())


@dataclass
class Query:
    """Matching keys (keyword → value, already percent-decoded), includefield, paging."""

    match: dict[str, str] = field(default_factory=dict)
    include: tuple[str, ...] = ()
    include_all: bool = False
    limit: int = DEFAULT_LIMIT
    offset: int = 0


@dataclass(frozen=True)
class Page:
    items: list[dict[str, Any]]
    truncated: bool  # more matches than the limit gave


# Matching ----------------------------------------------------------------------------------


def _like(column: InstrumentedAttribute[str], value: str) -> ColumnElement[bool]:
    if "*" not in value and "?" not in value:
        return column == value
    escaped = value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    pattern = escaped.replace("*", "%").replace("?", "_")
    return column.like(pattern, escape="\\")


def _uids(keyword: str, value: str) -> list[str]:
    parts = [p.strip() for p in re.split(r"[\\,]", value) if p.strip()]
    if not parts or not all(is_valid_uid(p) for p in parts):
        raise _bad(keyword)
    return parts


def _bad(keyword: str) -> Invalid:
    return Invalid(
        N_("The query value of {attribute} is not valid."),
        code="query_invalid",
        field=keyword,
        params={"attribute": keyword},
    )


def _date_range(keyword: str, value: str) -> tuple[date | None, date | None]:
    def one(text: str) -> date | None:
        if not text:
            return None
        if not re.fullmatch(r"\d{8}", text):
            raise _bad(keyword)
        try:
            return date(int(text[:4]), int(text[4:6]), int(text[6:]))
        except ValueError as exc:
            raise _bad(keyword) from exc

    if "-" not in value:
        day = one(value)
        return day, day
    start, _, end = value.partition("-")
    if not start and not end:
        raise _bad(keyword)
    return one(start), one(end)


def _int_value(keyword: str, value: str) -> int:
    if not re.fullmatch(r"\d{1,9}", value):
        raise _bad(keyword)
    return int(value)


def _study_filters(match: Mapping[str, str]) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    text: dict[str, InstrumentedAttribute[str]] = {
        "PatientName": ImagingStudy.patient_name,
        "PatientID": ImagingStudy.patient_key,
        "AccessionNumber": ImagingStudy.accession_number,
        "ReferringPhysicianName": ImagingStudy.referring_physician,
        "StudyDescription": ImagingStudy.description,
        "StudyID": ImagingStudy.study_id,
        "PatientSex": ImagingStudy.patient_sex,
        "PatientBirthDate": ImagingStudy.patient_birth_date,
    }
    for keyword, value in match.items():
        if keyword in text:
            filters.append(_like(text[keyword], value))
        elif keyword == "StudyInstanceUID":
            filters.append(ImagingStudy.study_uid.in_(_uids(keyword, value)))
        elif keyword == "StudyDate":
            start, end = _date_range(keyword, value)
            if start is not None:
                filters.append(ImagingStudy.study_date >= start)
            if end is not None:
                filters.append(ImagingStudy.study_date <= end)
        elif keyword in ("ModalitiesInStudy", "Modality"):
            wanted = [m for m in re.split(r"[\\,]", value) if m]
            filters.append(
                exists().where(
                    ImagingSeries.study_id == ImagingStudy.id,
                    or_(*(_like(ImagingSeries.modality, m) for m in wanted)),
                )
            )
    return filters


def _series_filters(match: Mapping[str, str]) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    for keyword, value in match.items():
        if keyword == "Modality":
            filters.append(_like(ImagingSeries.modality, value))
        elif keyword == "SeriesInstanceUID":
            filters.append(ImagingSeries.series_uid.in_(_uids(keyword, value)))
        elif keyword == "SeriesNumber":
            filters.append(ImagingSeries.series_number == _int_value(keyword, value))
        elif keyword == "SeriesDescription":
            filters.append(_like(ImagingSeries.description, value))
        elif keyword == "BodyPartExamined":
            filters.append(_like(ImagingSeries.body_part, value))
    return filters


def _instance_filters(match: Mapping[str, str]) -> list[ColumnElement[bool]]:
    filters: list[ColumnElement[bool]] = []
    for keyword, value in match.items():
        if keyword == "SOPInstanceUID":
            filters.append(ImagingInstance.sop_instance_uid.in_(_uids(keyword, value)))
        elif keyword == "SOPClassUID":
            filters.append(ImagingInstance.sop_class_uid.in_(_uids(keyword, value)))
        elif keyword == "InstanceNumber":
            filters.append(ImagingInstance.instance_number == _int_value(keyword, value))
    return filters


def _paged(session: Session, stmt: Select[T], query: Query) -> tuple[list[T], bool]:
    rows = list(session.execute(stmt.offset(query.offset).limit(query.limit + 1)).scalars())
    return rows[: query.limit], len(rows) > query.limit


# DICOM JSON --------------------------------------------------------------------------------


def element(keyword: str, value: object) -> tuple[str, dict[str, Any]]:
    """One DICOM JSON attribute (PS3.18 F.2); an empty value has no ``Value``."""
    tag, vr = ATTRIBUTES[keyword]
    body: dict[str, Any] = {"vr": vr}
    if value is None or value == "" or value == []:
        return tag, body
    if vr == "PN":
        body["Value"] = [{"Alphabetic": str(value)}]
    elif vr in ("IS", "US"):
        body["Value"] = [int(str(value))]
    elif isinstance(value, list | tuple):
        body["Value"] = [str(v) for v in value]
    else:
        body["Value"] = [str(value)]
    return tag, body


def _render(
    values: Mapping[str, object], defaults: Iterable[str], extra: Iterable[str], query: Query
) -> dict[str, Any]:
    wanted = list(defaults)
    optional = list(extra)
    for keyword in [*query.match, *query.include, *(optional if query.include_all else [])]:
        if keyword in values and keyword not in wanted:
            wanted.append(keyword)
    return dict(sorted(element(k, values.get(k)) for k in wanted))


def study_values(study: ImagingStudy, base_url: str) -> dict[str, object]:
    return {
        "SpecificCharacterSet": "ISO_IR 192",
        "StudyDate": study.study_date.strftime("%Y%m%d") if study.study_date else "",
        "StudyTime": study.study_time,
        "AccessionNumber": study.accession_number,
        "ModalitiesInStudy": [m for m in study.modalities.split("\\") if m],
        "ReferringPhysicianName": study.referring_physician,
        "PatientName": study.patient_name,
        "PatientID": study.patient_key,
        "PatientBirthDate": study.patient_birth_date,
        "PatientSex": study.patient_sex,
        "StudyInstanceUID": study.study_uid,
        "StudyID": study.study_id,
        "StudyDescription": study.description,
        "NumberOfStudyRelatedSeries": study.series_count,
        "NumberOfStudyRelatedInstances": study.instance_count,
        "RetrieveURL": f"{base_url}/studies/{study.study_uid}",
    }


def series_values(study: ImagingStudy, series: ImagingSeries, base_url: str) -> dict[str, object]:
    return {
        "SpecificCharacterSet": "ISO_IR 192",
        "Modality": series.modality,
        "SeriesDescription": series.description,
        "SeriesInstanceUID": series.series_uid,
        "SeriesNumber": series.series_number,
        "NumberOfSeriesRelatedInstances": series.instance_count,
        "BodyPartExamined": series.body_part,
        "StudyInstanceUID": study.study_uid,
        "RetrieveURL": f"{base_url}/studies/{study.study_uid}/series/{series.series_uid}",
    }


def instance_values(
    study: ImagingStudy, series: ImagingSeries, instance: ImagingInstance, base_url: str
) -> dict[str, object]:
    return {
        "SpecificCharacterSet": "ISO_IR 192",
        "SOPClassUID": instance.sop_class_uid,
        "SOPInstanceUID": instance.sop_instance_uid,
        "InstanceNumber": instance.instance_number,
        "Rows": instance.rows,
        "Columns": instance.columns,
        "NumberOfFrames": instance.frames,
        "StudyInstanceUID": study.study_uid,
        "SeriesInstanceUID": series.series_uid,
        "TransferSyntaxUID": instance.transfer_syntax_uid,
        "RetrieveURL": (
            f"{base_url}/studies/{study.study_uid}/series/{series.series_uid}"
            f"/instances/{instance.sop_instance_uid}"
        ),
    }


# Searches ----------------------------------------------------------------------------------


def _audit(
    session: Session, principal: Principal, action: str, query: Query, ids: list[int]
) -> None:
    audit.record(
        session,
        principal,
        action,
        object_kind=ITEM_KIND,
        object_id=",".join(str(i) for i in ids[:20]),
        detail={"keys": sorted(query.match), "results": len(ids)},
    )


def search_studies(session: Session, principal: Principal, query: Query, base_url: str) -> Page:
    require_reader(session, principal, "imaging.search")
    stmt = (
        select(ImagingStudy)
        .where(readable_clause(principal), *_study_filters(query.match))
        .order_by(ImagingStudy.study_date.desc(), ImagingStudy.id.desc())
    )
    studies, truncated = _paged(session, stmt, query)
    _audit(session, principal, "imaging.search", query, [s.id for s in studies])
    return Page(
        [_render(study_values(s, base_url), STUDY_DEFAULT, STUDY_EXTRA, query) for s in studies],
        truncated,
    )


def search_series(
    session: Session, principal: Principal, study: ImagingStudy, query: Query, base_url: str
) -> Page:
    """The series of an opened study (the caller opened and audited it)."""
    stmt = (
        select(ImagingSeries)
        .where(ImagingSeries.study_id == study.id, *_series_filters(query.match))
        .order_by(ImagingSeries.series_number, ImagingSeries.id)
    )
    rows, truncated = _paged(session, stmt, query)
    return Page(
        [
            _render(series_values(study, s, base_url), SERIES_DEFAULT, SERIES_EXTRA, query)
            for s in rows
        ],
        truncated,
    )


def search_instances(
    session: Session,
    principal: Principal,
    study: ImagingStudy,
    series_uid: str | None,
    query: Query,
    base_url: str,
) -> Page:
    """The instances of an opened study, of one series when given."""
    conditions = [ImagingInstance.study_id == study.id, *_instance_filters(query.match)]
    series_filters = _series_filters(query.match)
    if series_uid is not None:
        series_filters.append(ImagingSeries.series_uid == series_uid)
    stmt = (
        select(ImagingInstance)
        .join(ImagingSeries, ImagingSeries.id == ImagingInstance.series_id)
        .where(and_(*conditions), *series_filters)
        .order_by(ImagingSeries.id, ImagingInstance.instance_number, ImagingInstance.id)
    )
    rows, truncated = _paged(session, stmt, query)
    series_by_id = _series_by_id(session, {i.series_id for i in rows})
    render: Callable[[ImagingInstance], dict[str, Any]] = lambda i: _render(  # noqa: E731
        instance_values(study, series_by_id[i.series_id], i, base_url),
        INSTANCE_DEFAULT,
        INSTANCE_EXTRA,
        query,
    )
    return Page([render(i) for i in rows], truncated)


def _series_by_id(session: Session, ids: set[int]) -> dict[int, ImagingSeries]:
    if not ids:
        return {}
    return {
        s.id: s
        for s in session.execute(select(ImagingSeries).where(ImagingSeries.id.in_(ids))).scalars()
    }


def series_uids(session: Session, instances: Iterable[ImagingInstance]) -> dict[int, str]:
    """Series id → Series Instance UID for the instances, in one query."""
    return {
        s.id: s.series_uid
        for s in _series_by_id(session, {i.series_id for i in instances}).values()
    }


def find_instance(
    session: Session, study: ImagingStudy, series_uid: str, sop_uid: str
) -> ImagingInstance | None:
    return session.execute(
        select(ImagingInstance)
        .join(ImagingSeries, ImagingSeries.id == ImagingInstance.series_id)
        .where(
            ImagingInstance.study_id == study.id,
            ImagingSeries.series_uid == series_uid,
            ImagingInstance.sop_instance_uid == sop_uid,
        )
    ).scalar_one_or_none()


def instances_of(
    session: Session, study: ImagingStudy, series_uid: str | None = None
) -> list[ImagingInstance]:
    stmt = (
        select(ImagingInstance)
        .join(ImagingSeries, ImagingSeries.id == ImagingInstance.series_id)
        .where(ImagingInstance.study_id == study.id)
        .order_by(ImagingSeries.id, ImagingInstance.instance_number, ImagingInstance.id)
    )
    if series_uid is not None:
        stmt = stmt.where(ImagingSeries.series_uid == series_uid)
    return list(session.execute(stmt).scalars())

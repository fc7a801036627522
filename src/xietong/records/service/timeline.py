"""The timeline: every entry of a patient the principal can see, across institutions and
records merged into the patient, newest first, filterable by kind, institution, date range
and abnormal values. The chart page draws it.

One UNION ALL over the kinds' tables, ordered by ``effective_at``: the page and its total
come from the database, so a hidden entry is never fetched, shown or counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, cast

from sqlalchemy import Select, func, literal_column, select, union_all
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.core.errors import N_, Invalid
from xietong.directory.models import Institution
from xietong.patients.access import ChartAccess, access_patient
from xietong.records import rules
from xietong.records.document_models import ClinicalDocument, DocumentPage
from xietong.records.kinds import ABNORMAL, MODELS, RecordKind
from xietong.records.models import EntryColumns
from xietong.records.service.common import NameBook, visible_clause
from xietong.records.service.entries import MAX_LIMIT, MAX_OFFSET

FLAGGED_KINDS = frozenset({RecordKind.LAB_RESULT, RecordKind.VITAL_SIGN})
PRECISE_KINDS = FLAGGED_KINDS  # recorded to the minute; the others to the day
DETAIL_MAX = 200
DOCUMENT = "document"  # the item kind of clinical documents (records.documents)


@dataclass(frozen=True)
class TimelineQuery:
    kinds: frozenset[RecordKind] = field(default_factory=lambda: frozenset(RecordKind))
    documents: bool = True  # documents (photos, scans, PDFs) on the timeline too
    institution_id: int | None = None
    date_from: date | None = None  # China dates, both ends included
    date_to: date | None = None
    abnormal_only: bool = False
    limit: int = 50
    offset: int = 0

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= MAX_LIMIT:
            raise Invalid(N_("This value is too large."), code="invalid_limit", field="limit")
        if not 0 <= self.offset <= MAX_OFFSET:
            raise Invalid(N_("This value is too large."), code="invalid_offset", field="offset")
        if self.date_from and self.date_to and self.date_to < self.date_from:
            raise Invalid(
                N_("The end is before the start."), code="end_before_start", field="date_to"
            )


@dataclass(frozen=True)
class TimelineEntry:
    kind: str
    id: int
    at: datetime
    precise: bool  # False: a date-only entry (``at`` is midnight China time)
    institution_id: int
    institution_name: str
    subtype: str  # the code pages label: visit kind, diagnosis kind, vital kind …
    title: str
    detail: str
    abnormal_flag: str | None
    thumbnail_url: str | None = None  # documents: the first page's thumbnail

    @property
    def date(self) -> date:
        return rules.local_date(self.at)


def _select(kind: RecordKind, chart: ChartAccess, q: TimelineQuery) -> Select[Any, int, datetime]:
    model = MODELS[kind]
    stmt: Select[Any, int, datetime] = select(
        literal_column(f"'{kind.value}'").label("kind"),
        model.id.label("id"),
        model.effective_at.label("at"),
    ).where(visible_clause(model, kind, chart), model.entry_status == "current")
    if q.institution_id is not None:
        stmt = stmt.where(model.institution_id == q.institution_id)
    if q.date_from is not None:
        stmt = stmt.where(model.effective_at >= rules.start_of_day(q.date_from))
    if q.date_to is not None:
        stmt = stmt.where(model.effective_at < rules.start_of_day(q.date_to + timedelta(days=1)))
    if q.abnormal_only:
        stmt = stmt.where(cast(Any, model).abnormal_flag.in_(sorted(ABNORMAL)))
    return stmt


def _documents_select(chart: ChartAccess, q: TimelineQuery) -> Select[Any, int, datetime]:
    model = cast(type[EntryColumns], ClinicalDocument)
    stmt: Select[Any, int, datetime] = select(
        literal_column(f"'{DOCUMENT}'").label("kind"),
        ClinicalDocument.id.label("id"),
        ClinicalDocument.effective_at.label("at"),
    ).where(visible_clause(model, DOCUMENT, chart), ClinicalDocument.status == "current")
    if q.institution_id is not None:
        stmt = stmt.where(ClinicalDocument.institution_id == q.institution_id)
    if q.date_from is not None:
        stmt = stmt.where(ClinicalDocument.effective_at >= rules.start_of_day(q.date_from))
    if q.date_to is not None:
        end = rules.start_of_day(q.date_to + timedelta(days=1))
        stmt = stmt.where(ClinicalDocument.effective_at < end)
    return stmt


def timeline(
    session: Session,
    principal: Principal,
    patient_id: int,
    query: TimelineQuery,
    *,
    reason: str | None = None,
) -> tuple[list[TimelineEntry], int]:
    action = "timeline.read"
    _patient, chart = access_patient(session, principal, patient_id, action=action, reason=reason)
    kinds = [
        k
        for k in RecordKind
        if k in query.kinds and (not query.abnormal_only or k in FLAGGED_KINDS)
    ]
    selects = [_select(k, chart, query) for k in kinds]
    if query.documents and not query.abnormal_only:
        selects.append(_documents_select(chart, query))
    entries: list[TimelineEntry] = []
    total = 0
    if selects:
        union = union_all(*selects).subquery()
        total = session.execute(select(func.count()).select_from(union)).scalar_one()
        page = session.execute(
            select(union.c.kind, union.c.id)
            .order_by(union.c.at.desc(), union.c.kind, union.c.id.desc())
            .limit(query.limit)
            .offset(query.offset)
        ).all()
        entries = _load(session, chart, [(k, i) for k, i in page])
    audit.record(
        session,
        principal,
        action,
        object_kind="timeline",
        object_id=chart.patient_id,
        detail={"items": [f"{e.kind}:{e.id}" for e in entries], "total": total},
    )
    return entries, total


def _load(session: Session, chart: ChartAccess, page: list[tuple[str, int]]) -> list[TimelineEntry]:
    documents = _load_documents(session, chart, [i for k, i in page if k == DOCUMENT])
    loaded: dict[tuple[RecordKind, int], EntryColumns] = {}
    for kind in RecordKind:
        ids = [i for k, i in page if k == kind.value]
        if ids:
            model = MODELS[kind]
            for row in session.execute(select(model).where(model.id.in_(ids))).scalars():
                loaded[(kind, row.id)] = row
    names = NameBook.load(session, loaded.values())
    result = []
    for kind_code, item_id in page:
        if kind_code == DOCUMENT:
            if item_id in documents:
                result.append(documents[item_id])
            continue
        kind = RecordKind(kind_code)
        entry = loaded.get((kind, item_id))
        if entry is None or not chart.can_see(kind, entry.id, entry.institution_id):
            continue
        subtype, title, detail, flag = describe(kind, entry, names)
        result.append(
            TimelineEntry(
                kind=kind.value,
                id=entry.id,
                at=entry.effective_at,
                precise=kind in PRECISE_KINDS,
                institution_id=entry.institution_id,
                institution_name=names.institutions.get(entry.institution_id, ""),
                subtype=subtype,
                title=title,
                detail=detail[:DETAIL_MAX],
                abnormal_flag=flag,
            )
        )
    return result


def _load_documents(
    session: Session, chart: ChartAccess, ids: list[int]
) -> dict[int, TimelineEntry]:
    if not ids:
        return {}
    docs = session.execute(select(ClinicalDocument).where(ClinicalDocument.id.in_(ids))).scalars()
    shown = [d for d in docs if chart.can_see(DOCUMENT, d.id, d.institution_id)]
    with_thumbs = set(
        session.execute(
            select(DocumentPage.document_id).where(
                DocumentPage.document_id.in_([d.id for d in shown]),
                DocumentPage.page_no == 1,
                DocumentPage.thumb_blob_key.is_not(None),
            )
        ).scalars()
    )
    institutions: dict[int, str] = {
        row.id: row.name
        for row in session.execute(
            select(Institution.id, Institution.name).where(
                Institution.id.in_({d.institution_id for d in shown})
            )
        )
    }
    return {
        d.id: TimelineEntry(
            kind=DOCUMENT,
            id=d.id,
            at=d.effective_at,
            precise=False,
            institution_id=d.institution_id,
            institution_name=institutions.get(d.institution_id, ""),
            subtype=d.doc_type,
            title=d.title,
            detail=str(d.page_count),
            abnormal_flag=None,
            thumbnail_url=(
                f"/api/v1/documents/{d.id}/pages/1/thumbnail" if d.id in with_thumbs else None
            ),
        )
        for d in shown
    }


def _number(value: float | None) -> str:
    return "" if value is None else f"{value:g}"


def lab_range(low: float | None, high: float | None, text: str) -> str:
    if low is not None and high is not None:
        return f"{_number(low)}–{_number(high)}"
    if low is not None:
        return f"≥{_number(low)}"
    if high is not None:
        return f"≤{_number(high)}"
    return text


def describe(
    kind: RecordKind, entry: EntryColumns, names: NameBook
) -> tuple[str, str, str, str | None]:
    """(subtype, title, detail, abnormal flag) of an entry, from its data alone: pages
    translate the subtype; titles and details are what was recorded."""
    e = cast(Any, entry)
    if kind is RecordKind.ENCOUNTER:
        department = names.departments.get(e.department_id or 0, "")
        return e.kind, e.chief_complaint or department, e.summary, None
    if kind is RecordKind.DIAGNOSIS:
        return e.kind, e.name, e.code, None
    if kind is RecordKind.LAB_RESULT:
        value = " ".join(p for p in (e.value_text, e.unit) if p)
        reference = lab_range(e.ref_low, e.ref_high, e.ref_text)
        detail = f"{value} ({reference})" if reference else value
        return "lab_result", e.item_name, detail, e.abnormal_flag
    if kind is RecordKind.MEDICATION:
        dose = " ".join(p for p in (_number(e.dose), e.unit) if p)
        # The route is a code: the full entry shows it, labelled.
        detail = " ".join(p for p in (dose, e.frequency) if p)
        return e.order_kind, e.name, detail, None
    if kind is RecordKind.VITAL_SIGN:
        return e.kind, "", f"{_number(e.value)} {e.unit}", e.abnormal_flag
    return e.severity, e.substance, e.reaction, None

"""The clinical record's JSON API under /api/v1: entries of a patient by kind, one entry by
kind and id (read, correct, mark entered in error, history), the timeline, and the ICD-10
code list.

Who may see and change what is decided in :mod:`xietong.records.service`; these routes parse,
call one use case and answer. A platform admin opens a chart with a stated reason in the
``X-Access-Reason`` header (percent-encoded UTF-8 for non-ASCII text), which is audited.
"""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, Literal, get_args
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.core.errors import N_, Invalid
from xietong.core.i18n import translate
from xietong.core.validation import MAX_ID, Id, StrictModel, has_control_characters
from xietong.records import icd10
from xietong.records import service as svc
from xietong.records.kinds import RecordKind, code_label
from xietong.records.models import EntryColumns
from xietong.records.schemas import (
    AllergyIn,
    AllergyOut,
    CorrectionIn,
    DiagnosisIn,
    DiagnosisOut,
    EncounterIn,
    EncounterOut,
    EnteredInErrorIn,
    EntryIn,
    EntryOut,
    Icd10Out,
    LabResultIn,
    LabResultOut,
    MedicationIn,
    MedicationOut,
    Page,
    RecordOut,
    RevisionOut,
    TimelineEntryOut,
    TimelinePage,
    VitalSignIn,
    VitalSignOut,
)
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services

router = APIRouter(prefix="/api/v1", tags=["records"], dependencies=[Depends(current_principal)])

PatientId = Annotated[int, Path(ge=1, le=MAX_ID)]
EntryId = Annotated[int, Path(ge=1, le=MAX_ID)]
REASON_MAX = 200


def access_reason(
    x_access_reason: Annotated[str | None, Header(max_length=3 * REASON_MAX)] = None,
) -> str | None:
    """The break-glass reason of a platform admin (percent-decoded), or None."""
    if x_access_reason is None:
        return None
    try:
        text = unquote(x_access_reason, errors="strict").strip()
    except UnicodeDecodeError:
        text = "\x00"
    if len(text) > REASON_MAX or has_control_characters(text):
        raise Invalid(
            N_("The access reason is not valid."), code="reason_invalid", field="X-Access-Reason"
        )
    return text or None


AccessReason = Annotated[str | None, Depends(access_reason)]


class ListParams(StrictModel):
    limit: int = Field(default=50, ge=1, le=svc.MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=1_000_000)
    include_errors: bool = False


# What the timeline can show: the record kinds and documents.
TimelineKind = Literal[
    "encounter", "diagnosis", "lab_result", "medication", "vital_sign", "allergy", "document"
]
if set(get_args(TimelineKind)) != {*(k.value for k in RecordKind), "document"}:
    raise RuntimeError("TimelineKind must list every RecordKind and document")


class TimelineParams(StrictModel):
    kind: list[TimelineKind] = Field(default_factory=list, max_length=len(RecordKind) + 1)
    institution_id: Id | None = None
    date_from: date | None = None
    date_to: date | None = None
    abnormal_only: bool = False
    limit: int = Field(default=50, ge=1, le=svc.MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=1_000_000)


Listing = Annotated[ListParams, Query()]


def _locale(request: Request) -> str:
    chosen: str | None = getattr(request.state, "locale", None)
    return chosen or services(request).settings.i18n.default_locale


def _one(session: Session, kind: str, entry: EntryColumns) -> EntryOut:
    return svc.entries_out(session, kind, [entry])[0]


def _create(
    kind: RecordKind,
    patient_id: int,
    body: EntryIn,
    session: Session,
    principal: Principal,
    reason: str | None,
    response: Response,
) -> EntryOut:
    """201 for a new entry; 200 with the first entry for a retry of the same request."""
    added = svc.add_entry(session, principal, kind, patient_id, body, reason=reason)
    response.status_code = 201 if added.created else 200
    response.headers["Location"] = f"/api/v1/records/{kind}/{added.entry.id}"
    return _one(session, kind, added.entry)


def _list(
    kind: RecordKind,
    patient_id: int,
    params: ListParams,
    session: Session,
    principal: Principal,
    reason: str | None,
) -> dict[str, Any]:
    query = svc.ListQuery(
        limit=params.limit, offset=params.offset, include_errors=params.include_errors
    )
    rows, total = svc.list_entries(session, principal, kind, patient_id, query, reason=reason)
    items = svc.entries_out(session, kind, rows)
    return {"items": items, "total": total, "limit": params.limit, "offset": params.offset}


# Entries of a patient, by kind ----------------------------------------------------------------


@router.post("/patients/{patient_id}/encounters", response_model=EncounterOut, status_code=201)
def create_encounter(
    patient_id: PatientId,
    body: EncounterIn,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
    response: Response,
) -> EntryOut:
    return _create(RecordKind.ENCOUNTER, patient_id, body, session, principal, reason, response)


@router.get("/patients/{patient_id}/encounters", response_model=Page[EncounterOut])
def list_encounters(
    patient_id: PatientId,
    params: Listing,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
) -> dict[str, Any]:
    return _list(RecordKind.ENCOUNTER, patient_id, params, session, principal, reason)


@router.post("/patients/{patient_id}/diagnoses", response_model=DiagnosisOut, status_code=201)
def create_diagnosis(
    patient_id: PatientId,
    body: DiagnosisIn,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
    response: Response,
) -> EntryOut:
    return _create(RecordKind.DIAGNOSIS, patient_id, body, session, principal, reason, response)


@router.get("/patients/{patient_id}/diagnoses", response_model=Page[DiagnosisOut])
def list_diagnoses(
    patient_id: PatientId,
    params: Listing,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
) -> dict[str, Any]:
    return _list(RecordKind.DIAGNOSIS, patient_id, params, session, principal, reason)


@router.post("/patients/{patient_id}/labs", response_model=LabResultOut, status_code=201)
def create_lab_result(
    patient_id: PatientId,
    body: LabResultIn,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
    response: Response,
) -> EntryOut:
    return _create(RecordKind.LAB_RESULT, patient_id, body, session, principal, reason, response)


@router.get("/patients/{patient_id}/labs", response_model=Page[LabResultOut])
def list_lab_results(
    patient_id: PatientId,
    params: Listing,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
) -> dict[str, Any]:
    return _list(RecordKind.LAB_RESULT, patient_id, params, session, principal, reason)


@router.post("/patients/{patient_id}/medications", response_model=MedicationOut, status_code=201)
def create_medication(
    patient_id: PatientId,
    body: MedicationIn,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
    response: Response,
) -> EntryOut:
    return _create(RecordKind.MEDICATION, patient_id, body, session, principal, reason, response)


@router.get("/patients/{patient_id}/medications", response_model=Page[MedicationOut])
def list_medications(
    patient_id: PatientId,
    params: Listing,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
) -> dict[str, Any]:
    return _list(RecordKind.MEDICATION, patient_id, params, session, principal, reason)


@router.post("/patients/{patient_id}/vitals", response_model=VitalSignOut, status_code=201)
def create_vital_sign(
    patient_id: PatientId,
    body: VitalSignIn,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
    response: Response,
) -> EntryOut:
    return _create(RecordKind.VITAL_SIGN, patient_id, body, session, principal, reason, response)


@router.get("/patients/{patient_id}/vitals", response_model=Page[VitalSignOut])
def list_vital_signs(
    patient_id: PatientId,
    params: Listing,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
) -> dict[str, Any]:
    return _list(RecordKind.VITAL_SIGN, patient_id, params, session, principal, reason)


@router.post("/patients/{patient_id}/allergies", response_model=AllergyOut, status_code=201)
def create_allergy(
    patient_id: PatientId,
    body: AllergyIn,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
    response: Response,
) -> EntryOut:
    return _create(RecordKind.ALLERGY, patient_id, body, session, principal, reason, response)


@router.get("/patients/{patient_id}/allergies", response_model=Page[AllergyOut])
def list_allergies(
    patient_id: PatientId,
    params: Listing,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
) -> dict[str, Any]:
    return _list(RecordKind.ALLERGY, patient_id, params, session, principal, reason)


# One entry --------------------------------------------------------------------------------


@router.get("/records/{kind}/{entry_id}", response_model=RecordOut)
def get_record(
    kind: RecordKind,
    entry_id: EntryId,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
) -> EntryOut:
    return _one(session, kind, svc.get_entry(session, principal, kind, entry_id, reason=reason))


@router.patch("/records/{kind}/{entry_id}", response_model=RecordOut)
def correct_record(
    kind: RecordKind,
    entry_id: EntryId,
    body: CorrectionIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> EntryOut:
    """Correct an entry: ``reason`` and the fields to change; the earlier values are kept
    as a revision. Only the holding institution corrects."""
    entry = svc.correct_entry(session, principal, kind, entry_id, body.changes, body.reason)
    return _one(session, kind, entry)


@router.post("/records/{kind}/{entry_id}/entered-in-error", response_model=RecordOut)
def mark_entered_in_error(
    kind: RecordKind,
    entry_id: EntryId,
    body: EnteredInErrorIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> EntryOut:
    entry = svc.mark_entered_in_error(session, principal, kind, entry_id, body.reason)
    return _one(session, kind, entry)


@router.get("/records/{kind}/{entry_id}/revisions", response_model=list[RevisionOut])
def list_revisions(
    kind: RecordKind,
    entry_id: EntryId,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
) -> list[RevisionOut]:
    rows = svc.revisions(session, principal, kind, entry_id, reason=reason)
    return [RevisionOut.model_validate(r) for r in rows]


# Timeline ---------------------------------------------------------------------------------


@router.get("/patients/{patient_id}/timeline", response_model=TimelinePage)
def get_timeline(
    request: Request,
    patient_id: PatientId,
    params: Annotated[TimelineParams, Query()],
    session: DbSession,
    principal: CurrentPrincipal,
    reason: AccessReason,
) -> TimelinePage:
    query = svc.TimelineQuery(
        kinds=frozenset(RecordKind(k) for k in params.kind if k != "document")
        if params.kind
        else frozenset(RecordKind),
        documents=not params.kind or "document" in params.kind,
        institution_id=params.institution_id,
        date_from=params.date_from,
        date_to=params.date_to,
        abnormal_only=params.abnormal_only,
        limit=params.limit,
        offset=params.offset,
    )
    rows, total = svc.timeline(session, principal, patient_id, query, reason=reason)
    locale = _locale(request)
    items = []
    for row in rows:
        label = translate(locale, code_label(row.kind, row.subtype))
        items.append(
            TimelineEntryOut(
                kind=row.kind,
                id=row.id,
                date=row.date,
                at=row.at if row.precise else None,
                institution_id=row.institution_id,
                institution_name=row.institution_name,
                subtype=row.subtype,
                label=label,
                title=row.title or label,
                detail=row.detail,
                abnormal_flag=row.abnormal_flag,
                thumbnail_url=row.thumbnail_url,
            )
        )
    return TimelinePage(items=items, total=total, limit=params.limit, offset=params.offset)


# Code sets --------------------------------------------------------------------------------


def _icd_out(code: icd10.Icd10Code, locale: str) -> Icd10Out:
    return Icd10Out(
        code=code.code,
        name=code.name(locale),
        name_zh=code.name_zh,
        name_en=code.name_en,
        leaf=code.leaf,
    )


@router.get("/codes/icd10", response_model=list[Icd10Out])
def search_icd10(
    request: Request,
    q: Annotated[str, Query(min_length=1, max_length=64)],
    limit: Annotated[int, Query(ge=1, le=icd10.MAX_RESULTS)] = 20,
) -> list[Icd10Out]:
    """The diagnosis picker: codes starting with ``q`` (``E11``, ``e119``), else titles
    containing it (``糖尿病``, ``diabetes``)."""
    if has_control_characters(q):
        raise Invalid(
            N_("Control characters are not allowed."), code="control_characters", field="q"
        )
    locale = _locale(request)
    return [_icd_out(c, locale) for c in icd10.search(q, limit=limit)]


@router.get("/codes/icd10/{code}", response_model=Icd10Out)
def get_icd10(request: Request, code: Annotated[str, Path(max_length=16)]) -> Icd10Out:
    return _icd_out(icd10.lookup(code, field="code"), _locale(request))

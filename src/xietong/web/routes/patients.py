"""The patient index's JSON API: /api/v1/patients (registration, search, detail, reveal,
demographic updates, merges, counts for authorities) and /api/v1/grants.

Who may do what is decided in :mod:`xietong.patients` (access.py and the services); these
routes parse, call one use case and answer. A platform admin states the break-glass reason
in the ``X-Access-Reason`` header (UTF-8, percent-encoded when it is not ASCII).
"""

from __future__ import annotations

from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response

from xietong.core.errors import N_, Invalid
from xietong.core.validation import MAX_ID, has_control_characters
from xietong.patients import grants as grant_service
from xietong.patients import merge as merge_service
from xietong.patients import registration, search, service
from xietong.patients.models import ChartGrant
from xietong.patients.schemas import (
    GrantIn,
    GrantOut,
    MergeIn,
    MergeOut,
    PatientDetail,
    PatientIn,
    PatientPage,
    PatientSearchIn,
    PatientStatsOut,
    PatientUpdateIn,
    RegistrationOut,
    UndoMergeIn,
)
from xietong.patients.views import (
    grant_out,
    merge_out,
    near_match_out,
    patient_detail,
    patient_summaries,
)
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services

router = APIRouter(prefix="/api/v1", tags=["patients"], dependencies=[Depends(current_principal)])

PatientId = Annotated[int, Path(ge=1, le=MAX_ID)]
MergeId = Annotated[int, Path(ge=1, le=MAX_ID)]
GrantId = Annotated[int, Path(ge=1, le=MAX_ID)]
REASON_HEADER = "x-access-reason"


def access_reason(
    x_access_reason: Annotated[str | None, Header(max_length=1500)] = None,
) -> str | None:
    """The break-glass reason of a platform admin, from the ``X-Access-Reason`` header
    (UTF-8; percent-encoded or raw)."""
    if x_access_reason is None:
        return None
    try:
        # Raw UTF-8 bytes arrive decoded as Latin-1; percent-encoded text is decoded too.
        raw = x_access_reason.encode("latin-1").decode("utf-8")
        text = unquote(raw, errors="strict").strip()
    except UnicodeError:
        text = "\x00"  # refused below
    if has_control_characters(text) or len(text) > 500:
        raise Invalid(
            N_("A value is not valid."), code="access_reason_invalid", field=REASON_HEADER
        )
    return text or None


Reason = Annotated[str | None, Depends(access_reason)]


# Patients ----------------------------------------------------------------------------------


@router.post("/patients", response_model=RegistrationOut, status_code=201)
def register_patient(
    body: PatientIn,
    request: Request,
    response: Response,
    session: DbSession,
    principal: CurrentPrincipal,
) -> RegistrationOut:
    """Register a patient: 201 when a new record was made, 200 (``created: false``) when
    the numbers (or the confirmed near match, or the client request id) name an existing
    patient, who is then linked to the principal's institution."""
    result = registration.register_patient(session, principal, services(request).pii, body)
    if not result.created:
        response.status_code = 200
    return RegistrationOut(
        created=result.created,
        patient=patient_summaries(session, [result.patient])[0],
        near_matches=near_match_out(session, result.near_matches),
    )


@router.get("/patients", response_model=PatientPage)
def search_patients(
    query: Annotated[PatientSearchIn, Query()],
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: Reason,
) -> PatientPage:
    """Patients the principal can open that match every criterion given (masked)."""
    found = search.search_patients(session, principal, services(request).pii, query, reason=reason)
    return PatientPage(
        items=patient_summaries(session, found.patients),
        total=found.total,
        limit=query.limit,
        offset=query.offset,
    )


@router.get("/patients/stats", response_model=PatientStatsOut)
def patient_stats(session: DbSession, principal: CurrentPrincipal) -> PatientStatsOut:
    """Authorities: patients registered in their jurisdiction, by institution level."""
    return service.patient_counts(session, principal)


@router.post("/patients/merges", response_model=MergeOut, status_code=201)
def merge_patients(body: MergeIn, session: DbSession, principal: CurrentPrincipal) -> MergeOut:
    """Merge ``merged_id`` into ``survivor_id`` (a platform admin's reason is the merge's)."""
    return merge_out(merge_service.merge_patients(session, principal, body))


@router.get("/patients/merges/{merge_id}", response_model=MergeOut)
def get_merge(
    merge_id: MergeId, session: DbSession, principal: CurrentPrincipal, reason: Reason
) -> MergeOut:
    return merge_out(merge_service.get_merge(session, principal, merge_id, reason=reason))


@router.post("/patients/merges/{merge_id}/undo", response_model=MergeOut)
def undo_merge(
    merge_id: MergeId, body: UndoMergeIn, session: DbSession, principal: CurrentPrincipal
) -> MergeOut:
    return merge_out(merge_service.undo_merge(session, principal, merge_id, body))


@router.get("/patients/{patient_id}", response_model=PatientDetail)
def get_patient(
    patient_id: PatientId,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: Reason,
    reveal: bool = False,
) -> PatientDetail:
    """The patient, masked; ``reveal=true`` shows full numbers (audited)."""
    pii = services(request).pii
    return service.get_patient(session, principal, pii, patient_id, reveal=reveal, reason=reason)


@router.patch("/patients/{patient_id}", response_model=PatientDetail)
def update_patient(
    patient_id: PatientId,
    body: PatientUpdateIn,
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
    reason: Reason,
) -> PatientDetail:
    pii = services(request).pii
    done = service.update_patient(session, principal, pii, patient_id, body, reason=reason)
    return patient_detail(
        session,
        done.patient,
        done.chart,
        can_reveal=service.may_reveal(done.chart),
        can_edit=service.may_edit(done.chart),
    )


@router.get("/patients/{patient_id}/merges", response_model=list[MergeOut])
def list_merges(
    patient_id: PatientId, session: DbSession, principal: CurrentPrincipal, reason: Reason
) -> list[MergeOut]:
    rows = merge_service.merges_of_patient(session, principal, patient_id, reason=reason)
    return [merge_out(m) for m in rows]


@router.get("/patients/{patient_id}/grants", response_model=list[GrantOut])
def list_grants(
    patient_id: PatientId, session: DbSession, principal: CurrentPrincipal, reason: Reason
) -> list[GrantOut]:
    rows = grant_service.grants_of_patient(session, principal, patient_id, reason=reason)
    return [_grant(session, g) for g in rows]


# Grants ------------------------------------------------------------------------------------


def _grant(session: DbSession, grant: ChartGrant) -> GrantOut:
    items = [(i.kind, i.id) for i in grant_service.grant_items(session, grant.id)]
    return grant_out(grant, items, grant_service.is_active(grant))


@router.post("/grants", response_model=GrantOut, status_code=201)
def create_grant(body: GrantIn, session: DbSession, principal: CurrentPrincipal) -> GrantOut:
    """Share the chart (records of the principal's institution) or chosen items."""
    return _grant(session, grant_service.create_grant(session, principal, body))


@router.get("/grants/{grant_id}", response_model=GrantOut)
def get_grant(
    grant_id: GrantId, session: DbSession, principal: CurrentPrincipal, reason: Reason
) -> GrantOut:
    return _grant(session, grant_service.get_grant(session, principal, grant_id, reason=reason))


@router.delete("/grants/{grant_id}", response_model=GrantOut)
def revoke_grant(grant_id: GrantId, session: DbSession, principal: CurrentPrincipal) -> GrantOut:
    """Revoke: the granting user, staff of the granting institution, or a platform admin."""
    return _grant(session, grant_service.revoke_grant(session, principal, grant_id))

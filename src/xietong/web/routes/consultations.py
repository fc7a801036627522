"""The consultation JSON API under /api/v1/consultations: create (and submit), read, lists
(the applicant's institution, the centre's inbox, the expert's worklist), every transition
as ``POST /{id}/{action}``, opinions, the signed report and its versions, the rating and
the expert recommendation, the proposed live-session times. Who may do what is decided in
:mod:`xietong.consultation.service`; these routes parse, call one use case and answer.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.config import ConsultationSettings
from xietong.consultation import service as svc
from xietong.consultation.models import STATES, Consultation, ConsultationOpinion
from xietong.consultation.schemas import (
    AcceptIn,
    AmendIn,
    ConsultationIn,
    ConsultationOut,
    ConsultationPage,
    NoteIn,
    OpinionIn,
    OpinionOut,
    OptionalNoteIn,
    RateIn,
    RecommendationOut,
    ReportIn,
    ReportOut,
    ResubmitIn,
    ScheduleIn,
    SessionTimesOut,
)
from xietong.consultation.service import session_times as times
from xietong.core.validation import MAX_ID, StrictModel
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services
from xietong.web.report_pdf import pdf_response

router = APIRouter(
    prefix="/api/v1/consultations",
    tags=["consultations"],
    dependencies=[Depends(current_principal)],
)

ConsultationId = Annotated[int, Path(ge=1, le=MAX_ID)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$"),
]
State = Literal[STATES]  # type: ignore[valid-type]


def _settings(request: Request) -> ConsultationSettings:
    return services(request).settings.consultation


Settings = Annotated[ConsultationSettings, Depends(_settings)]


class ListParams(StrictModel):
    view: Literal["applicant", "inbox", "worklist"] = "applicant"
    state: State | None = None
    limit: int = Field(default=50, ge=1, le=svc.MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class SessionTimesParams(StrictModel):
    duration: int = Field(
        default=times.DEFAULT_DURATION, ge=times.MIN_DURATION, le=times.MAX_DURATION
    )
    limit: int = Field(default=times.DEFAULT_LIMIT, ge=1, le=times.MAX_PROPOSALS)


def _out(session: Session, principal: Principal, c: Consultation) -> dict[str, Any]:
    return svc.consultation_out(session, svc.Opened(c, *svc.parts_of(session, principal, c)))


@router.post("", response_model=ConsultationOut, status_code=201)
def create_consultation(
    body: ConsultationIn,
    session: DbSession,
    principal: CurrentPrincipal,
    settings: Settings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """201 for a new consultation; 200 with the first one for a retry of the same key."""
    created = svc.create_consultation(
        session, principal, body, settings, idempotency_key=idempotency_key
    )
    response.status_code = 201 if created.created else 200
    response.headers["Location"] = f"/api/v1/consultations/{created.consultation.id}"
    return _out(session, principal, created.consultation)


@router.get("", response_model=ConsultationPage)
def list_consultations(
    params: Annotated[ListParams, Query()], session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    rows, total = svc.list_consultations(
        session,
        principal,
        params.view,
        state=params.state,
        limit=params.limit,
        offset=params.offset,
    )
    return {
        "items": svc.summaries_out(session, rows),
        "total": total,
        "limit": params.limit,
        "offset": params.offset,
    }


@router.get("/{consultation_id}", response_model=ConsultationOut)
def get_consultation(
    consultation_id: ConsultationId, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    return svc.consultation_out(session, svc.get_consultation(session, principal, consultation_id))


@router.post("/{consultation_id}/submit", response_model=ConsultationOut)
def submit(
    consultation_id: ConsultationId,
    session: DbSession,
    principal: CurrentPrincipal,
    settings: Settings,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    c = svc.submit(session, principal, consultation_id, settings, idempotency_key=idempotency_key)
    return _out(session, principal, c)


@router.post("/{consultation_id}/resubmit", response_model=ConsultationOut)
def resubmit(
    consultation_id: ConsultationId,
    body: ResubmitIn,
    session: DbSession,
    principal: CurrentPrincipal,
    settings: Settings,
) -> dict[str, Any]:
    c = svc.resubmit(session, principal, consultation_id, body, settings)
    return _out(session, principal, c)


@router.post("/{consultation_id}/accept", response_model=ConsultationOut)
def accept(
    consultation_id: ConsultationId,
    body: AcceptIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    return _out(session, principal, svc.accept(session, principal, consultation_id, body))


@router.post("/{consultation_id}/return", response_model=ConsultationOut)
def return_for_information(
    consultation_id: ConsultationId, body: NoteIn, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    c = svc.simple_action(session, principal, consultation_id, "return", body.note)
    return _out(session, principal, c)


@router.post("/{consultation_id}/reject", response_model=ConsultationOut)
def reject(
    consultation_id: ConsultationId, body: NoteIn, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    c = svc.simple_action(session, principal, consultation_id, "reject", body.note)
    return _out(session, principal, c)


@router.post("/{consultation_id}/cancel", response_model=ConsultationOut)
def cancel(
    consultation_id: ConsultationId,
    body: OptionalNoteIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    c = svc.simple_action(session, principal, consultation_id, "cancel", body.note)
    return _out(session, principal, c)


@router.post("/{consultation_id}/schedule", response_model=ConsultationOut)
def schedule(
    consultation_id: ConsultationId,
    body: ScheduleIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    return _out(session, principal, svc.schedule(session, principal, consultation_id, body))


@router.post("/{consultation_id}/reschedule", response_model=ConsultationOut)
def reschedule(
    consultation_id: ConsultationId,
    body: ScheduleIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    c = svc.schedule(session, principal, consultation_id, body, action="reschedule")
    return _out(session, principal, c)


@router.post("/{consultation_id}/start", response_model=ConsultationOut)
def start(
    consultation_id: ConsultationId, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    return _out(session, principal, svc.start(session, principal, consultation_id))


@router.put("/{consultation_id}/opinions/mine", response_model=OpinionOut)
def write_opinion(
    consultation_id: ConsultationId,
    body: OpinionIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> ConsultationOpinion:
    return svc.write_opinion(session, principal, consultation_id, body)


@router.get("/{consultation_id}/opinions", response_model=list[OpinionOut])
def list_opinions(
    consultation_id: ConsultationId, session: DbSession, principal: CurrentPrincipal
) -> list[ConsultationOpinion]:
    return svc.opinions(session, principal, consultation_id)


@router.post("/{consultation_id}/sign", response_model=ReportOut, status_code=201)
def sign(
    consultation_id: ConsultationId,
    body: ReportIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Any:
    return svc.sign_report(session, principal, consultation_id, body)


@router.post("/{consultation_id}/amend", response_model=ReportOut, status_code=201)
def amend(
    consultation_id: ConsultationId,
    body: AmendIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Any:
    return svc.amend_report(session, principal, consultation_id, body)


@router.get("/{consultation_id}/reports", response_model=list[ReportOut])
def list_reports(
    consultation_id: ConsultationId, session: DbSession, principal: CurrentPrincipal
) -> Any:
    return svc.reports(session, principal, consultation_id)


@router.get(
    "/{consultation_id}/reports/{version}/pdf",
    response_class=Response,
    responses={200: {"content": {"application/pdf": {}}, "description": "The signed version"}},
)
def report_pdf(
    consultation_id: ConsultationId,
    version: Annotated[int, Path(ge=1, le=MAX_ID)],
    request: Request,
    session: DbSession,
    principal: CurrentPrincipal,
) -> Response:
    """One signed version as a printable PDF with the institutions' letterhead, in the
    user's locale; 409 ``no_report`` before signing, 404 naming ``version`` for a version
    never signed."""
    return pdf_response(request, svc.printable_report(session, principal, consultation_id, version))


@router.post("/{consultation_id}/complete", response_model=ConsultationOut)
def complete(
    consultation_id: ConsultationId, body: RateIn, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    return _out(session, principal, svc.complete(session, principal, consultation_id, body))


@router.get("/{consultation_id}/recommendations", response_model=list[RecommendationOut])
def recommendations(
    consultation_id: ConsultationId, session: DbSession, principal: CurrentPrincipal
) -> Any:
    return svc.recommend_experts(session, principal, consultation_id)


@router.get("/{consultation_id}/session-times", response_model=SessionTimesOut)
def session_times(
    consultation_id: ConsultationId,
    params: Annotated[SessionTimesParams, Query()],
    session: DbSession,
    principal: CurrentPrincipal,
    settings: Settings,
) -> Any:
    """Proposed live-session times (``duration`` minutes, at most ``limit``) from the
    assigned experts' weekly availability and their other live sessions."""
    return svc.propose_session_times(
        session,
        principal,
        consultation_id,
        settings,
        duration_minutes=params.duration,
        limit=params.limit,
    )

"""The referral JSON API under /api/v1/referrals: send an up or exam referral (optionally
booking a slot), send a patient back down, read one and its closed loop, the lists of each
party, every transition as ``POST /{id}/{action}``, the examination report and decision,
and follow-ups. Who may do what is decided in :mod:`xietong.referral.service`."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Header, Path, Query, Request, Response
from pydantic import Field
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.config import ReferralSettings
from xietong.core.validation import MAX_ID, StrictModel
from xietong.referral import service as svc
from xietong.referral.models import KINDS, STATES, Referral
from xietong.referral.schemas import (
    AcceptIn,
    ChainOut,
    DecisionIn,
    DownReferralIn,
    ExamReportIn,
    FollowUpIn,
    FollowUpOut,
    NoteIn,
    OptionalNoteIn,
    ReferralIn,
    ReferralOut,
    ReferralPage,
    ResubmitIn,
)
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services

router = APIRouter(
    prefix="/api/v1/referrals", tags=["referrals"], dependencies=[Depends(current_principal)]
)

ReferralId = Annotated[int, Path(ge=1, le=MAX_ID)]
FollowUpId = Annotated[int, Path(ge=1, le=MAX_ID)]
IdempotencyKey = Annotated[
    str | None,
    Header(alias="Idempotency-Key", min_length=1, max_length=64, pattern=r"^[\x21-\x7e]+$"),
]


def _settings(request: Request) -> ReferralSettings:
    return services(request).settings.referral


Settings = Annotated[ReferralSettings, Depends(_settings)]


class ListParams(StrictModel):
    view: Literal["sent", "inbox", "worklist"] = "sent"
    kind: Literal[KINDS] | None = None  # type: ignore[valid-type]
    state: Literal[STATES] | None = None  # type: ignore[valid-type]
    limit: int = Field(default=50, ge=1, le=svc.MAX_LIMIT)
    offset: int = Field(default=0, ge=0, le=1_000_000)


def _out(session: Session, principal: Principal, r: Referral) -> dict[str, Any]:
    return svc.referral_out(session, svc.Opened(r, svc.parts_of(principal, r)))


def _created(
    session: Session, principal: Principal, created: svc.Created, response: Response
) -> dict[str, Any]:
    response.status_code = 201 if created.created else 200
    response.headers["Location"] = f"/api/v1/referrals/{created.referral.id}"
    return _out(session, principal, created.referral)


@router.post("", response_model=ReferralOut, status_code=201)
def create_referral(
    body: ReferralIn,
    session: DbSession,
    principal: CurrentPrincipal,
    settings: Settings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """An up or exam referral; 201, or 200 with the first one for a retried key."""
    created = svc.create_referral(
        session, principal, body, settings, idempotency_key=idempotency_key
    )
    return _created(session, principal, created, response)


@router.post("/down", response_model=ReferralOut, status_code=201)
def create_down(
    body: DownReferralIn,
    session: DbSession,
    principal: CurrentPrincipal,
    settings: Settings,
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> dict[str, Any]:
    """Send the patient back down with a discharge summary and rehabilitation plan."""
    created = svc.create_down(session, principal, body, settings, idempotency_key=idempotency_key)
    return _created(session, principal, created, response)


@router.get("", response_model=ReferralPage)
def list_referrals(
    params: Annotated[ListParams, Query()], session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    rows, total = svc.list_referrals(
        session,
        principal,
        params.view,
        kind=params.kind,
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


@router.get("/{referral_id}", response_model=ReferralOut)
def get_referral(
    referral_id: ReferralId, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    return svc.referral_out(session, svc.get_referral(session, principal, referral_id))


@router.get("/{referral_id}/chain", response_model=ChainOut)
def chain(referral_id: ReferralId, session: DbSession, principal: CurrentPrincipal) -> Any:
    """The closed loop: consultation → up-referral → exam → down-referral → follow-ups."""
    return svc.chain(session, principal, referral_id)


@router.post("/{referral_id}/accept", response_model=ReferralOut)
def accept(
    referral_id: ReferralId, body: AcceptIn, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    """The receiving desk accepts (booking ``slot_id`` when none is booked); a
    down-referral is accepted by the lower institution (no slot)."""
    return _out(session, principal, svc.accept(session, principal, referral_id, body))


@router.post("/{referral_id}/resubmit", response_model=ReferralOut)
def resubmit(
    referral_id: ReferralId,
    body: ResubmitIn,
    session: DbSession,
    principal: CurrentPrincipal,
    settings: Settings,
) -> dict[str, Any]:
    return _out(session, principal, svc.resubmit(session, principal, referral_id, body, settings))


def _noted(
    action: Literal["return", "reject"],
) -> Any:
    def route(
        referral_id: ReferralId, body: NoteIn, session: DbSession, principal: CurrentPrincipal
    ) -> dict[str, Any]:
        r = svc.simple_action(session, principal, referral_id, action, body.note)
        return _out(session, principal, r)

    return route


def _optional(action: Literal["cancel", "start", "complete", "no_show"]) -> Any:
    def route(
        referral_id: ReferralId,
        session: DbSession,
        principal: CurrentPrincipal,
        body: OptionalNoteIn | None = None,
    ) -> dict[str, Any]:
        note = body.note if body else ""
        r = svc.simple_action(session, principal, referral_id, action, note)
        return _out(session, principal, r)

    return route


for _action in ("return", "reject"):
    router.add_api_route(
        f"/{{referral_id}}/{_action}",
        _noted(_action),
        methods=["POST"],
        response_model=ReferralOut,
        name=_action,
        summary=f"{_action.capitalize()} (a note is required)",
    )
for _action in ("cancel", "start", "complete", "no_show"):
    router.add_api_route(
        f"/{{referral_id}}/{_action}",
        _optional(_action),  # type: ignore[arg-type]
        methods=["POST"],
        response_model=ReferralOut,
        name=_action,
        summary=f"{_action.replace('_', ' ').capitalize()} (an optional note)",
    )


@router.post("/{referral_id}/check-in", response_model=ReferralOut)
def check_in(
    referral_id: ReferralId,
    session: DbSession,
    principal: CurrentPrincipal,
    body: OptionalNoteIn | None = None,
) -> dict[str, Any]:
    r = svc.check_in(session, principal, referral_id, body.note if body else "")
    return _out(session, principal, r)


@router.post("/{referral_id}/report", response_model=ReferralOut)
def report(
    referral_id: ReferralId, body: ExamReportIn, session: DbSession, principal: CurrentPrincipal
) -> dict[str, Any]:
    """Attach the examination report (a document of the patient at the receiving
    institution); it is shared back with the sender."""
    return _out(session, principal, svc.attach_report(session, principal, referral_id, body))


@router.post("/{referral_id}/decide", response_model=ReferralOut)
def decide(
    referral_id: ReferralId,
    body: DecisionIn,
    session: DbSession,
    principal: CurrentPrincipal,
    settings: Settings,
) -> dict[str, Any]:
    return _out(session, principal, svc.decide(session, principal, referral_id, body, settings))


@router.post("/{referral_id}/follow-ups/{follow_up_id}", response_model=FollowUpOut)
def record_follow_up(
    referral_id: ReferralId,
    follow_up_id: FollowUpId,
    body: FollowUpIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> dict[str, Any]:
    row = svc.record_follow_up(session, principal, referral_id, follow_up_id, body)
    return {
        "id": row.id,
        "due_date": row.due_date,
        "purpose": row.purpose,
        "status": row.status,
        "overdue": svc.is_overdue(row),
        "done_at": row.done_at,
        "note": row.note,
    }

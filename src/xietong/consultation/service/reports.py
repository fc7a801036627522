"""The experts' work: opinions (one each, editable until the report is signed), the lead's
signed report and its amendments, and the applicant's confirmation with a rating."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.consultation import workflow as wf
from xietong.consultation.models import (
    Consultation,
    ConsultationOpinion,
    ConsultationReport,
)
from xietong.consultation.schemas import AmendIn, OpinionIn, RateIn, ReportIn
from xietong.consultation.service.common import open_consultation, record_breach, transition
from xietong.consultation.service.requests import guard_context
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, Invalid
from xietong.core.validation import as_utc
from xietong.directory.models import Institution

OPINION_STATES = ("in_progress",)


def write_opinion(
    session: Session, principal: Principal, consultation_id: int, data: OpinionIn
) -> ConsultationOpinion:
    """An assigned expert writes or rewrites their opinion while the consultation is in
    progress (403 for anyone else who sees it; 409 in any other state)."""
    opened = open_consultation(
        session, principal, consultation_id, action="consultation.opinion", audit_success=False
    )
    c = opened.consultation
    if opened.assignment is None or wf.EXPERT not in opened.roles:
        audit.record_denial(
            session, principal, "consultation.opinion", "consultation", c.id, reason="role"
        )
        raise Forbidden(code="role_not_allowed", field=None)
    if c.state not in OPINION_STATES:
        raise Conflict(
            N_("Opinions are written while the consultation is in progress."),
            code="opinion_closed",
            field="state",
        )
    opinion = session.execute(
        select(ConsultationOpinion).where(
            ConsultationOpinion.consultation_id == c.id,
            ConsultationOpinion.practitioner_id == opened.assignment.practitioner_id,
        )
    ).scalar_one_or_none()
    if opinion is None:
        opinion = ConsultationOpinion(
            consultation_id=c.id,
            practitioner_id=opened.assignment.practitioner_id,
            author_user_id=principal.uid,
            text=data.text,
            created_at=now(),
            updated_at=now(),
            version=1,
        )
        session.add(opinion)
    else:
        opinion.text = data.text
        opinion.updated_at = now()
        opinion.version += 1
        opinion.author_user_id = principal.uid
    session.flush()
    audit.record(
        session,
        principal,
        "consultation.opinion",
        object_kind="consultation",
        object_id=c.id,
        detail={"opinion_id": opinion.id, "version": opinion.version},
    )
    return opinion


def opinions(
    session: Session, principal: Principal, consultation_id: int
) -> list[ConsultationOpinion]:
    opened = open_consultation(
        session, principal, consultation_id, action="consultation.opinions.read"
    )
    return list(
        session.execute(
            select(ConsultationOpinion)
            .where(ConsultationOpinion.consultation_id == opened.consultation.id)
            .order_by(ConsultationOpinion.id)
        ).scalars()
    )


def canonical_content(c: Consultation, version: int, data: ReportIn) -> str:
    """The signed content as canonical JSON (sorted keys, no spaces, UTF-8)."""
    content: dict[str, Any] = {
        "consultation_id": c.id,
        "version": version,
        "impression": data.impression,
        "recommendations": data.recommendations,
        "referral_recommended": data.referral_recommended,
        "referral_institution_id": data.referral_institution_id,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def content_hash(c: Consultation, version: int, data: ReportIn) -> str:
    return hashlib.sha256(canonical_content(c, version, data).encode("utf-8")).hexdigest()


def _check_referral(session: Session, data: ReportIn) -> None:
    if data.referral_institution_id is None:
        return
    if not data.referral_recommended:
        raise Invalid(
            N_("A referral target goes with a referral recommendation."),
            code="referral_not_recommended",
            field="referral_institution_id",
        )
    inst = session.get(Institution, data.referral_institution_id)
    if inst is None or not inst.is_active:
        raise Invalid(
            N_("No institution has this id."),
            code="institution_not_found",
            field="referral_institution_id",
        )


def _latest(session: Session, consultation_id: int) -> ConsultationReport | None:
    return session.execute(
        select(ConsultationReport)
        .where(ConsultationReport.consultation_id == consultation_id)
        .order_by(ConsultationReport.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def sign_report(
    session: Session, principal: Principal, consultation_id: int, data: ReportIn
) -> ConsultationReport:
    """The lead signs, once every assigned expert's opinion is in: version 1, frozen."""
    opened = open_consultation(
        session, principal, consultation_id, action="consultation.sign", audit_success=False
    )
    c = opened.consultation
    ctx = guard_context(session, c)
    wf.WORKFLOW.apply(c.state, "sign", opened.roles, ctx)
    _check_referral(session, data)
    late = c.report_deadline is not None and now() > as_utc(c.report_deadline)
    transition(
        session, principal, opened, "sign", values={"report_signed_at": now()}, guard_subject=ctx
    )
    report = _write(session, principal, opened.assignment, c, 1, data, None, "")
    if late:
        record_breach(session, c, "report", principal.user_id)
    return report


def amend_report(
    session: Session, principal: Principal, consultation_id: int, data: AmendIn
) -> ConsultationReport:
    """The lead signs a new version; earlier versions stay as they were."""
    opened = open_consultation(
        session, principal, consultation_id, action="consultation.amend", audit_success=False
    )
    c = opened.consultation
    ctx = guard_context(session, c)
    wf.WORKFLOW.apply(c.state, "amend", opened.roles, ctx)
    _check_referral(session, data)
    previous = _latest(session, c.id)
    if previous is None:  # cannot happen: report_signed has a version 1
        raise Conflict(code="transition_not_allowed", field="action")
    transition(session, principal, opened, "amend", note=data.reason, guard_subject=ctx)
    return _write(
        session,
        principal,
        opened.assignment,
        c,
        previous.version + 1,
        data,
        previous.id,
        data.reason,
    )


def _write(
    session: Session,
    principal: Principal,
    assignment: Any,
    c: Consultation,
    version: int,
    data: ReportIn,
    amended_from: int | None,
    reason: str,
) -> ConsultationReport:
    report = ConsultationReport(
        consultation_id=c.id,
        version=version,
        impression=data.impression,
        recommendations=data.recommendations,
        referral_recommended=data.referral_recommended,
        referral_institution_id=data.referral_institution_id,
        amendment_reason=reason,
        amended_from_id=amended_from,
        signed_by_user_id=principal.uid,
        signed_by_practitioner_id=assignment.practitioner_id,
        signed_at=now(),
        content_sha256=content_hash(c, version, data),
    )
    session.add(report)
    session.flush()
    audit.record(
        session,
        principal,
        "consultation.report.sign",
        object_kind="consultation",
        object_id=c.id,
        detail={"report_id": report.id, "version": version, "sha256": report.content_sha256},
    )
    return report


def reports(
    session: Session, principal: Principal, consultation_id: int
) -> list[ConsultationReport]:
    """Every signed version, newest first."""
    opened = open_consultation(
        session, principal, consultation_id, action="consultation.reports.read"
    )
    return list(
        session.execute(
            select(ConsultationReport)
            .where(ConsultationReport.consultation_id == opened.consultation.id)
            .order_by(ConsultationReport.version.desc())
        ).scalars()
    )


def complete(
    session: Session, principal: Principal, consultation_id: int, data: RateIn
) -> Consultation:
    """The applicant confirms the report and rates it: completed."""
    opened = open_consultation(
        session, principal, consultation_id, action="consultation.complete", audit_success=False
    )
    transition(
        session,
        principal,
        opened,
        "complete",
        note=data.comment,
        values={"rating": data.rating, "rating_comment": data.comment, "closed_at": now()},
    )
    return opened.consultation


def report_count(session: Session, consultation_id: int) -> int:
    return session.execute(
        select(func.count()).where(ConsultationReport.consultation_id == consultation_id)
    ).scalar_one()

"""The structured read report (ADR 0017): the lead radiologist signs it as preliminary;
the lead finalises it or a senior radiologist of the reading centre countersigns it, and it
is final; an amendment after final is the next version. Signed like the consultation
report: canonical JSON of the signed content, its SHA-256, versions that never change.

When a version becomes final the applicant is told (the consultation's notices), the
report shows in the patient's chart for the read's participants, and a DICOM SR of it is
stored with the first shared study (``read_sr``); the PDF is laid out by the web layer
from :func:`printable_read`.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.consultation import workflow as wf
from xietong.consultation.models import Consultation, ConsultationReadReport
from xietong.consultation.read_schemas import ReadAmendIn, ReadReportIn, SignOffIn
from xietong.consultation.read_templates import read_template
from xietong.consultation.service.common import Opened, record_breach, senior_practitioner
from xietong.consultation.service.common import transition as move
from xietong.consultation.service.printable import (
    InstitutionHeader,
    institution_header,
    paper_parties,
    practitioner_of,
)
from xietong.consultation.service.read_sr import store_sr
from xietong.consultation.service.reads import open_read, studies_of
from xietong.consultation.service.requests import guard_context
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, NotFound
from xietong.core.pii import PiiProtector
from xietong.core.storage import BlobStore
from xietong.core.validation import as_utc
from xietong.directory.models import Practitioner

FINAL_STATUSES = ("final", "amended")


@dataclass(frozen=True)
class Archive:
    """Where the final report's DICOM SR goes (the app's blob store and PII key)."""

    blobs: BlobStore
    pii: PiiProtector


def canonical_read_content(c: Consultation, version: int, data: ReadReportIn) -> str:
    """The signed content as canonical JSON (sorted keys, no spaces, UTF-8)."""
    template = read_template(data.template_key)
    content: dict[str, Any] = {
        "consultation_id": c.id,
        "version": version,
        "template_key": template.key,
        "modality": template.modality,
        "body_part": template.body_part,
        "technique": data.technique,
        "findings": data.findings,
        "impression": data.impression,
        "recommendation": data.recommendation,
        "critical_finding": data.critical_finding,
    }
    return json.dumps(content, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def read_content_hash(c: Consultation, version: int, data: ReadReportIn) -> str:
    return hashlib.sha256(canonical_read_content(c, version, data).encode("utf-8")).hexdigest()


def _latest(session: Session, read_id: int) -> ConsultationReadReport | None:
    return session.execute(
        select(ConsultationReadReport)
        .where(ConsultationReadReport.consultation_id == read_id)
        .order_by(ConsultationReadReport.version.desc())
        .limit(1)
    ).scalar_one_or_none()


def _write(
    session: Session,
    principal: Principal,
    opened: Opened,
    version: int,
    data: ReadReportIn,
    *,
    status: str,
    amended_from: int | None = None,
    reason: str = "",
) -> ConsultationReadReport:
    c = opened.consultation
    template = read_template(data.template_key)
    assert opened.assignment is not None  # noqa: S101 - the lead part implies it
    report = ConsultationReadReport(
        consultation_id=c.id,
        version=version,
        status=status,
        modality=template.modality,
        body_part=template.body_part,
        template_key=template.key,
        technique=data.technique,
        findings=data.findings,
        impression=data.impression,
        recommendation=data.recommendation,
        critical_finding=data.critical_finding,
        amendment_reason=reason,
        amended_from_id=amended_from,
        signed_by_user_id=principal.uid,
        signed_by_practitioner_id=opened.assignment.practitioner_id,
        signed_at=now(),
        finalised_at=now() if status != "preliminary" else None,
        content_sha256=read_content_hash(c, version, data),
    )
    session.add(report)
    session.flush()
    audit.record(
        session,
        principal,
        "read.report.sign",
        object_kind="consultation",
        object_id=c.id,
        detail={
            "report_id": report.id,
            "version": version,
            "status": status,
            "sha256": report.content_sha256,
        },
    )
    return report


def sign_preliminary(
    session: Session, principal: Principal, read_id: int, data: ReadReportIn
) -> ConsultationReadReport:
    """The lead radiologist signs the structured report as preliminary (version 1)."""
    opened = open_read(
        session, principal, read_id, action="read.sign_preliminary", audit_success=False
    )
    c = opened.consultation
    ctx = guard_context(session, c)
    wf.WORKFLOW.apply(c.state, "sign_preliminary", opened.roles, ctx)
    read_template(data.template_key)
    move(session, principal, opened, "sign_preliminary", guard_subject=ctx)
    return _write(session, principal, opened, 1, data, status="preliminary")


def finalise(
    session: Session, principal: Principal, read_id: int, data: SignOffIn, archive: Archive
) -> ConsultationReadReport:
    """The lead makes the preliminary report final."""
    return _sign_off(session, principal, read_id, "finalise", data, archive)


def countersign(
    session: Session, principal: Principal, read_id: int, data: SignOffIn, archive: Archive
) -> ConsultationReadReport:
    """A senior radiologist of the reading centre countersigns: the report is final. The
    radiologist who signed the preliminary report does not countersign it (403)."""
    return _sign_off(session, principal, read_id, "countersign", data, archive)


def _sign_off(
    session: Session,
    principal: Principal,
    read_id: int,
    action: str,
    data: SignOffIn,
    archive: Archive,
) -> ConsultationReadReport:
    opened = open_read(session, principal, read_id, action=f"read.{action}", audit_success=False)
    c = opened.consultation
    ctx = guard_context(session, c)
    wf.WORKFLOW.apply(c.state, action, opened.roles, ctx)
    report = _latest(session, c.id)
    if report is None or report.status != "preliminary":  # cannot happen in "preliminary"
        raise Conflict(code="transition_not_allowed", field="action")
    senior: Practitioner | None = None
    if action == "countersign":
        if report.signed_by_user_id == principal.user_id:
            audit.record_denial(
                session, principal, "read.countersign", "consultation", c.id, reason="own_report"
            )
            raise Forbidden(
                N_("A report is countersigned by another radiologist than its author."),
                code="own_report",
                field="action",
            )
        senior = senior_practitioner(session, principal.uid)
    late = c.report_deadline is not None and now() > as_utc(c.report_deadline)
    move(
        session,
        principal,
        opened,
        action,
        note=data.note,
        values={"report_signed_at": now()},
        guard_subject=ctx,
    )
    report.status = "final"
    report.finalised_at = now()
    if senior is not None:
        report.countersigned_by_user_id = principal.uid
        report.countersigned_by_practitioner_id = senior.id
        report.countersigned_at = now()
    session.flush()
    audit.record(
        session,
        principal,
        f"read.report.{action}",
        object_kind="consultation",
        object_id=c.id,
        detail={"report_id": report.id, "version": report.version},
    )
    _archive(session, c, report, archive)
    if late:
        record_breach(session, c, "report", principal.user_id)
    return report


def amend_read(
    session: Session, principal: Principal, read_id: int, data: ReadAmendIn, archive: Archive
) -> ConsultationReadReport:
    """The lead signs a new final version; earlier versions stay as they were."""
    opened = open_read(session, principal, read_id, action="read.amend", audit_success=False)
    c = opened.consultation
    ctx = guard_context(session, c)
    wf.WORKFLOW.apply(c.state, "amend_read", opened.roles, ctx)
    read_template(data.template_key)
    previous = _latest(session, c.id)
    if previous is None:  # cannot happen: report_signed has a version 1
        raise Conflict(code="transition_not_allowed", field="action")
    move(session, principal, opened, "amend_read", note=data.reason, guard_subject=ctx)
    report = _write(
        session,
        principal,
        opened,
        previous.version + 1,
        data,
        status="amended",
        amended_from=previous.id,
        reason=data.reason,
    )
    _archive(session, c, report, archive)
    return report


def _archive(
    session: Session, c: Consultation, report: ConsultationReadReport, archive: Archive
) -> None:
    """The final version as a DICOM SR with the read's first shared study."""
    studies = studies_of(session, c)
    if not studies:  # a read shares at least one study; one removed since is skipped
        return
    signer = practitioner_of(session, report.signed_by_practitioner_id).name
    verifier = (
        practitioner_of(session, report.countersigned_by_practitioner_id).name
        if report.countersigned_by_practitioner_id
        else signer
    )
    store_sr(
        session,
        archive.blobs,
        archive.pii,
        studies[0],
        report,
        institution=institution_header(session, c.target_institution_id).name,
        signer=signer,
        verifier=verifier,
    )


def read_reports(
    session: Session, principal: Principal, read_id: int
) -> list[ConsultationReadReport]:
    """Every signed version, newest first (the applicant sees the preliminary one too)."""
    opened = open_read(session, principal, read_id, action="read.reports.read")
    return list(
        session.execute(
            select(ConsultationReadReport)
            .where(ConsultationReadReport.consultation_id == opened.consultation.id)
            .order_by(ConsultationReadReport.version.desc())
        ).scalars()
    )


def final_reports(session: Session, read_ids: list[int]) -> dict[int, ConsultationReadReport]:
    """The newest final version of each read (for lists whose caller audited the read)."""
    if not read_ids:
        return {}
    rows = session.execute(
        select(ConsultationReadReport)
        .where(
            ConsultationReadReport.consultation_id.in_(read_ids),
            ConsultationReadReport.status.in_(FINAL_STATUSES),
        )
        .order_by(ConsultationReadReport.version)
    ).scalars()
    return {r.consultation_id: r for r in rows}


# The printable report ------------------------------------------------------------------


@dataclass(frozen=True)
class PrintableRead:
    read_id: int
    version: int
    status: str
    amendment_reason: str
    issuer: InstitutionHeader
    requester: InstitutionHeader
    applicant_name: str
    patient_name: str
    patient_sex: str
    patient_birth_date: date
    patient_age: int
    medical_record_number: str
    clinical_summary: str
    questions: str
    urgency: str
    studies: tuple[str, ...]  # "2026-11-20 CT 胸部平扫" lines
    modality: str
    body_part: str
    template_key: str
    technique: str
    findings: str
    impression: str
    recommendation: str
    critical_finding: bool
    signer_name: str
    signer_title: str
    signed_at: datetime
    countersigner_name: str
    countersigner_title: str
    countersigned_at: datetime | None
    finalised_at: datetime | None
    content_sha256: str
    sr_sop_instance_uid: str


def printable_read(
    session: Session, principal: Principal, read_id: int, version: int | None = None
) -> PrintableRead:
    """Version ``version`` (the latest when ``None``) for a participant: 409 ``no_report``
    before the first signature, 404 naming ``version`` for one never signed; audited."""
    action = "read.report_pdf"
    opened = open_read(session, principal, read_id, action=action, audit_success=False)
    c = opened.consultation
    versions = {
        r.version: r
        for r in session.execute(
            select(ConsultationReadReport).where(ConsultationReadReport.consultation_id == c.id)
        ).scalars()
    }
    if not versions:
        raise Conflict(N_("The read has no signed report yet."), code="no_report", field="version")
    report = versions[max(versions)] if version is None else versions.get(version)
    if report is None:
        raise NotFound(
            N_("The report has no version {version}."),
            code="report_version_not_found",
            field="version",
            params={"version": version},
        )
    signer = practitioner_of(session, report.signed_by_practitioner_id)
    counter = (
        practitioner_of(session, report.countersigned_by_practitioner_id)
        if report.countersigned_by_practitioner_id
        else None
    )
    printable = PrintableRead(
        read_id=c.id,
        version=report.version,
        status=report.status,
        amendment_reason=report.amendment_reason,
        **paper_parties(session, c, report.signed_at),
        clinical_summary=c.clinical_summary,
        questions=c.questions,
        urgency=c.urgency,
        studies=tuple(
            " ".join(
                part
                for part in (
                    s.study_date.isoformat() if s.study_date else "",
                    (s.modalities or "").replace("\\", "/"),
                    s.description,
                )
                if part
            )
            for s in studies_of(session, c)
        ),
        modality=report.modality,
        body_part=report.body_part,
        template_key=report.template_key,
        technique=report.technique,
        findings=report.findings,
        impression=report.impression,
        recommendation=report.recommendation,
        critical_finding=report.critical_finding,
        signer_name=signer.name,
        signer_title=signer.title,
        signed_at=as_utc(report.signed_at),
        countersigner_name=counter.name if counter else "",
        countersigner_title=counter.title if counter else "",
        countersigned_at=as_utc(report.countersigned_at) if report.countersigned_at else None,
        finalised_at=as_utc(report.finalised_at) if report.finalised_at else None,
        content_sha256=report.content_sha256,
        sr_sop_instance_uid=report.sr_sop_instance_uid,
    )
    audit.record(
        session,
        principal,
        action,
        object_kind="consultation",
        object_id=c.id,
        detail={"version": report.version, "report_id": report.id},
    )
    return printable

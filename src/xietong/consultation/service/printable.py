"""The printable report: one signed version of a consultation's report with everything its
paper copy carries (the institutions, the patient, the request, the experts and their
opinions, the signature), gathered for a participant and audited.

This module decides *who* may print *which* version and *what* goes on the paper; it
does not lay the paper out. Turning a :class:`PrintableReport` into PDF bytes (a Jinja2
template and weasyprint) is done by :mod:`xietong.web.report_pdf`, because the domain
packages import neither Jinja2 nor the web layer (the import-linter contract "Kernel and
domain services know nothing of HTTP"); the CLI or a job can call that renderer too, since
they sit above the web layer.

The patient's identity on the paper is the name, sex, birth date and age (at signing),
and the requesting institution's medical record number when it holds one. That number is
read from ``patient_identifier.value_masked``, which for a record number is the number
itself (an institution's own file number is shown in full wherever the patient is, see
docs/patients.md); nothing is decrypted, so no ``patient.reveal`` is involved. Resident ID,
passport and phone numbers are never printed.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import TypedDict

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.principal import Principal
from xietong.consultation.models import (
    Consultation,
    ConsultationAssignment,
    ConsultationOpinion,
    ConsultationReport,
)
from xietong.consultation.service.common import open_consultation
from xietong.core.errors import N_, Conflict, NotFound
from xietong.core.validation import as_utc
from xietong.directory.models import Institution, Practitioner
from xietong.identity.models import User
from xietong.patients.views import age_on
from xietong.patients.workflow_view import PatientCard, patient_card, record_number_at
from xietong.records.rules import CHINA_TZ

ACTION = "consultation.report_pdf"


@dataclass(frozen=True)
class InstitutionHeader:
    name: str
    name_en: str = ""
    address: str = ""
    phone: str = ""


@dataclass(frozen=True)
class PrintedExpert:
    name: str
    title: str  # a code of directory.titles
    department: str
    is_lead: bool
    opinion: str
    opinion_at: datetime | None


@dataclass(frozen=True)
class PrintableReport:
    consultation_id: int
    version: int
    latest_version: int
    amends_version: int | None
    amendment_reason: str
    # The receiving centre issues the report; the requesting institution asked for it.
    issuer: InstitutionHeader
    requester: InstitutionHeader
    applicant_name: str
    patient_name: str
    patient_sex: str  # GB/T 2261.1 code
    patient_birth_date: date
    patient_age: int  # on the signing day (China time)
    medical_record_number: str  # the requesting institution's, or ""
    purpose: str
    clinical_summary: str
    questions: str
    specialty: str  # a code of directory.specialties
    urgency: str
    mode: str
    submitted_at: datetime | None
    experts: tuple[PrintedExpert, ...]
    impression: str
    recommendations: str
    referral_recommended: bool
    referral_institution: str
    signer_name: str
    signer_title: str
    signed_at: datetime
    content_sha256: str


def printable_report(
    session: Session, principal: Principal, consultation_id: int, version: int | None = None
) -> PrintableReport:
    """Signed version ``version`` (the latest when ``None``) for a participant.

    404 ``consultation_not_found`` for anyone who may not see the consultation (audited as
    a denial of ``consultation.report_pdf``); 409 ``no_report`` before the first signature;
    404 ``report_version_not_found`` (field ``version``) for a version that was never
    signed. A successful read is audited with the version printed."""
    opened = open_consultation(
        session, principal, consultation_id, action=ACTION, audit_success=False
    )
    c = opened.consultation
    versions = list(
        session.execute(
            select(ConsultationReport)
            .where(ConsultationReport.consultation_id == c.id)
            .order_by(ConsultationReport.version)
        ).scalars()
    )
    if not versions:
        raise Conflict(
            N_("The consultation has no signed report yet."), code="no_report", field="version"
        )
    by_version = {r.version: r for r in versions}
    report = versions[-1] if version is None else by_version.get(version)
    if report is None:
        raise NotFound(
            N_("The report has no version {version}."),
            code="report_version_not_found",
            field="version",
            params={"version": version},
        )
    by_id = {r.id: r for r in versions}
    amended = by_id.get(report.amended_from_id) if report.amended_from_id else None

    signer = practitioner_of(session, report.signed_by_practitioner_id)
    printable = PrintableReport(
        consultation_id=c.id,
        version=report.version,
        latest_version=versions[-1].version,
        amends_version=amended.version if amended else None,
        amendment_reason=report.amendment_reason,
        **paper_parties(session, c, report.signed_at),
        purpose=c.purpose,
        clinical_summary=c.clinical_summary,
        questions=c.questions,
        specialty=c.specialty,
        urgency=c.urgency,
        mode=c.mode,
        submitted_at=c.submitted_at,
        experts=_experts(session, c.id),
        impression=report.impression,
        recommendations=report.recommendations,
        referral_recommended=report.referral_recommended,
        referral_institution=institution_header(session, report.referral_institution_id).name
        if report.referral_institution_id
        else "",
        signer_name=signer.name,
        signer_title=signer.title,
        signed_at=as_utc(report.signed_at),
        content_sha256=report.content_sha256,
    )
    audit.record(
        session,
        principal,
        ACTION,
        object_kind="consultation",
        object_id=c.id,
        detail={"version": report.version, "report_id": report.id},
    )
    return printable


class PaperParties(TypedDict):
    """What every printed report of a consultation (clinical or imaging read) names: the
    two institutions, the applicant and the patient (age on the signing day, China time)."""

    issuer: InstitutionHeader
    requester: InstitutionHeader
    applicant_name: str
    patient_name: str
    patient_sex: str
    patient_birth_date: date
    patient_age: int
    medical_record_number: str


def paper_parties(session: Session, c: Consultation, signed_at: datetime) -> PaperParties:
    patient = patient_of(session, c.patient_id)
    signed_day = as_utc(signed_at).astimezone(CHINA_TZ).date()
    return PaperParties(
        issuer=institution_header(session, c.target_institution_id),
        requester=institution_header(session, c.applicant_institution_id),
        applicant_name=user_name_of(session, c.applicant_user_id),
        patient_name=patient.name,
        patient_sex=patient.sex,
        patient_birth_date=patient.birth_date,
        patient_age=age_on(patient.birth_date, signed_day),
        medical_record_number=record_number_at(session, c.patient_id, c.applicant_institution_id),
    )


def patient_of(session: Session, patient_id: int) -> PatientCard:
    card = patient_card(session, patient_id)
    if card is None:  # cannot happen: a foreign key
        raise NotFound(code="patient_not_found", field="patient_id")
    return card


def institution_header(session: Session, institution_id: int | None) -> InstitutionHeader:
    inst = session.get(Institution, institution_id) if institution_id else None
    if inst is None:
        return InstitutionHeader(name="")
    return InstitutionHeader(
        name=inst.name, name_en=inst.name_en, address=inst.address, phone=inst.phone
    )


def user_name_of(session: Session, user_id: int) -> str:
    user = session.get(User, user_id)
    return user.display_name if user else ""


def practitioner_of(session: Session, practitioner_id: int) -> Practitioner:
    found = session.get(Practitioner, practitioner_id)
    if found is None:  # cannot happen: a foreign key
        raise NotFound(code="practitioner_not_found", field="practitioner_id")
    return found


def _experts(session: Session, consultation_id: int) -> tuple[PrintedExpert, ...]:
    """The assigned experts, the lead first, each with their opinion."""
    rows = session.execute(
        select(ConsultationAssignment, Practitioner, ConsultationOpinion)
        .join(Practitioner, Practitioner.id == ConsultationAssignment.practitioner_id)
        .outerjoin(
            ConsultationOpinion,
            (ConsultationOpinion.consultation_id == ConsultationAssignment.consultation_id)
            & (ConsultationOpinion.practitioner_id == ConsultationAssignment.practitioner_id),
        )
        .where(ConsultationAssignment.consultation_id == consultation_id)
        .order_by(ConsultationAssignment.is_lead.desc(), ConsultationAssignment.id)
    ).all()
    return tuple(
        PrintedExpert(
            name=prac.name,
            title=prac.title,
            department=prac.department.name if prac.department else "",
            is_lead=assignment.is_lead,
            opinion=opinion.text if opinion else "",
            opinion_at=as_utc(opinion.updated_at) if opinion else None,
        )
        for assignment, prac, opinion in rows
    )

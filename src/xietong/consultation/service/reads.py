"""Imaging reads (ADR 0017): a consultation of kind ``imaging_read``. Request, triage,
deadlines, grants, messages, notifications and history are the consultation's own code;
this module adds what differs: creating a read, opening one (a clinical consultation is not
a read: 404), the reading centre's worklist, and the studies a read shares."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import deny_not_found, require_roles
from xietong.access.principal import Principal
from xietong.config import ConsultationSettings
from xietong.consultation import workflow as wf
from xietong.consultation.models import Consultation, ConsultationAssignment
from xietong.consultation.read_schemas import ReadIn
from xietong.consultation.service.common import Opened, open_consultation, parts_of
from xietong.consultation.service.requests import Created, create_consultation
from xietong.core.validation import as_utc
from xietong.directory.models import Practitioner
from xietong.identity.roles import Role
from xietong.imaging.models import ImagingStudy
from xietong.imaging.service import ITEM_KIND as IMAGING_STUDY
from xietong.patients.workflow_view import patient_cards

# What the worklist shows by default: reads the centre still owes a final report on.
WORKLIST_STATES = ("submitted", "resubmitted", "accepted", "in_progress", "preliminary")
URGENCY_RANK = {"emergency": 0, "urgent": 1, "routine": 2}
MAX_WORKLIST = 2000
NON_IMAGE = frozenset({"SR", "KO", "PR", "DOC"})


def create_read(
    session: Session,
    principal: Principal,
    data: ReadIn,
    settings: ConsultationSettings,
    *,
    idempotency_key: str | None = None,
) -> Created:
    return create_consultation(
        session,
        principal,
        data.as_consultation(),
        settings,
        idempotency_key=idempotency_key,
        kind=wf.IMAGING_READ,
    )


def open_read(
    session: Session, principal: Principal, read_id: int, *, action: str, audit_success: bool = True
) -> Opened:
    """The read and the principal's parts; a consultation that is not a read is a 404 here,
    like an absent or hidden one (audited)."""
    opened = open_consultation(session, principal, read_id, action=action, audit_success=False)
    if opened.consultation.kind != wf.IMAGING_READ:
        raise deny_not_found(session, principal, action, "consultation", read_id, field="read_id")
    if audit_success:
        audit.record(session, principal, action, object_kind="consultation", object_id=read_id)
    return opened


def get_read(session: Session, principal: Principal, read_id: int) -> Opened:
    return open_read(session, principal, read_id, action="read.read")


def study_ids(c: Consultation) -> list[int]:
    return [int(str(i["id"])) for i in c.shared_items if i.get("kind") == IMAGING_STUDY]


def studies_of(session: Session, c: Consultation) -> list[ImagingStudy]:
    """The imaging studies the read shares, in the order the applicant chose them. The
    participants read them through the read's grant (the viewer checks it again)."""
    ids = study_ids(c)
    if not ids:
        return []
    found = {
        s.id: s
        for s in session.execute(select(ImagingStudy).where(ImagingStudy.id.in_(ids))).scalars()
    }
    return [found[i] for i in ids if i in found]


def modalities_of(studies: list[ImagingStudy]) -> list[str]:
    """The image modalities of the studies (not SR: a read's own report joins its study)."""
    seen: dict[str, None] = {}
    for study in studies:
        for modality in (study.modalities or "").split("\\"):
            if modality.strip() and modality.strip() not in NON_IMAGE:
                seen[modality.strip()] = None
    return list(seen)


@dataclass(frozen=True)
class WorklistRow:
    read: Consultation
    patient_name: str
    modalities: list[str]
    lead_name: str
    assigned_to_me: bool

    def out(self) -> dict[str, Any]:
        c = self.read
        return {
            "id": c.id,
            "patient_id": c.patient_id,
            "patient_name": self.patient_name,
            "applicant_institution_id": c.applicant_institution_id,
            "urgency": c.urgency,
            "state": c.state,
            "modalities": self.modalities,
            "report_deadline": c.report_deadline,
            "submitted_at": c.submitted_at,
            "lead_name": self.lead_name,
            "assigned_to_me": self.assigned_to_me,
        }


def _sort_key(c: Consultation) -> tuple[int, datetime, int]:
    deadline = (
        as_utc(c.report_deadline)
        if c.report_deadline
        else datetime.max.replace(tzinfo=as_utc(c.created_at).tzinfo)
    )
    return (URGENCY_RANK.get(c.urgency, 9), deadline, c.id)


def worklist(
    session: Session,
    principal: Principal,
    *,
    modality: str | None = None,
    state: str | None = None,
    limit: int = 50,
    offset: int = 0,
) -> tuple[list[WorklistRow], int]:
    """The reading centre's reads for its radiologists: emergency, then urgent, then
    routine, each by report deadline; ``state`` (default: the open ones) and ``modality``
    (of a shared study) filter. Audited as one list read."""
    require_roles(
        session, principal, {Role.RADIOLOGIST}, action="read.worklist", object_kind="consultation"
    )
    if principal.institution_id is None:
        return [], 0
    states = (state,) if state else WORKLIST_STATES
    reads = list(
        session.execute(
            select(Consultation)
            .where(
                Consultation.kind == wf.IMAGING_READ,
                Consultation.target_institution_id == principal.institution_id,
                Consultation.state.in_(states),
                Consultation.state != "draft",
            )
            .order_by(Consultation.id)
            .limit(MAX_WORKLIST)
        ).scalars()
    )
    reads.sort(key=_sort_key)
    modalities = {c.id: modalities_of(studies_of(session, c)) for c in reads}
    if modality:
        reads = [c for c in reads if modality in modalities[c.id]]
    total = len(reads)
    page = reads[offset : offset + limit]
    cards = patient_cards(session, [c.patient_id for c in page])
    leads = _leads(session, [c.id for c in page])
    mine = _mine(session, principal, [c.id for c in page])
    rows = [
        WorklistRow(
            read=c,
            patient_name=cards[c.patient_id].name if c.patient_id in cards else "",
            modalities=modalities[c.id],
            lead_name=leads.get(c.id, ""),
            assigned_to_me=c.id in mine,
        )
        for c in page
    ]
    audit.record(
        session,
        principal,
        "read.worklist",
        object_kind="consultation",
        detail={"count": len(rows), "modality": modality, "state": state},
    )
    return rows, total


def _leads(session: Session, ids: list[int]) -> dict[int, str]:
    if not ids:
        return {}
    rows = session.execute(
        select(ConsultationAssignment.consultation_id, Practitioner.name)
        .join(Practitioner, Practitioner.id == ConsultationAssignment.practitioner_id)
        .where(
            ConsultationAssignment.consultation_id.in_(ids),
            ConsultationAssignment.is_lead.is_(True),
        )
    ).all()
    return dict(rows)


def _mine(session: Session, principal: Principal, ids: list[int]) -> set[int]:
    if not ids or principal.user_id is None:
        return set()
    return set(
        session.execute(
            select(ConsultationAssignment.consultation_id).where(
                ConsultationAssignment.consultation_id.in_(ids),
                ConsultationAssignment.user_id == principal.user_id,
            )
        ).scalars()
    )


def patient_reads(session: Session, principal: Principal, patient_id: int) -> list[Consultation]:
    """The patient's reads the principal takes part in, newest first (for the chart; the
    caller audits the chart read, each read page audits its own open)."""
    rows = session.execute(
        select(Consultation)
        .where(Consultation.kind == wf.IMAGING_READ, Consultation.patient_id == patient_id)
        .order_by(Consultation.created_at.desc(), Consultation.id.desc())
        .limit(100)
    ).scalars()
    return [c for c in rows if parts_of(session, principal, c)[0]]

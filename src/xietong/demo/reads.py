"""The demo imaging read (ADR 0017): the county hospital's doctor sends a CT study of one of
its patients up to the provincial hospital's radiology, whose coordinator assigns the demo
radiologist (李文华), so the radiologist's worklist has a read to open in the viewer and
report. The study itself comes from the imaging demo (a synthetic CT stored by the county
hospital); without one, no read is made. A second run adds nothing (a study already shared
by a read is not sent again)."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access.authentication import principal_for
from xietong.access.principal import Principal
from xietong.config import ConsultationSettings
from xietong.consultation import service as consultations
from xietong.consultation.models import Consultation
from xietong.consultation.read_schemas import ReadIn
from xietong.consultation.schemas import AcceptIn, SharedItemIn
from xietong.consultation.service import reads
from xietong.identity import service as identity
from xietong.imaging.models import ImagingStudy

APPLICANT = "doctor.county"
COORDINATOR = "coordinator.province"
RADIOLOGIST = "radiologist"


def _principal(session: Session, username: str) -> Principal | None:
    user = identity.find_user(session, username)
    return principal_for(session, user) if user is not None else None


def _unread_study(session: Session, institution_id: int) -> ImagingStudy | None:
    """The county hospital's first study of a known patient that no read shares yet."""
    shared = {
        sid
        for c in session.execute(
            select(Consultation).where(
                Consultation.kind == "imaging_read",
                Consultation.applicant_institution_id == institution_id,
            )
        ).scalars()
        for sid in reads.study_ids(c)
    }
    studies = session.execute(
        select(ImagingStudy)
        .where(
            ImagingStudy.sender_institution_id == institution_id,
            ImagingStudy.patient_id.is_not(None),
        )
        .order_by(ImagingStudy.id)
    ).scalars()
    return next((s for s in studies if s.id not in shared), None)


def add_demo_reads(
    session: Session, settings: ConsultationSettings | None = None
) -> dict[str, int]:
    """Send and assign the demo read when a county study waits for one; returns the count."""
    doctor = _principal(session, APPLICANT)
    desk = _principal(session, COORDINATOR)
    radiologist = identity.find_user(session, RADIOLOGIST)
    if (
        doctor is None
        or desk is None
        or radiologist is None
        or radiologist.practitioner_id is None
        or doctor.institution_id is None
        or desk.institution_id is None
    ):
        return {"reads": 0}
    study = _unread_study(session, doctor.institution_id)
    if study is None or study.patient_id is None:
        return {"reads": 0}
    read = reads.create_read(
        session,
        doctor,
        ReadIn(
            patient_id=study.patient_id,
            purpose="胸部CT阅片，协助诊断",
            clinical_summary="咳嗽、咳痰3周，伴低热，抗感染治疗效果欠佳。吸烟30年。",
            questions="肺内病变性质？是否需要进一步检查？",
            urgency="urgent",
            target_institution_id=desk.institution_id,
            shared_items=[SharedItemIn(kind="imaging_study", id=study.id)],
            submit=True,
        ),
        settings or ConsultationSettings(),
    ).consultation
    lead = radiologist.practitioner_id
    consultations.accept(session, desk, read.id, AcceptIn(experts=[lead], lead=lead))
    return {"reads": 1}

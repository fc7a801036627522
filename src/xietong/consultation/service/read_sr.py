"""The final read report as a DICOM Comprehensive SR (highdicom), stored with the study.

The SR carries the study's own Study Instance UID and patient module (copied by highdicom
from the study's first stored instance), a new series of its own, the sections as TEXT
items under a "Diagnostic imaging report" container (technique, findings, impressions,
recommendations), and the study's instances as evidence. It is ingested through
:func:`xietong.imaging.service.ingest` as an instance of the sending institution (the
study is indexed under its sender), by the platform's read service acting as a DICOM node
of that institution: so the SR is retrieved with the study by DICOMweb and by DIMSE, under
the study's own access rules (ADR 0017).
"""

from __future__ import annotations

from io import BytesIO

import highdicom as hd
from pydicom import Dataset, dcmread, dcmwrite
from pydicom.errors import InvalidDicomError
from pydicom.sr.coding import Code
from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.consultation.models import ConsultationReadReport
from xietong.core.errors import N_, Conflict, NotFound
from xietong.core.pii import PiiProtector
from xietong.core.storage import BlobStore
from xietong.imaging.models import ImagingInstance, ImagingSeries, ImagingStudy
from xietong.imaging.retrieve import read_bytes
from xietong.imaging.service import ingest, node_principal

# The platform's read service, as a node of the sending institution.
AE_TITLE = "XIETONG_READS"
SR_SERIES_NUMBER = 9001
# Evidence lists every instance; a 3000-slice study stays a few hundred kilobytes.
MAX_EVIDENCE = 5000

REPORT = Code("18748-4", "LN", "Diagnostic imaging report")
TECHNIQUE = Code("121065", "DCM", "Procedure Description")
FINDINGS = Code("121070", "DCM", "Findings")
IMPRESSIONS = Code("121073", "DCM", "Impressions")
RECOMMENDATIONS = Code("121075", "DCM", "Recommendations")
CRITICAL = Code("RID49482", "RADLEX", "Critical result")


def _evidence(session: Session, blobs: BlobStore, study: ImagingStudy) -> list[Dataset]:
    """The study's instances: the first read in full (no pixels) for the patient and study
    modules, the others as their references."""
    rows = session.execute(
        select(ImagingInstance, ImagingSeries.series_uid)
        .join(ImagingSeries, ImagingSeries.id == ImagingInstance.series_id)
        .where(ImagingInstance.study_id == study.id, ImagingSeries.modality != "SR")
        .order_by(ImagingInstance.id)
        .limit(MAX_EVIDENCE)
    ).all()
    evidence: list[Dataset] = []
    for index, (instance, series_uid) in enumerate(rows):
        if index == 0:
            first = dcmread(BytesIO(read_bytes(blobs, instance)), stop_before_pixels=True)
            evidence.append(first)
            continue
        ref = Dataset()
        ref.StudyInstanceUID = study.study_uid
        ref.SeriesInstanceUID = series_uid
        ref.SOPClassUID = instance.sop_class_uid
        ref.SOPInstanceUID = instance.sop_instance_uid
        evidence.append(ref)
    return evidence


def _text(name: Code, value: str) -> hd.sr.TextContentItem:
    return hd.sr.TextContentItem(
        name=name, value=value, relationship_type=hd.sr.RelationshipTypeValues.CONTAINS
    )


def build_sr(
    evidence: list[Dataset],
    report: ConsultationReadReport,
    *,
    institution: str,
    signer: str,
    verifier: str,
) -> Dataset:
    """The SR dataset of ``report`` (final or amended: complete and verified)."""
    container = hd.sr.ContainerContentItem(name=REPORT)
    items = [_text(TECHNIQUE, report.technique)] if report.technique else []
    items += [_text(FINDINGS, report.findings), _text(IMPRESSIONS, report.impression)]
    if report.recommendation:
        items.append(_text(RECOMMENDATIONS, report.recommendation))
    if report.critical_finding:
        items.append(_text(CRITICAL, "YES"))
    container.ContentSequence = hd.sr.ContentSequence(items, is_root=False)
    sr = hd.sr.ComprehensiveSR(
        evidence=evidence,
        content=container,
        series_instance_uid=hd.UID(),
        series_number=SR_SERIES_NUMBER,
        sop_instance_uid=hd.UID(),
        instance_number=report.version,
        manufacturer="Xietong",
        is_complete=True,
        is_final=True,
        is_verified=True,
        institution_name=institution[:64],
        # One component (a Chinese name is not split): a trailing caret says so (PS3.5 6.2).
        verifying_observer_name=f"{(verifier or signer)[:60]}^",
        verifying_organization=institution[:64],
        series_description=f"Read report v{report.version}",
    )
    # Chinese text: UTF-8 (ISO_IR 192), as our C-FIND answers it too.
    sr.SpecificCharacterSet = "ISO_IR 192"
    return sr


def store_sr(
    session: Session,
    blobs: BlobStore,
    pii: PiiProtector,
    study: ImagingStudy,
    report: ConsultationReadReport,
    *,
    institution: str,
    signer: str,
    verifier: str,
) -> str:
    """Build the SR, ingest it with the study, note its UID on the report; the SOP Instance
    UID is returned. A study whose stored files cannot be read (a lost blob) refuses the
    sign-off with a 409 naming the study, rather than a final report without its SR."""
    try:
        sr = build_sr(
            _evidence(session, blobs, study),
            report,
            institution=institution,
            signer=signer,
            verifier=verifier,
        )
        out = BytesIO()
        dcmwrite(out, sr, enforce_file_format=True)
    except (OSError, ValueError, InvalidDicomError, NotFound) as exc:
        raise Conflict(
            N_("The report cannot be stored with the study: its images cannot be read."),
            code="sr_not_stored",
            field="shared_items",
            params={"reason": type(exc).__name__},
        ) from exc
    actor = node_principal(AE_TITLE, study.sender_institution_id)
    ingested = ingest(
        session,
        blobs,
        pii,
        out.getvalue(),
        sender_institution_id=study.sender_institution_id,
        actor=actor,
    )
    report.sr_study_id = ingested.study.id
    report.sr_sop_instance_uid = str(sr.SOPInstanceUID)
    session.flush()
    return report.sr_sop_instance_uid

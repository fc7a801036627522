"""The imaging archive: ingest one DICOM instance, open a study, who may read what.

Ingest runs in the caller's transaction and only flushes: the edge acknowledges (HTTP 2xx,
later DICOM success) after the commit. The file is checked and parsed first
(:mod:`xietong.imaging.dicom`), so a refused file leaves no row and no blob; the bytes go
to the content-addressed blob store (a blob of a transaction that later rolls back is an
orphan for the janitor, never a half-indexed instance). The same SOP Instance UID from the
same sender again is recognised on the unique key: identical bytes are accepted once,
other bytes are a 409 ``instance_conflict`` (``XIETONG_IMAGING_DUPLICATE=refuse`` refuses
identical ones too).

A study is readable by staff of the institution that sent it, and by whoever a live grant
on the item ``imaging_study`` (or on the patient's chart, from the sender) reaches: the
consultations and referrals that share it. Everyone else gets the same 404 as for an
absent study, audited.
"""

from __future__ import annotations

import hashlib
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy import ColumnElement, case, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import deny_not_found, require_roles
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, PayloadTooLarge
from xietong.core.pii import PiiProtector
from xietong.core.storage import BlobStore, key_for_digest
from xietong.identity.roles import Role
from xietong.imaging.dicom import FIELD, ParsedInstance, is_valid_uid, read_instance
from xietong.imaging.models import ImagingInstance, ImagingSeries, ImagingStudy
from xietong.patients.access import register_item_kind, resolve_access, visible_items_clause
from xietong.patients.registration import link_institution, match_patient

ITEM_KIND = "imaging_study"
Duplicate = Literal["accept_identical", "refuse"]
STORE_ROLES = {Role.APPLICANT_DOCTOR, Role.RADIOLOGIST, Role.COORDINATOR, Role.EXPERT}
READ_ROLES = {Role.APPLICANT_DOCTOR, Role.RADIOLOGIST, Role.COORDINATOR, Role.EXPERT}
# A known DICOM node (a modality, a PACS) storing for its institution over DIMSE.
NODE_ROLE = "dicom_node"


def node_principal(ae_title: str, institution_id: int, address: str = "") -> Principal:
    """The actor of a C-STORE from a known peer: no user, its institution, its address."""
    return Principal(
        user_id=None,
        username=f"dicom:{ae_title.strip()}"[:64],
        roles=frozenset({NODE_ROLE}),
        institution_id=institution_id,
        client_address=address,
    )


def _resolve(session: Session, item_id: int) -> tuple[int, int | None] | None:
    row = session.execute(
        select(ImagingStudy.patient_id, ImagingStudy.sender_institution_id).where(
            ImagingStudy.id == item_id
        )
    ).first()
    if row is None or row[0] is None:
        return None  # a study not linked to a patient cannot be shared through grants
    return (row[0], row[1])


register_item_kind(ITEM_KIND, _resolve)


# Ingest ------------------------------------------------------------------------------------

# The blob of an instance is written (and fsynced) by one of these threads while the same
# instance is indexed: the two waits overlap. ``ingest`` returns only once the blob is
# durable, so the edge still commits, and acknowledges, after both.
_WRITER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="imaging-blob")


@dataclass(frozen=True)
class Ingested:
    instance: ImagingInstance
    study: ImagingStudy
    created: bool


def ingest(
    session: Session,
    blobs: BlobStore,
    pii: PiiProtector,
    data: bytes,
    *,
    sender_institution_id: int,
    actor: Principal,
    duplicate: Duplicate = "accept_identical",
    max_bytes: int = 512 * 1_048_576,
) -> Ingested:
    """Check, store and index one DICOM Part 10 file sent by ``sender_institution_id``."""
    if NODE_ROLE not in actor.roles:
        require_roles(session, actor, STORE_ROLES, action="imaging.store", object_kind=ITEM_KIND)
    if actor.institution_id != sender_institution_id:
        raise Forbidden(
            N_("Only staff of the sending institution store its studies."),
            code="not_sender",
            field=FIELD,
        )
    if len(data) > max_bytes:
        raise PayloadTooLarge(code="dicom_too_large", field=FIELD, params={"limit": max_bytes})
    parsed = read_instance(data, max_inflated=max_bytes)
    digest = hashlib.sha256(data).hexdigest()
    earlier = _instance(session, sender_institution_id, parsed.sop_instance_uid)
    if earlier is not None:
        return _again(session, earlier, digest, duplicate)
    pending = _WRITER.submit(blobs.put_bytes, data)
    try:
        result = _index(session, pii, parsed, digest, len(data), actor, duplicate)
    finally:
        stored = pending.result()  # durable (or raising) before anything is answered
    if stored.key != key_for_digest(digest) or stored.size != len(data):
        raise OSError("the blob store did not key the instance by its SHA-256")
    return result


def _index(
    session: Session,
    pii: PiiProtector,
    parsed: ParsedInstance,
    digest: str,
    size: int,
    actor: Principal,
    duplicate: Duplicate,
) -> Ingested:
    """Index one new instance (its blob is being written meanwhile)."""
    sender_institution_id = actor.institution_id or 0  # checked equal by ingest
    study, new_study = _study(session, pii, parsed, sender_institution_id)
    series, new_series = _series(session, study, parsed, new_study)
    instance = ImagingInstance(
        series_id=series.id,
        study_id=study.id,
        sender_institution_id=sender_institution_id,
        sop_instance_uid=parsed.sop_instance_uid,
        sop_class_uid=parsed.sop_class_uid,
        transfer_syntax_uid=parsed.transfer_syntax_uid,
        instance_number=parsed.instance_number,
        rows=parsed.rows,
        columns=parsed.columns,
        frames=parsed.frames,
        blob_key=key_for_digest(digest),
        sha256=digest,
        size=size,
        received_by_user_id=actor.user_id,
    )
    try:
        with session.begin_nested():
            session.add(instance)
            session.flush()
    except IntegrityError:
        # A concurrent send of the same instance won the unique key.
        winner = _instance(session, sender_institution_id, parsed.sop_instance_uid)
        if winner is None:
            raise
        return _again(session, winner, digest, duplicate)
    _count(session, study, series, new_series, new_study)
    audit.record(
        session,
        actor,
        "imaging.store",
        object_kind=ITEM_KIND,
        object_id=study.id,
        detail={
            "sop_instance_uid": parsed.sop_instance_uid,
            "series_uid": parsed.series_uid,
            "patient_id": study.patient_id,
        },
    )
    return Ingested(instance, study, True)


def _instance(session: Session, sender: int, sop_uid: str) -> ImagingInstance | None:
    return session.execute(
        select(ImagingInstance).where(
            ImagingInstance.sender_institution_id == sender,
            ImagingInstance.sop_instance_uid == sop_uid,
        )
    ).scalar_one_or_none()


def _again(
    session: Session, earlier: ImagingInstance, digest: str, duplicate: Duplicate
) -> Ingested:
    if duplicate == "accept_identical" and earlier.sha256 == digest:
        study = session.get(ImagingStudy, earlier.study_id)
        assert study is not None  # noqa: S101 - a foreign key
        return Ingested(earlier, study, False)
    raise Conflict(
        N_("An instance with this {attribute} is already stored with other content."),
        code="instance_conflict",
        field=FIELD,
        params={"attribute": "SOPInstanceUID"},
    )


def _study(
    session: Session, pii: PiiProtector, parsed: ParsedInstance, sender: int
) -> tuple[ImagingStudy, bool]:
    """The study of the instance and whether this transaction created it."""

    def find() -> ImagingStudy | None:
        return session.execute(
            select(ImagingStudy).where(
                ImagingStudy.sender_institution_id == sender,
                ImagingStudy.study_uid == parsed.study_uid,
            )
        ).scalar_one_or_none()

    study = find()
    created = study is None
    if study is None:
        study = ImagingStudy(
            sender_institution_id=sender,
            study_uid=parsed.study_uid,
            accession_number=parsed.accession_number,
            study_date=parsed.study_date,
            study_time=parsed.study_time,
            study_id=parsed.study_id,
            description=parsed.study_description,
            referring_physician=parsed.referring_physician,
            patient_name=parsed.patient_name,
            patient_key=parsed.patient_key,
            patient_birth_date=parsed.patient_birth_date,
            patient_sex=parsed.patient_sex,
        )
        try:
            with session.begin_nested():
                session.add(study)
                session.flush()
        except IntegrityError:
            study = find()
            if study is None:
                raise
            created = False
    if study.patient_key != parsed.patient_key:
        raise Conflict(
            N_("This study is stored for another patient ({attribute} differs)."),
            code="study_patient_mismatch",
            field=FIELD,
            params={"attribute": "PatientID"},
        )
    if study.patient_id is None:
        patient = match_patient(
            session,
            pii,
            institution_id=sender,
            mrn=parsed.patient_key,
            resident_ids=parsed.other_patient_ids,
        )
        if patient is not None:
            study.patient_id = patient.id
            session.flush()
            link_institution(session, patient.id, sender, "treated")
    return study, created


def _series(
    session: Session, study: ImagingStudy, parsed: ParsedInstance, new_study: bool
) -> tuple[ImagingSeries, bool]:
    """The series and whether it is new; a study this transaction created has none yet
    (nobody else sees it before the commit), so nothing is looked up then."""

    def find() -> ImagingSeries | None:
        return session.execute(
            select(ImagingSeries).where(
                ImagingSeries.study_id == study.id, ImagingSeries.series_uid == parsed.series_uid
            )
        ).scalar_one_or_none()

    series = None if new_study else find()
    if series is not None:
        return series, False
    series = ImagingSeries(
        study_id=study.id,
        series_uid=parsed.series_uid,
        modality=parsed.modality,
        series_number=parsed.series_number,
        description=parsed.series_description,
        body_part=parsed.body_part,
    )
    try:
        with session.begin_nested():
            session.add(series)
            session.flush()
    except IntegrityError:
        series = find()
        if series is None:
            raise
        return series, False
    return series, True


def _count(
    session: Session,
    study: ImagingStudy,
    series: ImagingSeries,
    new_series: bool,
    new_study: bool,
) -> None:
    """Counters by SQL increments, so concurrent instances of one study add up.

    The modalities of the study change only with a new series: recomputed then. Only the
    updated attributes are expired, so the UIDs a caller reads next need no reload.
    """
    session.execute(
        update(ImagingSeries)
        .where(ImagingSeries.id == series.id)
        .values(instance_count=ImagingSeries.instance_count + 1)
    )
    values: dict[str, Any] = {"instance_count": ImagingStudy.instance_count + 1}
    if new_series:
        # A study created by this transaction has this one series.
        found = (
            [series.modality]
            if new_study
            else session.execute(
                select(ImagingSeries.modality).where(ImagingSeries.study_id == study.id).distinct()
            ).scalars()
        )
        modalities = sorted(m for m in found if m)
        values["series_count"] = ImagingStudy.series_count + 1
        values["modalities"] = "\\".join(modalities)[:128]
    values["updated_at"] = now()
    session.execute(update(ImagingStudy).where(ImagingStudy.id == study.id).values(**values))
    session.expire(study, list(values))
    session.expire(series, ["instance_count"])


# Reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class OpenedStudy:
    study: ImagingStudy
    basis: tuple[str, ...]


def _basis(session: Session, principal: Principal, study: ImagingStudy) -> tuple[str, ...] | None:
    if principal.institution_id is not None and principal.institution_id == (
        study.sender_institution_id
    ):
        return ("sender",)
    if study.patient_id is None:
        return None
    chart = resolve_access(session, principal, study.patient_id)
    if chart is None or not chart.can_see(ITEM_KIND, study.id, study.sender_institution_id):
        return None
    return chart.basis


def series_uid_of(session: Session, instance: ImagingInstance) -> str:
    """The Series Instance UID of a stored instance (for the URLs that name it)."""
    series = session.get(ImagingSeries, instance.series_id)
    return str(series.series_uid) if series is not None else ""


def require_reader(session: Session, principal: Principal, action: str) -> None:
    """403 (audited) for a principal without a clinical role."""
    require_roles(session, principal, READ_ROLES, action=action, object_kind=ITEM_KIND)


def open_study(
    session: Session, principal: Principal, study_uid: str, action: str = "imaging.study.read"
) -> OpenedStudy:
    """The study with this UID the principal may read (their own institution's first);
    404 for an absent or hidden one. Both audited."""
    require_reader(session, principal, action)
    if is_valid_uid(study_uid):
        own_first = case(
            (ImagingStudy.sender_institution_id == (principal.institution_id or 0), 0), else_=1
        )
        candidates = session.execute(
            select(ImagingStudy)
            .where(ImagingStudy.study_uid == study_uid)
            .order_by(own_first, ImagingStudy.id)
        ).scalars()
        for study in candidates:
            basis = _basis(session, principal, study)
            if basis is None:
                continue
            return _opened(session, principal, study, basis, action)
    raise deny_not_found(session, principal, action, ITEM_KIND, study_uid[:64])


def open_study_id(
    session: Session, principal: Principal, study_id: int, action: str = "imaging.study.read"
) -> OpenedStudy:
    """The study row with this id, if the principal may read it; 404 otherwise. Both
    audited (the viewer's pages name a row, not a UID that two senders may share)."""
    require_reader(session, principal, action)
    study = session.get(ImagingStudy, study_id)
    basis = _basis(session, principal, study) if study is not None else None
    if study is None or basis is None:
        raise deny_not_found(session, principal, action, ITEM_KIND, study_id)
    return _opened(session, principal, study, basis, action)


def _opened(
    session: Session,
    principal: Principal,
    study: ImagingStudy,
    basis: tuple[str, ...],
    action: str,
) -> OpenedStudy:
    audit.record(
        session,
        principal,
        action,
        object_kind=ITEM_KIND,
        object_id=study.id,
        detail={"study_uid": study.study_uid, "patient_id": study.patient_id, "basis": list(basis)},
    )
    return OpenedStudy(study, basis)


def readable_clause(principal: Principal) -> ColumnElement[bool]:
    """A WHERE clause on ``ImagingStudy`` for lists: only studies the principal may read."""
    return visible_items_clause(
        principal,
        ITEM_KIND,
        ImagingStudy.id,
        ImagingStudy.patient_id,
        ImagingStudy.sender_institution_id,
    )

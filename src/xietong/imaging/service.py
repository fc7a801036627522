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
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, cast

from sqlalchemy import ColumnElement, Table, bindparam, case, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import deny_not_found, require_roles
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Forbidden, PayloadTooLarge
from xietong.core.pii import PiiProtector
from xietong.core.storage import BlobRef, BlobStore, key_for_digest
from xietong.identity.roles import Role
from xietong.imaging.dicom import FIELD, ParsedInstance, is_valid_uid, read_instance
from xietong.imaging.models import ImagingInstance, ImagingSeries, ImagingStudy
from xietong.imaging.study_index import (
    check_patient,
    count_instance,
    create_series,
    create_study,
    existing,
)
from xietong.patients.access import register_item_kind, resolve_access, visible_items_clause

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
    writes: BlobWrites | None = None,
) -> Ingested:
    """Check, store and index one DICOM Part 10 file sent by ``sender_institution_id``.

    The blob is durable when this returns, unless ``writes`` is given: then the caller
    awaits ``writes.wait()`` before its commit (the blobs of a STOW-RS request)."""
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
    if writes is not None:
        result = _index(session, pii, parsed, digest, len(data), actor, duplicate)
        writes.add(pending, digest, len(data))  # awaited, with the others, before the commit
        return result
    try:
        result = _index(session, pii, parsed, digest, len(data), actor, duplicate)
    finally:
        stored = pending.result()  # durable (or raising) before anything is answered
    _check_stored(stored, digest, len(data))
    return result


def _check_stored(stored: BlobRef, digest: str, size: int) -> None:
    if stored.key != key_for_digest(digest) or stored.size != size:
        raise OSError("the blob store did not key the instance by its SHA-256")


class BlobWrites:
    """The blobs of one request's instances, written concurrently and awaited together.

    A STOW-RS request is acknowledged once, after its transaction commits: its parts' files
    need to be durable only by then, so their writes (and fsyncs, which the file system
    batches) overlap instead of running one after another. :meth:`wait` must return before
    the commit; it raises if any blob failed, and the request then fails as a whole.
    """

    def __init__(self) -> None:
        self._pending: list[tuple[Future[BlobRef], str, int]] = []

    def add(self, pending: Future[BlobRef], digest: str, size: int) -> None:
        self._pending.append((pending, digest, size))

    def wait(self) -> None:
        pending, self._pending = self._pending, []
        for future, digest, size in pending:
            _check_stored(future.result(), digest, size)


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
    study, series = existing(session, parsed, sender_institution_id)
    new_study = study is None
    if study is None:
        study, new_study = create_study(session, pii, parsed, sender_institution_id)
    else:
        check_patient(session, pii, study, parsed, sender_institution_id)
    new_series = series is None
    if series is None:
        series, new_series = create_series(session, study, parsed, new_study)
    values: dict[str, Any] = {
        "series_id": series.id,
        "study_id": study.id,
        "sender_institution_id": sender_institution_id,
        "sop_instance_uid": parsed.sop_instance_uid,
        "sop_class_uid": parsed.sop_class_uid,
        "transfer_syntax_uid": parsed.transfer_syntax_uid,
        "instance_number": parsed.instance_number,
        "rows": parsed.rows,
        "columns": parsed.columns,
        "frames": parsed.frames,
        "blob_key": key_for_digest(digest),
        "sha256": digest,
        "size": size,
        "received_at": now(),
        "received_by_user_id": actor.user_id,
    }
    instance_id = _insert_instance(session, values)
    if instance_id is None:
        # A concurrent send of the same instance won the unique key. (It cannot have made
        # the study or series this transaction just created, counted for this instance.)
        if new_study or new_series:
            raise OSError("an instance of a study or series created now is already stored")
        winner = _instance(session, sender_institution_id, parsed.sop_instance_uid)
        if winner is None:
            raise OSError("the instance's unique key conflicted with no row")
        return _again(session, winner, digest, duplicate)
    instance = ImagingInstance(id=instance_id, **values)
    count_instance(session, study, series, new_series, new_study)
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


# Built once per dialect (the statement is the same for every instance).
_INSERT_INSTANCE: dict[str, Any] = {}


def _insert_instance(session: Session, values: dict[str, Any]) -> int | None:
    """The id of the new instance row, or None when the unique key (sender, SOP Instance
    UID) already holds one: a Core INSERT ... ON CONFLICT DO NOTHING RETURNING, so the
    database stays the arbiter of races without a savepoint or an ORM flush."""
    dialect = session.get_bind().dialect.name
    statement = _INSERT_INSTANCE.get(dialect)
    if statement is None:
        table = cast(Table, ImagingInstance.__table__)
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        statement = _INSERT_INSTANCE[dialect] = (
            insert(table)
            .on_conflict_do_nothing(index_elements=["sender_institution_id", "sop_instance_uid"])
            .returning(table.c.id)
        )
    return session.connection().execute(statement, values).scalar_one_or_none()


_INSTANCE = select(ImagingInstance).where(
    ImagingInstance.sender_institution_id == bindparam("sender"),
    ImagingInstance.sop_instance_uid == bindparam("sop_uid"),
)


def _instance(session: Session, sender: int, sop_uid: str) -> ImagingInstance | None:
    return session.execute(_INSTANCE, {"sender": sender, "sop_uid": sop_uid}).scalar_one_or_none()


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

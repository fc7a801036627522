"""The study and series rows of an arriving instance (for ``imaging.service.ingest``):
found together in one round trip, created with INSERT ... ON CONFLICT so the unique keys
decide races, linked to the patient index, and counted as instances arrive.
"""

from __future__ import annotations

from typing import Any, TypeVar, cast

from sqlalchemy import Table, and_, bindparam, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, make_transient_to_detached

from xietong.core.clock import now
from xietong.core.errors import N_, Conflict
from xietong.core.pii import PiiProtector
from xietong.imaging.dicom import FIELD, ParsedInstance
from xietong.imaging.models import ImagingSeries, ImagingStudy
from xietong.patients.registration import link_institution, match_patient

_Row = TypeVar("_Row", ImagingStudy, ImagingSeries)


# One round trip for the study and series of an instance (most instances join both).
_STUDY_AND_SERIES = (
    select(ImagingStudy, ImagingSeries)
    .outerjoin(
        ImagingSeries,
        and_(
            ImagingSeries.study_id == ImagingStudy.id,
            ImagingSeries.series_uid == bindparam("series_uid"),
        ),
    )
    .where(
        ImagingStudy.sender_institution_id == bindparam("sender"),
        ImagingStudy.study_uid == bindparam("study_uid"),
    )
)
_STUDY = select(ImagingStudy).where(
    ImagingStudy.sender_institution_id == bindparam("sender"),
    ImagingStudy.study_uid == bindparam("study_uid"),
)
_SERIES = select(ImagingSeries).where(
    ImagingSeries.study_id == bindparam("study_id"),
    ImagingSeries.series_uid == bindparam("series_uid"),
)


def existing(
    session: Session, parsed: ParsedInstance, sender: int
) -> tuple[ImagingStudy | None, ImagingSeries | None]:
    """The stored study and series of the instance, either or both absent."""
    row = session.execute(
        _STUDY_AND_SERIES,
        {"sender": sender, "study_uid": parsed.study_uid, "series_uid": parsed.series_uid},
    ).first()
    return (None, None) if row is None else (row[0], row[1])


def create_study(
    session: Session, pii: PiiProtector, parsed: ParsedInstance, sender: int
) -> tuple[ImagingStudy, bool]:
    """A new study for the instance, counting it and its series (so no UPDATE follows), or
    the one a concurrent transaction just created."""
    patient = match_patient(
        session,
        pii,
        institution_id=sender,
        mrn=parsed.patient_key,
        resident_ids=parsed.other_patient_ids,
    )
    at = now()
    study = _insert_new(
        session,
        ImagingStudy,
        ("sender_institution_id", "study_uid"),
        sender_institution_id=sender,
        study_uid=parsed.study_uid,
        patient_id=patient.id if patient is not None else None,
        accession_number=parsed.accession_number,
        study_date=parsed.study_date,
        study_time=parsed.study_time,
        study_id=parsed.study_id,
        description=parsed.study_description,
        modalities=parsed.modality[:128],
        referring_physician=parsed.referring_physician,
        patient_name=parsed.patient_name,
        patient_key=parsed.patient_key,
        patient_birth_date=parsed.patient_birth_date,
        patient_sex=parsed.patient_sex,
        series_count=1,
        instance_count=1,
        created_at=at,
        updated_at=at,
    )
    if study is not None:
        if patient is not None:
            link_institution(session, patient.id, sender, "treated")
        return study, True
    found = session.execute(
        _STUDY, {"sender": sender, "study_uid": parsed.study_uid}
    ).scalar_one_or_none()
    if found is None:
        raise OSError("the study's unique key conflicted with no row")
    check_patient(session, pii, found, parsed, sender)
    return found, False


def _insert_new(
    session: Session, model: type[_Row], key: tuple[str, str], **values: Any
) -> _Row | None:
    """A new row, or None when its unique key is taken: INSERT ... ON CONFLICT DO NOTHING
    RETURNING id (the database arbitrates races, no savepoint), then the object is attached
    to the session as loaded (every column is given, so nothing is read back)."""
    table = cast(Table, model.__table__)
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    statement = insert(table).on_conflict_do_nothing(index_elements=list(key)).returning(table.c.id)
    row_id = session.connection().execute(statement, values).scalar_one_or_none()
    if row_id is None:
        return None
    row = model(id=row_id, **values)
    make_transient_to_detached(row)
    session.add(row)
    return row


def check_patient(
    session: Session, pii: PiiProtector, study: ImagingStudy, parsed: ParsedInstance, sender: int
) -> None:
    """Refuse an instance of another patient; link the study to its patient once known."""
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


def create_series(
    session: Session, study: ImagingStudy, parsed: ParsedInstance, new_study: bool
) -> tuple[ImagingSeries, bool]:
    """A new series of the study, counting the instance, or the one a concurrent
    transaction just created (a study this transaction created has no other)."""
    series = _insert_new(
        session,
        ImagingSeries,
        ("study_id", "series_uid"),
        study_id=study.id,
        series_uid=parsed.series_uid,
        modality=parsed.modality,
        series_number=parsed.series_number,
        description=parsed.series_description,
        body_part=parsed.body_part,
        instance_count=1,
        created_at=now(),
    )
    if series is not None:
        return series, True
    found = (
        None
        if new_study
        else session.execute(
            _SERIES, {"study_id": study.id, "series_uid": parsed.series_uid}
        ).scalar_one_or_none()
    )
    if found is None:
        raise OSError("the series' unique key conflicted with no row")
    return found, False


def count_instance(
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
    if new_study:
        return  # the study and its series were inserted counting this instance
    # Core statements on the tables: the ORM's bulk UPDATE path costs more than the SQL.
    series_table = cast(Table, ImagingSeries.__table__)
    study_table = cast(Table, ImagingStudy.__table__)
    connection = session.connection()
    if not new_series:
        connection.execute(
            update(series_table)
            .where(series_table.c.id == series.id)
            .values(instance_count=series_table.c.instance_count + 1)
        )
        session.expire(series, ["instance_count"])
    values: dict[str, Any] = {"instance_count": study_table.c.instance_count + 1}
    if new_series:
        found = session.execute(
            select(ImagingSeries.modality).where(ImagingSeries.study_id == study.id).distinct()
        ).scalars()
        modalities = sorted(m for m in found if m)
        values["series_count"] = study_table.c.series_count + 1
        values["modalities"] = "\\".join(modalities)[:128]
    values["updated_at"] = now()
    connection.execute(update(study_table).where(study_table.c.id == study.id).values(**values))
    session.expire(study, list(values))

"""Tell the patient index how to find an entry's patient and holding institution, so that
grants can name entries (``patients.access.register_item_kind``) without the patients
domain importing this one."""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.patients.access import register_item_kind
from xietong.records.kinds import MODELS, RecordKind
from xietong.records.models import EntryColumns


def _resolver(model: type[EntryColumns]) -> Callable[[Session, int], tuple[int, int | None] | None]:
    def resolve(session: Session, item_id: int) -> tuple[int, int | None] | None:
        row = session.execute(
            select(model.patient_id, model.institution_id).where(model.id == item_id)
        ).first()
        return (row[0], row[1]) if row is not None else None

    return resolve


def register_item_kinds() -> None:
    for kind in RecordKind:
        register_item_kind(kind.value, _resolver(MODELS[kind]))

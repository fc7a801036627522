"""Vital signs taken together: several entries from one form, all or none."""

from __future__ import annotations

from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.core.errors import XietongError
from xietong.records.kinds import RecordKind
from xietong.records.schemas import VitalSignIn, VitalSignsIn
from xietong.records.service.entries import Added, add_entry

# Errors about these fields of one entry are about its measurement: they name its kind.
_MEASUREMENT_FIELDS = frozenset({"kind", "value", "unit"})


def add_vital_signs(
    session: Session,
    principal: Principal,
    patient_id: int,
    data: VitalSignsIn,
    *,
    reason: str | None = None,
) -> list[Added]:
    """One vital-sign entry per measurement (through :func:`add_entry`: access, checks,
    audit, idempotent retries), sharing the time, the encounter and the bookkeeping; each
    gets the request id with its kind appended, so a retried form records each once.

    All or none: the entries are written in a savepoint, so a refused measurement (422
    naming its kind, e.g. ``spo2``) leaves none of the others behind, whatever the caller
    then does with the session."""
    added: list[Added] = []
    with session.begin_nested():
        for measurement in data.measurements:
            request_id = data.client_request_id
            body = VitalSignIn(
                source=data.source,
                source_ref=data.source_ref,
                recorded_by_practitioner_id=data.recorded_by_practitioner_id,
                client_request_id=f"{request_id}:{measurement.kind}" if request_id else None,
                encounter_id=data.encounter_id,
                measured_at=data.measured_at,
                kind=measurement.kind,
                value=measurement.value,
                unit=measurement.unit,
            )
            try:
                added.append(
                    add_entry(
                        session, principal, RecordKind.VITAL_SIGN, patient_id, body, reason=reason
                    )
                )
            except XietongError as exc:
                if exc.field in _MEASUREMENT_FIELDS:
                    exc.field = measurement.kind
                raise
    return added

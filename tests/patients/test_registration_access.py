"""Registration, matching, access and grants at the service level (the API tests drive the
same functions over HTTP)."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.patients.conftest import RESIDENT_ID_FEMALE, RESIDENT_ID_MALE, World
from xietong.access.models import AuditEvent
from xietong.core.clock import now
from xietong.core.errors import Conflict, Forbidden, Invalid, NotFound
from xietong.core.pii import PiiProtector
from xietong.patients.access import access_patient, register_item_kind, resolve_access
from xietong.patients.grants import create_grant, revoke_grant
from xietong.patients.models import Patient, PatientIdentifier
from xietong.patients.registration import register_patient
from xietong.patients.schemas import GrantIn, PatientIn


def _male(**extra: object) -> PatientIn:
    values: dict[str, object] = {
        "name": "张建国",
        "sex": "1",
        "birth_date": date(1980, 1, 1),
        "resident_id": RESIDENT_ID_MALE,
        "phone": "13812345678",
    }
    values.update(extra)
    return PatientIn.model_validate(values)


def _audits(db: Session, action: str) -> list[AuditEvent]:
    return list(db.execute(select(AuditEvent).where(AuditEvent.action == action)).scalars())


def test_registration_stores_no_identifier_in_clear(
    db: Session, world: World, pii: PiiProtector
) -> None:
    reg = register_patient(db, world.village_doctor, pii, _male())
    assert reg.created
    patient = reg.patient
    assert patient.phone_masked == "138****5678"
    assert "13812345678" not in (patient.phone_enc or "")
    ident = db.execute(select(PatientIdentifier)).scalar_one()
    assert ident.value_masked == "4101**********123X"
    assert RESIDENT_ID_MALE not in ident.value_enc
    assert pii.decrypt("resident_id", ident.value_enc) == RESIDENT_ID_MALE
    assert _audits(db, "patient.register")[-1].object_id == str(patient.id)


def test_the_same_resident_id_finds_the_existing_patient(
    db: Session, world: World, pii: PiiProtector
) -> None:
    first = register_patient(db, world.village_doctor, pii, _male())
    again = register_patient(db, world.county_doctor, pii, _male(phone=None))
    assert not again.created
    assert again.patient.id == first.patient.id
    # The county hospital is now linked and opens the patient.
    patient, chart = access_patient(db, world.county_doctor, first.patient.id)
    assert patient.id == first.patient.id
    assert world.county.id in chart.open_institutions


@pytest.mark.parametrize(
    ("changes", "field", "code"),
    [
        ({"resident_id": "410102198001011235"}, "resident_id", "resident_id_invalid"),
        ({"birth_date": date(1980, 1, 2)}, "birth_date", "birth_date_mismatch"),
        ({"sex": "2"}, "sex", "sex_mismatch"),
        (
            {"resident_id": None, "birth_date": date.today() + timedelta(days=1)},
            "birth_date",
            "birth_date_future",
        ),
        ({"phone": "12345"}, "phone", "phone_invalid"),
        ({"address_region_code": "999999"}, "address_region_code", "region_not_found"),
        (
            {"identifiers": [{"kind": "passport", "value": "E1234567", "issuer": "China"}]},
            "identifiers[0].issuer",
            "passport_country_invalid",
        ),
    ],
)
def test_bad_registrations_name_the_field_and_write_nothing(
    db: Session, world: World, pii: PiiProtector, changes: dict[str, object], field: str, code: str
) -> None:
    with pytest.raises(Invalid) as caught:
        register_patient(db, world.village_doctor, pii, _male(**changes))
    assert (caught.value.field, caught.value.code) == (field, code)
    assert db.execute(select(Patient)).first() is None


def test_near_matches_are_suggested_and_can_be_confirmed(
    db: Session, world: World, pii: PiiProtector
) -> None:
    first = register_patient(db, world.village_doctor, pii, _male(resident_id=None))
    second = register_patient(db, world.county_doctor, pii, _male(resident_id=None, phone=None))
    assert second.created
    assert [p.id for p, _ in second.near_matches] == [first.patient.id]
    confirmed = register_patient(
        db,
        world.other_doctor,
        pii,
        _male(resident_id=None, phone="13812345678", same_as_patient_id=first.patient.id),
    )
    assert not confirmed.created
    assert confirmed.patient.id == first.patient.id
    with pytest.raises(Invalid) as caught:
        register_patient(
            db,
            world.other_doctor,
            pii,
            _male(name="李四", resident_id=None, phone=None, same_as_patient_id=first.patient.id),
        )
    assert caught.value.field == "same_as_patient_id"


def test_client_request_id_makes_a_retry_idempotent(
    db: Session, world: World, pii: PiiProtector
) -> None:
    body = _male(resident_id=None, client_request_id="req-1")
    one = register_patient(db, world.village_doctor, pii, body)
    two = register_patient(db, world.village_doctor, pii, body)
    assert one.created
    assert not two.created
    assert one.patient.id == two.patient.id


def test_a_record_number_of_another_patient_is_a_conflict(
    db: Session, world: World, pii: PiiProtector
) -> None:
    mrn = [{"kind": "mrn", "value": "MZ0001"}]
    register_patient(db, world.village_doctor, pii, _male(identifiers=mrn))
    other = PatientIn.model_validate(
        {
            "name": "王芳",
            "sex": "2",
            "birth_date": date(1990, 2, 15),
            "resident_id": RESIDENT_ID_FEMALE,
            "identifiers": mrn,
        }
    )
    with pytest.raises(Conflict):
        register_patient(db, world.village_doctor, pii, other)


def test_other_institutions_authorities_and_admins_cannot_open(
    db: Session, world: World, pii: PiiProtector
) -> None:
    patient = register_patient(db, world.village_doctor, pii, _male()).patient
    with pytest.raises(NotFound):
        access_patient(db, world.other_doctor, patient.id)
    with pytest.raises(NotFound):  # absent: the same answer
        access_patient(db, world.other_doctor, 999_999)
    with pytest.raises(Forbidden):
        access_patient(db, world.authority, patient.id)
    with pytest.raises(Forbidden):
        access_patient(db, world.institution_admin, patient.id)
    with pytest.raises(Forbidden) as caught:
        access_patient(db, world.platform, patient.id)
    assert caught.value.field == "reason"
    denials = [a for a in _audits(db, "patient.read") if a.outcome == "denied"]
    assert len(denials) == 5


def test_break_glass_opens_everything_with_the_reason_audited(
    db: Session, world: World, pii: PiiProtector
) -> None:
    patient = register_patient(db, world.village_doctor, pii, _male()).patient
    _p, chart = access_patient(
        db, world.platform, patient.id, reason="complaint 2026-118 investigation"
    )
    assert chart.everything
    row = _audits(db, "patient.break_glass")[-1]
    assert row.purpose == "complaint 2026-118 investigation"


# A stand-in item kind (the records domain registers the real ones): item id → (patient id,
# holding institution id), filled by the test.
_STAND_IN_ITEMS: dict[int, tuple[int, int | None]] = {}


def _items_resolver(db: Session, item_id: int) -> tuple[int, int | None] | None:
    return _STAND_IN_ITEMS.get(item_id)


def test_grants_open_exactly_what_they_grant_until_expiry_or_revocation(
    db: Session, world: World, pii: PiiProtector
) -> None:
    register_item_kind("access_test_item", _items_resolver)
    patient = register_patient(db, world.village_doctor, pii, _male()).patient
    own_item, other_item = 1, 2
    _STAND_IN_ITEMS[own_item] = (patient.id, world.village.id)
    _STAND_IN_ITEMS[other_item] = (patient.id, world.county.id)
    expires = now() + timedelta(days=2)
    grant = create_grant(
        db,
        world.village_doctor,
        GrantIn(
            patient_id=patient.id,
            grantee_institution_id=world.other.id,
            scope="items",
            items=[{"kind": "access_test_item", "id": own_item}],  # type: ignore[list-item]
            purpose="remote consultation",
            expires_at=expires,
        ),
    )
    chart = resolve_access(db, world.other_doctor, patient.id)
    assert chart is not None
    assert chart.can_see("access_test_item", own_item, world.village.id)
    assert not chart.can_see("access_test_item", other_item, world.county.id)
    assert not chart.open_institutions
    # The village doctor cannot share an item the village cannot see itself.
    with pytest.raises(Invalid) as caught:
        create_grant(
            db,
            world.village_doctor,
            GrantIn(
                patient_id=patient.id,
                grantee_institution_id=world.other.id,
                scope="items",
                items=[{"kind": "access_test_item", "id": other_item}],  # type: ignore[list-item]
                purpose="remote consultation",
                expires_at=expires,
            ),
        )
    assert caught.value.field == "items[0]"
    revoke_grant(db, world.village_doctor, grant.id)
    assert resolve_access(db, world.other_doctor, patient.id) is None
    chart_grant = create_grant(
        db,
        world.village_doctor,
        GrantIn(
            patient_id=patient.id,
            grantee_user_id=world.other_doctor.user_id,
            scope="chart",
            purpose="referral",
            expires_at=expires,
        ),
    )
    chart = resolve_access(db, world.other_doctor, patient.id)
    assert chart is not None
    assert chart.open_institutions == {world.village.id}
    from xietong.core import clock

    clock.set_clock(lambda: expires + timedelta(seconds=1))
    assert resolve_access(db, world.other_doctor, patient.id) is None
    assert _audits(db, "grant.create")[-1].object_id == str(chart_grant.id)

"""Merges and searches at the service level: chains of merges, undo in the middle of a
chain, grants and links that reach a survivor through a merged record, depth limits."""

from __future__ import annotations

from datetime import date, timedelta
from itertools import pairwise

import pytest
from sqlalchemy.orm import Session

from tests.patients.conftest import RESIDENT_ID_FEMALE, RESIDENT_ID_MALE, World
from xietong.core.clock import now
from xietong.core.errors import Conflict
from xietong.core.pii import PiiProtector
from xietong.patients.access import MAX_MERGE_DEPTH, access_patient, member_ids, resolve_access
from xietong.patients.grants import create_grant
from xietong.patients.merge import merge_patients, merges_of_patient, undo_merge
from xietong.patients.models import Patient
from xietong.patients.registration import register_patient
from xietong.patients.schemas import GrantIn, MergeIn, PatientIn, PatientSearchIn, UndoMergeIn
from xietong.patients.search import search_patients
from xietong.patients.service import patient_counts


def _patient(db: Session, world: World, pii: PiiProtector, phone: str, **extra: object) -> int:
    values: dict[str, object] = {
        "name": "张建国",
        "sex": "1",
        "birth_date": date(1980, 1, 1),
        "phone": phone,
    }
    values.update(extra)
    return register_patient(
        db, world.village_doctor, pii, PatientIn.model_validate(values)
    ).patient.id


def _merge(db: Session, world: World, survivor: int, merged: int) -> int:
    body = MergeIn(survivor_id=survivor, merged_id=merged, reason="duplicate")
    return merge_patients(db, world.village_doctor, body).id


def _ids(db: Session, world: World, pii: PiiProtector, **criteria: object) -> list[int]:
    query = PatientSearchIn.model_validate(criteria)
    return [p.id for p in search_patients(db, world.village_doctor, pii, query).patients]


def test_a_chain_of_merges_resolves_to_the_last_survivor(
    db: Session, world: World, pii: PiiProtector
) -> None:
    a = _patient(db, world, pii, "13800000001", resident_id=RESIDENT_ID_MALE)
    b = _patient(db, world, pii, "13800000002")
    c = _patient(db, world, pii, "13800000003")
    _merge(db, world, a, b)
    second = _merge(db, world, c, a)  # a, holding b, goes into c
    patient, chart = access_patient(db, world.village_doctor, b)
    assert patient.id == c
    assert sorted(chart.member_ids) == sorted([a, b, c])
    assert _ids(db, world, pii, phone="13800000002") == [c]
    assert _ids(db, world, pii, resident_id=RESIDENT_ID_MALE) == [c]
    assert _ids(db, world, pii, name="张") == [c]
    assert len(merges_of_patient(db, world.village_doctor, b)) == 2
    # Undo the later merge: a (still holding b) stands alone again.
    undo_merge(db, world.village_doctor, second, UndoMergeIn(reason="not the same"))
    assert access_patient(db, world.village_doctor, b)[0].id == a
    assert sorted(member_ids(db, a)) == sorted([a, b])
    assert sorted(_ids(db, world, pii, name="张")) == sorted([a, c])


def test_resident_ids_anywhere_in_either_tree_refuse_a_merge(
    db: Session, world: World, pii: PiiProtector
) -> None:
    a = _patient(db, world, pii, "13800000001", resident_id=RESIDENT_ID_MALE)
    b = _patient(db, world, pii, "13800000002")
    d = _patient(
        db,
        world,
        pii,
        "13800000004",
        name="王芳",
        sex="2",
        birth_date=date(1990, 2, 15),
        resident_id=RESIDENT_ID_FEMALE,
    )
    _merge(db, world, b, d)  # b now holds d's resident ID through d
    with pytest.raises(Conflict) as caught:
        _merge(db, world, a, b)
    assert (caught.value.code, caught.value.field) == ("resident_id_differs", "resident_id")


def test_grants_and_links_of_a_merged_record_reach_the_survivor(
    db: Session, world: World, pii: PiiProtector
) -> None:
    a = _patient(db, world, pii, "13800000001")
    b = _patient(db, world, pii, "13800000002")
    create_grant(
        db,
        world.village_doctor,
        GrantIn(
            patient_id=b,
            grantee_institution_id=world.other.id,
            scope="chart",
            purpose="referral",
            expires_at=now() + timedelta(days=1),
        ),
    )
    assert resolve_access(db, world.other_doctor, a) is None
    _merge(db, world, a, b)
    chart = resolve_access(db, world.other_doctor, a)
    assert chart is not None
    query = PatientSearchIn()
    found = search_patients(db, world.other_doctor, pii, query)
    assert [p.id for p in found.patients] == [a]
    assert found.total == 1


def test_merges_stop_before_the_chain_gets_too_deep(
    db: Session, world: World, pii: PiiProtector
) -> None:
    ids = [_patient(db, world, pii, f"138{n:08d}") for n in range(MAX_MERGE_DEPTH + 1)]
    done = MAX_MERGE_DEPTH - 1
    for lower, upper in pairwise(ids[: done + 1]):
        _merge(db, world, upper, lower)
    with pytest.raises(Conflict) as caught:
        _merge(db, world, ids[done + 1], ids[done])
    assert caught.value.code == "merge_too_deep"
    top = ids[done]
    assert access_patient(db, world.village_doctor, ids[0])[0].id == top
    assert len(member_ids(db, top)) == done + 1


def test_counts_follow_merges(db: Session, world: World, pii: PiiProtector) -> None:
    a = _patient(db, world, pii, "13800000001")
    b = _patient(db, world, pii, "13800000002")
    authority = world.authority
    scoped = type(authority)(**{**authority.__dict__, "jurisdiction_prefix": "41"})
    assert patient_counts(db, scoped).total == 2
    _merge(db, world, a, b)
    assert patient_counts(db, scoped).total == 1
    stored = db.get(Patient, b)
    assert stored is not None
    assert stored.merged_into_id == a

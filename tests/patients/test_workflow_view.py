"""What a workflow shows of its patient: name, sex and birth date of the survivor when the
record was merged, and the institution's own record number from any record of the tree."""

from __future__ import annotations

from sqlalchemy.orm import Session

from tests.patients.conftest import World
from tests.patients.test_merge_search import _merge, _patient
from xietong.core.pii import PiiProtector
from xietong.patients.workflow_view import patient_card, patient_cards, record_number_at


def test_a_merged_record_shows_its_survivor(db: Session, world: World, pii: PiiProtector) -> None:
    kept = _patient(db, world, pii, "13800000011", name="张建国")
    duplicate = _patient(db, world, pii, "13800000012", name="张建囯")
    _merge(db, world, kept, duplicate)
    cards = patient_cards(db, [kept, duplicate, 999_999])
    assert set(cards) == {kept, duplicate}
    assert cards[duplicate].id == kept
    assert cards[duplicate].name == "张建国"
    assert patient_card(db, 999_999) is None
    assert patient_cards(db, []) == {}


def test_the_record_number_comes_from_any_record_of_the_tree(
    db: Session, world: World, pii: PiiProtector
) -> None:
    institution = world.village_doctor.institution_id
    assert institution is not None
    kept = _patient(db, world, pii, "13800000021")
    duplicate = _patient(
        db, world, pii, "13800000022", identifiers=[{"kind": "mrn", "value": "MZ-0042"}]
    )
    assert record_number_at(db, kept, institution) == ""
    assert record_number_at(db, duplicate, institution) == "MZ-0042"
    _merge(db, world, kept, duplicate)
    assert record_number_at(db, kept, institution) == "MZ-0042"
    assert record_number_at(db, kept, institution + 1) == ""
    assert record_number_at(db, 999_999, institution) == ""

"""The shipped ICD-10 list, the picker's search, and the clinical rules' calculations."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from tests.records.conftest import Site
from xietong.core.errors import Invalid
from xietong.records import icd10, rules


def test_the_shipped_list_is_who_2019_with_chinese_titles() -> None:
    catalogue = icd10.catalogue()
    assert len(catalogue.codes) == 12246
    with_chinese = [c for c in catalogue.codes if c.name_zh]
    assert len(with_chinese) == 12220
    i10 = icd10.lookup("I10")
    assert (i10.name_en, i10.name_zh, i10.leaf) == (
        "Essential (primary) hypertension",
        "特发性（原发性）高血压",
        True,
    )
    # Codes without a shipped Chinese title fall back to English.
    u09 = icd10.lookup("U09.9")
    assert u09.name_zh == ""
    assert u09.name("zh_CN") == u09.name_en


@pytest.mark.parametrize(
    ("given", "normal"),
    [
        ("e119", "E11.9"),
        (" E11.9 ", "E11.9"),
        ("I10", "I10"),
        ("b1800", "B18.00"),
        ("E1", None),
        ("E11.999", None),
        ("11.9", None),
        ("高血压", None),
    ],
)
def test_codes_are_normalised(given: str, normal: str | None) -> None:
    assert icd10.normalise(given) == normal


def test_unknown_codes_name_the_field() -> None:
    with pytest.raises(Invalid) as caught:
        icd10.lookup("E11.99", field="changes.code")
    assert (caught.value.code, caught.value.field) == ("icd10_unknown", "changes.code")


def test_search_by_code_prefix_then_by_title() -> None:
    assert [c.code for c in icd10.search("E11", limit=3)] == ["E11", "E11.0", "E11.1"]
    assert [c.code for c in icd10.search("e11.9")] == ["E11.9"]
    by_title = icd10.search("高血压", limit=50)
    assert "I10" in {c.code for c in by_title}
    assert all("高血压" in c.name_zh for c in by_title)
    english = icd10.search("essential (primary) hyp")
    assert [c.code for c in english] == ["I10"]
    assert icd10.search("   ") == []


def test_the_picker_api(client: TestClient, site: Site) -> None:
    headers = {**site.tokens["village_doctor"], "Accept-Language": "zh-CN"}
    found = client.get("/api/v1/codes/icd10", params={"q": "I10"}, headers=headers)
    assert found.status_code == 200
    assert found.json()[0] == {
        "code": "I10",
        "name": "特发性（原发性）高血压",
        "name_zh": "特发性（原发性）高血压",
        "name_en": "Essential (primary) hypertension",
        "leaf": True,
    }
    english = client.get("/api/v1/codes/icd10/j189", headers={**headers, "Accept-Language": "en"})
    assert english.status_code == 200
    assert (english.json()["code"], english.json()["name"]) == ("J18.9", "Pneumonia, unspecified")
    assert client.get("/api/v1/codes/icd10", params={"q": "糖尿病"}, headers=headers).json()


@pytest.mark.parametrize(
    ("value", "low", "high", "text", "ref", "flag"),
    [
        (7.8, 3.9, 6.1, "7.8", "", "H"),
        (3.0, 3.9, 6.1, "3.0", "", "L"),
        (5.0, 3.9, 6.1, "5.0", "", "N"),
        (6.1, 3.9, 6.1, "6.1", "", "N"),
        (200.0, None, 5.2, "200", "", "H"),
        (None, None, None, "阴性", "阴性", "N"),
        (None, None, None, "阳性", "阴性", None),
        (None, 1.0, 2.0, "<0.5", "", None),
    ],
)
def test_lab_flags(
    value: float | None,
    low: float | None,
    high: float | None,
    text: str,
    ref: str,
    flag: str | None,
) -> None:
    assert rules.lab_flag(value, low, high, text, ref) == flag


@pytest.mark.parametrize(
    ("text", "number"),
    [
        ("5.6", 5.6),
        ("-0.3", -0.3),
        (".5", 0.5),
        ("12", 12.0),
        ("<0.5", None),
        ("1e9", None),
        ("阴性", None),
        ("", None),
    ],
)
def test_numeric_values(text: str, number: float | None) -> None:
    assert rules.numeric_value(text) == number


@pytest.mark.parametrize(
    ("code", "ok"),
    [
        ("2345-7", True),
        ("718-7", True),
        ("1558-6", True),
        ("2345-8", False),
        ("1558-", False),
        ("-6", False),
    ],
)
def test_loinc_check_digits(code: str, ok: bool) -> None:
    assert rules.loinc_check_digit_ok(code) is ok


@pytest.mark.parametrize(
    ("kind", "value", "age", "flag"),
    [
        ("temperature", 37.2, 40, "N"),
        ("temperature", 37.3, 40, "H"),
        ("temperature", 38.0, 5, "H"),  # fever at any age
        ("heart_rate", 120, 40, "H"),
        ("heart_rate", 120, 3, None),  # a child's normal pulse is not an adult's
        ("bp_systolic", 140, 60, "H"),
        ("bp_diastolic", 59, 60, "L"),
        ("spo2", 93, 70, "L"),
        ("blood_glucose", 3.5, 30, "L"),
        ("blood_glucose", 9.0, 30, "N"),
        ("weight", 120, 30, None),
    ],
)
def test_vital_flags(kind: str, value: float, age: int, flag: str | None) -> None:
    assert rules.vital_flag(kind, value, age) == flag


def test_vital_units_and_ranges() -> None:
    assert rules.check_vital("heart_rate", 72, "次/分") == "/min"
    assert rules.check_vital("temperature", 36.5, "") == "°C"
    with pytest.raises(Invalid) as caught:
        rules.check_vital("blood_glucose", 140, "mg/dL")
    assert caught.value.field == "unit"
    with pytest.raises(Invalid) as caught:
        rules.check_vital("height", 300, "cm")
    assert (caught.value.field, caught.value.params["high"]) == ("value", "260")

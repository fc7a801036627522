"""The shipped list of clinical specialties (临床专科): stable codes, Chinese and English names.

Codes are what the database, the API and later workflows store; names are for people.
Departments, practitioners and consultation requests all use these codes.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from xietong.core.errors import N_, Invalid


@dataclass(frozen=True)
class Specialty:
    code: str
    name_zh: str
    name_en: str

    def label(self, locale: str) -> str:
        return self.name_zh if locale.startswith("zh") else self.name_en


SPECIALTIES: tuple[Specialty, ...] = (
    Specialty("internal_medicine", "普通内科", "General internal medicine"),
    Specialty("cardiology", "心血管内科", "Cardiology"),
    Specialty("respiratory", "呼吸内科", "Respiratory medicine"),
    Specialty("neurology", "神经内科", "Neurology"),
    Specialty("gastroenterology", "消化内科", "Gastroenterology"),
    Specialty("endocrinology", "内分泌科", "Endocrinology"),
    Specialty("nephrology", "肾内科", "Nephrology"),
    Specialty("haematology", "血液内科", "Haematology"),
    Specialty("rheumatology", "风湿免疫科", "Rheumatology"),
    Specialty("geriatrics", "老年医学科", "Geriatrics"),
    Specialty("oncology", "肿瘤内科", "Oncology"),
    Specialty("general_surgery", "普外科", "General surgery"),
    Specialty("orthopaedics", "骨科", "Orthopaedics"),
    Specialty("neurosurgery", "神经外科", "Neurosurgery"),
    Specialty("cardiothoracic_surgery", "心胸外科", "Cardiothoracic surgery"),
    Specialty("urology", "泌尿外科", "Urology"),
    Specialty("obstetrics_gynaecology", "妇产科", "Obstetrics and gynaecology"),
    Specialty("paediatrics", "儿科", "Paediatrics"),
    Specialty("ophthalmology", "眼科", "Ophthalmology"),
    Specialty("ent", "耳鼻喉科", "Otorhinolaryngology (ENT)"),
    Specialty("stomatology", "口腔科", "Stomatology"),
    Specialty("dermatology", "皮肤科", "Dermatology"),
    Specialty("psychiatry", "精神科", "Psychiatry"),
    Specialty("infectious_diseases", "感染科", "Infectious diseases"),
    Specialty("emergency", "急诊科", "Emergency medicine"),
    Specialty("critical_care", "重症医学科", "Critical care (ICU)"),
    Specialty("anaesthesiology", "麻醉科", "Anaesthesiology"),
    Specialty("radiology", "医学影像科", "Radiology"),
    Specialty("ultrasound", "超声科", "Ultrasound"),
    Specialty("nuclear_medicine", "核医学科", "Nuclear medicine"),
    Specialty("pathology", "病理科", "Pathology"),
    Specialty("laboratory", "检验科", "Laboratory medicine"),
    Specialty("rehabilitation", "康复医学科", "Rehabilitation medicine"),
    Specialty("tcm", "中医科", "Traditional Chinese medicine"),
    Specialty("general_practice", "全科医学科", "General practice"),
)

BY_CODE: dict[str, Specialty] = {s.code: s for s in SPECIALTIES}
MAX_PER_PRACTITIONER = 8


def is_specialty(code: str) -> bool:
    return code in BY_CODE


def specialty_label(code: str, locale: str) -> str:
    found = BY_CODE.get(code)
    return found.label(locale) if found else code


def validate_specialty(code: str, field: str = "specialty") -> str:
    if code not in BY_CODE:
        raise Invalid(
            N_("This specialty is not in the list of specialties."),
            code="unknown_specialty",
            field=field,
        )
    return code


def validate_specialties(codes: Iterable[str], field: str = "specialties") -> list[str]:
    """Known codes, without duplicates, in the order given."""
    seen: list[str] = []
    for code in codes:
        validate_specialty(code, field)
        if code not in seen:
            seen.append(code)
    if len(seen) > MAX_PER_PRACTITIONER:
        raise Invalid(N_("Too many items."), code="too_many_specialties", field=field)
    return seen

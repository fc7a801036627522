"""The demo patients and their charts, as data: who they are, where they were seen, and
what was recorded, with dates counted back from the day the demo is loaded. Fictional people
with well-formed resident ID numbers (GB 11643 check digit, region 410323 新安县)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any

from xietong.patients.schemas import SexCode
from xietong.records.kinds import RecordKind

E, D, L, M, V, A = (
    RecordKind.ENCOUNTER,
    RecordKind.DIAGNOSIS,
    RecordKind.LAB_RESULT,
    RecordKind.MEDICATION,
    RecordKind.VITAL_SIGN,
    RecordKind.ALLERGY,
)


@dataclass(frozen=True)
class Item:
    """One entry: at ``site``, ``days`` ago (at ``clock`` China time for timed kinds)."""

    site: str
    kind: RecordKind
    days: int
    fields: dict[str, Any]
    clock: str = "09:00"
    visit: str | None = None  # the key of the encounter it belongs to
    key: str | None = None  # for an encounter: how later items name it
    ends: int | None = None  # an encounter's or order's end, in days ago
    specialty: str | None = None  # an encounter's department, by its specialty


@dataclass(frozen=True)
class DemoPatient:
    key: str
    name: str
    sex: SexCode
    birth_date: date
    resident_id: str  # GB 11643, check digit computed; region 410323 (新安县)
    sites: tuple[str, ...]
    items: tuple[Item, ...] = field(default_factory=tuple)


def _lab(
    site: str, days: int, name: str, value: str, unit: str, low: float | None, high: float | None,
    loinc: str | None = None, visit: str | None = None, clock: str = "07:30", ref_text: str = "",
) -> Item:  # fmt: skip
    fields: dict[str, Any] = {
        "item_name": name,
        "value_text": value,
        "unit": unit,
        "ref_low": low,
        "ref_high": high,
        "ref_text": ref_text,
    }
    if loinc:
        fields["loinc_code"] = loinc
    return Item(site, L, days, fields, clock=clock, visit=visit)


def _vital(
    site: str, days: int, kind: str, value: float, clock: str = "08:30", visit: str | None = None
) -> Item:
    return Item(site, V, days, {"kind": kind, "value": value}, clock=clock, visit=visit)


PATIENTS: tuple[DemoPatient, ...] = (
    DemoPatient(
        "wang-defu",
        "王德福",
        "1",
        date(1958, 3, 12),
        "410323195803124112",
        ("village", "county"),
        (
            Item(
                "village",
                A,
                4000,
                {"substance": "青霉素", "reaction": "全身皮疹、瘙痒", "severity": "moderate"},
            ),
            Item(
                "village",
                E,
                120,
                {
                    "kind": "outpatient",
                    "chief_complaint": "头晕、口干多饮1月",
                    "summary": "血压、血糖控制不佳，建议上级医院住院调整治疗。",
                },
                key="v1",
            ),
            _vital("village", 120, "bp_systolic", 168, visit="v1"),
            _vital("village", 120, "bp_diastolic", 98, visit="v1"),
            _vital("village", 120, "blood_glucose", 13.6, visit="v1"),
            Item("village", D, 120, {"code": "I10", "kind": "primary"}, visit="v1"),
            Item(
                "village",
                D,
                120,
                {"code": "E11.9", "kind": "secondary", "status": "provisional"},
                visit="v1",
            ),
            Item(
                "county",
                E,
                110,
                {
                    "kind": "inpatient",
                    "chief_complaint": "血糖、血压控制不佳",
                    "summary": "入院后调整降压降糖方案，血糖血压平稳后出院，村卫生室随访。",
                },
                key="c1",
                ends=103,
                specialty="internal_medicine",
            ),
            _lab("county", 109, "空腹血糖", "11.2", "mmol/L", 3.9, 6.1, "1558-6", "c1"),
            _lab("county", 109, "糖化血红蛋白", "8.9", "%", 4.0, 6.0, "4548-4", "c1"),
            _lab("county", 109, "低密度脂蛋白胆固醇", "3.9", "mmol/L", None, 3.4, "13457-7", "c1"),
            _lab("county", 109, "血肌酐", "86", "μmol/L", 57, 111, "2160-0", "c1"),
            _lab("county", 109, "尿微量白蛋白/肌酐比值", "42", "mg/g", None, 30, visit="c1"),
            Item(
                "county",
                D,
                110,
                {"code": "E11.2", "kind": "primary", "name": "2型糖尿病伴糖尿病肾病"},
                visit="c1",
            ),
            Item(
                "county",
                D,
                110,
                {"code": "I10", "kind": "secondary", "name": "高血压2级（高危）"},
                visit="c1",
            ),
            Item(
                "county",
                M,
                109,
                {
                    "name": "二甲双胍缓释片",
                    "dose": 0.5,
                    "unit": "g",
                    "route": "oral",
                    "frequency": "bid",
                },
                visit="c1",
            ),
            Item(
                "county",
                M,
                109,
                {
                    "name": "苯磺酸氨氯地平片",
                    "dose": 5,
                    "unit": "mg",
                    "route": "oral",
                    "frequency": "qd",
                },
                visit="c1",
            ),
            Item(
                "county",
                M,
                109,
                {"order_kind": "exam", "name": "眼底检查", "status": "completed"},
                visit="c1",
                ends=108,
            ),
            _vital("county", 104, "bp_systolic", 132, visit="c1"),
            _vital("county", 104, "bp_diastolic", 82, visit="c1"),
            Item(
                "village",
                E,
                30,
                {
                    "kind": "outpatient",
                    "chief_complaint": "出院后随访",
                    "summary": "血压控制可，继续原方案。",
                },
                key="v2",
            ),
            _vital("village", 30, "bp_systolic", 138, visit="v2"),
            _vital("village", 30, "bp_diastolic", 86, visit="v2"),
            _vital("village", 30, "blood_glucose", 7.4, visit="v2"),
            _vital("village", 30, "weight", 72.5, visit="v2"),
        ),
    ),
    DemoPatient(
        "li-xiuying",
        "李秀英",
        "2",
        date(1947, 8, 25),
        "410323194708254029",
        ("village", "county"),
        (
            Item(
                "village",
                A,
                2500,
                {"substance": "磺胺类药物", "reaction": "荨麻疹", "severity": "mild"},
            ),
            Item(
                "village",
                E,
                21,
                {"kind": "outpatient", "chief_complaint": "咳嗽、咳痰加重伴气促3天"},
                key="v1",
            ),
            _vital("village", 21, "temperature", 38.4, visit="v1"),
            _vital("village", 21, "spo2", 90, visit="v1"),
            _vital("village", 21, "respiratory_rate", 26, visit="v1"),
            Item("village", D, 21, {"code": "J44.1", "status": "provisional"}, visit="v1"),
            Item(
                "county",
                E,
                20,
                {
                    "kind": "emergency",
                    "chief_complaint": "慢阻肺急性加重",
                    "summary": "急诊收住呼吸内科。",
                },
                key="c1",
                ends=12,
                specialty="respiratory",
            ),
            _lab("county", 20, "白细胞计数", "13.8", "×10^9/L", 3.5, 9.5, "6690-2", "c1", "10:20"),
            _lab("county", 20, "C反应蛋白", "56", "mg/L", None, 10, "1988-5", "c1", "10:20"),
            _lab("county", 20, "血红蛋白", "128", "g/L", 115, 150, "718-7", "c1", "10:20"),
            _vital("county", 20, "spo2", 91, clock="10:00", visit="c1"),
            _vital("county", 20, "heart_rate", 108, clock="10:00", visit="c1"),
            Item(
                "county", D, 20, {"code": "J44.1", "name": "慢性阻塞性肺疾病急性加重"}, visit="c1"
            ),
            Item(
                "county",
                D,
                20,
                {"code": "J18.9", "kind": "secondary", "name": "社区获得性肺炎"},
                visit="c1",
            ),
            Item(
                "county",
                M,
                20,
                {
                    "name": "注射用头孢曲松钠",
                    "dose": 2,
                    "unit": "g",
                    "route": "iv",
                    "frequency": "qd",
                    "status": "completed",
                },
                visit="c1",
                ends=13,
            ),
            Item(
                "county",
                M,
                20,
                {
                    "name": "布地奈德福莫特罗吸入粉雾剂",
                    "dose": 1,
                    "unit": "吸",
                    "route": "inhalation",
                    "frequency": "bid",
                },
                visit="c1",
            ),
            Item(
                "county",
                M,
                20,
                {"order_kind": "nursing", "name": "低流量吸氧 2L/min", "status": "completed"},
                visit="c1",
                ends=15,
            ),
            _vital("county", 13, "spo2", 96, visit="c1"),
        ),
    ),
    DemoPatient(
        "zhao-xiaojun",
        "赵小军",
        "1",
        date(2016, 5, 4),
        "410323201605044312",
        ("village",),
        (
            Item(
                "village",
                E,
                6,
                {"kind": "outpatient", "chief_complaint": "发热、咽痛1天"},
                key="v1",
            ),
            _vital("village", 6, "temperature", 38.6, visit="v1"),
            _vital("village", 6, "heart_rate", 112, visit="v1"),
            _vital("village", 6, "weight", 31, visit="v1"),
            Item("village", D, 6, {"code": "J06.9"}, visit="v1"),
            Item(
                "village",
                M,
                6,
                {
                    "name": "布洛芬混悬液",
                    "dose": 10,
                    "unit": "ml",
                    "route": "oral",
                    "frequency": "prn",
                    "status": "completed",
                },
                visit="v1",
                ends=4,
            ),
            Item(
                "village",
                A,
                6,
                {
                    "substance": "头孢克洛",
                    "reaction": "家长诉既往服药后出疹",
                    "severity": "unknown",
                    "status": "active",
                },
            ),
        ),
    ),
    DemoPatient(
        "chen-guilan",
        "陈桂兰",
        "2",
        date(1969, 11, 30),
        "410323196911304246",
        ("county",),
        (
            Item(
                "county",
                E,
                60,
                {"kind": "exam", "chief_complaint": "单位健康体检"},
                key="c1",
                specialty="internal_medicine",
            ),
            _lab("county", 60, "总胆固醇", "6.4", "mmol/L", None, 5.2, "2093-3", "c1"),
            _lab("county", 60, "甘油三酯", "2.1", "mmol/L", None, 1.7, "2571-8", "c1"),
            _lab("county", 60, "谷丙转氨酶", "24", "U/L", 7, 40, "1742-6", "c1"),
            _lab(
                "county",
                60,
                "乙肝表面抗原",
                "阴性",
                "",
                None,
                None,
                "5196-1",
                "c1",
                ref_text="阴性",
            ),
            _vital("county", 60, "height", 158, visit="c1"),
            _vital("county", 60, "weight", 66, visit="c1"),
            _vital("county", 60, "bp_systolic", 126, visit="c1"),
            Item("county", D, 60, {"code": "E78.5", "name": "高脂血症"}, visit="c1"),
            Item(
                "county",
                M,
                55,
                {
                    "name": "阿托伐他汀钙片",
                    "dose": 20,
                    "unit": "mg",
                    "route": "oral",
                    "frequency": "qn",
                },
            ),
        ),
    ),
)

"""The fixed facts of the demo network: named hospitals, department sets, title mixes.

Names are those of real Henan institutions (the first phase linked 6 provincial, 18 city and
18 county hospitals); people, departments and schedules are made up.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class NamedHospital:
    code: str
    name: str
    name_en: str
    region_code: str
    grade: str
    specialties: tuple[str, ...]


GENERAL_TERTIARY = (
    "cardiology",
    "respiratory",
    "neurology",
    "gastroenterology",
    "endocrinology",
    "nephrology",
    "haematology",
    "rheumatology",
    "geriatrics",
    "oncology",
    "general_surgery",
    "orthopaedics",
    "neurosurgery",
    "cardiothoracic_surgery",
    "urology",
    "obstetrics_gynaecology",
    "paediatrics",
    "ophthalmology",
    "ent",
    "stomatology",
    "dermatology",
    "psychiatry",
    "infectious_diseases",
    "emergency",
    "critical_care",
    "anaesthesiology",
    "radiology",
    "ultrasound",
    "nuclear_medicine",
    "pathology",
    "laboratory",
    "rehabilitation",
    "tcm",
    "general_practice",
)

PROVINCIAL: tuple[NamedHospital, ...] = (
    NamedHospital(
        "HN-P01",
        "河南省人民医院",
        "Henan Provincial People's Hospital",
        "410105",
        "3A",
        GENERAL_TERTIARY,
    ),
    NamedHospital(
        "HN-P02",
        "郑州大学第一附属医院",
        "The First Affiliated Hospital of Zhengzhou University",
        "410103",
        "3A",
        GENERAL_TERTIARY,
    ),
    NamedHospital(
        "HN-P03",
        "河南省肿瘤医院",
        "Henan Cancer Hospital",
        "410105",
        "3A",
        (
            "oncology",
            "general_surgery",
            "cardiothoracic_surgery",
            "haematology",
            "gastroenterology",
            "respiratory",
            "obstetrics_gynaecology",
            "ent",
            "urology",
            "radiology",
            "ultrasound",
            "nuclear_medicine",
            "pathology",
            "laboratory",
            "anaesthesiology",
            "critical_care",
        ),
    ),
    NamedHospital(
        "HN-P04",
        "河南省胸科医院",
        "Henan Provincial Chest Hospital",
        "410105",
        "3A",
        (
            "cardiology",
            "respiratory",
            "cardiothoracic_surgery",
            "infectious_diseases",
            "oncology",
            "critical_care",
            "anaesthesiology",
            "radiology",
            "ultrasound",
            "pathology",
            "laboratory",
            "emergency",
        ),
    ),
    NamedHospital(
        "HN-P05",
        "河南省儿童医院",
        "Henan Children's Hospital",
        "410105",
        "3A",
        (
            "paediatrics",
            "neurology",
            "cardiology",
            "respiratory",
            "gastroenterology",
            "haematology",
            "nephrology",
            "general_surgery",
            "orthopaedics",
            "neurosurgery",
            "ent",
            "ophthalmology",
            "critical_care",
            "emergency",
            "rehabilitation",
            "radiology",
            "ultrasound",
            "laboratory",
        ),
    ),
    NamedHospital(
        "HN-P06",
        "河南中医药大学第一附属医院",
        "The First Affiliated Hospital of Henan University of Chinese Medicine",
        "410105",
        "3A",
        (
            "tcm",
            "cardiology",
            "respiratory",
            "neurology",
            "gastroenterology",
            "endocrinology",
            "nephrology",
            "rheumatology",
            "paediatrics",
            "orthopaedics",
            "obstetrics_gynaecology",
            "dermatology",
            "rehabilitation",
            "radiology",
            "laboratory",
            "emergency",
        ),
    ),
)

# The main municipal hospital of each prefecture-level division.
CITY_HOSPITALS: dict[str, str] = {
    "410100": "郑州市中心医院",
    "410200": "开封市中心医院",
    "410300": "洛阳市中心医院",
    "410400": "平顶山市第一人民医院",
    "410500": "安阳市人民医院",
    "410600": "鹤壁市人民医院",
    "410700": "新乡市中心医院",
    "410800": "焦作市人民医院",
    "410900": "濮阳市人民医院",
    "411000": "许昌市中心医院",
    "411100": "漯河市中心医院",
    "411200": "三门峡市中心医院",
    "411300": "南阳市中心医院",
    "411400": "商丘市第一人民医院",
    "411500": "信阳市中心医院",
    "411600": "周口市中心医院",
    "411700": "驻马店市中心医院",
    "419001": "济源市人民医院",
}
# 济源 has no county below it: its county-level hospital stands in a sub-district.
JIYUAN = "419001"
JIYUAN_COUNTY_HOSPITAL = ("济源市第二人民医院", "419001001")

CITY_SPECIALTIES = (
    "cardiology",
    "respiratory",
    "neurology",
    "gastroenterology",
    "endocrinology",
    "nephrology",
    "haematology",
    "oncology",
    "general_surgery",
    "orthopaedics",
    "neurosurgery",
    "urology",
    "obstetrics_gynaecology",
    "paediatrics",
    "ophthalmology",
    "ent",
    "emergency",
    "critical_care",
    "radiology",
    "ultrasound",
    "laboratory",
    "pathology",
)
COUNTY_SPECIALTIES = (
    "internal_medicine",
    "cardiology",
    "respiratory",
    "general_surgery",
    "orthopaedics",
    "obstetrics_gynaecology",
    "paediatrics",
    "emergency",
    "radiology",
    "ultrasound",
    "laboratory",
    "tcm",
)
# Township centres: (department name, specialty).
TOWNSHIP_DEPARTMENTS = (
    ("全科医学科", "general_practice"),
    ("内科", "internal_medicine"),
    ("外科", "general_surgery"),
    ("中医科", "tcm"),
    ("检验科", "laboratory"),
    ("放射科", "radiology"),
)

# (title code, weight) by institution level; radiology and the laboratory use technicians.
TITLE_MIX: dict[str, tuple[tuple[str, int], ...]] = {
    "provincial": (
        ("chief_physician", 18),
        ("associate_chief_physician", 24),
        ("attending_physician", 30),
        ("resident_physician", 14),
        ("supervising_nurse", 8),
        ("chief_nurse", 2),
        ("nurse", 4),
    ),
    "city": (
        ("chief_physician", 12),
        ("associate_chief_physician", 22),
        ("attending_physician", 34),
        ("resident_physician", 18),
        ("supervising_nurse", 8),
        ("nurse", 6),
    ),
    "county": (
        ("chief_physician", 3),
        ("associate_chief_physician", 12),
        ("attending_physician", 35),
        ("resident_physician", 25),
        ("physician", 8),
        ("supervising_nurse", 7),
        ("nurse", 10),
    ),
    "township": (
        ("attending_physician", 20),
        ("physician", 35),
        ("resident_physician", 15),
        ("nurse", 20),
        ("technologist", 10),
    ),
    "village": (("village_doctor", 85), ("physician", 15)),
}
TECH_SPECIALTIES = frozenset({"radiology", "ultrasound", "laboratory", "pathology"})
TECH_TITLE = {
    "chief_physician": "chief_technologist",
    "associate_chief_physician": "associate_chief_technologist",
    "attending_physician": "supervising_technologist",
    "resident_physician": "technologist",
    "physician": "technologist",
}

EXPERTISE: dict[str, str] = {
    "cardiology": "冠心病介入治疗、心力衰竭、高血压及心律失常的诊治",
    "respiratory": "慢性阻塞性肺疾病、哮喘、肺部感染及肺结节的诊治",
    "neurology": "脑血管病、癫痫、帕金森病及周围神经病的诊治",
    "gastroenterology": "消化道出血、炎症性肠病、肝硬化及消化内镜诊疗",
    "endocrinology": "糖尿病、甲状腺疾病及骨质疏松的规范化管理",
    "nephrology": "慢性肾脏病、肾小球疾病及血液净化",
    "haematology": "白血病、淋巴瘤及贫血的诊治",
    "oncology": "肺癌、胃肠道肿瘤的综合治疗与多学科会诊",
    "general_surgery": "肝胆胰及胃肠外科微创手术",
    "orthopaedics": "创伤骨科、关节置换及脊柱疾病",
    "neurosurgery": "颅脑创伤、脑出血及颅内肿瘤的手术治疗",
    "cardiothoracic_surgery": "肺癌、食管癌及心脏瓣膜病的外科治疗",
    "urology": "泌尿系结石、前列腺疾病及泌尿系肿瘤",
    "obstetrics_gynaecology": "高危妊娠管理、妇科肿瘤及宫腹腔镜手术",
    "paediatrics": "小儿呼吸道感染、新生儿疾病及儿童生长发育",
    "radiology": "胸部及腹部CT、MRI影像诊断",
    "ultrasound": "腹部、心脏及血管超声诊断",
    "pathology": "肿瘤病理及术中冰冻病理诊断",
    "critical_care": "脓毒症、多器官功能障碍及危重症救治",
    "emergency": "急危重症抢救、创伤及中毒救治",
    "tcm": "中医内科杂病及慢性病的中医调理",
}

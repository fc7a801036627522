"""Patient pages: search, registration with near matches, the header page and its audited
"show full numbers" button, edit, merge and undo, the break-glass form; zh-CN and English."""

from __future__ import annotations

from pathlib import Path

import pytest
from babel.messages.extract import extract_from_dir
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.directory.conftest import cookie_login
from tests.helpers import csrf_from
from tests.patients.conftest import (
    FEMALE,
    MALE,
    RESIDENT_ID_MALE,
    Api,
    audit_rows,
    last_seq,
    register,
    rows_since,
)
from xietong.core.i18n import translations
from xietong.patients.models import Patient, PatientMerge

SRC = Path(__file__).resolve().parents[2] / "src" / "xietong"
HTML = {"Accept": "text/html"}


def _browser(client: TestClient, db: Session, api: Api, who: str) -> TestClient:
    cookie_login(client, db, api.users[who])
    return client


@pytest.fixture
def doctor(client: TestClient, db: Session, api: Api) -> TestClient:
    return _browser(client, db, api, "village_doctor")


def _csrf(client: TestClient) -> str:
    return csrf_from(client.get("/patients/new").text)


def _registration_form(csrf: str, **values: str) -> dict[str, str]:
    base = {
        "csrf_token": csrf,
        "name": "张建国",
        "sex": "1",
        "birth_date": "1980-01-01",
        "resident_id": RESIDENT_ID_MALE,
        "phone": "13812345678",
        "client_request_id": "form-1",
    }
    return {**base, **values}


def test_pages_need_a_signed_in_user(client: TestClient) -> None:
    for url in (
        "/patients",
        "/patients/new",
        "/patients/1",
        "/patients/1/edit",
        "/patients/1/merge",
    ):
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303, url
        assert response.headers["location"].startswith("/login?next=")


def test_menu_entry_for_clinical_roles_only(client: TestClient, db: Session, api: Api) -> None:
    doctor = _browser(client, db, api, "village_doctor")
    assert 'href="/patients"' in doctor.get("/").text
    client.cookies.clear()
    authority = _browser(client, db, api, "authority")
    assert 'href="/patients"' not in authority.get("/").text
    assert authority.get("/patients", headers=HTML).status_code == 403
    assert authority.get("/patients/new", headers=HTML).status_code == 403


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh_CN", ["患者", "居民身份证号码", "出生日期", "登记患者", "找到 1 名患者"]),
        (
            "en",
            [
                "Patients",
                "Resident ID number",
                "Birth date",
                "Register a patient",
                "1 patient found",
            ],
        ),
    ],
)
def test_search_page_in_both_languages(
    doctor: TestClient, api: Api, lang: str, words: list[str]
) -> None:
    register(doctor, api.village_doctor, MALE)
    page = doctor.get("/patients", params={"lang": lang, "name": "张"})
    assert page.status_code == 200
    for word in words:
        assert word in page.text, word
    assert "4101**********123X" in page.text
    assert RESIDENT_ID_MALE not in page.text
    assert page.headers["cache-control"] == "no-store"
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in page.text


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        (
            "zh_CN",
            [
                "显示完整号码",
                "证件与编号",
                "打开病历（诊疗记录和资料）",
                "合并历史",
                "编辑患者信息",
            ],
        ),
        (
            "en",
            ["Show full numbers", "Identifiers", "Open the chart", "Merge history", "Edit patient"],
        ),
    ],
)
def test_patient_pages_in_both_languages(
    doctor: TestClient, api: Api, lang: str, words: list[str]
) -> None:
    patient = register(doctor, api.village_doctor, MALE)
    text = "".join(
        doctor.get(url, params={"lang": lang}).text
        for url in (
            f"/patients/{patient}",
            f"/patients/{patient}/merge",
            f"/patients/{patient}/edit",
        )
    )
    for word in words:
        assert word in text, word
    new = doctor.get("/patients/new", params={"lang": lang}).text
    assert ("登记患者" if lang == "zh_CN" else "Register a patient") in new


def test_search_fragment_for_htmx_and_errors_in_the_form(doctor: TestClient) -> None:
    fragment = doctor.get(
        "/patients",
        params={"name": "张"},
        headers={"HX-Request": "true", "HX-Target": "patient-results"},
    )
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert 'id="patient-results"' in fragment.text
    bad_fragment = doctor.get(
        "/patients",
        params={"phone": "12"},
        headers={"HX-Request": "true", "HX-Target": "patient-results"},
    )
    assert bad_fragment.status_code == 200  # htmx swaps 2xx only; the error is inside
    assert 'data-field="phone"' in bad_fragment.text
    bad = doctor.get("/patients", params={"resident_id": "123"})
    assert bad.status_code == 422
    assert 'data-field="resident_id"' in bad.text


def test_registration_then_header_page(doctor: TestClient, db: Session, api: Api) -> None:
    csrf = _csrf(doctor)
    response = doctor.post("/patients/new", data=_registration_form(csrf), follow_redirects=False)
    assert response.status_code == 303, response.text
    page = doctor.get(response.headers["location"])
    assert "患者已登记" in page.text
    assert "4101**********123X" in page.text
    assert RESIDENT_ID_MALE not in page.text
    assert "/patients/1/chart" in page.text or "/chart" in page.text
    assert "显示完整号码" in page.text
    # The same form again (a double submit): the client request id finds the first.
    again = doctor.post("/patients/new", data=_registration_form(csrf), follow_redirects=False)
    assert again.status_code == 303
    assert db.execute(select(func.count()).select_from(Patient)).scalar_one() == 1


def test_registration_shows_near_matches_and_confirms_the_same_person(
    client: TestClient, db: Session, api: Api
) -> None:
    county = _browser(client, db, api, "county_doctor")
    no_id = {k: v for k, v in MALE.items() if k != "resident_id"}
    first = register(county, api.county_doctor, no_id)
    client.cookies.clear()
    doctor = _browser(client, db, api, "village_doctor")
    csrf = _csrf(doctor)
    form = _registration_form(csrf, resident_id="", client_request_id="form-2")
    shown = doctor.post("/patients/new", data=form)
    assert shown.status_code == 200
    assert "已登记的疑似同一人" in shown.text
    assert f'name="same_as_patient_id" value="{first}"' in shown.text
    assert "138****5678" in shown.text
    assert db.execute(select(func.count()).select_from(Patient)).scalar_one() == 1
    confirmed = doctor.post(
        "/patients/new", data={**form, "same_as_patient_id": str(first)}, follow_redirects=False
    )
    assert confirmed.status_code == 303
    assert confirmed.headers["location"] == f"/patients/{first}?done=existing"
    assert db.execute(select(func.count()).select_from(Patient)).scalar_one() == 1


def test_registration_anyway_makes_a_new_record(client: TestClient, db: Session, api: Api) -> None:
    doctor = _browser(client, db, api, "village_doctor")
    no_id = {k: v for k, v in MALE.items() if k != "resident_id"}
    register(doctor, api.village_doctor, no_id)
    form = _registration_form(_csrf(doctor), resident_id="", client_request_id="form-3")
    created = doctor.post("/patients/new", data={**form, "decision": "new"}, follow_redirects=False)
    assert created.status_code == 303
    assert db.execute(select(func.count()).select_from(Patient)).scalar_one() == 2


def test_registration_errors_name_the_input(doctor: TestClient, db: Session, api: Api) -> None:
    csrf = _csrf(doctor)
    for values, field in (
        ({"resident_id": "410102198001011235"}, "resident_id"),
        ({"birth_date": "2999-01-01", "resident_id": ""}, "birth_date"),
        ({"mrn": "a;b"}, "mrn"),
        ({"passport": "E1234567", "passport_country": "中国"}, "passport_country"),
        ({"emergency_name": "李", "emergency_phone": "1"}, "emergency_phone"),
        ({"name": "a\x00b"}, "name"),
    ):
        response = doctor.post("/patients/new", data=_registration_form(csrf, **values))
        assert response.status_code == 422, (values, response.text[:300])
        assert f'data-field="{field}"' in response.text, values
        assert f'name="{field}"' in response.text
    assert db.execute(select(func.count()).select_from(Patient)).scalar_one() == 0


def test_show_full_numbers_is_a_post_with_csrf_and_audited(
    doctor: TestClient, db: Session, api: Api
) -> None:
    patient = register(doctor, api.village_doctor, MALE)
    page = doctor.get(f"/patients/{patient}")
    csrf = csrf_from(page.text)
    without = doctor.post(f"/patients/{patient}/reveal", data={}, headers=HTML)
    assert without.status_code == 403
    before = last_seq(db)
    shown = doctor.post(f"/patients/{patient}/reveal", data={"csrf_token": csrf})
    assert shown.status_code == 200
    assert RESIDENT_ID_MALE in shown.text
    assert "13812345678" in shown.text
    assert shown.headers["cache-control"] == "no-store"
    assert [r.action for r in rows_since(db, before)] == ["patient.reveal"]


def test_edit_page(doctor: TestClient, db: Session, api: Api) -> None:
    patient = register(doctor, api.village_doctor, MALE)
    form_page = doctor.get(f"/patients/{patient}/edit")
    assert form_page.status_code == 200
    assert "13812345678" not in form_page.text
    csrf = csrf_from(form_page.text)
    values = {"csrf_token": csrf, "name": "张建国", "sex": "1", "birth_date": "1980-01-01"}
    bad = doctor.post(f"/patients/{patient}/edit", data={**values, "phone": "12"})
    assert bad.status_code == 422
    assert 'data-field="phone"' in bad.text
    saved = doctor.post(
        f"/patients/{patient}/edit",
        data={**values, "phone": "13900001111", "address_detail": "人民路1号"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    assert "139****1111" in doctor.get(saved.headers["location"]).text
    assert '"fields": ["address_detail", "phone"]' in audit_rows(db, "patient.update")[-1].detail


def test_merge_and_undo_pages(doctor: TestClient, db: Session, api: Api) -> None:
    survivor = register(doctor, api.village_doctor, MALE)
    duplicate = register(
        doctor,
        api.village_doctor,
        {**{k: v for k, v in MALE.items() if k != "resident_id"}, "phone": "13600000000"},
    )
    page = doctor.get(f"/patients/{survivor}/merge")
    assert page.status_code == 200
    assert f'value="{duplicate}"' in page.text  # offered as a possible duplicate
    csrf = csrf_from(page.text)
    no_reason = doctor.post(
        f"/patients/{survivor}/merge", data={"csrf_token": csrf, "merged_id": str(duplicate)}
    )
    assert no_reason.status_code == 422
    assert 'data-field="merge_reason"' in no_reason.text
    merged = doctor.post(
        f"/patients/{survivor}/merge",
        data={"csrf_token": csrf, "merged_id": str(duplicate), "merge_reason": "同一人重复登记"},
        follow_redirects=False,
    )
    assert merged.status_code == 303
    history = doctor.get(merged.headers["location"])
    assert "记录已合并" in history.text
    assert "同一人重复登记" in history.text
    merge_id = db.execute(select(PatientMerge.id)).scalar_one()
    # Opening the merged record shows the survivor with a notice.
    opened = doctor.get(f"/patients/{duplicate}")
    assert f"记录 #{duplicate} 已合并到本记录" in opened.text
    undone = doctor.post(
        f"/patients/merges/{merge_id}/undo",
        data={"csrf_token": csrf, "patient_id": str(survivor), "undo_reason": "不是同一人"},
        follow_redirects=False,
    )
    assert undone.status_code == 303
    assert "合并已撤销" in doctor.get(undone.headers["location"]).text
    assert doctor.get(f"/patients/{duplicate}").text.count(f"#{duplicate}") >= 1


def test_break_glass_pages_for_platform_admins(client: TestClient, db: Session, api: Api) -> None:
    doctor = _browser(client, db, api, "village_doctor")
    patient = register(doctor, api.village_doctor, MALE)
    client.cookies.clear()
    admin = _browser(client, db, api, "platform")
    form = admin.get(f"/patients/{patient}")
    assert form.status_code == 403
    assert "访问理由" in form.text
    assert "张建国" not in form.text
    csrf = csrf_from(form.text)
    short = admin.post(f"/patients/{patient}/open", data={"csrf_token": csrf, "reason": "看看"})
    assert short.status_code == 403
    assert 'data-field="reason"' in short.text
    reason = "投诉处理 2026-118 需要核对身份"
    opened = admin.post(f"/patients/{patient}/open", data={"csrf_token": csrf, "reason": reason})
    assert opened.status_code == 200
    assert "张建国" in opened.text
    assert f'name="reason" value="{reason}"' in opened.text  # carried to "show full numbers"
    revealed = admin.post(
        f"/patients/{patient}/reveal", data={"csrf_token": csrf, "reason": reason}
    )
    assert RESIDENT_ID_MALE in revealed.text
    glass = audit_rows(db, "patient.break_glass")
    assert [r.purpose for r in glass] == [reason, reason]
    assert '"operation": "patient.reveal"' in glass[-1].detail
    search = admin.get("/patients", params={"name": "张"})
    assert "名患者" not in search.text  # no results without a reason
    found = admin.get("/patients", params={"name": "张", "reason": reason})
    assert "找到 1 名患者" in found.text
    merge_form = admin.get(f"/patients/{patient}/merge")
    assert merge_form.status_code == 403
    assert 'name="next" value="merge"' in merge_form.text


def test_another_institution_gets_the_not_found_page(
    client: TestClient, db: Session, api: Api
) -> None:
    doctor = _browser(client, db, api, "village_doctor")
    patient = register(doctor, api.village_doctor, FEMALE)
    client.cookies.clear()
    other = _browser(client, db, api, "other_doctor")
    for url in (f"/patients/{patient}", f"/patients/{patient}/edit", f"/patients/{patient}/merge"):
        response = other.get(url, headers=HTML)
        assert response.status_code == 404, url
        assert "王芳" not in response.text


def _msgids() -> dict[str, set[Path]]:
    """Every msgid of the source, with the files that use it."""
    found: dict[str, set[Path]] = {}
    method_map = [("**.py", "python"), ("**/templates/**.html", "jinja2")]
    options = {"**/templates/**.html": {"extensions": "jinja2.ext.i18n"}}
    for name, _line, message, *_ in extract_from_dir(
        str(SRC), method_map, options, keywords={"_": None, "N_": None}
    ):
        if isinstance(message, str) and message:
            found.setdefault(message, set()).add(SRC / name)
    return found


PATIENT_FILES = (
    SRC / "patients",
    SRC / "web" / "templates" / "patients",
    SRC / "web" / "pages" / "patients.py",
    SRC / "web" / "pages" / "patients_common.py",
    SRC / "web" / "pages" / "patient_forms.py",
    SRC / "web" / "routes" / "patients.py",
)


def _is_patient_file(path: Path) -> bool:
    return any(path == p or path.is_relative_to(p) for p in PATIENT_FILES)


def test_every_patient_string_is_translated_to_chinese() -> None:
    """The strings only the patient index uses (shared words such as "Cancel" belong to
    the catalog-wide test in tests/core)."""
    zh = translations("zh_CN")
    ours = [m for m, files in _msgids().items() if all(_is_patient_file(f) for f in files)]
    assert len(ours) > 50
    missing = sorted(m for m in ours if zh.gettext(m) == m)
    assert missing == [], f"run `make messages` and translate: {missing}"

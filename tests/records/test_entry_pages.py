"""The record pages: a form per kind (vital signs several at once), the entry page with its
history, corrections and "entered in error", as a browser posts them; bad input shows the
form again naming the field with nothing written; refusals are error pages."""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.helpers import csrf_from, page_login
from tests.records.conftest import PATHS, Site, add, audits, entry_counts
from xietong.records.kinds import RecordKind
from xietong.records.models import RecordRevision

HTML = {"Accept": "text/html"}
K = RecordKind

# A valid form per kind, as a clinician fills it in (times are China time, as typed).
FORMS: dict[RecordKind, dict[str, str]] = {
    K.ENCOUNTER: {
        "kind": "outpatient",
        "start_date": "2026-11-20",
        "chief_complaint": "头晕3天",
        "summary": "血压控制欠佳。",
    },
    K.DIAGNOSIS: {"code": "i10", "kind": "primary", "status": "confirmed"},
    K.LAB_RESULT: {
        "item_name": "空腹血糖",
        "value_text": "7.8",
        "unit": "mmol/L",
        "ref_low": "3.9",
        "ref_high": "6.1",
        "collected_at": "2026-11-20T08:00",
        "loinc_code": "1558-6",
    },
    K.MEDICATION: {
        "order_kind": "medication",
        "name": "苯磺酸氨氯地平片",
        "dose": "5",
        "unit": "mg",
        "route": "oral",
        "frequency": "qd",
        "status": "active",
    },
    K.VITAL_SIGN: {
        "measured_at": "2026-11-20T08:30",
        "temperature": "37.8",
        "heart_rate": "88",
        "bp_systolic": "152",
        "bp_diastolic": "95",
    },
    K.ALLERGY: {
        "substance": "青霉素",
        "reaction": "皮疹",
        "severity": "moderate",
        "status": "active",
        "noted_on": "2015-05-01",
    },
}
# What each kind's form records, checked through the JSON API.
RECORDED: dict[RecordKind, dict[str, Any]] = {
    K.ENCOUNTER: {"kind": "outpatient", "start_date": "2026-11-20", "chief_complaint": "头晕3天"},
    K.DIAGNOSIS: {"code": "I10", "kind": "primary", "diagnosed_on": "2026-11-20"},
    K.LAB_RESULT: {
        "value_numeric": 7.8,
        "abnormal_flag": "H",
        "collected_at": "2026-11-20T00:00:00Z",
    },
    K.MEDICATION: {"dose": 5.0, "route": "oral", "start_date": "2026-11-20"},
    K.VITAL_SIGN: {"kind": "bp_diastolic", "value": 95.0, "abnormal_flag": "H"},
    K.ALLERGY: {"substance": "青霉素", "severity": "moderate"},
}
# One correction per kind: (input, new text, API field, API value after).
CORRECTIONS: dict[RecordKind, tuple[str, str, str, Any]] = {
    K.ENCOUNTER: ("chief_complaint", "头晕5天", "chief_complaint", "头晕5天"),
    K.DIAGNOSIS: ("code", "E11.9", "code", "E11.9"),
    K.LAB_RESULT: ("value_text", "5.2", "abnormal_flag", "N"),
    K.MEDICATION: ("dose", "10", "dose", 10.0),
    K.VITAL_SIGN: ("value", "88", "value", 88.0),
    K.ALLERGY: ("severity", "severe", "severity", "severe"),
}
# One bad value per kind, and the input the error names.
BAD: dict[RecordKind, tuple[dict[str, str], str]] = {
    K.ENCOUNTER: ({"start_date": "2026-11-21"}, "start_date"),  # tomorrow in China
    K.DIAGNOSIS: ({"code": "A90"}, "code"),  # retired in 2019
    K.LAB_RESULT: ({"loinc_code": "1558-5"}, "loinc_code"),  # wrong check digit
    K.MEDICATION: ({"dose": "五"}, "dose"),
    K.VITAL_SIGN: ({"temperature": "3.78"}, "temperature"),  # a slipped decimal point
    K.ALLERGY: ({"substance": ""}, "substance"),
}


class FormReader(HTMLParser):
    """The values a browser would submit from one form of a page."""

    def __init__(self, form_id: str) -> None:
        super().__init__()
        self.form_id = form_id
        self.inside = False
        self.values: dict[str, str] = {}
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form":
            self.inside = a.get("id") == self.form_id
        if not self.inside or "form" in a:
            return
        name = a.get("name")
        if tag == "input" and name:
            self.values[name] = a.get("value", "")
        elif tag == "select" and name:
            self._select = name
            self.values.setdefault(name, "")
        elif tag == "option" and self._select and "selected" in a:
            self.values[self._select] = a.get("value", "")
        elif tag == "textarea" and name:
            self._textarea = name
            self.values[name] = ""

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self.inside = False
        elif tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None

    def handle_data(self, data: str) -> None:
        if self._textarea:
            self.values[self._textarea] += data


def form_of(html: str, form_id: str) -> dict[str, str]:
    reader = FormReader(form_id)
    reader.feed(html)
    assert reader.values, f"no form #{form_id}"
    return reader.values


@pytest.fixture
def doctor(client: TestClient, site: Site) -> TestClient:
    page_login(client, "r_village")
    return client


def _new_url(site: Site, kind: RecordKind, lang: str | None = None) -> str:
    url = f"/patients/{site.patient.id}/records/new?kind={kind}"
    return f"{url}&lang={lang}" if lang else url


def _fill(client: TestClient, site: Site, kind: RecordKind, **changes: str) -> dict[str, str]:
    """Open the form and fill it in like a browser: its defaults, then our values."""
    page = client.get(_new_url(site, kind))
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    values = form_of(page.text, "entry-form")
    values.update(FORMS[kind])
    values.update(changes)
    return values


def _entries(client: TestClient, site: Site, kind: RecordKind) -> list[dict[str, Any]]:
    listing = client.get(
        f"/api/v1/patients/{site.patient.id}/{PATHS[kind]}",
        params={"include_errors": "true"},
        headers=site.tokens["village_doctor"],
    )
    assert listing.status_code == 200, listing.text
    items: list[dict[str, Any]] = listing.json()["items"]
    return items


def _marked(html: str, field: str) -> bool:
    """The input ``field`` carries aria-invalid (or, for a group, the fieldset does)."""
    for tag in html.split("<")[1:]:
        if (f'name="{field}"' in tag or f'id="{field}"' in tag) and 'aria-invalid="true"' in tag:
            return True
    return False


@pytest.mark.parametrize("kind", list(RecordKind))
def test_record_open_correct_and_mark_in_error(
    doctor: TestClient, db: Session, site: Site, kind: RecordKind
) -> None:
    values = _fill(doctor, site, kind)
    response = doctor.post(_new_url(site, kind), data=values, follow_redirects=False)
    assert response.status_code == 303, response.text
    assert response.headers["location"] == f"/patients/{site.patient.id}/chart"

    items = _entries(doctor, site, kind)
    assert len(items) == (4 if kind is K.VITAL_SIGN else 1)
    entry = items[0]
    for name, expected in RECORDED[kind].items():
        assert entry[name] == expected, name
    assert entry["source"] == "entered"
    assert entry["recorded_by_name"] == "李医生"
    assert entry["institution_id"] == site.village.id

    url = f"/records/{kind}/{entry['id']}"
    page = doctor.get(url, headers=HTML)
    assert page.status_code == 200, page.text
    assert page.headers["cache-control"] == "no-store"
    assert "测试村卫生室" in page.text
    assert "李医生" in page.text
    assert f'href="/patients/{site.patient.id}/chart"' in page.text

    # Unchanged: nothing is written.
    shown = form_of(page.text, "correct-form")
    same = doctor.post(
        f"{url}/correct", data={**shown, "reason": "核对无误"}, follow_redirects=False
    )
    assert same.status_code == 303, same.text
    assert same.headers["location"] == f"{url}?done=unchanged"
    assert db.execute(select(RecordRevision)).first() is None

    name, text, api_field, after = CORRECTIONS[kind]
    corrected = doctor.post(
        f"{url}/correct",
        data={**shown, name: text, "reason": "抄写错误"},
        follow_redirects=False,
    )
    assert corrected.status_code == 303, corrected.text
    assert corrected.headers["location"] == f"{url}?done=corrected"
    body = doctor.get(f"/api/v1{url}", headers=site.tokens["village_doctor"]).json()
    assert body[api_field] == after
    assert body["version"] == 2
    if kind is K.DIAGNOSIS:
        assert body["name"] != entry["name"]  # the new code's title, not the old name
    history = doctor.get(f"{url}?done=corrected", headers=HTML)
    assert "抄写错误" in history.text
    assert 'class="revision" data-version="1"' in history.text

    marked = doctor.post(
        f"{url}/entered-in-error",
        data={"csrf_token": csrf_from(history.text), "version": "2", "error_reason": "患者弄错"},
        follow_redirects=False,
    )
    assert marked.status_code == 303, marked.text
    body = doctor.get(f"/api/v1{url}", headers=site.tokens["village_doctor"]).json()
    assert body["entry_status"] == "entered_in_error"
    assert body["error_reason"] == "患者弄错"
    final = doctor.get(f"{url}?done=entered_in_error", headers={**HTML, "Accept-Language": "zh"})
    assert "患者弄错" in final.text
    assert "录入错误" in final.text
    assert 'id="correct-form"' not in final.text  # no more changes
    assert len(audits(db, f"{kind}.entered_in_error", object_kind=kind.value)) == 1


@pytest.mark.parametrize("kind", list(RecordKind))
def test_bad_input_shows_the_form_again_naming_the_field(
    doctor: TestClient, db: Session, site: Site, kind: RecordKind
) -> None:
    changes, field = BAD[kind]
    before = entry_counts(db)
    response = doctor.post(_new_url(site, kind), data=_fill(doctor, site, kind, **changes))
    assert response.status_code == 422, response.text
    assert f'data-field="{field}"' in response.text
    assert _marked(response.text, field), field
    assert entry_counts(db) == before
    # The form keeps what was typed, and its request id (nothing was recorded under it).
    again = form_of(response.text, "entry-form")
    for name, value in FORMS[kind].items():
        if name not in changes:
            assert again[name] == value, name


def test_a_bad_vital_value_records_none_of_the_others(
    doctor: TestClient, db: Session, site: Site
) -> None:
    values = _fill(doctor, site, K.VITAL_SIGN, spo2="150")  # the last one checked is wrong
    response = doctor.post(_new_url(site, K.VITAL_SIGN), data=values)
    assert response.status_code == 422
    assert 'data-field="spo2"' in response.text
    assert _marked(response.text, "spo2")
    assert entry_counts(db)["vital_sign"] == 0
    empty = {k: v for k, v in values.items() if k in ("csrf_token", "measured_at")}
    nothing = doctor.post(_new_url(site, K.VITAL_SIGN), data=empty)
    assert nothing.status_code == 422
    assert 'data-field="vitals"' in nothing.text
    assert entry_counts(db)["vital_sign"] == 0


def test_vital_signs_share_their_time_and_encounter(
    doctor: TestClient, db: Session, site: Site
) -> None:
    visit = add(db, site.village_doctor, K.ENCOUNTER, site.patient.id, start_date="2026-11-20")
    db.commit()
    defaults = form_of(doctor.get(_new_url(site, K.VITAL_SIGN)).text, "entry-form")
    assert defaults["encounter_id"] == str(visit.id)  # today's visit is chosen
    assert defaults["measured_at"] == "2026-11-20T12:00"  # now, China time
    values = _fill(doctor, site, K.VITAL_SIGN)
    response = doctor.post(_new_url(site, K.VITAL_SIGN), data=values, follow_redirects=False)
    assert response.status_code == 303
    items = _entries(doctor, site, K.VITAL_SIGN)
    assert {i["kind"] for i in items} == {
        "temperature",
        "heart_rate",
        "bp_systolic",
        "bp_diastolic",
    }
    assert {i["encounter_id"] for i in items} == {visit.id}
    assert {i["measured_at"] for i in items} == {"2026-11-20T00:30:00Z"}
    flags = {i["kind"]: i["abnormal_flag"] for i in items}
    assert flags == {"temperature": "H", "heart_rate": "N", "bp_systolic": "H", "bp_diastolic": "H"}


@pytest.mark.parametrize("kind", [K.ALLERGY, K.VITAL_SIGN])
def test_a_double_submit_records_once(
    doctor: TestClient, db: Session, site: Site, kind: RecordKind
) -> None:
    values = _fill(doctor, site, kind)
    assert values["client_request_id"]
    first = doctor.post(_new_url(site, kind), data=values, follow_redirects=False)
    second = doctor.post(_new_url(site, kind), data=values, follow_redirects=False)
    assert first.status_code == second.status_code == 303
    assert second.headers["location"] == first.headers["location"]
    assert entry_counts(db)[kind] == (4 if kind is K.VITAL_SIGN else 1)
    # A new render is a new request id: a second, deliberate entry.
    again = doctor.post(
        _new_url(site, kind), data=_fill(doctor, site, kind), follow_redirects=False
    )
    assert again.status_code == 303
    assert entry_counts(db)[kind] == (8 if kind is K.VITAL_SIGN else 2)


def test_form_defaults_the_recorders_department_and_today(doctor: TestClient, site: Site) -> None:
    values = form_of(doctor.get(_new_url(site, K.ENCOUNTER)).text, "entry-form")
    assert values["department_id"] == str(site.village_department.id)
    assert values["attending_practitioner_id"] == str(site.village_practitioner.id)
    assert values["start_date"] == "2026-11-20"
    assert values["kind"] == "outpatient"
    assert values["end_date"] == ""
    lab = form_of(doctor.get(_new_url(site, K.LAB_RESULT)).text, "entry-form")
    assert lab["collected_at"] == "2026-11-20T12:00"
    assert lab["abnormal_flag"] == ""  # computed unless given
    diagnosis = form_of(doctor.get(_new_url(site, K.DIAGNOSIS)).text, "entry-form")
    assert (diagnosis["kind"], diagnosis["status"]) == ("primary", "confirmed")  # the schema's
    assert diagnosis["diagnosed_on"] == "2026-11-20"
    allergy = form_of(doctor.get(_new_url(site, K.ALLERGY)).text, "entry-form")
    assert (allergy["severity"], allergy["status"]) == ("unknown", "active")


def test_without_a_kind_the_form_page_lists_the_kinds(doctor: TestClient, site: Site) -> None:
    page = doctor.get(f"/patients/{site.patient.id}/records/new", params={"lang": "zh_CN"})
    assert page.status_code == 200
    for kind in RecordKind:
        assert f"/records/new?kind={kind}" in page.text
    assert "录入生命体征" in page.text
    unknown = doctor.get(f"/patients/{site.patient.id}/records/new?kind=x-ray", headers=HTML)
    assert unknown.status_code == 404
    assert doctor.get("/records/x-ray/1", headers=HTML).status_code == 404


def test_correction_errors_name_the_field_and_write_nothing(
    doctor: TestClient, db: Session, site: Site
) -> None:
    entry = add(db, site.village_doctor, K.LAB_RESULT, site.patient.id)
    db.commit()
    url = f"/records/lab_result/{entry.id}"
    shown = form_of(doctor.get(url).text, "correct-form")
    before = entry_counts(db)

    no_reason = doctor.post(f"{url}/correct", data={**shown, "value_text": "6.0"})
    assert no_reason.status_code == 422
    assert _marked(no_reason.text, "reason")
    assert 'value="6.0"' in no_reason.text  # what was typed stays

    inverted = doctor.post(f"{url}/correct", data={**shown, "ref_low": "9", "reason": "范围抄错"})
    assert inverted.status_code == 422
    assert 'data-field="ref_high"' in inverted.text
    assert 'value="范围抄错"' in inverted.text

    future = doctor.post(
        f"{url}/correct", data={**shown, "collected_at": "2026-11-21T08:00", "reason": "时间"}
    )
    assert future.status_code == 422
    assert _marked(future.text, "collected_at")

    stale = doctor.post(
        f"{url}/correct", data={**shown, "version": "0", "value_text": "6", "reason": "旧页面"}
    )
    assert stale.status_code == 409
    assert 'data-code="version_conflict"' in stale.text

    short = doctor.post(f"{url}/entered-in-error", data={**shown, "error_reason": "x"})
    assert short.status_code == 422
    assert _marked(short.text, "error_reason")
    assert entry_counts(db) == before


def test_another_institution_gets_404_and_other_roles_403(
    client: TestClient, db: Session, site: Site
) -> None:
    entry = add(db, site.village_doctor, K.DIAGNOSIS, site.patient.id)
    db.commit()
    new = _new_url(site, K.DIAGNOSIS)
    page_login(client, "r_other")
    csrf = csrf_from(client.get("/").text)
    assert client.get(new, headers=HTML).status_code == 404
    post = client.post(new, data={"csrf_token": csrf, **FORMS[K.DIAGNOSIS]}, headers=HTML)
    assert post.status_code == 404
    hidden = client.get(f"/records/diagnosis/{entry.id}", headers=HTML)
    assert hidden.status_code == 404
    assert "张建国" not in hidden.text
    absent = client.get("/records/diagnosis/999999", headers=HTML)
    assert absent.status_code == 404
    correct = client.post(
        f"/records/diagnosis/{entry.id}/correct",
        data={"csrf_token": csrf, "version": "1", "code": "E11.9", "reason": "试图修改"},
        headers=HTML,
    )
    assert correct.status_code == 404
    marked = client.post(
        f"/records/diagnosis/{entry.id}/entered-in-error",
        data={"csrf_token": csrf, "version": "1", "error_reason": "试图修改"},
        headers=HTML,
    )
    assert marked.status_code == 404
    assert entry_counts(db)["revisions"] == 0

    for username in ("r_authority", "r_instadmin", "r_platform"):
        client.cookies.clear()
        page_login(client, username)
        refused = client.get(new, headers=HTML)
        assert refused.status_code == 403, username
        assert "<html" in refused.text


def test_the_linked_county_sees_its_entry_but_cannot_change_the_villages(
    client: TestClient, db: Session, site: Site
) -> None:
    village_entry = add(db, site.village_doctor, K.ALLERGY, site.patient.id)
    county_entry = add(db, site.county_doctor, K.ALLERGY, site.patient.id)
    db.commit()
    page_login(client, "r_county")
    assert client.get(f"/records/allergy/{village_entry.id}", headers=HTML).status_code == 404
    own = client.get(f"/records/allergy/{county_entry.id}", headers=HTML)
    assert own.status_code == 200
    assert 'id="correct-form"' in own.text  # the county holds this one


def test_the_diagnosis_picker(doctor: TestClient, site: Site) -> None:
    form = doctor.get(_new_url(site, K.DIAGNOSIS, "zh_CN")).text
    assert 'hx-get="/records/icd10-options"' in form
    assert 'form="icd10-search"' in form  # Enter in the search box searches, never saves
    assert 'name="code"' in form  # typing the code works without the picker

    options = doctor.get(
        "/records/icd10-options", params={"q": "高血压"}, headers={"HX-Request": "true"}
    )
    assert options.status_code == 200
    assert 'data-code="I10"' in options.text
    assert "<html" not in options.text
    by_code = doctor.get(
        "/records/icd10-options", params={"q": "e11"}, headers={"HX-Request": "true"}
    )
    assert 'data-code="E11.9"' in by_code.text
    assert 'hx-get="/records/icd10-choice?code=E11.9"' in by_code.text
    none = doctor.get(
        "/records/icd10-options", params={"q": "zzzz"}, headers={"HX-Request": "true"}
    )
    assert "没有符合的编码" in none.text or "No code matches" in none.text

    choice = doctor.get("/records/icd10-choice", params={"code": "E11.9"})
    assert choice.status_code == 200
    assert 'name="code" value="E11.9"' in choice.text
    assert 'hx-swap-oob="innerHTML"' in choice.text  # the results are cleared
    name = form_of(f'<form id="f">{choice.text}</form>', "f")["name"]
    assert "糖尿病" in name

    page = doctor.get("/records/icd10-options", params={"q": "高血压"})  # scripts off
    assert "<html" in page.text
    assert "I10" in page.text


@pytest.mark.parametrize(
    ("lang", "words"),
    [
        ("zh_CN", ["录入诊断", "诊断名称", "保存", "取消", "病历"]),
        ("en", ["Record a diagnosis", "Diagnosis name", "Save", "Cancel", "Chart"]),
    ],
)
def test_forms_and_entry_page_in_both_languages(
    doctor: TestClient, db: Session, site: Site, lang: str, words: list[str]
) -> None:
    form = doctor.get(_new_url(site, K.DIAGNOSIS, lang))
    assert form.status_code == 200
    for word in words:
        assert word in form.text, word
    vitals = doctor.get(_new_url(site, K.VITAL_SIGN, lang)).text
    assert ("体温" if lang == "zh_CN" else "Temperature") in vitals
    entry = add(db, site.village_doctor, K.MEDICATION, site.patient.id)
    db.commit()
    page = doctor.get(f"/records/medication/{entry.id}", params={"lang": lang}).text
    expected = (
        ["医嘱", "口服", "更正", "标记为录入错误", "历史"]
        if lang == "zh_CN"
        else ["Order", "Oral", "Correct this entry", "Mark as entered in error", "History"]
    )
    for word in expected:
        assert word in page, word
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in page


def test_a_correction_never_clears_a_choice_no_longer_offered(
    doctor: TestClient, db: Session, site: Site
) -> None:
    visit = add(
        db,
        site.village_doctor,
        K.ENCOUNTER,
        site.patient.id,
        department_id=site.village_department.id,
    )
    diagnosis = add(db, site.village_doctor, K.DIAGNOSIS, site.patient.id, encounter_id=visit.id)
    site.village_department.is_active = False  # no longer offered to new visits
    db.commit()

    url = f"/records/encounter/{visit.id}"
    shown = form_of(doctor.get(url).text, "correct-form")
    assert shown["department_id"] == str(site.village_department.id)
    response = doctor.post(
        f"{url}/correct",
        data={**shown, "chief_complaint": "胸闷", "reason": "补充主诉"},
        follow_redirects=False,
    )
    assert response.status_code == 303
    body = doctor.get(f"/api/v1{url}", headers=site.tokens["village_doctor"]).json()
    assert body["chief_complaint"] == "胸闷"
    assert body["department_id"] == site.village_department.id

    # The visit is marked in error since: the diagnosis form still shows its visit, and the
    # service says it can no longer hang off it (nothing is cleared behind the user's back).
    page = doctor.get(url)
    doctor.post(
        f"{url}/entered-in-error",
        data={"csrf_token": csrf_from(page.text), "version": "2", "error_reason": "重复登记"},
    )
    url = f"/records/diagnosis/{diagnosis.id}"
    shown = form_of(doctor.get(url).text, "correct-form")
    assert shown["encounter_id"] == str(visit.id)
    refused = doctor.post(
        f"{url}/correct", data={**shown, "status": "provisional", "reason": "待复查"}
    )
    assert refused.status_code == 422
    assert _marked(refused.text, "encounter_id")
    cleared = doctor.post(
        f"{url}/correct",
        data={**shown, "status": "provisional", "encounter_id": "", "reason": "就诊记录作废"},
        follow_redirects=False,
    )
    assert cleared.status_code == 303
    body = doctor.get(f"/api/v1{url}", headers=site.tokens["village_doctor"]).json()
    assert (body["status"], body["encounter_id"]) == ("provisional", None)

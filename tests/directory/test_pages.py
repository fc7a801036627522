"""Directory pages: region tree, institutions, experts and the admin forms."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests import factories
from tests.directory.conftest import Network, cookie_login, denials, fast_user
from tests.helpers import csrf_from
from xietong.access.models import AuditEvent
from xietong.directory.models import (
    Department,
    ExpertProfile,
    Practitioner,
    PractitionerSpecialty,
    ServiceLink,
)
from xietong.identity.roles import Role

HTML = {"Accept": "text/html"}


@pytest.fixture
def admin_browser(client: TestClient, db: Session, network: Network) -> TestClient:
    cookie_login(client, db, fast_user(db, "countyadmin", Role.INSTITUTION_ADMIN, network.county))
    return client


@pytest.fixture
def doctor_browser(client: TestClient, db: Session, network: Network) -> TestClient:
    cookie_login(client, db, fast_user(db, "doctor1", Role.APPLICANT_DOCTOR, network.county))
    return client


def _csrf(client: TestClient) -> str:
    return csrf_from(client.get("/institutions").text)


def test_pages_need_a_signed_in_user(client: TestClient) -> None:
    for url in ("/regions", "/institutions", "/experts", "/institutions/1", "/practitioners/1"):
        response = client.get(url, follow_redirects=False)
        assert response.status_code == 303
        assert response.headers["location"].startswith("/login?next=")


def test_navigation_and_phone_layout(doctor_browser: TestClient) -> None:
    page = doctor_browser.get("/")
    for href in ('href="/regions"', 'href="/institutions"', 'href="/experts"'):
        assert href in page.text
    regions = doctor_browser.get("/regions")
    assert 'name="viewport" content="width=device-width, initial-scale=1"' in regions.text


def test_region_tree_lazy_loads_children(doctor_browser: TestClient, network: Network) -> None:
    page = doctor_browser.get("/regions")
    assert page.status_code == 200
    assert "河南省" in page.text
    assert 'hx-get="/regions/410000/children"' in page.text
    fragment = doctor_browser.get("/regions/410000/children", headers={"HX-Request": "true"})
    assert fragment.status_code == 200
    assert "<html" not in fragment.text
    assert len(re.findall(r'<li data-code="4[19]\d{4}"', fragment.text)) == 18
    assert 'hx-get="/regions/410300/children"' in fragment.text
    assert 'hx-trigger="toggle once from:closest details"' in fragment.text


def test_region_page_opens_the_path_and_lists_institutions(
    doctor_browser: TestClient, network: Network
) -> None:
    page = doctor_browser.get("/regions", params={"code": "410323"})
    assert page.status_code == 200
    text = page.text
    assert text.count("<details open>") == 3  # 河南省, 洛阳市 and 新安县 are open
    for name in ("新安县人民医院", "新安县石寺镇卫生院", "磨五村卫生室"):
        assert name in text
    assert "嵩县人民医院" not in text
    bad = doctor_browser.get("/regions", params={"code": "41x"}, headers=HTML)
    assert bad.status_code == 422


def test_institution_list_filters(doctor_browser: TestClient, network: Network) -> None:
    page = doctor_browser.get("/institutions", params={"level": "county", "region": "410300"})
    assert page.status_code == 200
    assert 'class="table-wrap"' in page.text
    assert "新安县人民医院" in page.text
    assert "嵩县人民医院" in page.text
    assert "洛阳市中心医院" not in page.text
    assert "New institution" not in page.text


def test_institution_page(db: Session, doctor_browser: TestClient, network: Network) -> None:
    factories.department(db, network.county, "内科", "internal_medicine")
    expert = factories.practitioner(
        db, network.county, name="高专家", title="chief_physician", is_expert=True
    )
    db.add(ExpertProfile(practitioner_id=expert.id, summary="从医三十年"))
    db.commit()
    page = doctor_browser.get(f"/institutions/{network.county.id}")
    assert page.status_code == 200
    text = page.text
    assert "洛阳市" in text
    assert "新安县" in text
    assert "内科" in text
    assert "河南省人民医院" in text
    assert "洛阳市中心医院" in text
    assert "磨五村卫生室" in text  # served
    assert "高专家" in text
    assert "从医三十年" in text
    assert f"/institutions/{network.county.id}/edit" not in text  # not an admin


def test_expert_search_page(db: Session, doctor_browser: TestClient, network: Network) -> None:
    p = factories.practitioner(
        db, network.city, name="孙心怡", title="chief_physician", is_expert=True
    )
    db.add(PractitionerSpecialty(practitioner_id=p.id, specialty="cardiology"))
    db.commit()
    page = doctor_browser.get("/experts")
    assert page.status_code == 200
    assert re.search(r'<input[^>]*name="q"', page.text)
    assert re.search(r'<select[^>]*name="specialty"', page.text)
    assert 'id="expert-results"' in page.text
    assert "孙心怡" in page.text
    none = doctor_browser.get("/experts", params={"specialty": "neurology"})
    assert "孙心怡" not in none.text
    # The form as a browser sends it: every field, empty ones included.
    form = {"q": "", "specialty": "cardiology", "institution_id": "", "region": ""}
    assert "孙心怡" in doctor_browser.get("/experts", params=form).text
    in_city = doctor_browser.get("/experts", params={**form, "institution_id": network.city.id})
    assert "孙心怡" in in_city.text
    bad = doctor_browser.get("/experts", params={**form, "institution_id": "x"}, headers=HTML)
    assert bad.status_code == 422
    fragment = doctor_browser.get(
        "/experts",
        params={"q": "心", "specialty": "cardiology"},
        headers={"HX-Request": "true", "HX-Target": "expert-results"},
    )
    assert fragment.status_code == 200
    assert fragment.text.lstrip().startswith('<div id="expert-results"')
    assert "孙心怡" in fragment.text


def test_forms_need_the_csrf_token(admin_browser: TestClient, network: Network) -> None:
    response = admin_browser.post(
        f"/institutions/{network.county.id}/departments", data={"name": "骨科"}, headers=HTML
    )
    assert response.status_code == 403
    assert 'data-code="csrf_failed"' in response.text


def test_admin_edits_institution_and_departments(
    admin_browser: TestClient, db: Session, network: Network
) -> None:
    token = _csrf(admin_browser)
    inst = network.county.id
    edit = admin_browser.get(f"/institutions/{inst}/edit")
    assert edit.status_code == 200
    assert 'name="level"' not in edit.text  # a platform admin's field
    saved = admin_browser.post(
        f"/institutions/{inst}/edit",
        data={"csrf_token": token, "name": "新安县人民医院", "grade": "2A", "phone": "0379-1"},
        follow_redirects=False,
    )
    assert saved.status_code == 303
    bad = admin_browser.post(
        f"/institutions/{inst}/edit", data={"csrf_token": token, "name": "院" * 200}
    )
    assert bad.status_code == 422
    assert 'data-field="name"' in bad.text
    added = admin_browser.post(
        f"/institutions/{inst}/departments",
        data={"csrf_token": token, "name": "骨科", "specialty": "orthopaedics"},
        follow_redirects=False,
    )
    assert added.status_code == 303
    duplicate = admin_browser.post(
        f"/institutions/{inst}/departments", data={"csrf_token": token, "name": "骨科"}
    )
    assert duplicate.status_code == 409
    assert 'data-field="name"' in duplicate.text
    dept = db.execute(select(Department).where(Department.name == "骨科")).scalar_one()
    renamed = admin_browser.post(
        f"/departments/{dept.id}/edit",
        data={"csrf_token": token, "name": "骨外科", "specialty": "", "is_active": "true"},
        follow_redirects=False,
    )
    assert renamed.status_code == 303
    db.expire_all()
    assert db.get(Department, dept.id).name == "骨外科"  # type: ignore[union-attr]
    assert network.county.grade == "2A"


def test_admin_adds_practitioner_and_expert_details(
    admin_browser: TestClient, db: Session, network: Network
) -> None:
    token = _csrf(admin_browser)
    new = admin_browser.get(f"/institutions/{network.county.id}/practitioners/new")
    assert new.status_code == 200
    response = admin_browser.post(
        f"/institutions/{network.county.id}/practitioners/new",
        data={
            "csrf_token": token,
            "name": "周医生",
            "sex": "2",
            "title": "associate_chief_physician",
            "department_id": "",
            "specialties": ["cardiology", "geriatrics"],
            "is_expert": "true",
        },
        follow_redirects=False,
    )
    assert response.status_code == 303, response.text
    pid = int(response.headers["location"].rsplit("/", 1)[1])
    bad_title = admin_browser.post(
        f"/practitioners/{pid}/edit",
        data={"csrf_token": token, "name": "周医生", "title": "boss"},
    )
    assert bad_title.status_code == 422
    assert 'data-field="title"' in bad_title.text
    profile = admin_browser.post(
        f"/practitioners/{pid}/expert-profile",
        data={
            "csrf_token": token,
            "summary": "心内科",
            "expertise": "",
            "accepts_requests": "false",
        },
        follow_redirects=False,
    )
    assert profile.status_code == 303
    overlap = admin_browser.post(
        f"/practitioners/{pid}/availability",
        data={
            "csrf_token": token,
            "weekday": ["0", "0", "3"],
            "start": ["08:00", "09:00", ""],
            "end": ["12:00", "10:00", ""],
        },
    )
    assert overlap.status_code == 422
    assert 'data-field="windows.1.start"' in overlap.text
    hours = admin_browser.post(
        f"/practitioners/{pid}/availability",
        data={
            "csrf_token": token,
            "weekday": ["0", "2", "3"],
            "start": ["08:00", "14:00", ""],
            "end": ["12:00", "17:00", ""],
        },
        follow_redirects=False,
    )
    assert hours.status_code == 303
    page = admin_browser.get(f"/practitioners/{pid}")
    assert "周医生" in page.text
    assert "08:00–12:00" in page.text
    db.expire_all()
    practitioner = db.get(Practitioner, pid)
    assert practitioner is not None
    assert practitioner.specialties == ["cardiology", "geriatrics"]
    assert practitioner.profile is not None
    assert practitioner.profile.accepts_requests is False


def test_admin_manages_service_centres(
    admin_browser: TestClient, db: Session, network: Network
) -> None:
    token = _csrf(admin_browser)
    url = f"/institutions/{network.county.id}/service-centres"
    page = admin_browser.get(url)
    assert page.status_code == 200
    removed = admin_browser.post(
        f"{url}/{network.city.id}/delete", data={"csrf_token": token}, follow_redirects=False
    )
    assert removed.status_code == 303
    sideways = admin_browser.post(
        url, data={"csrf_token": token, "centre_id": str(network.other_county.id)}
    )
    assert sideways.status_code == 422
    assert 'data-field="centre_id"' in sideways.text
    added = admin_browser.post(
        url, data={"csrf_token": token, "centre_id": str(network.city.id)}, follow_redirects=False
    )
    assert added.status_code == 303
    links = db.execute(
        select(ServiceLink).where(ServiceLink.applicant_id == network.county.id)
    ).scalars()
    assert {link.centre_id for link in links} == {network.city.id, network.provincial.id}
    actions = db.execute(
        select(AuditEvent.action).where(AuditEvent.action.startswith("service_link."))
    ).scalars()
    assert sorted(actions) == ["service_link.create", "service_link.delete"]


def test_forms_refused_with_403_and_404(client: TestClient, db: Session, network: Network) -> None:
    doctor = fast_user(db, "doctor1", Role.APPLICANT_DOCTOR, network.county)
    cookie_login(client, db, doctor)
    token = _csrf(client)
    refused = client.post(
        f"/institutions/{network.county.id}/departments",
        data={"csrf_token": token, "name": "骨科"},
        headers=HTML,
    )
    assert refused.status_code == 403
    other = fast_user(db, "otheradmin", Role.INSTITUTION_ADMIN, network.other_county)
    cookie_login(client, db, other)
    for url in (
        f"/institutions/{network.county.id}/edit",
        f"/institutions/{network.county.id}/practitioners/new",
    ):
        assert client.get(url, headers=HTML).status_code == 404
    hidden = client.post(
        f"/institutions/{network.county.id}/departments",
        data={"csrf_token": token, "name": "骨科"},
        headers=HTML,
    )
    assert hidden.status_code == 404
    assert "<html" in hidden.text
    rows = denials(db)
    assert [r.actor_username for r in rows] == ["doctor1", "otheradmin", "otheradmin", "otheradmin"]
    assert db.execute(select(Department).where(Department.name == "骨科")).first() is None

"""The directory's DICOM nodes: JSON API and admin page. Own institution's admin and the
platform admin may; another institution's admin gets 404, a doctor 403 (both audited);
malformed, oversized and hostile values are refused naming the field, nothing stored."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.directory.conftest import Actors, Network, cookie_login, denials, fast_user
from tests.helpers import csrf_from
from xietong.demo.dicom_peers import add_demo_peers
from xietong.directory.models import Institution
from xietong.directory.peer_models import DicomPeer
from xietong.identity.roles import Role

CT = {"ae_title": "CT_ROOM1", "host": "10.0.0.5", "port": 104, "description": "CT 1 号机"}


def _create(client: TestClient, institution_id: int, headers: dict[str, str], **body: Any) -> Any:
    return client.post(
        f"/api/v1/institutions/{institution_id}/dicom-peers", json={**CT, **body}, headers=headers
    )


def _count(db: Session) -> int:
    db.expire_all()
    return int(db.execute(select(func.count()).select_from(DicomPeer)).scalar_one())


@pytest.mark.parametrize("who", ["county_admin", "platform"])
def test_admins_register_change_and_deactivate_a_node(
    client: TestClient, db: Session, network: Network, actors: Actors, who: str
) -> None:
    headers = getattr(actors, who)
    created = _create(client, network.county.id, headers, ae_title="  CT_ROOM1 ")
    assert created.status_code == 201, created.text
    peer = created.json()
    assert peer["ae_title"] == "CT_ROOM1"  # non-significant spaces dropped
    assert peer["institution_id"] == network.county.id
    assert peer["is_active"] is True
    listed = client.get(f"/api/v1/institutions/{network.county.id}/dicom-peers", headers=headers)
    assert [p["ae_title"] for p in listed.json()] == ["CT_ROOM1"]
    changed = client.patch(
        f"/api/v1/dicom-peers/{peer['id']}",
        json={"port": 11112, "may_retrieve": False},
        headers=headers,
    )
    assert changed.status_code == 200
    assert (changed.json()["port"], changed.json()["may_retrieve"]) == (11112, False)
    assert client.delete(f"/api/v1/dicom-peers/{peer['id']}", headers=headers).status_code == 204
    active = client.get(f"/api/v1/institutions/{network.county.id}/dicom-peers", headers=headers)
    assert active.json() == []
    everything = client.get(
        f"/api/v1/institutions/{network.county.id}/dicom-peers?include_inactive=true",
        headers=headers,
    )
    assert everything.json()[0]["is_active"] is False


def test_an_ae_title_names_one_node_on_the_platform(
    client: TestClient, db: Session, network: Network, actors: Actors
) -> None:
    assert _create(client, network.county.id, actors.county_admin).status_code == 201
    again = _create(client, network.other_county.id, actors.platform)
    assert again.status_code == 409
    assert again.json()["error"]["code"] == "ae_title_taken"
    assert _count(db) == 1


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("ae_title", ""),
        ("ae_title", "    "),
        ("ae_title", "A" * 17),
        ("ae_title", "CT\\1"),
        ("ae_title", "CT\n1"),
        ("ae_title", "CT\x00"),
        ("ae_title", "影像"),
        ("host", ""),
        ("host", "../../etc/passwd"),
        ("host", "a b"),
        ("host", "-bad.example"),
        ("host", "h" * 300),
        ("port", 0),
        ("port", 65536),
        ("port", "104; DROP TABLE"),
        ("description", "x" * 129),
    ],
)
def test_bad_values_are_refused_naming_the_field(
    client: TestClient, db: Session, network: Network, actors: Actors, field: str, value: object
) -> None:
    response = _create(client, network.county.id, actors.county_admin, **{field: value})
    assert response.status_code == 422, response.text
    assert response.json()["error"]["field"].endswith(field)
    assert _count(db) == 0


def test_unknown_fields_and_huge_bodies_are_refused(
    client: TestClient, db: Session, network: Network, actors: Actors
) -> None:
    extra = _create(client, network.county.id, actors.county_admin, owner="x")
    assert extra.status_code == 422
    huge = _create(client, network.county.id, actors.county_admin, description="影" * 100_000)
    assert huge.status_code in (413, 422)
    assert _count(db) == 0


def test_others_are_refused_and_audited(
    client: TestClient, db: Session, network: Network, actors: Actors
) -> None:
    peer_id = _create(client, network.county.id, actors.county_admin).json()["id"]
    url = f"/api/v1/institutions/{network.county.id}/dicom-peers"
    assert _create(client, network.county.id, actors.doctor).status_code == 403
    assert _create(client, network.county.id, actors.other_admin).status_code == 404
    assert client.get(url, headers=actors.other_admin).status_code == 404
    for method, body in (("GET", None), ("PATCH", {"port": 1}), ("DELETE", None)):
        response = client.request(
            method, f"/api/v1/dicom-peers/{peer_id}", json=body, headers=actors.other_admin
        )
        assert response.status_code == 404, method
        assert (
            client.request(
                method, f"/api/v1/dicom-peers/{peer_id}", json=body, headers=actors.doctor
            ).status_code
            == 403
        )
    assert client.get(url).status_code == 401
    assert len(denials(db, "dicom_peer.update")) == 4  # PATCH and DELETE, by both
    assert len(denials(db, "dicom_peer.create")) == 2
    db.expire_all()
    peer = db.get(DicomPeer, peer_id)
    assert peer is not None
    assert (peer.port, peer.is_active) == (104, True)


def test_the_admin_page_lists_adds_and_edits(
    client: TestClient, db: Session, network: Network
) -> None:
    cookie_login(client, db, fast_user(db, "countyadmin", Role.INSTITUTION_ADMIN, network.county))
    page = client.get(f"/institutions/{network.county.id}/dicom-peers")
    assert page.status_code == 200
    token = csrf_from(page.text)
    url = f"/institutions/{network.county.id}/dicom-peers"
    form = {"csrf_token": token, **{k: str(v) for k, v in CT.items()}}
    added = client.post(url, data={**form, "may_query": "true", "may_retrieve": "false"})
    assert added.status_code == 200  # followed the redirect back to the list
    assert 'data-peer="CT_ROOM1"' in added.text
    bad = client.post(url, data={**form, "ae_title": "CT\\2"})
    assert bad.status_code == 422
    assert 'data-field="ae_title"' in bad.text
    peer = db.execute(select(DicomPeer)).scalar_one()
    assert peer.may_retrieve is False
    edit = client.get(f"/dicom-peers/{peer.id}/edit")
    assert edit.status_code == 200
    saved = client.post(
        f"/dicom-peers/{peer.id}/edit",
        data={
            **form,
            "port": "4242",
            "is_active": "false",
            "may_query": "true",
            "may_retrieve": "true",
        },
    )
    assert saved.status_code == 200
    db.expire_all()
    assert (peer.port, peer.is_active) == (4242, False)
    assert (
        client.post(url, data={k: v for k, v in form.items() if k != "csrf_token"}).status_code
        == 403
    )


def test_another_admin_does_not_see_the_page(
    client: TestClient, db: Session, network: Network
) -> None:
    cookie_login(
        client, db, fast_user(db, "otheradmin", Role.INSTITUTION_ADMIN, network.other_county)
    )
    assert client.get(f"/institutions/{network.county.id}/dicom-peers").status_code == 404


def test_the_demo_registers_demo_ct_for_the_county_hospital(db: Session, network: Network) -> None:
    network.county.code = "HN-X410323"
    db.flush()
    assert add_demo_peers(db) == {"dicom_peers": 1}
    assert add_demo_peers(db) == {"dicom_peers": 0}  # again: nothing new
    peer = db.execute(select(DicomPeer)).scalar_one()
    assert (peer.ae_title, peer.host, peer.institution_id) == (
        "DEMO_CT",
        "127.0.0.1",
        network.county.id,
    )
    assert db.get(Institution, peer.institution_id) is network.county

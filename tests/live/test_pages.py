"""The video session pages: the session page for those who see the subject (404 for
others), the guest page of a join link, and the consultation page's "join video"."""

from __future__ import annotations

import httpx
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session

from tests.helpers import csrf_from, page_login
from tests.live.conftest import LIVE, Net, make_session
from xietong.consultation.models import Consultation
from xietong.live import lobby
from xietong.live.schemas import LinkIn

ZH = {"Accept-Language": "zh-CN"}


def _as(app: FastAPI, username: str) -> TestClient:
    client = TestClient(app, headers=ZH)
    page_login(client, username)
    return client


def _join_video(client: TestClient, c: Consultation) -> httpx.Response:
    page = client.get(f"/consultations/{c.id}")
    assert page.status_code == 200
    assert 'action="/live/instant"' in page.text
    return client.post(
        "/live/instant",
        data={
            "csrf_token": csrf_from(page.text),
            "subject_kind": "consultation",
            "subject_id": str(c.id),
        },
        follow_redirects=False,
    )


def test_join_video_from_the_consultation_page(
    db: Session, app: FastAPI, net: Net, consult: Consultation
) -> None:
    applicant = _as(app, "c_applicant")
    started = _join_video(applicant, consult)
    assert started.status_code == 303
    url = started.headers["location"]
    expert = _as(app, "c_expert_b")
    assert _join_video(expert, consult).headers["location"] == url  # the same open session
    page = expert.get(url)
    assert page.status_code == 200
    assert 'id="live-app"' in page.text
    assert "/static/live/live.js" in page.text
    assert 'type="module"' in page.text
    assert "live-end" not in page.text  # not a host
    # The consultation's conversation beside the call, followed live, its form coming back.
    assert f'data-conversation="consultation:{consult.id}"' in page.text
    assert "/static/live_chat.js" in page.text
    assert f'name="return_to" value="{url}"' in page.text
    assert page.headers["cache-control"] == "no-store"
    assert "live-end" in applicant.get(url).text
    assert _as(app, "c_otherdoc").get(url).status_code == 404


def test_guest_page_and_bad_tokens(
    db: Session, app: FastAPI, net: Net, consult: Consultation
) -> None:
    live = make_session(db, net, consult).live
    _link, token = lobby.create_link(db, net.p["applicant"], live.id, LinkIn(), LIVE)
    db.commit()
    guest = _as(app, "c_countydoc")
    assert guest.get(f"/live/{live.id}").status_code == 404
    page = guest.get(f"/live/join/{token}")
    assert page.status_code == 200
    assert f'data-link="{token}"' in page.text
    assert "data-conversation" not in page.text  # a guest does not read the consultation
    for bad in ("x", "A" * 43, "%3Cscript%3E", "A" * 199):
        assert guest.get(f"/live/join/{bad}").status_code == 404
    assert guest.get("/live/join/" + "A" * 300).status_code == 422
    signed_out = TestClient(app, headers=ZH).get(f"/live/join/{token}", follow_redirects=False)
    assert signed_out.status_code in (302, 303)


def test_instant_refuses_bad_forms(app: FastAPI, net: Net, consult: Consultation) -> None:
    client = _as(app, "c_applicant")
    page = client.get(f"/consultations/{consult.id}")
    token = csrf_from(page.text)
    bad = client.post(
        "/live/instant",
        data={"csrf_token": token, "subject_kind": "consultation", "subject_id": "1 OR 1"},
        follow_redirects=False,
    )
    assert bad.status_code == 422
    no_csrf = client.post(
        "/live/instant",
        data={"subject_kind": "consultation", "subject_id": str(consult.id)},
        follow_redirects=False,
    )
    assert no_csrf.status_code == 403
    outsider = _as(app, "c_otherdoc")
    other = outsider.post(
        "/live/instant",
        data={
            "csrf_token": csrf_from(outsider.get("/account").text),
            "subject_kind": "consultation",
            "subject_id": str(consult.id),
        },
        follow_redirects=False,
    )
    assert other.status_code == 404


def test_a_message_sent_beside_the_call_comes_back_to_it(
    db: Session, app: FastAPI, net: Net, consult: Consultation
) -> None:
    live_url = f"/live/{make_session(db, net, consult).live.id}"
    db.commit()
    applicant = _as(app, "c_applicant")
    page = applicant.get(live_url)
    token = csrf_from(page.text)

    def send(text: str, back: str) -> str:
        answer = applicant.post(
            f"/consultations/{consult.id}/messages",
            data={"csrf_token": token, "text": text, "return_to": back},
            follow_redirects=False,
        )
        assert answer.status_code == 303, answer.text
        return str(answer.headers["location"])

    assert send("血压 150/95", live_url) == f"{live_url}#conversation"
    assert "血压 150/95" in applicant.get(live_url).text
    # Anywhere else (another site, a path trick, garbage): back to the consultation.
    for back in ("https://evil.example/", "//evil.example", f"{live_url}/../../x", "/live/0", ""):
        assert send(f"to {back!r}", back) == f"/consultations/{consult.id}#conversation"

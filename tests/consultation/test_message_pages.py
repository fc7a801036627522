"""The conversation on the consultation page: the form (text and a photo, multipart, works
without JavaScript), the polling fragment that appends what is new, a refused message
naming its field, and 404 for an unrelated institution."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.consultation.conftest import Net, reach
from tests.consultation.test_pages import _as
from tests.helpers import csrf_from
from tests.records.test_documents import phone_photo
from xietong.messaging.models import Message


def _form(page: str) -> dict[str, str]:
    client_id = re.search(r'name="client_id" value="([^"]+)"', page)
    assert client_id, "the message form carries a client id"
    return {"csrf_token": csrf_from(page), "client_id": client_id.group(1)}


def _count(db: Session) -> int:
    return int(db.execute(select(func.count()).select_from(Message)).scalar_one())


def test_messages_through_the_page(db: Session, app: FastAPI, net: Net) -> None:
    c = reach(db, net, "in_progress")
    db.commit()
    url = f"/consultations/{c.id}"
    applicant = _as(app, "c_applicant")
    page = applicant.get(url).text
    assert 'id="conversation"' in page
    assert "发送" in page
    assert page.count('id="messages"') == 1  # the page's alert area keeps its id
    assert "已接受" in page  # the status events, in Chinese
    poll = re.search(r'hx-get="/consultations/\d+/messages\?after=(\d+)"', page)
    assert poll
    after = int(poll.group(1))
    sent = applicant.post(
        f"{url}/messages",
        data={**_form(page), "text": "附心电图一张"},
        files={"file": ("心电图.jpg", phone_photo(), "image/jpeg")},
        follow_redirects=False,
    )
    assert sent.status_code == 303, sent.text
    assert sent.headers["location"] == f"{url}#conversation"
    # The same rendered form posted twice (a double click) is one message.
    applicant.post(
        f"{url}/messages",
        data={**_form(page), "text": "附心电图一张"},
        files={"file": ("心电图.jpg", phone_photo(), "image/jpeg")},
        follow_redirects=False,
    )
    assert _count(db) == after + 1

    expert = _as(app, "c_expert_a")
    fragment = expert.get(f"{url}/messages?after={after}")
    assert fragment.status_code == 200
    assert fragment.headers["cache-control"] == "no-store"
    assert 'hx-swap-oob="beforeend:#message-list"' in fragment.text
    assert "附心电图一张" in fragment.text
    assert f"/api/v1/consultations/{c.id}/messages/{after + 1}/thumbnail" in fragment.text
    assert f'messages?after={after + 1}"' in fragment.text  # the next poll goes on from it
    # Nothing new: no list, the same poll.
    quiet = expert.get(f"{url}/messages?after={after + 1}").text
    assert "hx-swap-oob" not in quiet
    assert f'messages?after={after + 1}"' in quiet
    # The applicant sees that the expert has read it.
    assert "已读：c_expert_a" in applicant.get(url).text


def test_a_refused_message_names_its_field(db: Session, app: FastAPI, net: Net) -> None:
    c = reach(db, net, "accepted")
    db.commit()
    url = f"/consultations/{c.id}"
    applicant = _as(app, "c_applicant")
    page = applicant.get(url).text
    before = _count(db)
    empty = applicant.post(f"{url}/messages", data={**_form(page), "text": " "})
    assert empty.status_code == 422
    assert 'data-field="text"' in empty.text
    bad = applicant.post(
        f"{url}/messages",
        data={**_form(page), "text": "看"},
        files={"file": ("a.exe", b"MZ" + b"\0" * 300, "application/octet-stream")},
    )
    assert bad.status_code == 415
    assert 'data-field="file"' in bad.text
    assert 'value="看"' not in bad.text
    assert ">看</textarea>" in bad.text
    assert _count(db) == before


def test_a_closed_consultation_shows_its_messages_without_form_or_poll(
    db: Session, app: FastAPI, net: Net
) -> None:
    c = reach(db, net, "completed")
    db.commit()
    page = _as(app, "c_applicant").get(f"/consultations/{c.id}").text
    assert 'id="message-list"' in page
    assert 'id="form-message"' not in page
    assert 'id="message-poll"' not in page


def test_an_unrelated_institution_gets_404_on_the_messages(
    db: Session, app: FastAPI, net: Net
) -> None:
    c = reach(db, net, "in_progress")
    db.commit()
    for who in ("c_otherdoc", "c_otherexp"):
        stranger: TestClient = _as(app, who)
        assert stranger.get(f"/consultations/{c.id}/messages?after=0").status_code == 404
        page = stranger.get("/consultations").text
        posted = stranger.post(
            f"/consultations/{c.id}/messages",
            data={"csrf_token": csrf_from(page), "text": "hi"},
            follow_redirects=False,
        )
        assert posted.status_code == 404

"""The conversation on the referral page: followed live (data-conversation), the form (text
and a photo, multipart, works without JavaScript), the polling fragment, a refused message
naming its field, a closed referral without form or poll, 404 for another institution."""

from __future__ import annotations

import re

from fastapi import FastAPI
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.helpers import csrf_from
from tests.records.test_documents import phone_photo
from tests.referral.conftest import Net, reach
from tests.referral.test_pages import _as
from xietong.messaging.models import Message


def _form(page: str) -> dict[str, str]:
    client_id = re.search(r'name="client_id" value="([^"]+)"', page)
    assert client_id, "the message form carries a client id"
    return {"csrf_token": csrf_from(page), "client_id": client_id.group(1)}


def _count(db: Session) -> int:
    return int(db.execute(select(func.count()).select_from(Message)).scalar_one())


def test_messages_through_the_referral_page(db: Session, app: FastAPI, net: Net) -> None:
    r = reach(db, net, "up", "accepted")
    db.commit()
    url = f"/referrals/{r.id}"
    sender = _as(app, "r_sender")
    page = sender.get(url).text
    assert f'data-conversation="referral:{r.id}"' in page
    assert "/static/live_chat.js" in page
    assert "已接受" in page  # the status events, in Chinese
    poll = re.search(rf'hx-get="/referrals/{r.id}/messages\?after=(\d+)"', page)
    assert poll
    after = int(poll.group(1))
    data = {**_form(page), "text": "<b>附</b>心电图"}
    photo = {"file": ("心电图.jpg", phone_photo(), "image/jpeg")}
    sent = sender.post(f"{url}/messages", data=data, files=photo, follow_redirects=False)
    assert (sent.status_code, sent.headers["location"]) == (303, f"{url}#conversation")
    sender.post(f"{url}/messages", data=data, files=photo, follow_redirects=False)
    assert _count(db) == after + 1  # the same rendered form twice is one message

    desk = _as(app, "r_desk")
    fragment = desk.get(f"{url}/messages?after={after}")
    assert fragment.status_code == 200
    assert 'hx-swap-oob="beforeend:#message-list"' in fragment.text
    assert "&lt;b&gt;附&lt;/b&gt;心电图" in fragment.text  # hostile text stays inert
    assert f"/api/v1/referrals/{r.id}/messages/{after + 1}/thumbnail" in fragment.text
    assert f'messages?after={after + 1}"' in fragment.text
    assert "已读：r_desk" in sender.get(url).text


def test_a_refused_message_names_its_field(db: Session, app: FastAPI, net: Net) -> None:
    r = reach(db, net, "up", "accepted")
    db.commit()
    url = f"/referrals/{r.id}"
    desk = _as(app, "r_desk")
    page = desk.get(url).text
    before = _count(db)
    empty = desk.post(f"{url}/messages", data={**_form(page), "text": " "})
    assert empty.status_code == 422
    assert 'data-field="text"' in empty.text
    assert empty.text.count('role="alert" data-code') == 1  # once, in the message form
    bad = desk.post(
        f"{url}/messages",
        data={**_form(page), "text": "看"},
        files={"file": ("a.exe", b"MZ" + b"\0" * 300, "application/octet-stream")},
    )
    assert bad.status_code == 415
    assert ">看</textarea>" in bad.text
    assert _count(db) == before


def test_a_closed_referral_keeps_its_messages_without_form_or_poll(
    db: Session, app: FastAPI, net: Net
) -> None:
    r = reach(db, net, "up", "completed")
    db.commit()
    page = _as(app, "r_sender").get(f"/referrals/{r.id}").text
    assert 'id="message-list"' in page
    assert 'id="form-message"' not in page
    assert 'id="message-poll"' not in page
    assert "data-conversation" not in page


def test_another_institution_gets_404_on_the_messages(db: Session, app: FastAPI, net: Net) -> None:
    r = reach(db, net, "up", "accepted")
    db.commit()
    before = _count(db)
    for who in ("r_otherdoc", "r_citydesk"):
        stranger = _as(app, who)
        assert stranger.get(f"/referrals/{r.id}/messages?after=0").status_code == 404
        page = stranger.get("/referrals").text
        posted = stranger.post(
            f"/referrals/{r.id}/messages",
            data={"csrf_token": csrf_from(page), "text": "hi"},
            follow_redirects=False,
        )
        assert posted.status_code == 404
    assert _count(db) == before


def test_a_video_call_from_the_referral_page(db: Session, app: FastAPI, net: Net) -> None:
    """ "Join video" on the referral page opens the referral's call; its page carries the
    referral's conversation, whose form comes back to the call (and only there)."""
    r = reach(db, net, "up", "accepted")
    db.commit()
    url = f"/referrals/{r.id}"
    sender = _as(app, "r_sender")
    page = sender.get(url).text
    assert 'action="/live/instant"' in page
    assert 'name="subject_kind" value="referral"' in page
    started = sender.post(
        "/live/instant",
        data={"csrf_token": csrf_from(page), "subject_kind": "referral", "subject_id": str(r.id)},
        follow_redirects=False,
    )
    assert started.status_code == 303
    call = str(started.headers["location"])
    assert re.fullmatch(r"/live/\d+", call)
    desk = _as(app, "r_desk")
    desk_call = desk.get(call)
    assert desk_call.status_code == 200
    assert f'data-conversation="referral:{r.id}"' in desk_call.text
    assert f'name="return_to" value="{call}"' in desk_call.text
    data = {**_form(desk_call.text), "text": "床位已留好", "return_to": call}
    sent = desk.post(f"{url}/messages", data=data, follow_redirects=False)
    assert (sent.status_code, sent.headers["location"]) == (303, f"{call}#conversation")
    data = {**_form(page), "text": "好", "return_to": "https://evil.example/"}
    sent = sender.post(f"{url}/messages", data=data, follow_redirects=False)
    assert sent.headers["location"] == f"{url}#conversation"

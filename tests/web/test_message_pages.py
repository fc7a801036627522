"""The group conversation pages: /messages (my conversations with unread counts, the
colleague search, starting one), /messages/{id} (followed live, the form, the poll, adding
members, leaving), the navigation entry, refused forms naming their field, and 404 for a
non-member."""

from __future__ import annotations

import re

from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.consultation.conftest import Net
from tests.consultation.conftest import _frozen_clock as _frozen_clock
from tests.consultation.conftest import net as net
from tests.consultation.test_pages import _as
from tests.helpers import csrf_from
from xietong.messaging import groups
from xietong.messaging.models import Conversation, Message


def _id(n: Net, who: str) -> int:
    user_id = n.p[who].user_id
    assert user_id is not None
    return user_id


def _count(db: Session, model: type) -> int:
    return int(db.execute(select(func.count()).select_from(model)).scalar_one())


def _client_id(page: str) -> str:
    found = re.search(r'name="client_id" value="([^"]+)"', page)
    assert found
    return found.group(1)


def test_start_a_conversation_from_the_list(db: Session, app: FastAPI, net: Net) -> None:
    me = _as(app, "c_applicant")
    page = me.get("/messages").text
    assert 'href="/messages"' in page  # the navigation entry
    assert "还没有会话" in page or "No conversations" in page
    # Without JavaScript the search re-renders the page with colleagues to tick.
    found = me.get("/messages", params={"q": "expert_"}).text
    assert found.count('name="member_ids"') == 3
    assert 'form="form-create"' in found
    fragment = me.get("/messages/colleagues", params={"q": "otherdoc", "form": "form-members"})
    assert f'value="{_id(net, "other_doctor")}" form="form-members"' in fragment.text
    started = me.post(
        "/messages",
        data={
            "csrf_token": csrf_from(page),
            "title": "<i>会诊</i>准备",
            "member_ids": [str(_id(net, "expert_a")), str(_id(net, "other_doctor"))],
        },
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    cid = int(started.headers["location"].rsplit("/", 1)[1])
    listed = _as(app, "c_otherdoc").get("/messages").text
    assert f'href="/messages/{cid}"' in listed
    assert "&lt;i&gt;会诊&lt;/i&gt;准备" in listed
    assert 'class="badge"' in listed  # the start is new to them


def test_refused_starts_name_their_field(db: Session, app: FastAPI, net: Net) -> None:
    me = _as(app, "c_applicant")
    page = me.get("/messages").text
    before = _count(db, Conversation)
    for data, field in (
        ({"title": "", "member_ids": str(_id(net, "expert_a"))}, "title"),
        ({"title": "长" * 101, "member_ids": str(_id(net, "expert_a"))}, "title"),
        ({"title": "讨论"}, "member_ids"),
        ({"title": "讨论", "member_ids": "1 OR 1=1"}, "member_ids"),
        ({"title": "讨论", "member_ids": [str(i) for i in range(1, 60)]}, "member_ids"),
    ):
        r = me.post("/messages", data={"csrf_token": csrf_from(page), **data})
        assert r.status_code == 422, (data, r.status_code)
        assert f'data-field="{field}"' in r.text
    # The ticked colleague stays ticked when the title is refused.
    r = me.post(
        "/messages",
        data={"csrf_token": csrf_from(page), "title": "", "member_ids": str(_id(net, "expert_a"))},
    )
    assert f'value="{_id(net, "expert_a")}" form="form-create" checked' in r.text
    assert _count(db, Conversation) == before


def test_the_conversation_page(db: Session, app: FastAPI, net: Net) -> None:
    cid = groups.create_group(db, net.p["applicant"], "讨论", [_id(net, "expert_a")]).id
    db.commit()
    url = f"/messages/{cid}"
    me = _as(app, "c_applicant")
    page = me.get(url).text
    assert f'data-conversation="group:{cid}"' in page
    assert "/static/live_chat.js" in page
    assert "c_expert_a" in page
    poll = re.search(rf'hx-get="/messages/{cid}/messages\?after=(\d+)"', page)
    assert poll
    after = int(poll.group(1))
    form = {"csrf_token": csrf_from(page), "client_id": _client_id(page), "text": "大家好"}
    sent = me.post(f"{url}/messages", data=form, follow_redirects=False)
    assert (sent.status_code, sent.headers["location"]) == (303, f"{url}#conversation")
    me.post(f"{url}/messages", data=form, follow_redirects=False)  # a double click
    assert _count(db, Message) == after + 1
    expert = _as(app, "c_expert_a")
    fragment = expert.get(f"{url}/messages?after={after}").text
    assert "大家好" in fragment
    assert f'messages?after={after + 1}"' in fragment
    refused = me.post(f"{url}/messages", data={**form, "client_id": "new-1", "text": " "})
    assert (refused.status_code, 'data-field="text"' in refused.text) == (422, True)
    # Adding a colleague, then leaving.
    page = expert.get(url).text
    added = expert.post(
        f"{url}/members",
        data={"csrf_token": csrf_from(page), "member_ids": str(_id(net, "other_doctor"))},
        follow_redirects=False,
    )
    assert added.status_code == 303
    assert "c_otherdoc" in _as(app, "c_otherdoc").get(url).text
    bad = expert.post(f"{url}/members", data={"csrf_token": csrf_from(page)})
    assert (bad.status_code, 'data-field="member_ids"' in bad.text) == (422, True)
    left = expert.post(f"{url}/leave", data={"csrf_token": csrf_from(page)}, follow_redirects=False)
    assert (left.status_code, left.headers["location"]) == (303, "/messages")
    assert expert.get(url).status_code == 404


def test_a_non_member_gets_404_on_every_page(db: Session, app: FastAPI, net: Net) -> None:
    cid = groups.create_group(db, net.p["applicant"], "讨论", [_id(net, "expert_a")]).id
    db.commit()
    before = _count(db, Message)
    stranger: TestClient = _as(app, "c_otherdoc")
    csrf = csrf_from(stranger.get("/messages").text)
    assert stranger.get(f"/messages/{cid}").status_code == 404
    assert stranger.get(f"/messages/{cid}/messages?after=0").status_code == 404
    for path, data in (
        ("messages", {"text": "hi"}),
        ("members", {"member_ids": str(_id(net, "other_doctor"))}),
        ("leave", {}),
    ):
        r = stranger.post(
            f"/messages/{cid}/{path}", data={"csrf_token": csrf, **data}, follow_redirects=False
        )
        assert r.status_code == 404, path
    assert _count(db, Message) == before


def test_only_staff_see_the_menu_entry(db: Session, app: FastAPI, net: Net) -> None:
    admin = _as(app, "c_platform")
    assert 'href="/messages"' not in admin.get("/").text
    assert admin.get("/messages").status_code == 403


def test_a_video_call_from_a_group(db: Session, app: FastAPI, net: Net) -> None:
    """Colleagues of different institutions call each other from their group: the call page
    carries the group's conversation; a non-member gets 404 for both."""
    me = _as(app, "c_applicant")
    cid = groups.create_group(db, net.p["applicant"], "会诊准备", [_id(net, "other_doctor")]).id
    db.commit()
    page = me.get(f"/messages/{cid}").text
    assert 'name="subject_kind" value="group"' in page
    started = me.post(
        "/live/instant",
        data={"csrf_token": csrf_from(page), "subject_kind": "group", "subject_id": str(cid)},
        follow_redirects=False,
    )
    assert started.status_code == 303, started.text
    call = str(started.headers["location"])
    other = _as(app, "c_otherdoc").get(call)
    assert other.status_code == 200
    assert f'data-conversation="group:{cid}"' in other.text
    assert _as(app, "c_expert_b").get(call).status_code == 404

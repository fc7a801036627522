"""Group conversations between colleagues, through the services: starting one (title and
members checked), members adding members and leaving, the colleague search, my list with
unread counts, and the 404 (audited) for anyone who is not a current member."""

from __future__ import annotations

import json

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from tests.consultation.conftest import Net, audits
from tests.consultation.conftest import _frozen_clock as _frozen_clock
from tests.consultation.conftest import net as net
from tests.directory.conftest import fast_user
from xietong.core.errors import Forbidden, Invalid, NotFound
from xietong.identity.roles import Role
from xietong.messaging import group_messages, groups
from xietong.messaging.models import Message


def _uid(n: Net, who: str) -> int:
    user_id = n.p[who].user_id
    assert user_id is not None
    return user_id


def _start(db: Session, n: Net, *others: str, title: str = "胸痛病例讨论") -> int:
    members = [_uid(n, o) for o in others]
    return groups.create_group(db, n.p["applicant"], title, members).id


def test_a_conversation_between_institutions(db: Session, net: Net) -> None:
    cid = _start(db, net, "expert_a", "other_doctor")
    c = groups.open_group(db, net.p["other_doctor"], cid, action="group.read").conversation
    # Its subject is itself: the WebSocket key group:<id> names it.
    assert (c.subject_kind, c.subject_id, c.title) == ("group", str(cid), "胸痛病例讨论")
    group_messages.post_message(db, net.p["expert_a"], cid, text="请看心电图", client_id="a1")
    again = group_messages.post_message(
        db, net.p["expert_a"], cid, text="请看心电图", client_id="a1"
    )
    assert again.created is False
    thread = group_messages.read_messages(db, net.p["other_doctor"], cid)
    assert [m.body for m in thread.messages] == ["group.create", "请看心电图"]
    assert sorted(thread.member_ids) == sorted(
        _uid(net, w) for w in ("applicant", "expert_a", "other_doctor")
    )
    assert audits(db, "group.create", object_id=str(cid))


def test_members_add_members_and_leave(db: Session, net: Net) -> None:
    cid = _start(db, net, "expert_a")
    added = groups.add_members(
        db, net.p["expert_a"], cid, [_uid(net, "expert_b"), _uid(net, "applicant")]
    )
    assert added == [_uid(net, "expert_b")]  # the applicant was in it already
    groups.leave_group(db, net.p["applicant"], cid)
    with pytest.raises(NotFound):
        group_messages.read_messages(db, net.p["applicant"], cid)
    assert [s.conversation.id for s in groups.list_groups(db, net.p["applicant"])] == []
    events = [
        (m.body, m.data.get("name"))
        for m in db.execute(
            select(Message).where(Message.conversation_id == cid).order_by(Message.seq)
        ).scalars()
    ]
    assert events == [("group.create", None), ("group.add", "c_expert_b"), ("group.leave", None)]
    # Added again, they see the whole conversation again.
    groups.add_members(db, net.p["expert_b"], cid, [_uid(net, "applicant")])
    assert len(group_messages.read_messages(db, net.p["applicant"], cid).messages) == 4


def test_who_is_not_a_member_gets_404_audited(db: Session, net: Net) -> None:
    cid = _start(db, net, "expert_a")
    for who in ("coordinator", "other_doctor", "platform"):
        with pytest.raises(NotFound) as refused:
            group_messages.read_messages(db, net.p[who], cid)
        assert refused.value.code == "group_not_found"
        with pytest.raises(NotFound):
            group_messages.post_message(db, net.p[who], cid, text="hi")
        with pytest.raises(NotFound):
            groups.add_members(db, net.p[who], cid, [_uid(net, who)])
    for action in ("group.messages", "group.message", "group.members.add"):
        assert len(audits(db, action, outcome="denied", object_id=str(cid))) == 3, action
    # A consultation's conversation is not a group conversation.
    with pytest.raises(NotFound):
        groups.open_group(db, net.p["applicant"], 10**9, action="group.read")


def test_what_a_new_conversation_may_hold(db: Session, net: Net) -> None:
    me = net.p["applicant"]
    expert = _uid(net, "expert_a")
    for title in ("", "   ", "长" * 101, "a\x00b"):
        with pytest.raises(Invalid) as bad:
            groups.create_group(db, me, title, [expert])
        assert bad.value.field == "title"
    inactive = fast_user(db, "c_gone", Role.EXPERT, net.county)
    inactive.is_active = False
    for members in ([], [_uid(net, "applicant")], [inactive.id], [_uid(net, "platform")]):
        with pytest.raises(Invalid) as bad:
            groups.create_group(db, me, "讨论", members)
        assert bad.value.field == "member_ids"
    staff = [fast_user(db, f"c_staff{i}", Role.EXPERT, net.county).id for i in range(50)]
    with pytest.raises(Invalid) as crowded:
        groups.create_group(db, me, "讨论", staff)
    assert (crowded.value.field, crowded.value.code) == ("member_ids", "members_invalid")
    cid = groups.create_group(db, me, "讨论", staff[:49]).id
    with pytest.raises(Invalid) as full:
        groups.add_members(db, me, cid, [expert])
    assert full.value.code == "too_many_members"
    # Only staff start conversations.
    with pytest.raises(Forbidden):
        groups.create_group(db, net.p["platform"], "讨论", [expert])


def test_the_colleague_search(db: Session, net: Net) -> None:
    found = groups.search_colleagues(db, net.p["applicant"], "C_EXPERT")
    assert [c.username for c in found] == ["c_expert_a", "c_expert_b", "c_expert_c"]
    assert found[0].institution == "测试县医院"
    # Not oneself, not an admin, not a deactivated account; % is a character, not a pattern.
    assert groups.search_colleagues(db, net.p["applicant"], "c_applicant") == []
    assert groups.search_colleagues(db, net.p["applicant"], "c_platform") == []
    assert groups.search_colleagues(db, net.p["applicant"], "%") == []
    for q in ("", "x" * 65, "a\x00"):
        with pytest.raises(Invalid):
            groups.search_colleagues(db, net.p["applicant"], q)


def test_my_list_with_unread_counts(db: Session, net: Net) -> None:
    first = _start(db, net, "expert_a", title="一")
    second = _start(db, net, "expert_a", title="二")
    group_messages.post_message(db, net.p["applicant"], first, text="新消息")
    listed = groups.list_groups(db, net.p["expert_a"])
    # The clock is frozen: equal times list the newer conversation first.
    assert [s.conversation.id for s in listed] == [second, first]
    unread = {s.conversation.id: s.unread for s in listed}
    # The start event counts as unread for the others; the message too.
    assert unread == {first: 2, second: 1}
    group_messages.read_messages(db, net.p["expert_a"], first)
    unread = {s.conversation.id: s.unread for s in groups.list_groups(db, net.p["expert_a"])}
    assert unread[first] == 0
    rows = audits(db, "group.messages", object_id=str(first))
    assert json.loads(rows[-1].detail) == {"from_seq": 1, "to_seq": 2, "count": 2}

"""The service: notify (named users, a role at an institution), list, counts, read, read
all; dedupe; link validation; the after-commit event."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from tests.admin_helpers import Clock
from tests.directory.conftest import denials
from tests.notifications.conftest import TITLE, Site, send
from xietong.core.db import rollback_keep_durable
from xietong.core.errors import Invalid, NotFound
from xietong.core.events import DomainEvent, bus
from xietong.identity.roles import Role
from xietong.notifications import service as svc
from xietong.notifications.models import Notification


def _count(db: Session) -> int:
    return int(db.scalar(select(func.count()).select_from(Notification)) or 0)


def test_notify_list_count_read_and_read_all(db: Session, site: Site) -> None:
    clock = Clock()
    me = site.principal(site.coord1)
    first = send(db, [site.coord1.id, site.coord2.id], subject_id=1)
    assert len(first) == 2
    clock.advance(minutes=5)
    send(db, [site.coord1.id], subject_id=2)
    clock.advance(minutes=5)
    send(db, [site.coord1.id], subject_id=3)
    assert svc.unread_count(db, me) == 3

    listing = svc.list_for(db, me)
    assert [n.subject_id for n in listing.items] == [3, 2, 1]  # newest first
    assert (listing.total, listing.unread) == (3, 3)
    # Unread first: reading the newest moves it to the end.
    svc.mark_read(db, me, listing.items[0].id)
    assert [n.subject_id for n in svc.list_for(db, me).items] == [2, 1, 3]
    assert svc.unread_count(db, me) == 2
    assert [n.subject_id for n in svc.list_for(db, me, unread_only=True).items] == [2, 1]
    # Paging.
    page = svc.list_for(db, me, limit=1, offset=1)
    assert [n.subject_id for n in page.items] == [1]
    assert page.total == 3
    # Marking again changes nothing.
    read_at = svc.mark_read(db, me, listing.items[0].id).read_at
    clock.advance(minutes=1)
    assert svc.mark_read(db, me, listing.items[0].id).read_at == read_at

    assert svc.mark_all_read(db, me) == 2
    assert svc.unread_count(db, me) == 0
    assert svc.mark_all_read(db, me) == 0
    # The other coordinator's copy is untouched.
    assert svc.unread_count(db, site.principal(site.coord2)) == 1


def test_title_is_translated_for_the_reader(db: Session, site: Site) -> None:
    send(db, [site.coord1.id])
    row = svc.list_for(db, site.principal(site.coord1)).items[0]
    assert row.title == TITLE
    assert svc.title_text(row, "en") == "Welcome, 磨五村卫生室"
    assert svc.title_text(row, "zh_CN") == "欢迎，磨五村卫生室"


def test_same_event_never_notifies_twice(db: Session, site: Site) -> None:
    assert len(send(db, [site.coord1.id, site.coord1.id], key="c:1")) == 1
    assert send(db, [site.coord1.id], key="c:1") == []
    # A new recipient of the same event still gets one.
    assert len(send(db, [site.coord1.id, site.coord2.id], key="c:1")) == 1
    assert _count(db) == 2
    # Another event for the same subject is another notification.
    assert len(send(db, [site.coord1.id], key="c:1:returned")) == 1


def test_notify_role_reaches_the_active_coordinators_of_the_centre(db: Session, site: Site) -> None:
    site.coord2.is_active = False
    db.flush()
    ids = svc.notify_role(
        db,
        site.county.id,
        Role.COORDINATOR,
        kind="consultation.submitted",
        subject=svc.Subject("consultation", 9),
        title=TITLE,
        params={"name": "x"},
        link="/consultations/9",
        dedupe_key="consultation.submitted:9",
    )
    rows = db.scalars(select(Notification).where(Notification.id.in_(ids))).all()
    assert [r.recipient_user_id for r in rows] == [site.coord1.id]
    # The village has no coordinator: nobody to notify, no error.
    assert (
        svc.notify_role(
            db,
            site.village.id,
            Role.COORDINATOR,
            kind="consultation.submitted",
            subject=svc.Subject("consultation", 9),
            title=TITLE,
            link="/consultations/9",
            dedupe_key="k",
        )
        == []
    )


def test_nobody_is_notified_of_their_own_action(db: Session, site: Site) -> None:
    ids = send(db, [site.coord1.id, site.coord2.id], actor=site.coord1.id)
    row = db.get(Notification, ids[0])
    assert len(ids) == 1
    assert row is not None
    assert (row.recipient_user_id, row.actor_user_id) == (site.coord2.id, site.coord1.id)


def test_another_users_notification_is_not_found_and_audited(db: Session, site: Site) -> None:
    [nid] = send(db, [site.coord1.id])
    with pytest.raises(NotFound) as caught:
        svc.mark_read(db, site.principal(site.coord2), nid)
    assert caught.value.code == "notification_not_found"
    with pytest.raises(NotFound):
        svc.mark_read(db, site.principal(site.coord2), nid + 1000)
    rollback_keep_durable(db)  # as the edge does: the refusals outlive the rollback
    denied = denials(db, "notification.read")
    assert [(d.object_id, d.actor_username) for d in denied] == [
        (str(nid), "coord2"),
        (str(nid + 1000), "coord2"),
    ]
    assert svc.list_for(db, site.principal(site.coord2)).total == 0
    assert svc.unread_count(db, site.principal(site.coord1)) == 1


@pytest.mark.parametrize(
    "link",
    [
        "https://evil.example/",
        "//evil.example/x",
        "javascript:alert(1)",
        "/\\evil.example",
        "/a\\b",
        "",
        "patients/1",
        "/a b",
        "/a\nb",
        "/" + "a" * 500,
    ],
)
def test_only_local_links(db: Session, site: Site, link: str) -> None:
    with pytest.raises(Invalid) as caught:
        send(db, [site.coord1.id], link=link)
    assert (caught.value.status, caught.value.field, caught.value.code) == (
        422,
        "link",
        "link_not_local",
    )
    db.rollback()
    assert _count(db) == 0


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"kind": "Consultation Submitted"}, "kind"),
        ({"kind": "a" * 65}, "kind"),
        ({"subject": svc.Subject("Consult!", 1)}, "subject_kind"),
        ({"subject": svc.Subject("consultation", 2**31)}, "subject_id"),
        ({"subject": svc.Subject("consultation", 0)}, "subject_id"),
        ({"title": ""}, "title"),
        ({"title": "x\x00"}, "title"),
        ({"dedupe_key": ""}, "dedupe_key"),
        ({"dedupe_key": "k" * 129}, "dedupe_key"),
        ({"params": {"bad name": 1}}, "params"),
        ({"params": {"n": [1, 2]}}, "params"),
        ({"params": {"n": "x" * 3000}}, "params"),
    ],
)
def test_bad_arguments_name_the_field(
    db: Session, site: Site, changes: dict[str, object], field: str
) -> None:
    arguments: dict[str, object] = {
        "kind": "consultation.submitted",
        "subject": svc.Subject("consultation", 1),
        "title": TITLE,
        "link": "/patients",
        "dedupe_key": "k",
        "params": {"name": "x"},
    }
    arguments.update(changes)
    with pytest.raises(Invalid) as caught:
        svc.notify(db, [site.coord1.id], **arguments)  # type: ignore[arg-type]
    assert caught.value.field == field


def test_an_event_per_notification_after_commit(db: Session, site: Site) -> None:
    seen: list[DomainEvent] = []
    bus.subscribe(svc.EVENT_CREATED, seen.append)
    try:
        svc.notify(
            db,
            [site.coord1.id],
            kind="consultation.submitted",
            subject=svc.Subject("consultation", 5),
            title=TITLE,
            link="/patients",
            dedupe_key="rolled-back",
        )
        assert seen == []  # not before the commit...
        db.rollback()
        assert seen == []  # ...never for a rolled-back one
        ids = send(db, [site.coord1.id, site.coord2.id], subject_id=5)
    finally:
        bus._handlers[svc.EVENT_CREATED].remove(seen.append)
    assert sorted(e.payload["notification_id"] for e in seen) == sorted(ids)
    assert {e.payload["recipient_user_id"] for e in seen} == {site.coord1.id, site.coord2.id}


def test_deactivated_and_unknown_accounts_are_skipped(db: Session, site: Site) -> None:
    site.coord2.is_active = False
    db.flush()
    ids = send(db, [site.coord1.id, site.coord2.id, 999_999])
    rows = db.scalars(select(Notification).where(Notification.id.in_(ids))).all()
    assert [r.recipient_user_id for r in rows] == [site.coord1.id]
    assert send(db, [999_999], key="nobody") == []


def _each(db: Session, site: Site, keys: dict[int, str]) -> list[int]:
    return svc.notify_each(
        db,
        keys,
        kind="consultation.message",
        subject=svc.Subject("consultation", 8),
        title=TITLE,
        link="/consultations/8",
        actor_user_id=site.coord2.id,
    )


def test_notify_each_dedupes_per_recipient_key(db: Session, site: Site) -> None:
    """Each reader's own key (a chat's "unread since position N"): a second message before
    they read adds nothing; a new key for one of them adds theirs only; the actor is skipped."""
    one, two = site.coord1.id, site.coord2.id
    first = _each(db, site, {one: "chat:message:0", two: "chat:message:0"})
    recipients = db.scalars(
        select(Notification.recipient_user_id).where(Notification.id.in_(first))
    ).all()
    assert list(recipients) == [one]
    assert _each(db, site, {one: "chat:message:0"}) == []
    assert len(_each(db, site, {one: "chat:message:3"})) == 1
    keys = db.scalars(
        select(Notification.dedupe_key)
        .where(Notification.recipient_user_id == one)
        .order_by(Notification.id)
    ).all()
    assert list(keys) == ["chat:message:0", "chat:message:3"]
    with pytest.raises(Invalid):
        _each(db, site, {one: ""})

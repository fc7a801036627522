"""Notify people of what needs their action, and let each read only their own.

Workflows call :func:`notify` (named users) or :func:`notify_role` (every active user with a
role at an institution, e.g. the coordinators of a service centre) inside their own
transaction: a notification exists exactly when the work it announces does. Each new row is
also published as a ``notification.created`` event, dispatched after the commit, for the
live push to come.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from sqlalchemy import ColumnElement, case, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from xietong.access.policies import deny_not_found
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Invalid
from xietong.core.events import publish
from xietong.core.i18n import translate
from xietong.core.validation import MAX_ID, has_control_characters
from xietong.identity.models import User, UserRole
from xietong.identity.roles import Role
from xietong.notifications.models import Notification

EVENT_CREATED = "notification.created"
MAX_LINK = 500
MAX_TITLE = 200
MAX_DEDUPE = 128
MAX_PARAMS_JSON = 2000
_CODE = re.compile(r"[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*")
_PARAM_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")

ParamValue = str | int | float | bool | None


@dataclass(frozen=True)
class Subject:
    """What a notification is about: ("consultation", 12)."""

    kind: str
    id: int


def _invalid(field: str, code: str, message: str = N_("A value is not valid.")) -> Invalid:
    return Invalid(message, code=code, field=field)


def check_link(link: str) -> str:
    """A local path only: it starts with one "/" (not "//", which a browser takes for another
    host, nor "/\\", which some take the same way) and holds no space or control character."""
    if (
        not isinstance(link, str)
        or not link.startswith("/")
        or link.startswith(("//", "/\\"))
        or len(link) > MAX_LINK
        or "\\" in link
        or any(ch.isspace() for ch in link)
        or has_control_characters(link)
    ):
        raise _invalid(
            "link", "link_not_local", N_("The link must be a path on this site, such as /patients.")
        )
    return link


def _check_code(value: str, field: str, max_length: int) -> str:
    if not isinstance(value, str) or len(value) > max_length or not _CODE.fullmatch(value):
        raise _invalid(field, f"{field}_invalid")
    return value


def _check_params(params: Mapping[str, ParamValue] | None) -> dict[str, ParamValue]:
    clean: dict[str, ParamValue] = {}
    for name, value in (params or {}).items():
        if not isinstance(name, str) or not _PARAM_NAME.fullmatch(name):
            raise _invalid("params", "params_invalid")
        if value is not None and not isinstance(value, str | int | float | bool):
            raise _invalid("params", "params_invalid")
        if isinstance(value, str) and has_control_characters(value):
            raise _invalid("params", "control_characters")
        clean[name] = value
    if len(json.dumps(clean, ensure_ascii=False)) > MAX_PARAMS_JSON:
        raise _invalid("params", "params_too_long")
    return clean


def _check_text(value: str, field: str, max_length: int) -> str:
    if (
        not isinstance(value, str)
        or not value.strip()
        or len(value) > max_length
        or has_control_characters(value)
    ):
        raise _invalid(field, f"{field}_invalid")
    return value


def notify(
    session: Session,
    recipients: Iterable[int],
    *,
    kind: str,
    subject: Subject,
    title: str,
    link: str,
    dedupe_key: str,
    params: Mapping[str, ParamValue] | None = None,
    actor_user_id: int | None = None,
) -> list[int]:
    """Write one notification per recipient in the caller's transaction; return the new ids.

    ``title`` is an English msgid marked with ``N_()`` (``{name}`` placeholders filled from
    ``params`` at render time). A recipient who already has a notification with this
    ``dedupe_key`` gets no second one, even from a concurrent transaction. Nobody is
    notified of their own action (``actor_user_id`` is left out of the recipients), nor is a
    deactivated or unknown account.
    """
    return notify_each(
        session,
        {int(r): dedupe_key for r in recipients},
        kind=kind,
        subject=subject,
        title=title,
        link=link,
        params=params,
        actor_user_id=actor_user_id,
    )


def notify_each(
    session: Session,
    dedupe_keys: Mapping[int, str],
    *,
    kind: str,
    subject: Subject,
    title: str,
    link: str,
    params: Mapping[str, ParamValue] | None = None,
    actor_user_id: int | None = None,
) -> list[int]:
    """:func:`notify` with a deduplication key of each recipient's own (recipient → key),
    written in one statement: a chat message notifies each reader once per unread run."""
    _check_code(kind, "kind", 64)
    _check_code(subject.kind, "subject_kind", 32)
    if isinstance(subject.id, bool) or not isinstance(subject.id, int):
        raise _invalid("subject_id", "subject_id_invalid")
    if not 1 <= subject.id <= MAX_ID:
        raise _invalid("subject_id", "subject_id_invalid")
    _check_text(title, "title", MAX_TITLE)
    for dedupe_key in set(dedupe_keys.values()):
        _check_text(dedupe_key, "dedupe_key", MAX_DEDUPE)
    check_link(link)
    clean = _check_params(params)
    wanted = {int(r) for r in dedupe_keys} - {actor_user_id}
    if not wanted:
        return []
    # Deactivated (or unknown) accounts have nothing to act on.
    users = list(
        session.scalars(
            select(User.id).where(User.id.in_(wanted), User.is_active.is_(True)).order_by(User.id)
        )
    )
    if not users:
        return []
    at = now()
    rows = [
        {
            "recipient_user_id": user_id,
            "kind": kind,
            "subject_kind": subject.kind,
            "subject_id": subject.id,
            "title": title,
            "params": clean,
            "link": link,
            "actor_user_id": actor_user_id,
            "dedupe_key": dedupe_keys[user_id],
            "created_at": at,
        }
        for user_id in users
    ]
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    statement = (
        insert(Notification)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["recipient_user_id", "dedupe_key"])
        .returning(Notification.id, Notification.recipient_user_id)
    )
    created = sorted((row[0], row[1]) for row in session.execute(statement))
    for notification_id, recipient in created:
        publish(
            session,
            EVENT_CREATED,
            notification_id=notification_id,
            recipient_user_id=recipient,
            kind=kind,
            subject_kind=subject.kind,
            subject_id=subject.id,
        )
    return [notification_id for notification_id, _recipient in created]


def role_holders(session: Session, institution_id: int, role: Role | str) -> list[int]:
    """The active users with ``role`` at the institution."""
    return list(
        session.scalars(
            select(User.id)
            .join(UserRole, UserRole.user_id == User.id)
            .where(
                User.institution_id == institution_id,
                User.is_active.is_(True),
                UserRole.role == str(role),
            )
            .order_by(User.id)
        )
    )


def notify_role(
    session: Session,
    institution_id: int,
    role: Role | str,
    *,
    kind: str,
    subject: Subject,
    title: str,
    link: str,
    dedupe_key: str,
    params: Mapping[str, ParamValue] | None = None,
    actor_user_id: int | None = None,
) -> list[int]:
    """Notify every active user holding ``role`` at ``institution_id`` (the coordinators of
    a service centre, say); returns the new ids."""
    return notify(
        session,
        role_holders(session, institution_id, role),
        kind=kind,
        subject=subject,
        title=title,
        link=link,
        dedupe_key=dedupe_key,
        params=params,
        actor_user_id=actor_user_id,
    )


# Reading ----------------------------------------------------------------------------------


def _mine(principal: Principal) -> ColumnElement[bool]:
    return Notification.recipient_user_id == principal.uid


def unread_count(session: Session, principal: Principal) -> int:
    return int(
        session.scalar(
            select(func.count())
            .select_from(Notification)
            .where(_mine(principal), Notification.read_at.is_(None))
        )
        or 0
    )


@dataclass(frozen=True)
class Listing:
    items: list[Notification]
    total: int
    unread: int


def list_for(
    session: Session,
    principal: Principal,
    *,
    unread_only: bool = False,
    limit: int = 20,
    offset: int = 0,
) -> Listing:
    """The principal's own notifications: unread first, then newest first."""
    conditions = [_mine(principal)]
    if unread_only:
        conditions.append(Notification.read_at.is_(None))
    total = int(
        session.scalar(select(func.count()).select_from(Notification).where(*conditions)) or 0
    )
    items = list(
        session.scalars(
            select(Notification)
            .where(*conditions)
            .order_by(
                case((Notification.read_at.is_(None), 0), else_=1),
                Notification.created_at.desc(),
                Notification.id.desc(),
            )
            .limit(limit)
            .offset(offset)
        )
    )
    return Listing(items, total, unread_count(session, principal))


def get_own(
    session: Session, principal: Principal, notification_id: int, *, action: str
) -> Notification:
    """The principal's notification; another's, or none, is a 404 (the refusal audited)."""
    row = session.get(Notification, notification_id)
    if row is None or row.recipient_user_id != principal.uid:
        raise deny_not_found(session, principal, action, "notification", notification_id)
    return row


def mark_read(session: Session, principal: Principal, notification_id: int) -> Notification:
    """Mark one read (again: no change); returns it."""
    row = get_own(session, principal, notification_id, action="notification.read")
    if row.read_at is None:
        row.read_at = now()
        session.flush()
    return row


def mark_all_read(session: Session, principal: Principal) -> int:
    """Mark every unread notification of the principal read; returns how many."""
    result = session.execute(
        update(Notification)
        .where(_mine(principal), Notification.read_at.is_(None))
        .values(read_at=now())
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def mark_subject_read(session: Session, principal: Principal, subject: Subject, kind: str) -> int:
    """Mark the principal's unread notifications of ``kind`` about ``subject`` read: seeing
    the messages of a consultation answers its "new message" notification."""
    result = session.execute(
        update(Notification)
        .where(
            _mine(principal),
            Notification.read_at.is_(None),
            Notification.kind == kind,
            Notification.subject_kind == subject.kind,
            Notification.subject_id == subject.id,
        )
        .values(read_at=now())
        .execution_options(synchronize_session="fetch")
    )
    return int(getattr(result, "rowcount", 0) or 0)


def title_text(notification: Notification, locale: str) -> str:
    """The title in the reader's language; a parameter missing from the msgid's placeholders
    (or the other way round) shows the untranslated-parameter text rather than failing."""
    params = {k: "" if v is None else v for k, v in (notification.params or {}).items()}
    try:
        return translate(locale, notification.title, **params)
    except (KeyError, IndexError, ValueError):
        return translate(locale, notification.title)

"""Ad hoc conversations between colleagues (subject kind ``group``), owned by messaging.

A group conversation has no subject row of another domain: its subject is itself, so its
``subject_id`` is the conversation's own id as a string (``("group", "12")``), which is what
the WebSocket key ``group:12`` names. Who takes part is its ``conversation_member`` rows:

* a signed-in staff member (doctor, expert, radiologist, coordinator) starts one with a
  title (1–100 characters) and 1–49 other active staff of any institution of the network;
* any member may add members (at most 50 at once in it); a member may leave (their
  position stays; added again, they see the whole conversation again);
* who is not a current member gets 404, audited, as for a subject they may not see;
* every member may post while a member; what a read reveals is audited like the
  subjects' conversations (messages may mention patients even though no record hangs on it).

Creation, additions and departures appear in the conversation as status events.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from uuid import uuid4

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import deny_not_found, require_roles
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Invalid
from xietong.core.validation import MAX_ID, has_control_characters
from xietong.directory.models import Institution
from xietong.identity.models import User, UserRole
from xietong.identity.roles import Role
from xietong.messaging import service as messaging
from xietong.messaging.models import Conversation, ConversationMember
from xietong.messaging.schemas import MAX_OTHER_MEMBERS, MAX_TITLE

KIND = "group"
STAFF_ROLES = frozenset({Role.APPLICANT_DOCTOR, Role.EXPERT, Role.RADIOLOGIST, Role.COORDINATOR})
MAX_MEMBERS = MAX_OTHER_MEMBERS + 1
MAX_QUERY = 64
SEARCH_LIMIT = 20
MAX_LISTED = 100


@dataclass(frozen=True)
class Colleague:
    user_id: int
    name: str
    username: str
    institution: str | None


@dataclass(frozen=True)
class Opened:
    conversation: Conversation
    member_ids: list[int]


@dataclass(frozen=True)
class Summary:
    conversation: Conversation
    members: list[Colleague]
    unread: int


# Checks ------------------------------------------------------------------------------------


def require_staff(session: Session, principal: Principal, action: str) -> None:
    """403 (audited) for an account that is not clinical or coordinating staff."""
    require_roles(session, principal, set(STAFF_ROLES), action=action, object_kind=KIND)


def check_title(title: str) -> str:
    value = title.strip() if isinstance(title, str) else ""
    if has_control_characters(value):
        raise Invalid(
            N_("The text holds control characters."), code="control_characters", field="title"
        )
    if not value or len(value) > MAX_TITLE:
        raise Invalid(
            N_("A title has 1 to {limit} characters."),
            code="title_invalid",
            field="title",
            params={"limit": MAX_TITLE},
        )
    return value


def _staff(session: Session, user_ids: set[int]) -> dict[int, User]:
    """The active staff accounts among ``user_ids``."""
    roles = [str(r) for r in STAFF_ROLES]
    found = session.execute(
        select(User).where(
            User.id.in_(user_ids),
            User.is_active.is_(True),
            User.roles.any(UserRole.role.in_(roles)),
        )
    ).scalars()
    return {u.id: u for u in found}


def check_members(session: Session, principal: Principal, member_ids: list[int]) -> list[User]:
    """1–49 other active staff (the caller dropped from the list); 422 naming
    ``member_ids`` otherwise."""
    wanted = [i for i in dict.fromkeys(member_ids) if i != principal.user_id]
    if not wanted or len(wanted) > MAX_OTHER_MEMBERS:
        raise Invalid(
            N_("Choose 1 to {limit} colleagues."),
            code="members_invalid",
            field="member_ids",
            params={"limit": MAX_OTHER_MEMBERS},
        )
    if any(not 1 <= i <= MAX_ID for i in wanted):
        raise Invalid(N_("Not found."), code="member_not_found", field="member_ids")
    found = _staff(session, set(wanted))
    if len(found) != len(wanted):
        raise Invalid(
            N_("Some of these people are not active staff of the network."),
            code="member_not_found",
            field="member_ids",
        )
    return [found[i] for i in wanted]


# Members -----------------------------------------------------------------------------------


def member_ids(session: Session, conversation_id: int) -> list[int]:
    """The current members."""
    return list(
        session.execute(
            select(ConversationMember.user_id)
            .where(
                ConversationMember.conversation_id == conversation_id,
                ConversationMember.left_at.is_(None),
            )
            .order_by(ConversationMember.added_at, ConversationMember.user_id)
        ).scalars()
    )


def open_group(
    session: Session, principal: Principal, conversation_id: int, *, action: str
) -> Opened:
    """The group conversation and its members; 404 (audited) for who is not a current
    member, for another kind of conversation and for none at all."""
    found = session.get(Conversation, conversation_id) if 1 <= conversation_id <= MAX_ID else None
    members = member_ids(session, found.id) if found is not None else []
    if found is None or found.subject_kind != KIND or principal.user_id not in members:
        raise deny_not_found(
            session, principal, action, KIND, conversation_id, field="conversation_id"
        )
    return Opened(found, members)


def _join(session: Session, conversation: Conversation, user: User, added_by: int) -> bool:
    """Make ``user`` a member (again); False when they already are one."""
    row = session.get(ConversationMember, (conversation.id, user.id))
    if row is not None and row.left_at is None:
        return False
    if row is None:
        session.add(
            ConversationMember(
                conversation_id=conversation.id, user_id=user.id, added_by=added_by, added_at=now()
            )
        )
    else:
        row.left_at, row.added_by, row.added_at = None, added_by, now()
    session.flush()
    return True


def _event(
    session: Session, conversation: Conversation, code: str, actor: int, user: User | None = None
) -> None:
    """A status event; the one who caused it has read it (it is not new to them)."""
    data: dict[str, str | int | None] = {}
    if user is not None:
        data = {"member": user.id, "name": user.display_name}
    event = messaging.post_system(session, conversation, f"group.{code}", data, actor_user_id=actor)
    if code != "leave":
        messaging.mark_read(session, conversation, actor, event.seq)


def create_group(
    session: Session, principal: Principal, title: str, members: list[int]
) -> Conversation:
    """A new group conversation of the principal and ``members``."""
    require_staff(session, principal, "group.create")
    name = check_title(title)
    others = check_members(session, principal, members)
    me = session.get(User, principal.uid)
    if me is None:  # a signed-in principal has an account
        raise RuntimeError("principal without account")
    # Its subject is itself: the id is known once inserted.
    conversation = Conversation(
        subject_kind=KIND, subject_id=f"new-{uuid4().hex}", title=name, created_at=now()
    )
    session.add(conversation)
    session.flush()
    conversation.subject_id = str(conversation.id)
    session.flush()
    for user in (me, *others):
        _join(session, conversation, user, principal.uid)
    _event(session, conversation, "create", principal.uid)
    audit.record(
        session,
        principal,
        "group.create",
        object_kind=KIND,
        object_id=conversation.id,
        detail={"members": [u.id for u in others]},
    )
    return conversation


def add_members(
    session: Session, principal: Principal, conversation_id: int, members: list[int]
) -> list[int]:
    """Add colleagues; those already in it are left as they are. Returns who was added."""
    opened = open_group(session, principal, conversation_id, action="group.members.add")
    users = check_members(session, principal, members)
    fresh = [u for u in users if u.id not in opened.member_ids]
    if len(opened.member_ids) + len(fresh) > MAX_MEMBERS:
        raise Invalid(
            N_("A conversation has at most {limit} members."),
            code="too_many_members",
            field="member_ids",
            params={"limit": MAX_MEMBERS},
        )
    added = []
    for user in fresh:
        if _join(session, opened.conversation, user, principal.uid):
            _event(session, opened.conversation, "add", principal.uid, user)
            added.append(user.id)
    audit.record(
        session,
        principal,
        "group.members.add",
        object_kind=KIND,
        object_id=conversation_id,
        detail={"added": added},
    )
    return added


def leave_group(session: Session, principal: Principal, conversation_id: int) -> None:
    """The principal leaves; the others see it in the conversation."""
    opened = open_group(session, principal, conversation_id, action="group.leave")
    row = session.get(ConversationMember, (conversation_id, principal.uid))
    if row is None:  # open_group found the membership
        raise RuntimeError("membership not found")
    _event(session, opened.conversation, "leave", principal.uid)
    row.left_at = now()
    session.flush()
    audit.record(session, principal, "group.leave", object_kind=KIND, object_id=conversation_id)


# Reading -----------------------------------------------------------------------------------


def colleagues(session: Session, user_ids: list[int]) -> list[Colleague]:
    """Names and institutions of ``user_ids``, in that order."""
    if not user_ids:
        return []
    rows = session.execute(
        select(User.id, User.display_name, User.username, Institution.name)
        .outerjoin(Institution, Institution.id == User.institution_id)
        .where(User.id.in_(user_ids))
    ).all()
    by_id = {r[0]: Colleague(r[0], r[1], r[2], r[3]) for r in rows}
    return [by_id[i] for i in user_ids if i in by_id]


def list_groups(session: Session, principal: Principal) -> list[Summary]:
    """The principal's group conversations, the latest activity first (at most 100)."""
    require_staff(session, principal, "group.list")
    found = session.execute(
        select(Conversation)
        .join(
            ConversationMember,
            and_(
                ConversationMember.conversation_id == Conversation.id,
                ConversationMember.user_id == principal.uid,
                ConversationMember.left_at.is_(None),
            ),
        )
        .where(Conversation.subject_kind == KIND)
        .order_by(
            func.coalesce(Conversation.last_message_at, Conversation.created_at).desc(),
            Conversation.id.desc(),
        )
        .limit(MAX_LISTED)
    ).scalars()
    return [summary_of(session, principal, c) for c in found]


def summary_of(session: Session, principal: Principal, c: Conversation) -> Summary:
    return Summary(
        c,
        colleagues(session, member_ids(session, c.id)),
        messaging.unread_count(session, c, principal.uid),
    )


def last_activity(summary: Summary) -> datetime:
    c = summary.conversation
    return c.last_message_at or c.created_at


def search_colleagues(session: Session, principal: Principal, q: str) -> list[Colleague]:
    """Active staff of the network whose name or username holds ``q`` (not the caller),
    at most 20: whom a conversation may be started with."""
    require_staff(session, principal, "group.search")
    needle = q.strip() if isinstance(q, str) else ""
    if has_control_characters(needle) or not needle or len(needle) > MAX_QUERY:
        raise Invalid(
            N_("Search with 1 to {limit} characters."),
            code="query_invalid",
            field="q",
            params={"limit": MAX_QUERY},
        )
    roles = [str(r) for r in STAFF_ROLES]
    ids = session.execute(
        select(User.id)
        .where(
            User.is_active.is_(True),
            User.id != principal.uid,
            User.roles.any(UserRole.role.in_(roles)),
            or_(
                func.lower(User.username).contains(needle.lower(), autoescape=True),
                func.lower(User.display_name).contains(needle.lower(), autoescape=True),
            ),
        )
        .order_by(User.display_name, User.id)
        .limit(SEARCH_LIMIT)
    ).scalars()
    return colleagues(session, list(ids))

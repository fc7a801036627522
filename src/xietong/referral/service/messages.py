"""The referral's conversation: the sending doctor and the receiving institution's desk
(转诊办) and clinicians write to each other (text, photos, PDF files) while the referral is
open; every transition appears in it as a status event (:func:`record_status`).

Who may read is who may see the referral (:func:`open_referral`: 404 for anyone else,
audited). Who may post is who takes a part in it: ``sender``, ``desk`` or ``clinician``
(:mod:`xietong.referral.workflow`); the sending institution's other staff see it but get
403. Posting is open while the referral waits for someone (``OPEN_STATES``: requested,
returned, accepted, arrived, in treatment, reported); once completed, rejected, cancelled,
expired or marked no-show, its conversation stays readable. Reads and attachments are
audited as the consultation's are (:mod:`xietong.messaging.threads`).

Told of a new message: the sending doctor, the receiving desk, the named receiving doctor,
and whoever has written in the conversation, but never the one who wrote it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.config import UploadSettings
from xietong.core.errors import N_
from xietong.core.storage import BlobStore
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.messaging import service as messaging
from xietong.messaging import threads
from xietong.messaging.models import Conversation, ConversationRead, Message
from xietong.messaging.subjects import wire
from xietong.notifications.service import Subject, role_holders
from xietong.referral import workflow as wf
from xietong.referral.models import OPEN_STATES, Referral
from xietong.referral.service.common import CONVERSATION_KIND, Opened, open_referral

SUBJECT_KIND = CONVERSATION_KIND
NOTIFICATION_KIND = "referral.message"
READ_ACTION = "referral.messages"
POST_ACTION = "referral.message"
POSTING_STATES = frozenset(OPEN_STATES)
POSTING_PARTS = frozenset({wf.SENDER, wf.DESK, wf.CLINICIAN})


@dataclass(frozen=True)
class Thread:
    referral: Referral
    roles: frozenset[str]
    messages: list[Message]
    last_seq: int
    positions: list[ConversationRead]
    can_post: bool
    names: dict[int, str]

    @property
    def is_open(self) -> bool:
        """New messages may still come (the page keeps polling)."""
        return self.referral.state in POSTING_STATES


def can_post(opened: Opened) -> bool:
    return bool(opened.roles & POSTING_PARTS) and opened.referral.state in POSTING_STATES


def _conversation(session: Session, r: Referral) -> Conversation | None:
    return messaging.find_conversation(session, SUBJECT_KIND, str(r.id))


def _audited(r: Referral) -> threads.Audited:
    return threads.Audited(READ_ACTION, POST_ACTION, SUBJECT_KIND, r.id)


def message_path(subject_id: str, seq: int) -> str:
    return f"/api/v1/referrals/{subject_id}/messages/{seq}"


def message_out(referral_id: int, m: Message, names: dict[int, str]) -> dict[str, Any]:
    """The JSON shape of one message (MessageOut)."""
    return wire(m, names, message_path(str(referral_id), m.seq))


def read_messages(
    session: Session,
    principal: Principal,
    referral_id: int,
    *,
    after: int = 0,
    limit: int = 100,
    tail: int | None = None,
) -> Thread:
    """Messages after ``after``, oldest first (with ``tail``, at most the last ``tail``);
    the reader's position moves on and their "new message" notifications are read."""
    opened = open_referral(session, principal, referral_id, action=READ_ACTION, audit_success=False)
    r = opened.referral
    page = threads.read_page(
        session,
        principal,
        _conversation(session, r),
        _audited(r),
        after=after,
        limit=limit,
        tail=tail,
        notifications=(Subject(SUBJECT_KIND, r.id), NOTIFICATION_KIND),
    )
    return Thread(
        r, opened.roles, page.messages, page.last_seq, page.positions, can_post(opened), page.names
    )


def post_message(
    session: Session,
    principal: Principal,
    referral_id: int,
    *,
    text: str,
    client_id: str | None = None,
    attachment: messaging.Attachment | None = None,
    blobs: BlobStore | None = None,
    limits: UploadSettings | None = None,
) -> messaging.Posted:
    """Post to the referral's conversation: 403 for who takes no part, 409 once the
    referral is closed; a resend with the same client id returns the first message."""
    opened = open_referral(session, principal, referral_id, action=POST_ACTION, audit_success=False)
    r = opened.referral
    threads.check_may_post(
        session,
        principal,
        _audited(r),
        takes_part=bool(opened.roles & POSTING_PARTS),
        state=r.state,
        is_open=r.state in POSTING_STATES,
        closed_message=N_("Messages are written while the referral is open."),
    )
    conversation = messaging.conversation_for(session, SUBJECT_KIND, str(r.id))
    notice = threads.Notice(
        kind=NOTIFICATION_KIND,
        subject=Subject(SUBJECT_KIND, r.id),
        title=N_("New message in referral #{id}"),
        params={"id": r.id},
        link=f"/referrals/{r.id}#conversation",
        dedupe_prefix=f"referral:{r.id}",
    )
    return threads.post(
        session,
        principal,
        conversation,
        _audited(r),
        notice=notice,
        recipients=lambda: participants(session, r, conversation),
        text=text,
        client_id=client_id,
        attachment=attachment,
        blobs=blobs,
        limits=limits,
    )


def participants(
    session: Session, r: Referral, conversation: Conversation | None = None
) -> set[int]:
    """Who takes part: the sending doctor, the receiving desk, the named receiving doctor's
    account, and whoever has written in the conversation."""
    found = {r.sender_user_id, *role_holders(session, r.target_institution_id, Role.COORDINATOR)}
    if r.target_practitioner_id is not None:
        found |= set(
            session.execute(
                select(User.id).where(
                    User.practitioner_id == r.target_practitioner_id, User.is_active.is_(True)
                )
            ).scalars()
        )
    conversation = conversation or _conversation(session, r)
    if conversation is not None:
        writers = session.execute(
            select(Message.sender_user_id)
            .where(Message.conversation_id == conversation.id)
            .distinct()
        ).scalars()
        found |= {u for u in writers if u is not None}
    return found


def message_attachment(
    session: Session,
    principal: Principal,
    referral_id: int,
    seq: int,
    *,
    thumbnail: bool = False,
) -> threads.AttachmentContent:
    """The attachment of message ``seq`` (or its thumbnail); audited as a read."""
    opened = open_referral(
        session, principal, referral_id, action=f"{POST_ACTION}.attachment", audit_success=False
    )
    r = opened.referral
    return threads.read_attachment(
        session, principal, _conversation(session, r), seq, _audited(r), thumbnail=thumbnail
    )

"""The consultation's conversation: the applicant, the centre's coordinators and the
assigned experts write to each other (text, photos, PDF files) while the consultation is
open; every transition appears in it as a status event.

Who may read is who may see the consultation (:func:`open_consultation`: 404 for anyone
else, audited). Who may post is who takes part in it: the applicant doctor, a coordinator
of the centre, an assigned expert (others who see it, such as the clinic's other staff,
get 403). Posting is open from submission until the report is signed; a closed
consultation's conversation stays readable. A read that returns messages is audited with
the sequence numbers it revealed; a poll that finds nothing new reveals nothing and is not.
Message attachments belong to the consultation, not to the shared chart items, so they stay
readable to its participants when the chart grants expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.config import UploadSettings
from xietong.consultation import workflow as wf
from xietong.consultation.models import Consultation, ConsultationAssignment
from xietong.consultation.service.common import CONVERSATION_KIND, Opened, open_consultation
from xietong.core.errors import N_
from xietong.core.storage import BlobStore
from xietong.identity.roles import Role
from xietong.messaging import service as messaging
from xietong.messaging import threads
from xietong.messaging.models import Conversation, ConversationRead, Message
from xietong.messaging.subjects import wire
from xietong.messaging.threads import AttachmentContent as AttachmentContent
from xietong.notifications.service import Subject, role_holders

SUBJECT_KIND = CONVERSATION_KIND
NOTIFICATION_KIND = "consultation.message"
POSTING_STATES = frozenset(
    {
        "submitted",
        "returned",
        "resubmitted",
        "accepted",
        "scheduled",
        "in_progress",
        "report_signed",
    }
)
POSTING_PARTS = frozenset({wf.APPLICANT, wf.COORDINATOR, wf.EXPERT})


@dataclass(frozen=True)
class Thread:
    consultation: Consultation
    roles: frozenset[str]
    messages: list[Message]
    last_seq: int
    positions: list[ConversationRead]
    can_post: bool
    names: dict[int, str]

    @property
    def is_open(self) -> bool:
        """New messages may still come (the page keeps polling)."""
        return self.consultation.state in POSTING_STATES


def can_post(opened: Opened) -> bool:
    return bool(opened.roles & POSTING_PARTS) and opened.consultation.state in POSTING_STATES


def _conversation(session: Session, c: Consultation) -> Conversation | None:
    return messaging.find_conversation(session, SUBJECT_KIND, str(c.id))


def _audited(c: Consultation) -> threads.Audited:
    return threads.Audited("consultation.messages", "consultation.message", "consultation", c.id)


def read_messages(
    session: Session,
    principal: Principal,
    consultation_id: int,
    *,
    after: int = 0,
    limit: int = 100,
    tail: int | None = None,
) -> Thread:
    """Messages after ``after``, oldest first (with ``tail``, at most the last ``tail``);
    the reader's position moves to the last one returned and their "new message"
    notifications for it are marked read."""
    opened = open_consultation(
        session, principal, consultation_id, action="consultation.messages", audit_success=False
    )
    c = opened.consultation
    page = threads.read_page(
        session,
        principal,
        _conversation(session, c),
        _audited(c),
        after=after,
        limit=limit,
        tail=tail,
        notifications=(Subject(SUBJECT_KIND, c.id), NOTIFICATION_KIND),
    )
    return Thread(
        c,
        opened.roles,
        page.messages,
        page.last_seq,
        page.positions,
        can_post(opened),
        page.names,
    )


def message_out(consultation_id: int, m: Message, names: dict[int, str]) -> dict[str, Any]:
    """The JSON shape of one message (MessageOut)."""
    return wire(m, names, f"/api/v1/consultations/{consultation_id}/messages/{m.seq}")


def post_message(
    session: Session,
    principal: Principal,
    consultation_id: int,
    *,
    text: str,
    client_id: str | None = None,
    attachment: messaging.Attachment | None = None,
    blobs: BlobStore | None = None,
    limits: UploadSettings | None = None,
) -> messaging.Posted:
    """Post to the consultation's conversation: 403 for who does not take part, 409 when
    the consultation is not open for messages; a resend with the same client id returns the
    first message (200 rather than 201 at the edge)."""
    opened = open_consultation(
        session, principal, consultation_id, action="consultation.message", audit_success=False
    )
    c = opened.consultation
    threads.check_may_post(
        session,
        principal,
        _audited(c),
        takes_part=bool(opened.roles & POSTING_PARTS),
        state=c.state,
        is_open=c.state in POSTING_STATES,
        closed_message=N_("Messages are written while the consultation is open."),
    )
    return threads.post(
        session,
        principal,
        messaging.conversation_for(session, SUBJECT_KIND, str(c.id)),
        _audited(c),
        notice=_notice(c),
        recipients=lambda: participants(session, c),
        text=text,
        client_id=client_id,
        attachment=attachment,
        blobs=blobs,
        limits=limits,
    )


def participants(session: Session, c: Consultation) -> set[int]:
    """Who is told of a new message: the applicant, the assigned experts, and the centre's
    coordinators while nobody is assigned yet."""
    experts = set(
        session.execute(
            select(ConsultationAssignment.user_id).where(
                ConsultationAssignment.consultation_id == c.id
            )
        ).scalars()
    )
    if not experts:
        experts = set(role_holders(session, c.target_institution_id, Role.COORDINATOR))
    return {c.applicant_user_id, *experts}


def _notice(c: Consultation) -> threads.Notice:
    """The "new message" notification: one per participant until they read."""
    return threads.Notice(
        kind=NOTIFICATION_KIND,
        subject=Subject(SUBJECT_KIND, c.id),
        title=N_("New message in consultation #{id}"),
        params={"id": c.id},
        link=f"/consultations/{c.id}#conversation",
        dedupe_prefix=f"consultation:{c.id}",
    )


def message_attachment(
    session: Session,
    principal: Principal,
    consultation_id: int,
    seq: int,
    *,
    thumbnail: bool = False,
) -> AttachmentContent:
    """The attachment of message ``seq`` (or its thumbnail); audited as a read."""
    opened = open_consultation(
        session,
        principal,
        consultation_id,
        action="consultation.message.attachment",
        audit_success=False,
    )
    c = opened.consultation
    return threads.read_attachment(
        session, principal, _conversation(session, c), seq, _audited(c), thumbnail=thumbnail
    )

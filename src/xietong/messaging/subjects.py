"""What a subject's domain lends messaging so that its conversation can be followed and
written to over the WebSocket without messaging importing it (ADR 15).

Who may read, and whether one may post now, is the subject's participation rule
(:mod:`xietong.access.subjects`). Posting goes through the subject's own ``post`` (it
checks its state, audits, and notifies its participants); attachment links point to the
subject's routes through ``message_path``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.core.errors import NotFound
from xietong.messaging.models import Message

if TYPE_CHECKING:  # the service imports this module
    from xietong.messaging.service import Posted

PostRule = Callable[..., "Posted"]


@dataclass(frozen=True)
class ConversationSubject:
    kind: str
    # post(session, principal, subject_id, *, text, client_id) -> Posted
    post: PostRule
    # The API path of one message of the subject's conversation (attachments hang below).
    message_path: Callable[[str, int], str]
    # The audit action of a read of the conversation ("consultation.messages").
    read_action: str


_SUBJECTS: dict[str, ConversationSubject] = {}


def register_conversation(subject: ConversationSubject) -> None:
    _SUBJECTS[subject.kind] = subject


def conversation_subject(kind: str) -> ConversationSubject:
    found = _SUBJECTS.get(kind)
    if found is None:
        raise NotFound(code="subject_not_found", field="conversation")
    return found


def message_path(kind: str, subject_id: str, seq: int) -> str:
    """The API path of a message; empty for a subject nobody registered (tests of
    messaging alone)."""
    found = _SUBJECTS.get(kind)
    return found.message_path(subject_id, seq) if found is not None else ""


def post(
    session: Session,
    principal: Principal,
    kind: str,
    subject_id: str,
    *,
    text: str,
    client_id: str | None,
) -> Posted:
    rule = conversation_subject(kind)
    return rule.post(session, principal, subject_id, text=text, client_id=client_id)


def wire(message: Message, names: dict[int, str], base: str) -> dict[str, Any]:
    """The JSON of one message, as the subject's REST API and the WebSocket send it.
    ``base`` is the message's API path (``/api/v1/consultations/12/messages/3``)."""
    attachment = None
    if message.blob_key is not None:
        attachment = {
            "media_type": message.media_type,
            "size": message.size,
            "sha256": message.sha256,
            "filename": message.filename,
            "width": message.width,
            "height": message.height,
            "pdf_pages": message.pdf_pages,
            "url": f"{base}/attachment",
            "thumbnail_url": f"{base}/thumbnail" if message.thumb_blob_key else None,
        }
    system = message.kind == "system"
    actor = message.data.get("actor_user_id") if system else message.sender_user_id
    return {
        "seq": message.seq,
        "kind": message.kind,
        "sender_user_id": message.sender_user_id,
        "sender_name": names.get(int(str(actor))) if actor is not None else None,
        "text": "" if system else message.body,
        "event": message.body if system else None,
        "event_data": {k: v for k, v in message.data.items() if k != "actor_user_id"}
        if system
        else None,
        "client_id": message.client_id,
        "created_at": message.created_at,
        "attachment": attachment,
    }

"""A conversation as the pages show it, the same for a consultation, a referral and a group
conversation: each message with its sender, time, attachment links and, on one's own
messages, who has read it; status events in the reader's language (the subject names
them); the polling fragment (htmx: fetched at once when the WebSocket pushes a message,
static/live_chat.js, and every few seconds without it) and the message form (text and an
optional photo or PDF, multipart).

The poll does not count as activity (web.deps.PollingPrincipal). The form works without
JavaScript: it posts, then redirects back to the conversation (303); a refused message
re-renders the page naming the field. The form carries a client id made when the page was
rendered, so posting the same form twice makes one message.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from sqlalchemy.orm import Session
from starlette.datastructures import FormData, UploadFile

from xietong.access.principal import Principal
from xietong.core.errors import N_, XietongError
from xietong.core.i18n import translate
from xietong.messaging.models import ConversationRead, Message
from xietong.messaging.service import Attachment
from xietong.web.deps import services
from xietong.web.pages.forms import form_error

PAGE_MESSAGES = 200  # the page shows the latest ones; the API pages through all

# (message) -> the status event's text in the reader's language.
EventLabel = Callable[[Message], str]


@dataclass(frozen=True)
class Conversation:
    """Where a conversation lives on its page (``conversation`` in the templates)."""

    key: str  # the WebSocket key: "consultation:12"
    poll_url: str  # the polling fragment, without ?after=
    post_url: str  # where the form posts
    api_base: str  # the REST path of its messages (attachments hang below)
    closed_note: str  # shown instead of the form, translated


def size_label(size: int | None) -> str:
    if not size:
        return ""
    if size < 1024 * 1024:
        return f"{max(1, size // 1024)} KB"
    return f"{size / 1_048_576:.1f} MB"


def message_items(
    locale: str,
    messages: Iterable[Message],
    positions: list[ConversationRead],
    names: dict[int, str],
    me: int | None,
    *,
    api_base: str,
    event_label: EventLabel,
    china_time: Callable[[Any], str],
) -> list[dict[str, Any]]:
    items = []
    for m in messages:
        mine = m.sender_user_id is not None and m.sender_user_id == me
        readers = [
            names.get(p.user_id, "")
            for p in positions
            if p.user_id != m.sender_user_id and p.last_read_seq >= m.seq
        ]
        actor = m.data.get("actor_user_id") if m.kind == "system" else m.sender_user_id
        items.append(
            {
                "m": m,
                "mine": mine,
                "who": names.get(int(str(actor)), "") if actor is not None else "",
                "at": china_time(m.created_at),
                "event": event_label(m) if m.kind == "system" else "",
                "note": str(m.data.get("note") or "") if m.kind == "system" else "",
                "url": f"{api_base}/{m.seq}/attachment" if m.blob_key else "",
                "thumb": f"{api_base}/{m.seq}/thumbnail" if m.thumb_blob_key else "",
                "size": size_label(m.size),
                "read_by": translate(locale, N_("Read by {names}"), names="、".join(readers))
                if mine and readers
                else "",
            }
        )
    return items


def thread_context(
    locale: str,
    thread: Any,
    me: int | None,
    conversation: Conversation,
    *,
    event_label: EventLabel,
    china_time: Callable[[Any], str],
    after: int = 0,
) -> dict[str, Any]:
    """What the conversation templates need. ``thread`` has messages, positions, names,
    is_open and can_post; ``after`` is where the poll continues when nothing new came."""
    return {
        "thread": thread,
        "conversation": conversation,
        "message_items": message_items(
            locale,
            thread.messages,
            thread.positions,
            thread.names,
            me,
            api_base=conversation.api_base,
            event_label=event_label,
            china_time=china_time,
        ),
        "after": thread.messages[-1].seq if thread.messages else after,
        "message_client_id": uuid.uuid4().hex,
    }


def form_attachment(value: object, limit: int) -> Attachment | None:
    """The form's file, if one was chosen (read one byte past the limit: vetting refuses)."""
    if not isinstance(value, UploadFile) or not (value.filename or value.size):
        return None
    return Attachment(value.filename or "", value.content_type, value.file.read(limit + 1))


def post_form(
    request: Request,
    session: Session,
    principal: Principal,
    form: FormData,
    post: Callable[..., Any],
    subject_id: int,
) -> dict[str, Any] | None:
    """Post the message form through the subject's ``post``; the failure (for the page to
    re-render naming the field) or None."""
    app = services(request)
    text = form.get("text")
    client_id = form.get("client_id")
    try:
        post(
            session,
            principal,
            subject_id,
            text=text if isinstance(text, str) else "",
            client_id=client_id if isinstance(client_id, str) else None,
            attachment=form_attachment(form.get("file"), app.settings.upload.max_document_bytes),
            blobs=app.blobs,
            limits=app.settings.upload,
        )
    except XietongError as exc:
        return form_error(request, session, exc)
    return None


def form_values(form: FormData) -> dict[str, Any]:
    return {k: v for k, v in form.items() if isinstance(v, str) and k != "csrf_token"}


# A message form may come back to the video session it was sent from, and to nowhere else.
RETURN_TO = re.compile(r"/live/[1-9][0-9]{0,17}")


def back_to(form: FormData, page: str) -> str:
    """Where a sent message form goes: its ``return_to`` when that is a video session's
    page, else ``page``; at the conversation either way."""
    back = form.get("return_to")
    target = back if isinstance(back, str) and RETURN_TO.fullmatch(back) else page
    return f"{target}#conversation"

"""The consultation's conversation as its page shows it (:mod:`xietong.web.pages.conversation`):
where it lives, and its status events (the consultation's steps) in the reader's language.
Shared by the consultation page and its polling fragment."""

from __future__ import annotations

from typing import Any

from xietong.consultation import service as svc
from xietong.core.errors import N_
from xietong.core.i18n import translate
from xietong.messaging.models import Message
from xietong.web.pages.conversation import PAGE_MESSAGES, Conversation
from xietong.web.pages.conversation import thread_context as conversation_context

__all__ = ["PAGE_MESSAGES", "thread_context"]

CLOSED_NOTE = N_(
    "Messages are written while the consultation is open, by the applicant, the centre's "
    "coordinators and the assigned experts."
)


def _event(m: Message, labels: dict[str, Any]) -> str:
    action = m.body.removeprefix("consultation.")
    text = str(labels["action_labels"].get(action, action))
    target = str(m.data.get("to") or "")
    if target in labels["state_labels"]:
        text += f" → {labels['state_labels'][target]}"
    return text


def conversation_of(locale: str, consultation_id: int) -> Conversation:
    return Conversation(
        key=f"consultation:{consultation_id}",
        poll_url=f"/consultations/{consultation_id}/messages",
        post_url=f"/consultations/{consultation_id}/messages",
        api_base=f"/api/v1/consultations/{consultation_id}/messages",
        closed_note=translate(locale, CLOSED_NOTE),
    )


def thread_context(
    locale: str, thread: svc.Thread, me: int | None, labels: dict[str, Any], after: int = 0
) -> dict[str, Any]:
    """``after``: where the page's poll continues from when nothing new was found."""
    return conversation_context(
        locale,
        thread,
        me,
        conversation_of(locale, thread.consultation.id),
        event_label=lambda m: _event(m, labels),
        china_time=labels["china_time"],
        after=after,
    )

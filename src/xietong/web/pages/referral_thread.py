"""The referral's conversation on its page (:mod:`xietong.web.pages.conversation`): where
it lives, and its status events (the referral's steps) in the reader's language."""

from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.core.errors import N_
from xietong.core.i18n import translate
from xietong.messaging.models import Message
from xietong.referral.service import messages as svc
from xietong.web.pages.conversation import PAGE_MESSAGES, Conversation
from xietong.web.pages.conversation import thread_context as conversation_context
from xietong.web.pages.referral_common import china_time, page_labels

CLOSED_NOTE = N_(
    "Messages are written while the referral is open, by the referring doctor and the "
    "receiving institution's referral desk and clinicians."
)


def _event(m: Message, labels: dict[str, Any]) -> str:
    action = m.body.removeprefix("referral.")
    text = str(labels["action_labels"].get(action, action))
    target = str(m.data.get("to") or "")
    if target in labels["state_labels"]:
        text += f" → {labels['state_labels'][target]}"
    return text


def conversation_of(locale: str, referral_id: int) -> Conversation:
    return Conversation(
        key=f"referral:{referral_id}",
        poll_url=f"/referrals/{referral_id}/messages",
        post_url=f"/referrals/{referral_id}/messages",
        api_base=f"/api/v1/referrals/{referral_id}/messages",
        closed_note=translate(locale, CLOSED_NOTE),
    )


def context_of(locale: str, thread: svc.Thread, me: int | None, after: int = 0) -> dict[str, Any]:
    labels = page_labels(locale)
    return conversation_context(
        locale,
        thread,
        me,
        conversation_of(locale, thread.referral.id),
        event_label=lambda m: _event(m, labels),
        china_time=china_time,
        after=after,
    )


def thread_context(
    locale: str, session: Session, principal: Principal, referral_id: int
) -> dict[str, Any]:
    """The latest messages of the referral page, and a fresh client id for its form."""
    thread = svc.read_messages(session, principal, referral_id, tail=PAGE_MESSAGES)
    return context_of(locale, thread, principal.user_id)

"""The consultation's messages as the page shows them: each message with its sender, time,
attachment links and, on one's own messages, who has read it; status events in the
reader's language. Shared by the consultation page and its polling fragment."""

from __future__ import annotations

from typing import Any

from xietong.consultation import service as svc
from xietong.core.errors import N_
from xietong.core.i18n import translate
from xietong.messaging.models import Message

PAGE_MESSAGES = 200  # the page shows the latest ones; the API pages through all


def _size(size: int | None) -> str:
    if not size:
        return ""
    if size < 1024 * 1024:
        return f"{max(1, size // 1024)} KB"
    return f"{size / 1_048_576:.1f} MB"


def _event(locale: str, m: Message, labels: dict[str, Any]) -> str:
    action = m.body.removeprefix("consultation.")
    text = str(labels["action_labels"].get(action, action))
    target = str(m.data.get("to") or "")
    if target in labels["state_labels"]:
        text += f" → {labels['state_labels'][target]}"
    return text


def message_items(
    locale: str, thread: svc.Thread, me: int | None, labels: dict[str, Any]
) -> list[dict[str, Any]]:
    c = thread.consultation
    base = f"/api/v1/consultations/{c.id}/messages"
    items = []
    for m in thread.messages:
        mine = m.sender_user_id is not None and m.sender_user_id == me
        readers = [
            thread.names.get(p.user_id, "")
            for p in thread.positions
            if p.user_id != m.sender_user_id and p.last_read_seq >= m.seq
        ]
        actor = m.data.get("actor_user_id") if m.kind == "system" else m.sender_user_id
        items.append(
            {
                "m": m,
                "mine": mine,
                "who": thread.names.get(int(str(actor)), "") if actor is not None else "",
                "at": labels["china_time"](m.created_at),
                "event": _event(locale, m, labels) if m.kind == "system" else "",
                "note": str(m.data.get("note") or "") if m.kind == "system" else "",
                "url": f"{base}/{m.seq}/attachment" if m.blob_key else "",
                "thumb": f"{base}/{m.seq}/thumbnail" if m.thumb_blob_key else "",
                "size": _size(m.size),
                "read_by": translate(locale, N_("Read by {names}"), names="、".join(readers))
                if mine and readers
                else "",
            }
        )
    return items


def thread_context(
    locale: str, thread: svc.Thread, me: int | None, labels: dict[str, Any], after: int = 0
) -> dict[str, Any]:
    """``after``: where the page's poll continues from when nothing new was found."""
    return {
        "thread": thread,
        "message_items": message_items(locale, thread, me, labels),
        "after": thread.messages[-1].seq if thread.messages else after,
    }

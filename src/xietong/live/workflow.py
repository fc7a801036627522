"""The video session's transition table (docs/workflows/live.md is generated from it:
``python -m xietong.live.workflow``).

Roles are the actor's part in one session, not account roles:

* ``host``: the session's creator, or a participant of the subject who may host it
  (``Participation.is_host``: a consultation's coordinators and lead expert …);
* ``participant``: anyone the subject's participation rule admits;
* ``system``: the cleanup job.

A guest (joined by link and admitted from the lobby) holds none of these: joining and
leaving are all a guest does. Who may not see the subject gets 404.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from xietong.core.errors import N_
from xietong.core.workflow import Guard, Transition, Workflow
from xietong.live.models import STATES

HOST = "host"
PARTICIPANT = "participant"
SYSTEM = "system"
# Participants may open a scheduled session this long before its start (the waiting room).
EARLY_OPEN = timedelta(minutes=15)


@dataclass(frozen=True)
class GuardContext:
    at: datetime
    scheduled_at: datetime | None
    is_host: bool


def _near_start(ctx: GuardContext) -> str | None:
    if ctx.is_host or ctx.scheduled_at is None or ctx.at >= ctx.scheduled_at - EARLY_OPEN:
        return None
    return N_("The session opens 15 minutes before its start.")


def _t(
    source: str,
    action: str,
    target: str,
    *roles: str,
    guard: Guard | None = None,
    description: str = "",
) -> Transition:
    return Transition(source, action, target, frozenset(roles), guard, description)


TRANSITIONS = [
    _t(
        "scheduled",
        "open",
        "open",
        HOST,
        PARTICIPANT,
        guard=_near_start,
        description="the first join opens it; a participant from 15 minutes before the start",
    ),
    _t("scheduled", "cancel", "cancelled", HOST),
    _t("scheduled", "expire", "cancelled", SYSTEM, description="never opened; start long past"),
    _t("open", "end", "ended", HOST, description="everyone is disconnected"),
    _t("open", "close", "ended", SYSTEM, description="empty for the planned duration"),
]

WORKFLOW = Workflow("live session", STATES, "scheduled", TRANSITIONS)


def markdown() -> str:
    roles = (
        "\nAn instant session is created `open`. Roles are the actor's part in the session: "
        "`host` (its creator, or a participant the subject lets host), `participant` (any "
        "participant of the subject), `system` (the cleanup job, `xietong jobs live`). "
        "Any other (state, action) is a 409; a participant without the role is a 403; a "
        "user who may not see the subject gets 404.\n"
    )
    return WORKFLOW.to_markdown() + roles


if __name__ == "__main__":  # pragma: no cover
    print(markdown(), end="")

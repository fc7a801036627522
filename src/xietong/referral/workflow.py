"""The referrals' transition tables, one per kind (docs/workflows/referral-*.md are
generated from them: ``python -m xietong.referral.workflow``).

Roles here are the actor's part in one referral, not account roles:

* ``sender``: for an up or exam referral, an applicant doctor of the sending institution;
  for a down-referral, a doctor or expert of the upper institution that sends the patient
  back;
* ``desk``: a coordinator of the receiving institution (转诊办);
* ``clinician``: a doctor, expert or radiologist of the receiving institution;
* ``system``: the deadline job.

Anyone else who may see the referral holds none of these and gets 403 for any action; who
may not see it gets 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from xietong.core.errors import N_
from xietong.core.workflow import Guard, Transition, Workflow
from xietong.referral.models import STATES

SENDER = "sender"
DESK = "desk"
CLINICIAN = "clinician"
SYSTEM = "system"


@dataclass(frozen=True)
class GuardContext:
    booked: bool
    has_report: bool = False


def _booked(ctx: GuardContext) -> str | None:
    return None if ctx.booked else N_("A place is booked before the referral is accepted.")


def _reported(ctx: GuardContext) -> str | None:
    if ctx.has_report:
        return None
    return N_("The examination report is attached first.")


def _t(
    source: str,
    action: str,
    target: str,
    *roles: str,
    guard: Guard | None = None,
    description: str = "",
) -> Transition:
    return Transition(source, action, target, frozenset(roles), guard, description)


def _intake() -> list[Transition]:
    """The receiving desk's answer to an up or exam referral, and the sender's part."""
    return [
        _t("requested", "accept", "accepted", DESK, guard=_booked, description="a place is booked"),
        _t("requested", "return", "returned", DESK, description="a note is required"),
        _t("requested", "reject", "rejected", DESK, description="a reason is required"),
        _t("requested", "cancel", "cancelled", SENDER, description="the booking is released"),
        _t("requested", "expire", "expired", SYSTEM, description="accept deadline passed"),
        _t("returned", "resubmit", "requested", SENDER, description="the deadline restarts"),
        _t("returned", "cancel", "cancelled", SENDER, description="the booking is released"),
        _t("accepted", "check_in", "arrived", DESK, CLINICIAN, description="the patient came"),
        _t("accepted", "no_show", "no_show", DESK, SYSTEM, description="the booking is kept"),
        _t("accepted", "cancel", "cancelled", SENDER, description="before arrival"),
    ]


UP = Workflow(
    "referral-up",
    STATES,
    "requested",
    [
        *_intake(),
        _t("arrived", "start", "in_treatment", CLINICIAN),
        _t("in_treatment", "complete", "completed", CLINICIAN, description="treatment ends"),
    ],
)

EXAM = Workflow(
    "referral-exam",
    STATES,
    "requested",
    [
        *_intake(),
        _t(
            "arrived",
            "report",
            "reported",
            CLINICIAN,
            guard=_reported,
            description="the examination report goes back to the sender",
        ),
        _t(
            "reported",
            "decide",
            "completed",
            CLINICIAN,
            description="stay with advice, refer up (a new up-referral), or admit",
        ),
    ],
)

DOWN = Workflow(
    "referral-down",
    STATES,
    "requested",
    [
        _t("requested", "accept", "accepted", DESK, CLINICIAN),
        _t("requested", "reject", "rejected", DESK, CLINICIAN, description="a reason is required"),
        _t("requested", "cancel", "cancelled", SENDER),
        _t("requested", "expire", "expired", SYSTEM, description="accept deadline passed"),
        _t(
            "accepted",
            "complete",
            "completed",
            DESK,
            CLINICIAN,
            description="the rehabilitation plan is done",
        ),
    ],
)

WORKFLOWS = {"up": UP, "exam": EXAM, "down": DOWN}

_ROLES = (
    "\nRoles are the actor's part in the referral: `sender` (up and exam: an applicant "
    "doctor of the sending institution; down: a doctor or expert of the upper institution), "
    "`desk` (a coordinator of the receiving institution), `clinician` (a doctor, expert or "
    "radiologist of the receiving institution), `system` (the deadline job). Any other "
    "(state, action) is a 409; a visible referral and a role not listed is a 403; a referral "
    "the user may not see is a 404.\n"
)


def markdown(kind: str) -> str:
    return WORKFLOWS[kind].to_markdown() + _ROLES


if __name__ == "__main__":  # pragma: no cover
    import sys

    print(markdown(sys.argv[1] if len(sys.argv) > 1 else "up"), end="")

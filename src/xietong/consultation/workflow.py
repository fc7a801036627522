"""The consultation's transition table (docs/workflows/consultation.md is generated from it:
``python -m xietong.consultation.workflow``).

Roles here are the actor's part in one consultation, not account roles:

* ``applicant``: an applicant doctor of the requesting institution;
* ``coordinator``: a coordinator of the receiving centre;
* ``expert``: an expert assigned to the consultation; ``lead``: the one who leads;
* ``system``: the deadline job;
* ``senior``: a senior radiologist (title rank 3 or 4) of the reading centre, on an
  imaging read only (ADR 0017).

An imaging read (``Consultation.kind == "imaging_read"``) runs on the same table: its
experts are radiologists, it is asynchronous, and instead of opinions and ``sign`` the lead
signs a structured report as preliminary, which the lead finalises or a senior radiologist
countersigns; an amendment after final is ``amend_read``. Kind guards keep each kind to its
own report actions.

Anyone else who may see the consultation (other clinical staff of the requesting
institution) holds none of these and gets 403 for any action; who may not see it gets 404.
"""

from __future__ import annotations

from dataclasses import dataclass

from xietong.consultation.models import STATES
from xietong.core.errors import N_
from xietong.core.workflow import Guard, Transition, Workflow

APPLICANT = "applicant"
COORDINATOR = "coordinator"
EXPERT = "expert"
LEAD = "lead"
SYSTEM = "system"
SENIOR = "senior"
CLINICAL = "clinical"
IMAGING_READ = "imaging_read"


@dataclass(frozen=True)
class GuardContext:
    mode: str
    experts: int
    opinions: int
    kind: str = CLINICAL


def _read_only(ctx: GuardContext) -> str | None:
    return None if ctx.kind == IMAGING_READ else N_("Only an imaging read has a read report.")


def _clinical_only(ctx: GuardContext) -> str | None:
    if ctx.kind == CLINICAL:
        return None
    return N_("An imaging read is reported with a structured read report.")


def _live_only(ctx: GuardContext) -> str | None:
    return None if ctx.mode == "live" else N_("Only a live consultation is scheduled.")


def _async_only(ctx: GuardContext) -> str | None:
    if ctx.mode == "async":
        return None
    return N_("A live consultation is scheduled before it starts.")


def _every_opinion(ctx: GuardContext) -> str | None:
    if ctx.kind != CLINICAL:
        return _clinical_only(ctx)
    if ctx.opinions >= ctx.experts:
        return None
    return N_("Every assigned expert writes an opinion before the report is signed.")


def _t(
    source: str,
    action: str,
    target: str,
    *roles: str,
    guard: Guard | None = None,
    description: str = "",
) -> Transition:
    return Transition(source, action, target, frozenset(roles), guard, description)


# The actions of an imaging read's structured report (guarded to that kind).
READ_ACTIONS = frozenset({"sign_preliminary", "finalise", "countersign", "amend_read"})

TRANSITIONS = [
    _t("draft", "submit", "submitted", APPLICANT, description="deadlines start; items granted"),
    _t("draft", "cancel", "cancelled", APPLICANT),
    _t("submitted", "accept", "accepted", COORDINATOR, description="assigns experts and a lead"),
    _t("submitted", "return", "returned", COORDINATOR, description="a note is required"),
    _t("submitted", "reject", "rejected", COORDINATOR, description="a reason is required"),
    _t("submitted", "cancel", "cancelled", APPLICANT),
    _t("submitted", "expire", "expired", SYSTEM, description="accept deadline passed"),
    _t("returned", "resubmit", "resubmitted", APPLICANT, description="deadlines restart"),
    _t("returned", "cancel", "cancelled", APPLICANT),
    _t("resubmitted", "accept", "accepted", COORDINATOR, description="assigns experts and a lead"),
    _t("resubmitted", "return", "returned", COORDINATOR, description="a note is required"),
    _t("resubmitted", "reject", "rejected", COORDINATOR, description="a reason is required"),
    _t("resubmitted", "cancel", "cancelled", APPLICANT),
    _t("resubmitted", "expire", "expired", SYSTEM, description="accept deadline passed"),
    _t(
        "accepted",
        "schedule",
        "scheduled",
        COORDINATOR,
        guard=_live_only,
        description="live mode only",
    ),
    _t(
        "accepted",
        "start",
        "in_progress",
        EXPERT,
        LEAD,
        guard=_async_only,
        description="asynchronous mode only",
    ),
    _t("accepted", "cancel", "cancelled", APPLICANT, description="before it starts"),
    _t("scheduled", "reschedule", "scheduled", COORDINATOR),
    _t("scheduled", "start", "in_progress", EXPERT, LEAD),
    _t("scheduled", "cancel", "cancelled", APPLICANT, description="before it starts"),
    _t(
        "in_progress",
        "sign",
        "report_signed",
        LEAD,
        guard=_every_opinion,
        description="every assigned expert has written an opinion",
    ),
    _t(
        "in_progress",
        "sign_preliminary",
        "preliminary",
        LEAD,
        guard=_read_only,
        description="imaging read: the structured report, signed as preliminary",
    ),
    _t(
        "preliminary",
        "finalise",
        "report_signed",
        LEAD,
        guard=_read_only,
        description="imaging read: the lead makes the preliminary report final",
    ),
    _t(
        "preliminary",
        "countersign",
        "report_signed",
        SENIOR,
        guard=_read_only,
        description="imaging read: a senior radiologist countersigns; the report is final",
    ),
    _t(
        "report_signed",
        "amend",
        "report_signed",
        LEAD,
        guard=_clinical_only,
        description="a new signed version",
    ),
    _t(
        "report_signed",
        "amend_read",
        "report_signed",
        LEAD,
        guard=_read_only,
        description="imaging read: a new final version",
    ),
    _t("report_signed", "complete", "completed", APPLICANT, description="confirms and rates"),
]

WORKFLOW = Workflow("consultation", STATES, "draft", TRANSITIONS)


def markdown() -> str:
    roles = (
        "\nRoles are the actor's part in the consultation: `applicant` (an applicant doctor "
        "of the requesting institution), `coordinator` (of the receiving centre), `expert` "
        "(assigned), `lead` (the assigned expert who leads), `system` (the deadline job), "
        "`senior` (a senior radiologist of the reading centre, imaging reads only). "
        "Actions marked *imaging read* apply to `kind = imaging_read` only (a kind guard, "
        "409 otherwise); `sign` and `amend` to clinical consultations only. "
        "Any other (state, action) is a 409; a visible consultation and a role not listed is "
        "a 403; a consultation the user may not see is a 404.\n"
    )
    return WORKFLOW.to_markdown() + roles


if __name__ == "__main__":  # pragma: no cover
    print(markdown(), end="")

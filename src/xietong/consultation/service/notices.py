"""Who is told about a consultation's transition, in the notification centre.

Every event that needs someone's action notifies them (issue 4 point 6): a new or
resubmitted request → the receiving centre's coordinators; an acceptance → the assigned
experts (and the applicant learns it was accepted); returned for information, rejected,
expired, report signed or amended → the applicant; scheduled or cancelled → everyone
involved. Titles carry the consultation's number, never the patient's name: a notification
list is not a place for personal data. Written in the transition's transaction, deduplicated
per (consultation, transition), so a retried request never notifies twice.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.consultation.models import Consultation, ConsultationAssignment, ConsultationHistory
from xietong.core.errors import N_
from xietong.identity.roles import Role
from xietong.notifications.service import Subject, notify, notify_role

TITLES: dict[str, str] = {
    "submit": N_("New consultation request #{id}"),
    "resubmit": N_("Consultation request #{id} was resubmitted with more information"),
    "accept": N_("Consultation #{id} was accepted"),
    "assigned": N_("You are assigned to consultation #{id}"),
    "assigned_lead": N_("You lead consultation #{id}"),
    "return": N_("Consultation #{id} was returned for more information"),
    "reject": N_("Consultation #{id} was rejected"),
    "expire": N_("Consultation #{id} expired before it was accepted"),
    "schedule": N_("Consultation #{id} is scheduled"),
    "reschedule": N_("Consultation #{id} was rescheduled"),
    "cancel": N_("Consultation #{id} was cancelled"),
    "sign": N_("The report of consultation #{id} is ready"),
    "amend": N_("The report of consultation #{id} was amended"),
    # Imaging reads (ADR 0017): the same events, named as reads.
    "read.submit": N_("New imaging read request #{id}"),
    "read.resubmit": N_("Imaging read request #{id} was resubmitted with more information"),
    "read.accept": N_("Imaging read #{id} was accepted"),
    "read.assigned": N_("You are assigned to imaging read #{id}"),
    "read.assigned_lead": N_("You read imaging read #{id}"),
    "read.return": N_("Imaging read #{id} was returned for more information"),
    "read.reject": N_("Imaging read #{id} was rejected"),
    "read.expire": N_("Imaging read #{id} expired before it was accepted"),
    "read.cancel": N_("Imaging read #{id} was cancelled"),
    "read.sign_preliminary": N_("The preliminary report of imaging read #{id} awaits sign-off"),
    "read.final": N_("The imaging report of read #{id} is final"),
    "read.amend_read": N_("The imaging report of read #{id} was amended"),
}
# A read's final sign-off, by either path, tells the applicant the same thing.
READ_KEYS = {"finalise": "final", "countersign": "final"}


def _experts(session: Session, consultation_id: int) -> list[tuple[int, bool]]:
    rows = session.execute(
        select(ConsultationAssignment.user_id, ConsultationAssignment.is_lead).where(
            ConsultationAssignment.consultation_id == consultation_id
        )
    ).all()
    return [(user_id, is_lead) for user_id, is_lead in rows]


def _step(session: Session, consultation_id: int) -> int:
    """The transition's number, so that each transition dedupes on its own."""
    return len(
        session.execute(
            select(ConsultationHistory.id).where(
                ConsultationHistory.consultation_id == consultation_id
            )
        ).all()
    )


def notify_transition(
    session: Session, c: Consultation, action: str, source: str, actor_user_id: int | None
) -> None:
    """Notify whoever must act after ``action`` moved ``c`` from ``source``."""
    step = _step(session, c.id)
    subject = Subject("consultation", c.id)
    read = c.kind == "imaging_read"
    link = f"/reads/{c.id}" if read else f"/consultations/{c.id}"
    params: dict[str, str | int] = {"id": c.id}

    def title(key: str) -> str:
        return TITLES.get(f"read.{key}", TITLES[key]) if read else TITLES[key]

    def tell(users: list[int], key: str) -> None:
        notify(
            session,
            users,
            kind=f"consultation.{key}",
            subject=subject,
            title=title(key),
            params=params,
            link=link,
            dedupe_key=f"consultation:{c.id}:{step}:{key}",
            actor_user_id=actor_user_id,
        )

    experts = _experts(session, c.id)
    if read and action in ("sign_preliminary", "finalise", "countersign", "amend_read"):
        _notify_read(session, c, action, tell)
        return
    if action in ("submit", "resubmit"):
        notify_role(
            session,
            c.target_institution_id,
            Role.COORDINATOR,
            kind=f"consultation.{action}",
            subject=subject,
            title=title(action),
            params=params,
            link=link,
            dedupe_key=f"consultation:{c.id}:{step}:{action}",
            actor_user_id=actor_user_id,
        )
    elif action == "accept":
        tell([c.applicant_user_id], "accept")
        tell([u for u, lead in experts if not lead], "assigned")
        tell([u for u, lead in experts if lead], "assigned_lead")
    elif action in ("return", "reject", "expire", "sign", "amend"):
        tell([c.applicant_user_id], action)
    elif action in ("schedule", "reschedule"):
        tell([c.applicant_user_id, *(u for u, _lead in experts)], action)
    elif action == "cancel":
        tell([u for u, _lead in experts], "cancel")
        if source == "draft":
            return  # the centre never saw it
        notify_role(
            session,
            c.target_institution_id,
            Role.COORDINATOR,
            kind="consultation.cancel",
            subject=subject,
            title=title("cancel"),
            params=params,
            link=link,
            dedupe_key=f"consultation:{c.id}:{step}:cancel",
            actor_user_id=actor_user_id,
        )


def _notify_read(
    session: Session, c: Consultation, action: str, tell: Callable[[list[int], str], None]
) -> None:
    """A preliminary report → the centre's senior radiologists may countersign it (all
    radiologists of the centre are told; the page shows who may); final or amended → the
    applicant."""
    if action == "sign_preliminary":
        notify_role(
            session,
            c.target_institution_id,
            Role.RADIOLOGIST,
            kind="consultation.read.sign_preliminary",
            subject=Subject("consultation", c.id),
            title=TITLES["read.sign_preliminary"],
            params={"id": c.id},
            link=f"/reads/{c.id}",
            dedupe_key=f"consultation:{c.id}:{_step(session, c.id)}:sign_preliminary",
        )
        return
    tell([c.applicant_user_id], f"read.{READ_KEYS.get(action, action)}")

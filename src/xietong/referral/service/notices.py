"""Who is told about a referral's step, in the notification centre.

A new or resubmitted up or exam referral → the receiving desk (转诊办: the coordinators);
a green-channel one also → every clinician of the receiving department at once, because the
patient is on the way. A down-referral → the lower institution's coordinators, and the
doctor who first referred the patient when it goes back to them. Accepted, returned,
rejected, expired, arrived, no-show, examination reported, decided, treatment completed →
the sender. Cancelled → the receiving desk. Titles carry the referral's number, never the
patient's name; each step dedupes per (referral, step), so a retry never notifies twice.
"""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.core.errors import N_
from xietong.directory.models import Practitioner
from xietong.identity.models import User
from xietong.identity.roles import Role
from xietong.notifications.service import Subject, notify, role_holders
from xietong.referral.models import Referral, ReferralHistory

TITLES: dict[str, str] = {
    "request": N_("New referral #{id}"),
    "request.exam": N_("New exam referral #{id}"),
    "request.down": N_("Patient referred back to you: referral #{id}"),
    "request.green": N_("Green channel: referral #{id}, the patient is on the way"),
    "resubmit": N_("Referral #{id} was resubmitted with more information"),
    "accept": N_("Referral #{id} was accepted"),
    "return": N_("Referral #{id} was returned for more information"),
    "reject": N_("Referral #{id} was rejected"),
    "expire": N_("Referral #{id} expired before it was answered"),
    "cancel": N_("Referral #{id} was cancelled"),
    "check_in": N_("The patient of referral #{id} has arrived"),
    "no_show": N_("The patient of referral #{id} did not come"),
    "report": N_("The examination report of referral #{id} is ready"),
    "decide": N_("The expert decided on exam referral #{id}"),
    "complete": N_("Referral #{id} is completed"),
}
# Steps the sender hears of.
TO_SENDER = frozenset(
    {"accept", "return", "reject", "expire", "check_in", "no_show", "report", "decide", "complete"}
)


def _step(session: Session, referral_id: int) -> int:
    return len(
        session.execute(
            select(ReferralHistory.id).where(ReferralHistory.referral_id == referral_id)
        ).all()
    )


def department_clinicians(session: Session, department_id: int) -> list[int]:
    """The active accounts of the department's practitioners."""
    return list(
        session.scalars(
            select(User.id)
            .join(Practitioner, Practitioner.id == User.practitioner_id)
            .where(Practitioner.department_id == department_id, User.is_active.is_(True))
            .order_by(User.id)
        )
    )


def notify_transition(
    session: Session, r: Referral, action: str, source: str, actor_user_id: int | None
) -> None:
    """Notify whoever must act after ``action`` (``request`` for a new referral)."""
    step = _step(session, r.id)
    subject = Subject("referral", r.id)
    link = f"/referrals/{r.id}"

    def tell(users: list[int], key: str) -> None:
        notify(
            session,
            users,
            kind=f"referral.{key}",
            subject=subject,
            title=TITLES[key],
            params={"id": r.id},
            link=link,
            dedupe_key=f"referral:{r.id}:{step}:{key}",
            actor_user_id=actor_user_id,
        )

    desk = role_holders(session, r.target_institution_id, Role.COORDINATOR)
    if action in ("request", "resubmit", "admit"):
        if action == "admit":
            return  # the deciding expert admitted the patient themselves
        key = action
        if action == "request":
            key = {"exam": "request.exam", "down": "request.down"}.get(r.kind, "request")
            if r.priority == "green":
                key = "request.green"
        recipients = list(desk)
        if r.priority == "green" and r.target_department_id is not None:
            recipients += department_clinicians(session, r.target_department_id)
        if r.kind == "down" and r.parent_id is not None:
            parent = session.get(Referral, r.parent_id)
            if parent is not None and parent.sender_institution_id == r.target_institution_id:
                recipients.append(parent.sender_user_id)
        tell(sorted(set(recipients)), key)
    elif action in TO_SENDER:
        tell([r.sender_user_id], action)
    elif action == "cancel" and source != "":
        tell(desk, "cancel")

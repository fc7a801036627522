"""Grants: how a workflow shares a chart, or chosen items of it, for a purpose, until an
expiry.

A user may share only what they see themselves: an ``items`` grant lists items the granter
can open; a ``chart`` grant by a user opens the records of the granter's own institution
(present and future, until the expiry). Workflows of the platform (consultation, referral,
imaging) call :func:`grant_for_workflow`, which may open the whole chart.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import deny_not_found
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.errors import N_, Forbidden, Invalid, NotFound
from xietong.core.validation import as_utc
from xietong.directory.lookup import find_institution
from xietong.identity.models import User
from xietong.patients.access import ChartAccess, access_patient, resolve_item
from xietong.patients.models import ChartGrant, ChartGrantItem
from xietong.patients.schemas import GrantIn

MAX_GRANT_DAYS = 366


@dataclass(frozen=True)
class GrantItem:
    kind: str
    id: int


def create_grant(session: Session, principal: Principal, data: GrantIn) -> ChartGrant:
    """A user shares part of a chart they can open."""
    _patient, chart = access_patient(
        session, principal, data.patient_id, action="grant.create", purpose=data.purpose
    )
    if data.scope == "chart":
        if principal.institution_id is None or principal.institution_id not in (
            chart.open_institutions
        ):
            raise Forbidden(
                N_("Only staff of an institution that holds the patient's records share them."),
                code="grant_not_allowed",
                field="scope",
            )
        granting_institution: int | None = principal.institution_id
    else:
        granting_institution = principal.institution_id
    items = [GrantItem(i.kind, i.id) for i in data.items]
    _check_items(session, chart, data.scope, items)
    return _insert(
        session,
        principal,
        chart,
        grantee_institution_id=data.grantee_institution_id,
        grantee_user_id=data.grantee_user_id,
        scope=data.scope,
        items=items,
        purpose=data.purpose,
        expires_at=data.expires_at,
        subject=(data.subject_kind, data.subject_id),
        granting_institution_id=granting_institution,
    )


def grant_for_workflow(
    session: Session,
    principal: Principal,
    chart: ChartAccess,
    *,
    grantee_institution_id: int | None = None,
    grantee_user_id: int | None = None,
    items: Sequence[GrantItem] = (),
    whole_chart: bool = False,
    purpose: str,
    expires_at: datetime,
    subject: tuple[str, str],
) -> ChartGrant:
    """A grant made by a workflow the platform runs (the caller has checked the workflow's
    rules and opened ``chart`` for ``principal``). ``whole_chart`` opens every record."""
    scope = "chart" if whole_chart else "items"
    _check_items(session, chart, scope, list(items))
    return _insert(
        session,
        principal,
        chart,
        grantee_institution_id=grantee_institution_id,
        grantee_user_id=grantee_user_id,
        scope=scope,
        items=list(items),
        purpose=purpose,
        expires_at=expires_at,
        subject=subject,
        granting_institution_id=None,
    )


def _check_items(session: Session, chart: ChartAccess, scope: str, items: list[GrantItem]) -> None:
    if scope == "chart":
        if items:
            raise Invalid(
                N_("A grant of the whole chart lists no items."),
                code="grant_items_unexpected",
                field="items",
            )
        return
    if not items:
        raise Invalid(N_("Choose at least one item to share."), code="missing", field="items")
    for index, item in enumerate(items):
        found = resolve_item(session, item.kind, item.id)
        if (
            found is None
            or found[0] not in chart.member_ids
            or not chart.can_see(item.kind, item.id, found[1])
        ):
            raise Invalid(
                N_("This item is not one of the patient's records you can share."),
                code="grant_item_not_found",
                field=f"items[{index}]",
            )


def _insert(
    session: Session,
    principal: Principal,
    chart: ChartAccess,
    *,
    grantee_institution_id: int | None,
    grantee_user_id: int | None,
    scope: str,
    items: list[GrantItem],
    purpose: str,
    expires_at: datetime,
    subject: tuple[str, str],
    granting_institution_id: int | None,
) -> ChartGrant:
    _check_grantee(session, grantee_institution_id, grantee_user_id)
    expires = _check_expiry(expires_at)
    grant = ChartGrant(
        patient_id=chart.patient_id,
        grantee_institution_id=grantee_institution_id,
        grantee_user_id=grantee_user_id,
        scope=scope,
        purpose=purpose,
        subject_kind=subject[0],
        subject_id=subject[1],
        granted_by_user_id=principal.user_id,
        granted_by_institution_id=granting_institution_id,
        expires_at=expires,
    )
    session.add(grant)
    session.flush()
    unique = {(i.kind, i.id) for i in items}
    session.add_all(ChartGrantItem(grant_id=grant.id, item_kind=k, item_id=i) for k, i in unique)
    session.flush()
    audit.record(
        session,
        principal,
        "grant.create",
        object_kind="grant",
        object_id=grant.id,
        purpose=purpose,
        detail={
            "patient_id": chart.patient_id,
            "scope": scope,
            "items": len(unique),
            "grantee_institution_id": grantee_institution_id,
            "grantee_user_id": grantee_user_id,
            "expires_at": expires.isoformat(),
            "subject": f"{subject[0]}:{subject[1]}" if subject[0] else "",
        },
    )
    return grant


def _check_grantee(session: Session, institution_id: int | None, user_id: int | None) -> None:
    if (institution_id is None) == (user_id is None):
        raise Invalid(
            N_("Share with one institution or one user."),
            code="grantee_required",
            field="grantee_institution_id",
        )
    if institution_id is not None and find_institution(session, institution_id) is None:
        raise Invalid(
            N_("No institution has this id."),
            code="institution_not_found",
            field="grantee_institution_id",
        )
    if user_id is not None:
        user = session.get(User, user_id)
        if user is None or not user.is_active:
            raise Invalid(
                N_("No user has this id."), code="user_not_found", field="grantee_user_id"
            )


def _check_expiry(expires_at: datetime) -> datetime:
    expires = as_utc(expires_at)
    current = now()
    if expires <= current:
        raise Invalid(
            N_("The expiry must be in the future."), code="expiry_past", field="expires_at"
        )
    if expires > current + timedelta(days=MAX_GRANT_DAYS):
        raise Invalid(
            N_("A grant lasts at most a year."), code="expiry_too_far", field="expires_at"
        )
    return expires


def grant_items(session: Session, grant_id: int) -> list[GrantItem]:
    rows = session.execute(
        select(ChartGrantItem.item_kind, ChartGrantItem.item_id)
        .where(ChartGrantItem.grant_id == grant_id)
        .order_by(ChartGrantItem.item_kind, ChartGrantItem.item_id)
    ).all()
    return [GrantItem(kind, item_id) for kind, item_id in rows]


def extend_grants(session: Session, grant_ids: list[int], until: datetime) -> int:
    """Make workflow grants last until ``until`` when the workflow's deadline moved (a
    resubmitted request): never shortened, and a revoked grant stays revoked. Returns how
    many were extended."""
    extended = 0
    for grant_id in grant_ids:
        grant = session.get(ChartGrant, grant_id)
        if grant is not None and grant.revoked_at is None and as_utc(grant.expires_at) < until:
            grant.expires_at = until
            extended += 1
    session.flush()
    return extended


def is_active(grant: ChartGrant) -> bool:
    return grant.revoked_at is None and as_utc(grant.expires_at) > now()


def revoke_grant(session: Session, principal: Principal, grant_id: int) -> ChartGrant:
    """The granting user, staff of the granting institution, or a platform admin revoke."""
    grant = session.get(ChartGrant, grant_id)
    allowed = grant is not None and (
        principal.is_platform_admin
        or grant.granted_by_user_id == principal.user_id
        or (
            grant.granted_by_institution_id is not None
            and grant.granted_by_institution_id == principal.institution_id
        )
    )
    if grant is None or not allowed:
        raise deny_not_found(session, principal, "grant.revoke", "grant", grant_id)
    if grant.revoked_at is None:
        grant.revoked_at = now()
        grant.revoked_by_user_id = principal.user_id
        session.flush()
        audit.record(session, principal, "grant.revoke", object_kind="grant", object_id=grant.id)
    return grant


def grants_of_patient(
    session: Session, principal: Principal, patient_id: int, *, reason: str | None = None
) -> list[ChartGrant]:
    """The grants on a patient the principal can open (audited as a read of the patient)."""
    _patient, chart = access_patient(
        session, principal, patient_id, action="grant.list", reason=reason
    )
    return list(
        session.execute(
            select(ChartGrant)
            .where(ChartGrant.patient_id.in_(chart.member_ids))
            .order_by(ChartGrant.created_at.desc(), ChartGrant.id.desc())
        )
        .scalars()
        .all()
    )


def get_grant(
    session: Session, principal: Principal, grant_id: int, *, reason: str | None = None
) -> ChartGrant:
    """A grant on a patient the principal can open; hidden and absent give the same 404."""
    grant = session.get(ChartGrant, grant_id)
    if grant is None:
        raise deny_not_found(session, principal, "grant.read", "grant", grant_id, field="grant_id")
    try:
        access_patient(session, principal, grant.patient_id, action="grant.read", reason=reason)
    except NotFound:
        raise NotFound(code="grant_not_found", field="grant_id") from None
    return grant

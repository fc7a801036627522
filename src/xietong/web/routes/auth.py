"""Tokens and the current user: POST /api/v1/auth/token, GET /api/v1/me, …"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request, Response

from xietong.access import audit
from xietong.access.authentication import login, logout
from xietong.core.clock import now
from xietong.core.errors import N_, Forbidden
from xietong.directory.lookup import find_institution, find_region
from xietong.identity import service as identity
from xietong.identity.passwords import password_expired
from xietong.identity.schemas import (
    InstitutionRef,
    MeOut,
    OtpIn,
    PasswordChangeIn,
    PreferencesIn,
    RegionRef,
    TokenOut,
    TotpEnrolmentOut,
)
from xietong.web.deps import CurrentPrincipal, DbSession, _bearer, client_address, services

router = APIRouter(prefix="/api/v1", tags=["auth"])


@router.post("/auth/token", response_model=TokenOut)
def issue_token(
    request: Request,
    session: DbSession,
    username: Annotated[str, Form(min_length=1, max_length=64)],
    password: Annotated[str, Form(min_length=1, max_length=256)],
    grant_type: Annotated[str | None, Form(pattern="^password$")] = None,
    otp: Annotated[str | None, Form(max_length=6)] = None,
) -> TokenOut:
    """OAuth2 password grant. Accounts with a second factor send ``otp`` too."""
    policy = services(request).settings.security
    result = login(
        session,
        username=username,
        password=password,
        otp=otp,
        kind="bearer",
        policy=policy,
        client_address=client_address(request),
    )
    return TokenOut(
        access_token=result.token,
        expires_in=policy.token_hours * 3600,
        password_expired=result.password_expired,
    )


@router.post("/auth/logout", status_code=204)
def revoke_token(request: Request, session: DbSession, principal: CurrentPrincipal) -> Response:
    token = _bearer(request) or request.cookies.get("xt_session", "")
    logout(session, principal, token)
    return Response(status_code=204)


@router.get("/me", response_model=MeOut)
def me(request: Request, session: DbSession, principal: CurrentPrincipal) -> MeOut:
    user = identity.get_user(session, principal.uid)
    institution = find_institution(session, user.institution_id) if user.institution_id else None
    region = find_region(session, user.jurisdiction_code) if user.jurisdiction_code else None
    policy = services(request).settings.security
    return MeOut(
        id=user.id,
        username=user.username,
        display_name=user.display_name,
        roles=user.role_names,
        institution=InstitutionRef(
            id=institution.id,
            name=institution.name,
            level=institution.level,
            region_code=institution.region_code,
        )
        if institution
        else None,
        jurisdiction=RegionRef(code=region.code, name=region.name, level=region.level)
        if region
        else None,
        practitioner_id=user.practitioner_id,
        locale=user.locale,
        totp_enabled=user.totp_enabled,
        password_expired=user.must_change_password
        or password_expired(
            user.password_changed_at, max_age_days=policy.password_max_age_days, at=now()
        ),
    )


@router.post("/me/password", status_code=204)
def change_my_password(
    request: Request, body: PasswordChangeIn, session: DbSession, principal: CurrentPrincipal
) -> Response:
    user = identity.get_user(session, principal.uid)
    identity.change_password(
        session,
        user,
        body.current_password,
        body.new_password,
        services(request).settings.security,
    )
    audit.record(session, principal, "user.password_change", object_kind="user", object_id=user.id)
    return Response(status_code=204)


@router.patch("/me/preferences", status_code=204)
def set_preferences(
    body: PreferencesIn, session: DbSession, principal: CurrentPrincipal
) -> Response:
    user = identity.get_user(session, principal.uid)
    user.locale = body.locale
    return Response(status_code=204)


@router.post("/me/totp", response_model=TotpEnrolmentOut)
def start_totp(session: DbSession, principal: CurrentPrincipal) -> TotpEnrolmentOut:
    """Begin (or restart) enrolment of an authenticator app; confirm with /me/totp/confirm."""
    user = identity.get_user(session, principal.uid)
    if user.totp_enabled:
        raise Forbidden(N_("A second factor is already active."), code="totp_active", field="otp")
    secret = identity.start_totp_enrolment(user)
    audit.record(session, principal, "user.totp_start", object_kind="user", object_id=user.id)
    return TotpEnrolmentOut(secret=secret, provisioning_uri=identity.provisioning_uri(user))


@router.post("/me/totp/confirm", status_code=204)
def confirm_totp(body: OtpIn, session: DbSession, principal: CurrentPrincipal) -> Response:
    user = identity.get_user(session, principal.uid)
    identity.confirm_totp_enrolment(session, user, body.otp)
    audit.record(session, principal, "user.totp_enable", object_kind="user", object_id=user.id)
    return Response(status_code=204)

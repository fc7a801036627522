"""API shapes of accounts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from xietong.core.clock import now
from xietong.core.validation import Id, StrictModel
from xietong.identity.models import User
from xietong.identity.roles import Role

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{2,63}$"
REGION_CODE_PATTERN = r"^\d{6,12}$"


class Strict(StrictModel):
    """Input models of accounts (see :class:`xietong.core.validation.StrictModel`)."""


class TokenOut(BaseModel):
    access_token: str
    token_type: str = "bearer"  # noqa: S105 - the OAuth2 token type, not a secret
    expires_in: int
    password_expired: bool = False


class InstitutionRef(BaseModel):
    id: int
    name: str
    level: str
    region_code: str


class RegionRef(BaseModel):
    code: str
    name: str
    level: str


class MeOut(BaseModel):
    id: int
    username: str
    display_name: str
    roles: list[str]
    institution: InstitutionRef | None
    jurisdiction: RegionRef | None
    practitioner_id: int | None
    locale: str | None
    totp_enabled: bool
    password_expired: bool


class PasswordChangeIn(Strict):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=1, max_length=256)


class OtpIn(Strict):
    otp: str = Field(min_length=6, max_length=6, pattern=r"^\d{6}$")


class TotpEnrolmentOut(BaseModel):
    secret: str
    provisioning_uri: str


class PreferencesIn(Strict):
    locale: str | None = Field(default=None, pattern=r"^(zh_CN|en)$")


class UserCreateIn(Strict):
    username: str = Field(pattern=USERNAME_PATTERN)
    display_name: str = Field(min_length=1, max_length=64)
    password: str = Field(min_length=1, max_length=256)
    roles: list[Role] = Field(min_length=1, max_length=10)
    institution_id: Id | None = None
    practitioner_id: Id | None = None
    jurisdiction_code: str | None = Field(default=None, pattern=REGION_CODE_PATTERN)


class UserUpdateIn(Strict):
    display_name: str | None = Field(default=None, min_length=1, max_length=64)
    roles: list[Role] | None = Field(default=None, min_length=1, max_length=10)
    is_active: bool | None = None
    # Explicit null clears it; left out keeps it (see ``model_fields_set``).
    jurisdiction_code: str | None = Field(default=None, pattern=REGION_CODE_PATTERN)


class PasswordResetIn(Strict):
    new_password: str = Field(min_length=1, max_length=256)


class UserOut(BaseModel):
    id: int
    username: str
    display_name: str
    roles: list[str]
    institution_id: int | None
    practitioner_id: int | None
    jurisdiction_code: str | None
    is_active: bool
    locked: bool
    totp_enabled: bool
    last_login_at: datetime | None
    created_at: datetime

    @classmethod
    def of(cls, user: User) -> UserOut:
        return cls(
            id=user.id,
            username=user.username,
            display_name=user.display_name,
            roles=user.role_names,
            institution_id=user.institution_id,
            practitioner_id=user.practitioner_id,
            jurisdiction_code=user.jurisdiction_code,
            is_active=user.is_active,
            locked=user.locked_until is not None and user.locked_until > now(),
            totp_enabled=user.totp_enabled,
            last_login_at=user.last_login_at,
            created_at=user.created_at,
        )


class UserListQuery(Strict):
    """Filters of GET /api/v1/users (query parameters)."""

    institution_id: Id | None = None
    role: Role | None = None
    q: str | None = Field(default=None, max_length=64)
    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=1_000_000)


class UserPage(BaseModel):
    items: list[UserOut]
    total: int
    limit: int
    offset: int

"""API shapes of accounts."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict, Field

from xietong.identity.roles import Role

USERNAME_PATTERN = r"^[a-z0-9][a-z0-9_.-]{2,63}$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


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
    institution_id: int | None = Field(default=None, ge=1)
    practitioner_id: int | None = Field(default=None, ge=1)
    jurisdiction_code: str | None = Field(default=None, pattern=r"^\d{6,12}$")


class UserUpdateIn(Strict):
    display_name: str | None = Field(default=None, min_length=1, max_length=64)
    roles: list[Role] | None = Field(default=None, min_length=1, max_length=10)
    is_active: bool | None = None
    jurisdiction_code: str | None = Field(default=None, pattern=r"^\d{6,12}$")


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

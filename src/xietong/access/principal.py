"""Who is acting: the user, their roles, institution and jurisdiction, and from where."""

from __future__ import annotations

from dataclasses import dataclass, field

from xietong.identity.roles import Role


@dataclass(frozen=True)
class Principal:
    user_id: int | None
    username: str
    roles: frozenset[str]
    institution_id: int | None = None
    institution_region_code: str | None = None
    # The region prefix an authority supervises ("41" for Henan, "4101" for Zhengzhou).
    jurisdiction_code: str | None = None
    jurisdiction_prefix: str | None = None
    client_address: str = ""
    display_name: str = ""
    locale: str | None = None
    session_kind: str = ""
    totp_enabled: bool = False
    extra: dict[str, str] = field(default_factory=dict)

    def has(self, *roles: Role | str) -> bool:
        return any(str(r) in self.roles for r in roles)

    @property
    def uid(self) -> int:
        """The user's id; only signed-in principals reach the routes that ask for it."""
        if self.user_id is None:
            from xietong.core.errors import Unauthorized

            raise Unauthorized()
        return self.user_id

    @property
    def is_platform_admin(self) -> bool:
        return Role.PLATFORM_ADMIN in self.roles

    @property
    def role_text(self) -> str:
        return ",".join(sorted(self.roles))


ANONYMOUS = Principal(user_id=None, username="", roles=frozenset())


def system_principal(reason: str = "system") -> Principal:
    """For CLI commands and jobs: recorded as such in the audit log."""
    return Principal(user_id=None, username=f"system:{reason}", roles=frozenset({"system"}))

"""The menu: only what exists, only what the roles may use.

A later capability adds its entries with :func:`register`; the shell itself never changes.
"""

from __future__ import annotations

from dataclasses import dataclass

from xietong.access.principal import Principal
from xietong.core.errors import N_


@dataclass(frozen=True)
class NavItem:
    key: str
    label: str  # an English msgid, translated in the template
    href: str
    roles: frozenset[str] | None = None  # None: every signed-in user
    order: int = 100


_ITEMS: list[NavItem] = []


def register(item: NavItem) -> None:
    if any(existing.key == item.key for existing in _ITEMS):
        return
    _ITEMS.append(item)
    _ITEMS.sort(key=lambda i: (i.order, i.key))


def navigation_for(principal: Principal) -> list[NavItem]:
    return [i for i in _ITEMS if i.roles is None or i.roles & principal.roles]


register(NavItem("home", N_("Home"), "/", order=0))

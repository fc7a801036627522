"""Workflows as explicit transition tables.

A table maps ``(state, action)`` to the next state, the roles allowed to take it and an
optional guard. :func:`Workflow.apply` checks a move against the table; anything not in the
table is a 409, a role not listed is a 403. Domains write their history rows (who, when,
from, to, note, institution, region) from the returned :class:`Move`; ``docs/workflows/`` is
generated from :meth:`Workflow.to_markdown`.
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import update
from sqlalchemy.orm import Session

from xietong.core.errors import Conflict, Forbidden

Guard = Callable[[Any], str | None]  # returns None when allowed, else an error message


@dataclass(frozen=True)
class Transition:
    source: str
    action: str
    target: str
    roles: frozenset[str]
    guard: Guard | None = None
    description: str = ""


@dataclass(frozen=True)
class Move:
    source: str
    action: str
    target: str


@dataclass
class Workflow:
    name: str
    states: tuple[str, ...]
    initial: str
    transitions: list[Transition] = field(default_factory=list)

    def __post_init__(self) -> None:
        seen: set[tuple[str, str]] = set()
        for t in self.transitions:
            if t.source not in self.states or t.target not in self.states:
                raise ValueError(f"{self.name}: unknown state in {t}")
            if (t.source, t.action) in seen:
                raise ValueError(f"{self.name}: duplicate cell {(t.source, t.action)}")
            seen.add((t.source, t.action))

    @property
    def actions(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(t.action for t in self.transitions))

    def find(self, state: str, action: str) -> Transition | None:
        for t in self.transitions:
            if t.source == state and t.action == action:
                return t
        return None

    def apply(self, state: str, action: str, roles: Collection[str], subject: Any = None) -> Move:
        transition = self.find(state, action)
        if transition is None:
            raise Conflict(
                code="transition_not_allowed",
                field="action",
                params={"state": state, "action": action},
            )
        if not transition.roles.intersection(roles):
            raise Forbidden(code="role_not_allowed", field="action")
        if transition.guard is not None:
            problem = transition.guard(subject)
            if problem:
                raise Conflict(problem, code="guard_failed", field="action")
        return Move(state, action, transition.target)

    def to_markdown(self) -> str:
        lines = [
            f"# Workflow: {self.name}",
            "",
            "Generated from the transition table; do not edit by hand.",
            "",
            f"Initial state: `{self.initial}`.",
            "",
            "| from | action | to | roles | rule |",
            "| --- | --- | --- | --- | --- |",
        ]
        for t in self.transitions:
            roles = ", ".join(sorted(t.roles))
            lines.append(f"| {t.source} | {t.action} | {t.target} | {roles} | {t.description} |")
        return "\n".join(lines) + "\n"


def store_move(
    session: Session, row: Any, move: Move, values: dict[str, Any] | None = None
) -> None:
    """Write ``move`` to ``row`` (a mapped object with ``id`` and ``state``) with an UPDATE
    conditional on the state read: when someone else moved it first, nothing is written and
    the answer is 409, so two people acting at once never both succeed."""
    model = type(row)
    session.flush()
    result = session.execute(
        update(model)
        .where(model.id == row.id, model.state == move.source)
        .values(state=move.target, **(values or {}))
        .execution_options(synchronize_session=False)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise Conflict(
            code="transition_not_allowed",
            field="action",
            params={"state": row.state, "action": move.action},
        )
    session.refresh(row)

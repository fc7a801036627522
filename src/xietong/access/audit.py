"""Append to, search and verify the hash-chained audit log.

Rows are written in the caller's transaction, so an audit row exists exactly when the work
it describes does. Denials and failed logins must outlive the rollback of the refused
request: :func:`record_durable` also registers them to be rewritten after a rollback.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, cast

from sqlalchemy import Select, Table, func, select, update
from sqlalchemy.orm import Session

from xietong.access.models import AuditChainHead, AuditEvent
from xietong.access.principal import Principal
from xietong.core.clock import now
from xietong.core.events import on_rollback_durable
from xietong.core.validation import strip_control_characters

GENESIS_HASH = "0" * 64
HASHED_FIELDS = (
    "seq",
    "at",
    "actor_user_id",
    "actor_username",
    "actor_role",
    "actor_institution_id",
    "action",
    "object_kind",
    "object_id",
    "outcome",
    "purpose",
    "client_address",
    "detail",
)


def _canonical(row: AuditEvent) -> str:
    values: dict[str, Any] = {}
    for name in HASHED_FIELDS:
        value = getattr(row, name)
        values[name] = (
            value.isoformat(timespec="microseconds") if isinstance(value, datetime) else value
        )
    return json.dumps(values, sort_keys=True, ensure_ascii=False, separators=(",", ":"))


def chain_hash(prev_hash: str, row: AuditEvent) -> str:
    return hashlib.sha256((prev_hash + _canonical(row)).encode()).hexdigest()


def _lock_head(session: Session) -> AuditChainHead:
    # The UPDATE takes the row lock (and, on SQLite, the write lock) before we read.
    # A Core statement on the table: the ORM's bulk UPDATE path cost more than the SQL.
    head_table = cast(Table, AuditChainHead.__table__)
    session.connection().execute(
        update(head_table).where(head_table.c.id == 1).values(last_seq=head_table.c.last_seq)
    )
    head = session.execute(
        select(AuditChainHead)
        .where(AuditChainHead.id == 1)
        .execution_options(populate_existing=True)
    ).scalar_one_or_none()
    if head is None:  # a database migrated without the seed row
        head = AuditChainHead(id=1, last_seq=0, last_hash=GENESIS_HASH)
        session.add(head)
        session.flush()
    return head


def _text(value: str, size: int) -> str:
    """What the log stores of a caller's text: never a NUL that PostgreSQL would refuse
    (which would turn a hostile username into a lost audit row and a 500)."""
    return strip_control_characters(value)[:size]


def record(
    session: Session,
    principal: Principal,
    action: str,
    *,
    object_kind: str = "",
    object_id: str | int = "",
    outcome: str = "success",
    purpose: str = "",
    detail: dict[str, Any] | None = None,
) -> AuditEvent:
    head = _lock_head(session)
    row = AuditEvent(
        seq=head.last_seq + 1,
        at=now(),
        actor_user_id=principal.user_id,
        actor_username=_text(principal.username, 64),
        actor_role=_text(principal.role_text, 200),
        actor_institution_id=principal.institution_id,
        action=_text(action, 64),
        object_kind=_text(object_kind, 32),
        object_id=_text(str(object_id), 64),
        outcome=outcome,
        purpose=_text(purpose, 200),
        client_address=_text(principal.client_address, 64),
        detail=json.dumps(detail or {}, sort_keys=True, ensure_ascii=False, default=str),
        prev_hash=head.last_hash,
    )
    row.hash = chain_hash(head.last_hash, row)
    head.last_seq = row.seq
    head.last_hash = row.hash
    session.add(row)
    session.flush()
    return row


def record_durable(session: Session, principal: Principal, action: str, **kwargs: Any) -> None:
    """Record now, and again after a rollback if the surrounding transaction fails."""
    record(session, principal, action, **kwargs)
    on_rollback_durable(session, lambda s: _rewrite(s, principal, action, kwargs))


def _rewrite(session: Session, principal: Principal, action: str, kwargs: dict[str, Any]) -> None:
    record(session, principal, action, **kwargs)


def record_denial(
    session: Session,
    principal: Principal,
    action: str,
    object_kind: str,
    object_id: str | int,
    *,
    reason: str,
) -> None:
    record_durable(
        session,
        principal,
        action,
        object_kind=object_kind,
        object_id=object_id,
        outcome="denied",
        detail={"reason": reason},
    )


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    first_bad_seq: int | None = None
    problem: str = ""


def iter_rows(session: Session, batch: int = 5000) -> Iterator[AuditEvent]:
    last = 0
    while True:
        rows = (
            session.execute(
                select(AuditEvent)
                .where(AuditEvent.seq > last)
                .order_by(AuditEvent.seq)
                .limit(batch)
            )
            .scalars()
            .all()
        )
        if not rows:
            return
        yield from rows
        last = rows[-1].seq


def verify_chain(session: Session) -> VerifyResult:
    """Walk the chain from the start: every hash recomputed, no sequence gap, head agrees."""
    prev = GENESIS_HASH
    expected_seq = 1
    checked = 0
    for row in iter_rows(session):
        if row.seq != expected_seq:
            return VerifyResult(False, checked, expected_seq, "a row is missing")
        if row.prev_hash != prev:
            return VerifyResult(False, checked, row.seq, "the link to the previous row is broken")
        if chain_hash(prev, row) != row.hash:
            return VerifyResult(False, checked, row.seq, "the row was changed after it was written")
        prev = row.hash
        expected_seq += 1
        checked += 1
    head = session.get(AuditChainHead, 1)
    if head is not None and (head.last_seq != checked or head.last_hash != prev):
        return VerifyResult(False, checked, checked + 1, "rows at the end were removed")
    return VerifyResult(True, checked)


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None
    outcome: str | None = None
    object_kind: str | None = None
    object_id: str | None = None
    institution_id: int | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = 50
    offset: int = 0


def filtered(q: AuditQuery) -> Select[AuditEvent]:
    """The rows a query selects, unordered and unpaginated."""
    stmt = select(AuditEvent)
    if q.actor:
        stmt = stmt.where(AuditEvent.actor_username == q.actor)
    if q.action:
        stmt = stmt.where(AuditEvent.action.startswith(q.action, autoescape=True))
    if q.outcome:
        stmt = stmt.where(AuditEvent.outcome == q.outcome)
    if q.object_kind:
        stmt = stmt.where(AuditEvent.object_kind == q.object_kind)
    if q.object_id:
        stmt = stmt.where(AuditEvent.object_id == q.object_id)
    if q.institution_id is not None:
        stmt = stmt.where(AuditEvent.actor_institution_id == q.institution_id)
    if q.since:
        stmt = stmt.where(AuditEvent.at >= q.since)
    if q.until:
        stmt = stmt.where(AuditEvent.at < q.until)
    return stmt


def search(session: Session, q: AuditQuery) -> tuple[Sequence[AuditEvent], int]:
    stmt = filtered(q)
    total = session.execute(select(func.count()).select_from(stmt.subquery())).scalar_one()
    rows = (
        session.execute(stmt.order_by(AuditEvent.seq.desc()).limit(q.limit).offset(q.offset))
        .scalars()
        .all()
    )
    return rows, total


def last_seq(session: Session) -> int:
    return session.execute(select(func.coalesce(func.max(AuditEvent.seq), 0))).scalar_one()


def export_batch(
    session: Session, q: AuditQuery, *, after_seq: int, up_to_seq: int, size: int = 1000
) -> Sequence[AuditEvent]:
    """The next rows of an export, oldest first, by keyset on ``seq`` (stable while the log
    grows: rows appended after the export began, ``seq > up_to_seq``, are left out)."""
    stmt = (
        filtered(q)
        .where(AuditEvent.seq > after_seq, AuditEvent.seq <= up_to_seq)
        .order_by(AuditEvent.seq)
        .limit(size)
    )
    return session.execute(stmt).scalars().all()

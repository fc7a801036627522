"""Reading and exporting the audit log: for the audit admin and the platform admin only,
and every reading is itself audited (who looked at what, with which filters)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.models import AuditEvent
from xietong.access.policies import require_audit_reader
from xietong.access.principal import Principal
from xietong.core.validation import Id, StrictModel

OUTCOMES = ("success", "denied", "failed")
# The export carries every hashed field plus the links, so a copy can be re-verified.
CSV_COLUMNS = (*audit.HASHED_FIELDS, "prev_hash", "hash")


class AuditQueryIn(StrictModel):
    """Filters of the audit search (query parameters of the API and of the page)."""

    actor: str | None = Field(default=None, max_length=64)
    action: str | None = Field(default=None, max_length=64)
    outcome: str | None = Field(default=None, pattern="^(success|denied|failed)$")
    object_kind: str | None = Field(default=None, max_length=32)
    object_id: str | None = Field(default=None, max_length=64)
    institution_id: Id | None = None
    since: datetime | None = None
    until: datetime | None = None
    limit: int = Field(default=50, ge=1, le=100)
    offset: int = Field(default=0, ge=0, le=10_000_000)

    def to_query(self) -> audit.AuditQuery:
        return audit.AuditQuery(**self.model_dump())

    def filters(self) -> dict[str, Any]:
        """The filters that were set, as the audit row of the reading records them."""
        return {
            k: v
            for k, v in self.model_dump(mode="json", exclude={"limit", "offset"}).items()
            if v not in (None, "")
        }


class AuditEventOut(BaseModel):
    seq: int
    at: datetime
    actor_user_id: int | None
    actor_username: str
    actor_role: str
    actor_institution_id: int | None
    action: str
    object_kind: str
    object_id: str
    outcome: str
    purpose: str
    client_address: str
    detail: dict[str, Any]

    @classmethod
    def of(cls, row: AuditEvent) -> AuditEventOut:
        return cls(
            seq=row.seq,
            at=row.at,
            actor_user_id=row.actor_user_id,
            actor_username=row.actor_username,
            actor_role=row.actor_role,
            actor_institution_id=row.actor_institution_id,
            action=row.action,
            object_kind=row.object_kind,
            object_id=row.object_id,
            outcome=row.outcome,
            purpose=row.purpose,
            client_address=row.client_address,
            detail=parse_detail(row.detail),
        )


class AuditPage(BaseModel):
    items: list[AuditEventOut]
    total: int
    limit: int
    offset: int


def parse_detail(text: str) -> dict[str, Any]:
    try:
        value = json.loads(text)
    except ValueError:
        return {"raw": text}
    return value if isinstance(value, dict) else {"value": value}


def read_audit(
    session: Session, principal: Principal, query: AuditQueryIn
) -> tuple[Sequence[AuditEvent], int]:
    require_audit_reader(session, principal, action="audit.read")
    rows, total = audit.search(session, query.to_query())
    audit.record(
        session,
        principal,
        "audit.read",
        object_kind="audit",
        detail={"filters": query.filters(), "offset": query.offset, "returned": len(rows)},
    )
    return rows, total


def start_export(session: Session, principal: Principal, query: AuditQueryIn) -> int:
    """Check and record an export; returns the last ``seq`` it covers. The rows are read
    afterwards, batch by batch (:func:`export_csv`), once this has been committed."""
    require_audit_reader(session, principal, action="audit.export")
    up_to = audit.last_seq(session)
    audit.record(
        session,
        principal,
        "audit.export",
        object_kind="audit",
        detail={"filters": query.filters(), "up_to_seq": up_to, "format": "csv"},
    )
    return up_to


def _cell(value: object) -> str:
    text = (
        "" if value is None else (value.isoformat() if isinstance(value, datetime) else str(value))
    )
    # No formula injection when the file is opened in a spreadsheet.
    if text[:1] in ("=", "+", "-", "@", "\t", "\r"):
        return "'" + text
    return text


def _csv_line(values: Sequence[object]) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\r\n").writerow([_cell(v) for v in values])
    return buffer.getvalue()


def export_csv(
    open_session: Callable[[], AbstractContextManager[Session]],
    query: AuditQueryIn,
    up_to_seq: int,
    batch: int = 1000,
) -> Iterator[str]:
    """The CSV text (with a BOM, so spreadsheets read the UTF-8), oldest row first; each
    batch in its own short read, so an export never holds a transaction open."""
    yield "\ufeff" + _csv_line(CSV_COLUMNS)
    after = 0
    q = query.to_query()
    while True:
        with open_session() as session:
            rows = audit.export_batch(session, q, after_seq=after, up_to_seq=up_to_seq, size=batch)
            lines = [_csv_line([getattr(r, c) for c in CSV_COLUMNS]) for r in rows]
        if not rows:
            return
        yield "".join(lines)
        after = rows[-1].seq

"""Audit log API: search and CSV export (audit admin and platform admin; both audited)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated

from fastapi import APIRouter, Query, Request
from fastapi.responses import StreamingResponse
from sqlalchemy.orm import Session

from xietong.access import audit_reading
from xietong.access.audit_reading import AuditEventOut, AuditPage, AuditQueryIn
from xietong.core.clock import now
from xietong.web.deps import AdminPrincipal, DbSession, services

router = APIRouter(prefix="/api/v1/audit", tags=["audit"])


@router.get("", response_model=AuditPage)
def search_audit(
    session: DbSession, principal: AdminPrincipal, query: Annotated[AuditQueryIn, Query()]
) -> AuditPage:
    """Filters: actor (username), action (prefix), outcome, object_kind, object_id,
    institution_id (the actor's), since/until (UTC when no zone is given)."""
    rows, total = audit_reading.read_audit(session, principal, query)
    return AuditPage(
        items=[AuditEventOut.of(r) for r in rows],
        total=total,
        limit=query.limit,
        offset=query.offset,
    )


@router.get("/export", response_class=StreamingResponse)
def export_audit(
    request: Request,
    session: DbSession,
    principal: AdminPrincipal,
    query: Annotated[AuditQueryIn, Query()],
) -> StreamingResponse:
    """CSV of every row matching the filters (limit and offset ignored), oldest first."""
    up_to = audit_reading.start_export(session, principal, query)
    factory = services(request).session_factory

    @contextmanager
    def read_session() -> Iterator[Session]:
        with factory() as s:
            yield s

    filename = f"audit-{now().strftime('%Y%m%dT%H%M%SZ')}.csv"
    return StreamingResponse(
        audit_reading.export_csv(read_session, query, up_to),
        media_type="text/csv; charset=utf-8",
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            "Cache-Control": "no-store",
        },
    )

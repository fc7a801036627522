"""The audit log search page (audit admin and platform admin); each search is audited."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from xietong.access import accounts, audit_reading
from xietong.access.audit_reading import OUTCOMES, AuditQueryIn
from xietong.core.errors import N_, XietongError
from xietong.identity.roles import Role
from xietong.web.deps import AdminPagePrincipal, DbSession
from xietong.web.navigation import NavItem, register
from xietong.web.pages.forms import form_error, parse
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)

register(
    NavItem(
        "admin.audit",
        N_("Audit log"),
        "/admin/audit",
        roles=frozenset({Role.AUDIT_ADMIN.value, Role.PLATFORM_ADMIN.value}),
        order=810,
    )
)

FILTERS = tuple(AuditQueryIn.model_fields)
OUTCOME_LABELS = {"success": N_("Success"), "denied": N_("Denied"), "failed": N_("Failed")}


@router.get("/admin/audit", response_class=HTMLResponse)
def audit_page(request: Request, session: DbSession, principal: AdminPagePrincipal) -> Response:
    raw = {k: request.query_params.get(k, "") for k in FILTERS}
    context: dict[str, Any] = {
        "filters": raw,
        "outcomes": OUTCOMES,
        "outcome_labels": OUTCOME_LABELS,
    }
    status = 200
    try:
        query = parse(AuditQueryIn, raw)
        rows, total = audit_reading.read_audit(session, principal, query)
    except XietongError as exc:
        context |= form_error(request, session, exc)  # 403 stays the error page
        status = exc.status
        rows, total, query = [], 0, AuditQueryIn()
    kept = {k: v for k, v in raw.items() if v and k not in ("offset", "limit")}
    step = query.limit
    context |= {
        "rows": [audit_reading.AuditEventOut.of(r) for r in rows],
        "total": total,
        "institution_names": accounts.institution_names(
            session, {r.actor_institution_id for r in rows if r.actor_institution_id is not None}
        ),
        "prev_url": _url(kept, query.offset - step) if query.offset > 0 else None,
        "next_url": _url(kept, query.offset + step) if query.offset + step < total else None,
        "export_url": "/api/v1/audit/export?" + urlencode(kept),
    }
    template = (
        "admin/audit_table.html"
        if request.headers.get("hx-request") == "true"
        else "admin/audit.html"
    )
    return render(request, template, context, status_code=status)


def _url(kept: dict[str, str], offset: int) -> str:
    return "/admin/audit?" + urlencode({**kept, "offset": max(offset, 0)})

"""Directory pages: the region tree, institutions, practitioners and the expert library.

Read pages for every signed-in user; the admin forms live in ``directory_forms``.
"""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.core.errors import N_, Invalid
from xietong.directory import regions as region_tree
from xietong.directory import service as svc
from xietong.directory.models import Institution, Practitioner, Region
from xietong.web.deps import DbSession, resolve_principal
from xietong.web.directory_admin import may_administer
from xietong.web.navigation import NavItem, register
from xietong.web.pages.directory_common import code_labels, to_login
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)

register(NavItem("regions", N_("Regions"), "/regions", order=20))
register(NavItem("institutions", N_("Institutions"), "/institutions", order=21))
register(NavItem("experts", N_("Expert library"), "/experts", order=22))

PAGE_SIZE = 20
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
Text = Annotated[str, Query(max_length=64)]
RegionCode = Annotated[str, Query(max_length=12)]


def _signed_in(request: Request, session: Session) -> Principal | None:
    principal = resolve_principal(request, session)
    return principal if principal.user_id is not None else None


def _page_links(base: str, params: dict[str, Any], offset: int, total: int) -> dict[str, Any]:
    keep = {k: v for k, v in params.items() if v not in (None, "")}

    def link(at: int) -> str:
        return f"{base}?{urlencode({**keep, 'offset': at})}"

    return {
        "total": total,
        "offset": offset,
        "shown_from": offset + 1 if total else 0,
        "shown_to": min(offset + PAGE_SIZE, total),
        "prev": link(max(offset - PAGE_SIZE, 0)) if offset > 0 else None,
        "next": link(offset + PAGE_SIZE) if offset + PAGE_SIZE < total else None,
    }


def _optional_id(raw: str, field: str) -> int | None:
    """Filter forms send empty fields: "" means no filter."""
    if not raw.strip():
        return None
    if not raw.strip().isdigit():
        raise Invalid(N_("A whole number is expected."), code="int_parsing", field=field)
    return int(raw)


def _region_choices(session: Session) -> list[Region]:
    """The province and its prefecture-level divisions, for filter menus."""
    return list(
        session.execute(select(Region).where(Region.depth <= 1).order_by(Region.code)).scalars()
    )


# Regions ----------------------------------------------------------------------------------


def _nodes(session: Session, rows: list[Region]) -> list[dict[str, Any]]:
    counts = region_tree.child_counts(session, [r.code for r in rows])
    return [{"region": r, "child_count": counts.get(r.code, 0)} for r in rows]


@router.get("/regions", response_class=HTMLResponse)
def regions_page(request: Request, session: DbSession, code: RegionCode = "") -> Response:
    if _signed_in(request, session) is None:
        return to_login(request)
    roots = list(
        session.execute(
            select(Region).where(Region.parent_code.is_(None)).order_by(Region.code)
        ).scalars()
    )
    selected = region_tree.get_region(session, code, field="code") if code else None
    path = region_tree.path_of(session, selected) if selected else []
    # The tree is open along the path to the selected region; the rest loads on demand.
    opened = {r.code: _nodes(session, list(region_tree.children(session, r.code))) for r in path}
    context: dict[str, Any] = {
        "roots": _nodes(session, roots),
        "opened": opened,
        "selected": selected,
        "path": path,
    }
    if selected is not None:
        rows, total = svc.search_institutions(
            session, svc.InstitutionQuery(region_code=selected.code)
        )
        context.update(institutions=rows, institution_total=total)
    return render(request, "directory/regions.html", {**context, **code_labels(request)})


@router.get("/regions/{code}/children", response_class=HTMLResponse)
def region_children_fragment(request: Request, session: DbSession, code: str) -> Response:
    if _signed_in(request, session) is None:
        return to_login(request)
    rows = list(region_tree.children(session, code))
    return render(
        request,
        "directory/_region_children.html",
        {"nodes": _nodes(session, rows), "opened": {}, "selected": None},
    )


# Institutions -----------------------------------------------------------------------------


@router.get("/institutions", response_class=HTMLResponse)
def institutions_page(
    request: Request,
    session: DbSession,
    q: Text = "",
    level: Annotated[str, Query(max_length=16)] = "",
    region: RegionCode = "",
    offset: Offset = 0,
) -> Response:
    principal = _signed_in(request, session)
    if principal is None:
        return to_login(request)
    query = svc.InstitutionQuery(
        q=q or None,
        level=level or None,
        region_code=region or None,
        paging=svc.Paging(limit=PAGE_SIZE, offset=offset),
    )
    rows, total = svc.search_institutions(session, query)
    params = {"q": q, "level": level, "region": region}
    choices = _region_choices(session)
    if region and all(r.code != region for r in choices):
        choices.append(region_tree.get_region(session, region, field="region"))
    context = {
        "institutions": rows,
        "filters": params,
        "region_choices": choices,
        "pager": _page_links("/institutions", params, offset, total),
        "can_create": principal.is_platform_admin,
    }
    return render(request, "directory/institutions.html", {**context, **code_labels(request)})


@router.get("/institutions/{institution_id}", response_class=HTMLResponse)
def institution_page(
    request: Request, session: DbSession, institution_id: int, offset: Offset = 0
) -> Response:
    principal = _signed_in(request, session)
    if principal is None:
        return to_login(request)
    institution = svc.get_institution(session, institution_id)
    region = region_tree.get_region(session, institution.region_code)
    served, served_total = svc.served_institutions(session, institution, svc.Paging(limit=50))
    experts, expert_total = svc.search_experts(
        session, svc.ExpertQuery(institution_id=institution.id, paging=svc.Paging(limit=12))
    )
    staff, staff_total = svc.list_practitioners(
        session,
        svc.PractitionerQuery(
            institution_id=institution.id, paging=svc.Paging(limit=PAGE_SIZE, offset=offset)
        ),
    )
    context = {
        "institution": institution,
        "region_path": region_tree.path_of(session, region),
        "departments": svc.list_departments(
            session, institution.id, include_inactive=may_administer(principal, institution)
        ),
        "centres": svc.upward_centres(session, institution),
        "served": served,
        "served_total": served_total,
        "experts": experts,
        "expert_total": expert_total,
        "staff": staff,
        "staff_pager": _page_links(f"/institutions/{institution.id}", {}, offset, staff_total),
        "can_admin": may_administer(principal, institution),
    }
    return render(request, "directory/institution.html", {**context, **code_labels(request)})


@router.get("/practitioners/{practitioner_id}", response_class=HTMLResponse)
def practitioner_page(request: Request, session: DbSession, practitioner_id: int) -> Response:
    principal = _signed_in(request, session)
    if principal is None:
        return to_login(request)
    practitioner = svc.get_practitioner(session, practitioner_id)
    context = {
        "p": practitioner,
        "can_admin": may_administer(principal, practitioner.institution),
    }
    return render(request, "directory/practitioner.html", {**context, **code_labels(request)})


# The expert library -----------------------------------------------------------------------


def _expert_institutions(session: Session) -> list[Institution]:
    """Institutions that have experts, for the filter menu (higher levels first)."""
    ids = select(Practitioner.institution_id).where(
        Practitioner.is_expert.is_(True), Practitioner.is_active.is_(True)
    )
    rows = session.execute(
        select(Institution)
        .where(Institution.id.in_(ids), Institution.is_active.is_(True))
        .order_by(Institution.region_code, Institution.id)
        .limit(300)
    ).scalars()
    order = {"provincial": 0, "city": 1, "county": 2, "township": 3, "village": 4}
    return sorted(rows, key=lambda i: (order.get(i.level, 9), i.region_code, i.id))


@router.get("/experts", response_class=HTMLResponse)
def experts_page(
    request: Request,
    session: DbSession,
    q: Text = "",
    specialty: Annotated[str, Query(max_length=32)] = "",
    institution_id: Annotated[str, Query(max_length=12)] = "",
    region: RegionCode = "",
    offset: Offset = 0,
) -> Response:
    if _signed_in(request, session) is None:
        return to_login(request)
    institution = _optional_id(institution_id, "institution_id")
    query = svc.ExpertQuery(
        specialty=specialty or None,
        institution_id=institution,
        region_code=region or None,
        q=q or None,
        paging=svc.Paging(limit=PAGE_SIZE, offset=offset),
    )
    experts, total = svc.search_experts(session, query)
    params = {"q": q, "specialty": specialty, "institution_id": institution, "region": region}
    context = {
        "experts": experts,
        "filters": params,
        "pager": _page_links("/experts", params, offset, total),
    }
    if request.headers.get("hx-target") == "expert-results":
        return render(
            request, "directory/_expert_results.html", {**context, **code_labels(request)}
        )
    context.update(
        region_choices=_region_choices(session),
        institution_choices=_expert_institutions(session),
    )
    return render(request, "directory/experts.html", {**context, **code_labels(request)})

"""The directory's JSON API under /api/v1: regions, institutions, service centres,
departments, practitioners, the expert library and the code sets.

Reads need a signed-in user; changes go through :mod:`xietong.web.directory_admin`.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Query, Request, Response

from xietong.core.i18n import negotiate
from xietong.directory import regions as region_tree
from xietong.directory import service as svc
from xietong.directory.levels import GRADES, LEVELS
from xietong.directory.schemas import (
    AvailabilityIn,
    AvailabilityOut,
    CodeOut,
    DepartmentCreateIn,
    DepartmentOut,
    DepartmentUpdateIn,
    ExpertPage,
    ExpertProfileIn,
    ExpertProfileOut,
    InstitutionCreateIn,
    InstitutionDetailOut,
    InstitutionOut,
    InstitutionPage,
    InstitutionRef,
    InstitutionRefPage,
    InstitutionUpdateIn,
    PractitionerCreateIn,
    PractitionerDetailOut,
    PractitionerPage,
    PractitionerUpdateIn,
    RegionChildrenOut,
    RegionNode,
    RegionOut,
    RegionRef,
    ServiceLinkIn,
    ServiceLinkOut,
)
from xietong.directory.serialize import (
    expert_out,
    practitioner_detail_out,
    practitioner_out,
    windows_of,
)
from xietong.directory.specialties import SPECIALTIES
from xietong.directory.titles import TITLES
from xietong.web import directory_admin as admin
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal, services

# Every route, reads included, needs a signed-in user.
router = APIRouter(prefix="/api/v1", tags=["directory"], dependencies=[Depends(current_principal)])

Limit = Annotated[int, Query(ge=1, le=svc.MAX_LIMIT)]
Offset = Annotated[int, Query(ge=0, le=1_000_000)]
RegionParam = Annotated[str | None, Query(max_length=12)]
TextParam = Annotated[str | None, Query(max_length=64)]


# Regions ----------------------------------------------------------------------------------


@router.get("/regions", response_model=list[RegionRef])
def find_regions(
    session: DbSession,
    q: Annotated[str, Query(min_length=1, max_length=64)],
    level: Annotated[str | None, Query(max_length=16)] = None,
    limit: Limit = 20,
) -> list[RegionRef]:
    rows = region_tree.search_regions(session, q, level=level, limit=limit)
    return [RegionRef.model_validate(r) for r in rows]


@router.get("/regions/{code}", response_model=RegionOut)
def get_region(session: DbSession, code: str) -> RegionOut:
    region = region_tree.get_region(session, code, field="code")
    counts = region_tree.child_counts(session, [region.code])
    return RegionOut(
        code=region.code,
        name=region.name,
        level=region.level,
        parent_code=region.parent_code,
        ancestors=[RegionRef.model_validate(a) for a in region_tree.ancestors(session, region)],
        child_count=counts.get(region.code, 0),
    )


@router.get("/regions/{code}/children", response_model=RegionChildrenOut)
def region_children(session: DbSession, code: str) -> RegionChildrenOut:
    region = region_tree.get_region(session, code, field="code")
    rows = region_tree.children(session, region.code)
    grandchildren = region_tree.child_counts(session, [r.code for r in rows])
    return RegionChildrenOut(
        code=region.code,
        name=region.name,
        level=region.level,
        children=[
            RegionNode(
                code=r.code, name=r.name, level=r.level, child_count=grandchildren.get(r.code, 0)
            )
            for r in rows
        ],
        child_count=len(rows),
    )


# Institutions and service centres ---------------------------------------------------------


@router.get("/institutions", response_model=InstitutionPage)
def list_institutions(
    session: DbSession,
    q: TextParam = None,
    level: Annotated[str | None, Query(max_length=16)] = None,
    region: RegionParam = None,
    include_inactive: bool = False,
    limit: Limit = 20,
    offset: Offset = 0,
) -> InstitutionPage:
    paging = svc.Paging(limit=limit, offset=offset)
    rows, total = svc.search_institutions(
        session,
        svc.InstitutionQuery(
            q=q, level=level, region_code=region, include_inactive=include_inactive, paging=paging
        ),
    )
    return InstitutionPage(
        items=[InstitutionOut.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


@router.post("/institutions", response_model=InstitutionOut, status_code=201)
def create_institution(
    body: InstitutionCreateIn, session: DbSession, principal: CurrentPrincipal
) -> InstitutionOut:
    return InstitutionOut.model_validate(admin.create_institution(session, principal, body))


@router.get("/institutions/{institution_id}", response_model=InstitutionDetailOut)
def get_institution(session: DbSession, institution_id: int) -> InstitutionDetailOut:
    institution = svc.get_institution(session, institution_id)
    region = region_tree.get_region(session, institution.region_code)
    _, served = svc.served_institutions(session, institution, svc.Paging(limit=1))
    return InstitutionDetailOut(
        **InstitutionOut.model_validate(institution).model_dump(),
        region_path=[RegionRef.model_validate(r) for r in region_tree.path_of(session, region)],
        service_centres=[
            InstitutionRef.model_validate(c) for c in svc.upward_centres(session, institution)
        ],
        served_count=served,
        **svc.institution_counts(session, institution.id),
    )


@router.patch("/institutions/{institution_id}", response_model=InstitutionOut)
def update_institution(
    institution_id: int, body: InstitutionUpdateIn, session: DbSession, principal: CurrentPrincipal
) -> InstitutionOut:
    institution = admin.update_institution(session, principal, institution_id, body)
    return InstitutionOut.model_validate(institution)


@router.get("/institutions/{institution_id}/service-centres", response_model=list[InstitutionRef])
def list_service_centres(session: DbSession, institution_id: int) -> list[InstitutionRef]:
    institution = svc.get_institution(session, institution_id)
    return [InstitutionRef.model_validate(c) for c in svc.upward_centres(session, institution)]


@router.post(
    "/institutions/{institution_id}/service-centres",
    response_model=ServiceLinkOut,
    status_code=201,
)
def add_service_centre(
    institution_id: int, body: ServiceLinkIn, session: DbSession, principal: CurrentPrincipal
) -> ServiceLinkOut:
    link = admin.add_service_centre(session, principal, institution_id, body.centre_id)
    return ServiceLinkOut.model_validate(link)


@router.delete("/institutions/{institution_id}/service-centres", status_code=204)
def remove_service_centre(
    institution_id: int,
    session: DbSession,
    principal: CurrentPrincipal,
    centre_id: Annotated[int, Query(ge=1)],
) -> Response:
    admin.remove_service_centre(session, principal, institution_id, centre_id)
    return Response(status_code=204)


@router.delete("/institutions/{institution_id}/service-centres/{centre_id}", status_code=204)
def remove_service_centre_by_path(
    institution_id: int, centre_id: int, session: DbSession, principal: CurrentPrincipal
) -> Response:
    admin.remove_service_centre(session, principal, institution_id, centre_id)
    return Response(status_code=204)


@router.get("/institutions/{institution_id}/served", response_model=InstitutionRefPage)
def list_served(
    session: DbSession,
    institution_id: int,
    limit: Limit = 20,
    offset: Offset = 0,
) -> InstitutionRefPage:
    institution = svc.get_institution(session, institution_id)
    rows, total = svc.served_institutions(
        session, institution, svc.Paging(limit=limit, offset=offset)
    )
    return InstitutionRefPage(
        items=[InstitutionRef.model_validate(r) for r in rows],
        total=total,
        limit=limit,
        offset=offset,
    )


# Departments ------------------------------------------------------------------------------


@router.get("/institutions/{institution_id}/departments", response_model=list[DepartmentOut])
def list_departments(
    session: DbSession,
    institution_id: int,
    include_inactive: bool = False,
) -> list[DepartmentOut]:
    institution = svc.get_institution(session, institution_id)
    rows = svc.list_departments(session, institution.id, include_inactive=include_inactive)
    return [DepartmentOut.model_validate(d) for d in rows]


@router.post(
    "/institutions/{institution_id}/departments", response_model=DepartmentOut, status_code=201
)
def create_department(
    institution_id: int, body: DepartmentCreateIn, session: DbSession, principal: CurrentPrincipal
) -> DepartmentOut:
    department = admin.create_department(session, principal, institution_id, body)
    return DepartmentOut.model_validate(department)


@router.patch("/departments/{department_id}", response_model=DepartmentOut)
def update_department(
    department_id: int, body: DepartmentUpdateIn, session: DbSession, principal: CurrentPrincipal
) -> DepartmentOut:
    department = admin.update_department(session, principal, department_id, body)
    return DepartmentOut.model_validate(department)


# Practitioners and the expert library -----------------------------------------------------


@router.get("/institutions/{institution_id}/practitioners", response_model=PractitionerPage)
def list_practitioners(
    session: DbSession,
    institution_id: int,
    q: TextParam = None,
    department_id: Annotated[int | None, Query(ge=1)] = None,
    limit: Limit = 20,
    offset: Offset = 0,
) -> PractitionerPage:
    institution = svc.get_institution(session, institution_id)
    rows, total = svc.list_practitioners(
        session,
        svc.PractitionerQuery(
            institution_id=institution.id,
            q=q,
            department_id=department_id,
            paging=svc.Paging(limit=limit, offset=offset),
        ),
    )
    return PractitionerPage(
        items=[practitioner_out(p) for p in rows], total=total, limit=limit, offset=offset
    )


@router.post(
    "/institutions/{institution_id}/practitioners",
    response_model=PractitionerDetailOut,
    status_code=201,
)
def create_practitioner(
    institution_id: int,
    body: PractitionerCreateIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> PractitionerDetailOut:
    practitioner = admin.create_practitioner(session, principal, institution_id, body)
    return practitioner_detail_out(practitioner)


@router.get("/practitioners/{practitioner_id}", response_model=PractitionerDetailOut)
def get_practitioner(session: DbSession, practitioner_id: int) -> PractitionerDetailOut:
    return practitioner_detail_out(svc.get_practitioner(session, practitioner_id))


@router.patch("/practitioners/{practitioner_id}", response_model=PractitionerDetailOut)
def update_practitioner(
    practitioner_id: int,
    body: PractitionerUpdateIn,
    session: DbSession,
    principal: CurrentPrincipal,
) -> PractitionerDetailOut:
    practitioner = admin.update_practitioner(session, principal, practitioner_id, body)
    return practitioner_detail_out(practitioner)


@router.put("/practitioners/{practitioner_id}/expert-profile", response_model=ExpertProfileOut)
def put_expert_profile(
    practitioner_id: int, body: ExpertProfileIn, session: DbSession, principal: CurrentPrincipal
) -> ExpertProfileOut:
    profile = admin.set_expert_profile(session, principal, practitioner_id, body)
    return ExpertProfileOut.model_validate(profile)


@router.put("/practitioners/{practitioner_id}/availability", response_model=AvailabilityOut)
def put_availability(
    practitioner_id: int, body: AvailabilityIn, session: DbSession, principal: CurrentPrincipal
) -> AvailabilityOut:
    practitioner = admin.set_availability(session, principal, practitioner_id, body.windows)
    return AvailabilityOut(windows=windows_of(practitioner))


@router.get("/experts", response_model=ExpertPage)
def search_experts(
    session: DbSession,
    specialty: Annotated[str | None, Query(max_length=32)] = None,
    institution_id: Annotated[int | None, Query(ge=1)] = None,
    region: RegionParam = None,
    q: TextParam = None,
    accepting: bool = False,
    limit: Limit = 20,
    offset: Offset = 0,
) -> ExpertPage:
    rows, total = svc.search_experts(
        session,
        svc.ExpertQuery(
            specialty=specialty or None,
            institution_id=institution_id,
            region_code=region or None,
            q=q or None,
            accepting_only=accepting,
            paging=svc.Paging(limit=limit, offset=offset),
        ),
    )
    return ExpertPage(items=[expert_out(p) for p in rows], total=total, limit=limit, offset=offset)


# Code sets --------------------------------------------------------------------------------


def _locale(request: Request) -> str:
    chosen: str | None = getattr(request.state, "locale", None)
    default = services(request).settings.i18n.default_locale
    return chosen or negotiate(request.headers.get("accept-language"), default)


@router.get("/specialties", response_model=list[CodeOut])
def list_specialties(
    request: Request,
) -> list[CodeOut]:
    locale = _locale(request)
    return [
        CodeOut(code=s.code, name=s.label(locale), name_zh=s.name_zh, name_en=s.name_en)
        for s in SPECIALTIES
    ]


@router.get("/titles", response_model=list[CodeOut])
def list_titles(
    request: Request,
) -> list[CodeOut]:
    locale = _locale(request)
    return [
        CodeOut(code=t.code, name=t.label(locale), name_zh=t.name_zh, name_en=t.name_en)
        for t in TITLES
    ]


@router.get("/institution-levels", response_model=list[CodeOut])
def list_levels(
    request: Request,
) -> list[CodeOut]:
    locale = _locale(request)
    return [
        CodeOut(code=lv.code, name=lv.label(locale), name_zh=lv.name_zh, name_en=lv.name_en)
        for lv in LEVELS
    ]


@router.get("/institution-grades", response_model=list[CodeOut])
def list_grades(
    request: Request,
) -> list[CodeOut]:
    locale = _locale(request)
    return [
        CodeOut(code=g.code, name=g.label(locale), name_zh=g.name_zh, name_en=g.name_en)
        for g in GRADES
    ]

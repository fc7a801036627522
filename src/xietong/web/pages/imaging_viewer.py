"""The image viewer: the page of a study, its manifest, the decoded pixels of one frame, a
series thumbnail and an instance's attributes (ADR 0016). The imaging viewer service
checks and audits access on every request; these routes parse and answer.

Pixels and thumbnails are named by content (the blob's SHA-256 is their ETag) and never
change, so the browser keeps them (``private``: never a shared cache); the page and the
manifest carry personal data and are not stored.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from sqlalchemy.orm import Session

from xietong.access.principal import Principal
from xietong.core.errors import N_
from xietong.imaging import service as imaging
from xietong.imaging import viewer
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.pages.patients_common import CLINICAL_ROLES, private, render_private

router = APIRouter(include_in_schema=False)
Id = Annotated[int, Path(ge=1, le=2_147_483_647)]
Frame = Annotated[int, Query(ge=1, le=100_000)]
IMMUTABLE = "private, max-age=86400, immutable"
# Window presets (center/width in Hounsfield units) of the CT reading rooms.
PRESETS = (
    ("lung", N_("Lung"), -600, 1500),
    ("mediastinum", N_("Mediastinum"), 40, 400),
    ("bone", N_("Bone"), 400, 1800),
    ("brain", N_("Brain"), 40, 80),
    ("abdomen", N_("Abdomen"), 40, 350),
)


def chart_studies(session: Session, principal: Principal, patient_id: int) -> list[viewer.StudyRow]:
    """The chart's imaging section: the patient's studies the user may read."""
    if not principal.roles & CLINICAL_ROLES:
        return []
    return viewer.patient_studies(session, principal, patient_id)


def _cached(request: Request, etag: str, body: bytes, media_type: str, **headers: str) -> Response:
    quoted = f'"{etag}"'
    common = {"ETag": quoted, "Cache-Control": IMMUTABLE, **headers}
    if quoted in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=common)
    return Response(body, media_type=media_type, headers=common)


@router.get("/imaging/studies/{study_id}/view", response_class=HTMLResponse)
def view_page(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    study_id: Id,
    read: Annotated[int | None, Query(ge=1, le=2_147_483_647)] = None,
) -> Response:
    study = imaging.open_study_id(session, principal, study_id, "imaging.viewer.view").study
    others = (
        viewer.patient_studies(session, principal, study.patient_id)
        if study.patient_id is not None
        else []
    )
    context = {
        "study": study,
        "others": others,
        "presets": PRESETS,
        # Opened from an imaging read: a way back to it (the read page checks its access).
        "read_id": read,
        "manifest_url": f"/imaging/studies/{study.id}/manifest.json",
    }
    return render_private(request, "imaging/viewer.html", context)


@router.get("/imaging/studies/{study_id}/manifest.json")
def manifest(
    request: Request, session: DbSession, principal: PagePrincipal, study_id: Id
) -> Response:
    body = viewer.manifest(session, principal, services(request).blobs, study_id)
    return private(JSONResponse(body))


@router.get("/imaging/instances/{instance_id}/pixels")
def pixels(
    request: Request,
    session: DbSession,
    principal: PagePrincipal,
    instance_id: Id,
    frame: Frame = 1,
) -> Response:
    found = viewer.pixels(session, principal, services(request).blobs, instance_id, frame)
    return _cached(
        request,
        found.etag,
        found.data,
        "application/octet-stream",
        **{
            "X-Sample-Type": found.sample_type,
            "X-Rows": str(found.rows),
            "X-Columns": str(found.columns),
        },
    )


@router.get("/imaging/series/{series_id}/thumbnail.png")
def thumbnail(
    request: Request, session: DbSession, principal: PagePrincipal, series_id: Id
) -> Response:
    data, etag = viewer.thumbnail(session, principal, services(request).blobs, series_id)
    return _cached(request, etag, data, "image/png")


@router.get("/imaging/instances/{instance_id}/tags.json")
def tags(
    request: Request, session: DbSession, principal: PagePrincipal, instance_id: Id
) -> Response:
    rows = viewer.tags(session, principal, services(request).blobs, instance_id)
    return private(JSONResponse({"instance": instance_id, "tags": rows}))

"""The upload page: /imaging/upload sends DICOM files, a folder of them or a zip in
resumable chunks (static/imaging_upload.js over /api/v1/imaging/uploads) and shows what
was stored, refused or skipped, with links to the studies. Who may upload is STOW-RS's
rule (:func:`xietong.imaging.uploads.require_uploader`)."""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse

from xietong.core.errors import N_
from xietong.imaging import service as imaging
from xietong.imaging import uploads
from xietong.web.deps import DbSession, PagePrincipal, services
from xietong.web.navigation import NavItem, register
from xietong.web.routes.imaging_uploads import PREFIX
from xietong.web.templating import render

router = APIRouter(include_in_schema=False)
# 1 MiB chunks: on a slow line a lost chunk costs little, on a fast one the request
# overhead stays small.
CHUNK_BYTES = 1024 * 1024

register(
    NavItem(
        "imaging_upload",
        N_("Upload images"),
        "/imaging/upload",
        roles=frozenset(imaging.STORE_ROLES),
        order=12,
    )
)


@router.get("/imaging/upload", response_class=HTMLResponse)
def upload_page(request: Request, session: DbSession, principal: PagePrincipal) -> HTMLResponse:
    uploads.require_uploader(session, principal, "imaging.upload.page")
    settings = services(request).settings.imaging
    return render(
        request,
        "imaging/upload.html",
        {
            "api": PREFIX,
            "chunk_bytes": min(CHUNK_BYTES, settings.upload_chunk_max_bytes),
            "max_bytes": settings.upload_max_bytes,
            "expiry_hours": settings.upload_expiry_hours,
        },
    )

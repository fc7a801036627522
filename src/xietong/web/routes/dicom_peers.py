"""The directory's DICOM nodes, JSON API under /api/v1 (admins of the institution and the
platform admin; see :mod:`xietong.web.dicom_peer_admin`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, Response

from xietong.directory.peer_schemas import DicomPeerCreateIn, DicomPeerOut, DicomPeerUpdateIn
from xietong.web import dicom_peer_admin as admin
from xietong.web.deps import CurrentPrincipal, DbSession, current_principal

router = APIRouter(prefix="/api/v1", tags=["directory"], dependencies=[Depends(current_principal)])


@router.get("/institutions/{institution_id}/dicom-peers", response_model=list[DicomPeerOut])
def list_peers(
    institution_id: int,
    session: DbSession,
    principal: CurrentPrincipal,
    include_inactive: bool = False,
) -> list[DicomPeerOut]:
    _, peers = admin.list_peers(
        session, principal, institution_id, include_inactive=include_inactive
    )
    return [DicomPeerOut.model_validate(p) for p in peers]


@router.post(
    "/institutions/{institution_id}/dicom-peers", response_model=DicomPeerOut, status_code=201
)
def create_peer(
    institution_id: int, body: DicomPeerCreateIn, session: DbSession, principal: CurrentPrincipal
) -> DicomPeerOut:
    return DicomPeerOut.model_validate(admin.create_peer(session, principal, institution_id, body))


@router.get("/dicom-peers/{peer_id}", response_model=DicomPeerOut)
def get_peer(peer_id: int, session: DbSession, principal: CurrentPrincipal) -> DicomPeerOut:
    peer = admin.peer_for_admin(session, principal, peer_id, action="dicom_peer.read")
    return DicomPeerOut.model_validate(peer)


@router.patch("/dicom-peers/{peer_id}", response_model=DicomPeerOut)
def update_peer(
    peer_id: int, body: DicomPeerUpdateIn, session: DbSession, principal: CurrentPrincipal
) -> DicomPeerOut:
    return DicomPeerOut.model_validate(admin.update_peer(session, principal, peer_id, body))


@router.delete("/dicom-peers/{peer_id}", status_code=204)
def deactivate_peer(peer_id: int, session: DbSession, principal: CurrentPrincipal) -> Response:
    """Deactivates (the row stays: audit rows and stored instances name it)."""
    admin.deactivate_peer(session, principal, peer_id)
    return Response(status_code=204)

"""DICOM node changes as the edge performs them: authorise, change, audit — one call each.

Who: the platform admin, and the admin of the node's own institution (anyone else: 403
without an admin role, 404 for another institution's node, each audited). The JSON API and
the admin page both call these.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from xietong.access import audit
from xietong.access.policies import (
    access_institution_for_admin,
    can_administer_institution,
    deny_not_found,
    require_roles,
)
from xietong.access.principal import Principal
from xietong.directory import service as svc
from xietong.directory.models import Institution
from xietong.directory.peer_models import DicomPeer
from xietong.directory.peer_schemas import DicomPeerCreateIn, DicomPeerUpdateIn
from xietong.identity.roles import Role

KIND = "dicom_peer"
ADMINS = {Role.PLATFORM_ADMIN, Role.INSTITUTION_ADMIN}


def list_peers(
    session: Session, principal: Principal, institution_id: int, *, include_inactive: bool
) -> tuple[Institution, Sequence[DicomPeer]]:
    institution = access_institution_for_admin(
        session, principal, institution_id, action="dicom_peer.list"
    )
    return institution, svc.list_peers(session, institution.id, include_inactive=include_inactive)


def create_peer(
    session: Session, principal: Principal, institution_id: int, data: DicomPeerCreateIn
) -> DicomPeer:
    action = "dicom_peer.create"
    institution = access_institution_for_admin(session, principal, institution_id, action=action)
    peer = svc.create_peer(session, institution, data)
    audit.record(
        session,
        principal,
        action,
        object_kind=KIND,
        object_id=peer.id,
        detail={"institution_id": institution.id, **data.model_dump()},
    )
    return peer


def peer_for_admin(
    session: Session, principal: Principal, peer_id: int, *, action: str
) -> DicomPeer:
    """The node, if the principal administers its institution (else 403 / audited 404)."""
    require_roles(session, principal, ADMINS, action=action, object_kind=KIND, object_id=peer_id)
    peer = session.get(DicomPeer, peer_id)
    institution = session.get(Institution, peer.institution_id) if peer is not None else None
    if (
        peer is None
        or institution is None
        or not can_administer_institution(principal, institution)
    ):
        raise deny_not_found(session, principal, action, KIND, peer_id)
    return peer


def update_peer(
    session: Session, principal: Principal, peer_id: int, data: DicomPeerUpdateIn
) -> DicomPeer:
    action = "dicom_peer.update"
    peer = peer_for_admin(session, principal, peer_id, action=action)
    changes = svc.update_peer(session, peer, data)
    audit.record(session, principal, action, object_kind=KIND, object_id=peer.id, detail=changes)
    return peer


def deactivate_peer(session: Session, principal: Principal, peer_id: int) -> DicomPeer:
    return update_peer(session, principal, peer_id, DicomPeerUpdateIn(is_active=False))

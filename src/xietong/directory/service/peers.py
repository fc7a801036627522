"""Known DICOM nodes of the institutions: register, change, deactivate, list.

An AE title names one node on the whole platform (the DICOM service recognises a caller by
its title, then checks that it calls from the registered host). Titles are stored without
their non-significant leading and trailing spaces. Deactivating keeps the row (the audit
trail and the instances it sent name it); the DICOM service then refuses the title.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from xietong.core.clock import now
from xietong.core.errors import N_, Conflict, Invalid, NotFound
from xietong.directory.models import Institution
from xietong.directory.peer_models import DicomPeer
from xietong.directory.peer_schemas import AE_TITLE_PATTERN, DicomPeerCreateIn, DicomPeerUpdateIn
from xietong.directory.service.common import apply_changes, flush_unique, sent_fields

_HOSTNAME_LABEL = re.compile(r"^(?!-)[A-Za-z0-9-]{1,63}(?<!-)$")
NOT_NULL = ("ae_title", "host", "port", "description", "is_active", "may_query", "may_retrieve")


def normalise_ae_title(value: str, field: str = "ae_title") -> str:
    """The title without its non-significant spaces; refused outside the AE repertoire."""
    title = value.strip(" ")
    if not 1 <= len(title) <= 16 or not re.fullmatch(AE_TITLE_PATTERN, title):
        raise Invalid(
            N_("An AE title has 1 to 16 printable ASCII characters, no backslash."),
            code="invalid_ae_title",
            field=field,
        )
    return title


def validate_host(value: str, field: str = "host") -> str:
    """An IPv4/IPv6 address or a DNS host name (RFC 1123 labels)."""
    host = value.strip()
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        pass
    labels = host.rstrip(".").split(".")
    if len(host) > 253 or not all(_HOSTNAME_LABEL.match(label) for label in labels):
        raise Invalid(N_("Give an IP address or a host name."), code="invalid_host", field=field)
    return host.lower()


def _ensure_title_free(session: Session, title: str, own_id: int | None = None) -> None:
    taken = session.execute(select(DicomPeer.id).where(DicomPeer.ae_title == title)).scalar()
    if taken is not None and taken != own_id:
        raise Conflict(
            N_("This AE title is already registered."), code="ae_title_taken", field="ae_title"
        )


def create_peer(session: Session, institution: Institution, data: DicomPeerCreateIn) -> DicomPeer:
    title = normalise_ae_title(data.ae_title)
    _ensure_title_free(session, title)
    peer = DicomPeer(
        institution_id=institution.id,
        ae_title=title,
        host=validate_host(data.host),
        port=data.port,
        description=data.description,
        may_query=data.may_query,
        may_retrieve=data.may_retrieve,
    )
    session.add(peer)
    flush_unique(session, "ae_title", code="ae_title_taken")
    return peer


def update_peer(session: Session, peer: DicomPeer, data: DicomPeerUpdateIn) -> dict[str, list[Any]]:
    """Apply a PATCH; returns the changes."""
    values = sent_fields(data, required=NOT_NULL)
    if "ae_title" in values:
        values["ae_title"] = normalise_ae_title(values["ae_title"])
        _ensure_title_free(session, values["ae_title"], own_id=peer.id)
    if "host" in values:
        values["host"] = validate_host(values["host"])
    changes = apply_changes(peer, values)
    if changes:
        peer.updated_at = now()
    flush_unique(session, "ae_title", code="ae_title_taken")
    return changes


def get_peer(session: Session, peer_id: int) -> DicomPeer:
    peer = session.get(DicomPeer, peer_id)
    if peer is None:
        raise NotFound(N_("No DICOM node has this id."), code="peer_not_found", field="peer_id")
    return peer


def list_peers(
    session: Session, institution_id: int, *, include_inactive: bool = False
) -> Sequence[DicomPeer]:
    stmt = select(DicomPeer).where(DicomPeer.institution_id == institution_id)
    if not include_inactive:
        stmt = stmt.where(DicomPeer.is_active.is_(True))
    return session.execute(stmt.order_by(DicomPeer.ae_title)).scalars().all()


def active_peers(session: Session) -> list[tuple[DicomPeer, Institution]]:
    """Every active node of an active institution, with its institution (the DICOM
    service's registry)."""
    rows = session.execute(
        select(DicomPeer, Institution)
        .join(Institution, Institution.id == DicomPeer.institution_id)
        .where(DicomPeer.is_active.is_(True), Institution.is_active.is_(True))
    ).all()
    return [(peer, institution) for peer, institution in rows]


def register_peer(
    session: Session, institution: Institution, data: DicomPeerCreateIn
) -> tuple[DicomPeer, bool]:
    """Idempotent registration (demo data, seeding): the peer with this title, created
    when missing. Refused when the title belongs to another institution."""
    title = normalise_ae_title(data.ae_title)
    existing = session.execute(
        select(DicomPeer).where(DicomPeer.ae_title == title)
    ).scalar_one_or_none()
    if existing is None:
        return create_peer(session, institution, data), True
    if existing.institution_id != institution.id:
        raise Conflict(
            N_("This AE title is already registered."), code="ae_title_taken", field="ae_title"
        )
    return existing, False

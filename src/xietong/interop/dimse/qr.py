"""Query/Retrieve SCP (PS3.4 Annex C): C-FIND, C-MOVE and C-GET of the Patient Root and
Study Root information models, on the imaging archive's index.

Every request is answered for the calling peer's institution only: the matches and the
instances sent are those of studies it may read (its own, and those shared with it by a
live grant), through :mod:`xietong.imaging.dimse_query`. Answers are in ISO_IR 192
(UTF-8); queries are read in the character set they declare (ISO_IR 192, GB18030, ...).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from pydicom import Dataset, dcmread
from pydicom.dataelem import DataElement
from pydicom.multival import MultiValue
from pydicom.uid import (
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
)
from pynetdicom.events import Event
from pynetdicom.presentation import PresentationContext, build_context
from sqlalchemy.orm import Session, sessionmaker

from xietong.core.db import session_scope
from xietong.core.errors import XietongError
from xietong.core.storage import BlobStore
from xietong.imaging import dimse_query
from xietong.imaging.models import ImagingInstance
from xietong.imaging.service import node_principal
from xietong.interop.dimse.peers import KnownPeer, PeerRegistry

LOG = logging.getLogger(__name__)

PENDING = 0xFF00
CANCELLED = 0xFE00
SUCCESS = 0x0000
NOT_AUTHORIZED = 0x0124
OUT_OF_RESOURCES = 0xA700
UNABLE_TO_PROCESS = 0xC000
MAX_VALUE_LENGTH = 1024
UNCOMPRESSED = (ExplicitVRLittleEndian, ImplicitVRLittleEndian, ExplicitVRBigEndian)
# pynetdicom (and PS3.8) allow 128 presentation contexts in one association.
MAX_CONTEXTS = 128
_NOT_MATCHED = {"QueryRetrieveLevel", "SpecificCharacterSet"}


class Refused(Exception):
    """A retrieval refused before any sub-operation (pynetdicom answers a failure)."""


@dataclass(frozen=True)
class Request:
    peer: KnownPeer
    level: str
    match: dict[str, str]
    identifier: Dataset


def _text(value: object) -> str:
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(str(v) for v in value)
    return "" if value is None else str(value)


def match_keys(identifier: Dataset) -> dict[str, str]:
    """Keyword → value of the matching keys (non-empty, not ``*``); return keys dropped."""
    match: dict[str, str] = {}
    for elem in identifier:
        if elem.tag.is_private or elem.VR == "SQ" or elem.keyword in _NOT_MATCHED:
            continue
        text = _text(elem.value).strip(" \x00")
        if len(text) > MAX_VALUE_LENGTH:
            raise ValueError(f"{elem.keyword}: value too long")
        if text and text != "*" and elem.keyword:
            match[elem.keyword] = text
    return match


def _value(elem: DataElement, value: object) -> Any:
    if value is None or value == "" or value == []:
        return None
    if elem.VR == "US":
        return int(str(value))
    if isinstance(value, list | tuple):
        return [str(v) for v in value]
    return str(value)


def response(identifier: Dataset, values: dict[str, object], level: str, ae_title: str) -> Dataset:
    """The identifier of one match: every requested key, filled when we hold it."""
    ds = Dataset()
    ds.SpecificCharacterSet = "ISO_IR 192"
    ds.QueryRetrieveLevel = level
    ds.RetrieveAETitle = ae_title
    for elem in identifier:
        if elem.tag.is_private or elem.keyword in _NOT_MATCHED or elem.keyword == "RetrieveAETitle":
            continue
        if elem.VR == "SQ":
            ds.add_new(elem.tag, "SQ", [])
            continue
        ds.add_new(elem.tag, elem.VR, _value(elem, values.get(elem.keyword)))
    return ds


class QueryRetrieve:
    """The C-FIND, C-MOVE and C-GET handlers of the SCP."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        blobs: BlobStore,
        registry: PeerRegistry,
        *,
        ae_title: str,
        max_results: int,
        peer_of: Callable[[Event], KnownPeer | None],
    ) -> None:
        self.session_factory = session_factory
        self.blobs = blobs
        self.registry = registry
        self.ae_title = ae_title
        self.max_results = max_results
        self.peer_of = peer_of

    def _request(self, event: Event, permission: str) -> Request:
        peer = self.peer_of(event)
        if peer is None or not getattr(peer, permission):
            raise Refused("Calling AE may not query or retrieve")
        identifier: Dataset = event.identifier
        identifier.decode()  # its Specific Character Set (ISO_IR 192, GB18030, ...)
        level = str(identifier.get("QueryRetrieveLevel", "")).strip().upper()
        return Request(peer, level, match_keys(identifier), identifier)

    def _principal(self, event: Event, peer: KnownPeer) -> Any:
        address = str(event.assoc.requestor.address)
        return node_principal(peer.ae_title, peer.institution_id, address)

    # C-FIND ----------------------------------------------------------------------------

    def on_find(self, event: Event) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        try:
            request = self._request(event, "may_query")
        except Refused:
            yield _failure(NOT_AUTHORIZED, "Calling AE may not query")
            return
        except Exception:
            yield _failure(UNABLE_TO_PROCESS, "Identifier cannot be read")
            return
        try:
            with session_scope(self.session_factory) as session:
                found = dimse_query.find(
                    session,
                    self._principal(event, request.peer),
                    request.level,
                    request.match,
                    self.max_results,
                )
        except XietongError as exc:
            yield _failure(UNABLE_TO_PROCESS, f"{exc.code}: {exc.field or ''}")
            return
        for values in found.rows:
            if event.is_cancelled:
                yield CANCELLED, None
                return
            yield PENDING, response(request.identifier, values, request.level, self.ae_title)
        if found.truncated:
            # PS3.4 has no warning for a truncated C-FIND: a failure after the matches sent.
            yield _failure(OUT_OF_RESOURCES, f"More than {self.max_results} matches")

    # C-MOVE and C-GET ------------------------------------------------------------------

    def _instances(
        self, event: Event, request: Request, action: str, destination: str = ""
    ) -> list[ImagingInstance]:
        with session_scope(self.session_factory) as session:
            return dimse_query.retrieve(
                session,
                self._principal(event, request.peer),
                request.level,
                request.match,
                action=action,
                destination=destination,
            )

    def on_move(self, event: Event) -> Iterator[Any]:
        request = self._request(event, "may_retrieve")  # raises: pynetdicom answers 0xC514
        target = self.registry.titled(str(event.move_destination))
        # Only to a node of the caller's own institution: never out of the institution.
        if target is None or target.institution_id != request.peer.institution_id:
            LOG.warning("DIMSE: C-MOVE to unknown destination %s", event.move_destination)
            yield None, None  # pynetdicom: 0xA801, move destination unknown
            return
        instances = self._instances(event, request, "imaging.dimse.move", target.ae_title)
        yield target.host, target.port, {"contexts": _contexts(instances)}
        yield len(instances)
        yield from self._send(event, instances)

    def on_get(self, event: Event) -> Iterator[Any]:
        request = self._request(event, "may_retrieve")  # raises: pynetdicom answers 0xC413
        instances = self._instances(event, request, "imaging.dimse.get")
        yield len(instances)
        yield from self._send(event, instances)

    def _send(
        self, event: Event, instances: list[ImagingInstance]
    ) -> Iterator[tuple[int | Dataset, Dataset | None]]:
        for instance in instances:
            if event.is_cancelled:
                yield CANCELLED, None
                return
            yield PENDING, self._dataset(instance)

    def _dataset(self, instance: ImagingInstance) -> Dataset:
        try:
            with self.blobs.open(instance.blob_key) as handle:
                return dcmread(BytesIO(handle.read()))
        except Exception:
            LOG.exception("DIMSE: stored instance %s cannot be read", instance.sop_instance_uid)
            # Sent as it is, this fails its sub-operation (no file meta) and is listed as failed.
            ds = Dataset()
            ds.SOPClassUID = instance.sop_class_uid
            ds.SOPInstanceUID = instance.sop_instance_uid
            return ds


def _failure(code: int, comment: str) -> tuple[Dataset, None]:
    """A final status with an Error Comment (pynetdicom takes a status dataset)."""
    status = Dataset()
    status.Status = code
    status.ErrorComment = comment[:64]
    return status, None


def _contexts(instances: list[ImagingInstance]) -> list[PresentationContext]:
    """One context per (SOP class, stored transfer syntax); uncompressed files may go in any
    uncompressed syntax, compressed ones only as stored (we never transcode)."""
    wanted: dict[tuple[str, str], list[str]] = {}
    for instance in instances:
        syntax = instance.transfer_syntax_uid
        if syntax in UNCOMPRESSED:
            wanted[(instance.sop_class_uid, "uncompressed")] = list(UNCOMPRESSED)
        else:
            wanted[(instance.sop_class_uid, syntax)] = [syntax]
    return [
        build_context(sop_class, syntaxes)
        for (sop_class, _), syntaxes in list(wanted.items())[:MAX_CONTEXTS]
    ]

"""The DICOM SCP (C-ECHO, C-STORE, C-FIND, C-MOVE, C-GET), on pynetdicom with our own limits.

Each received instance is written back with its file meta and handed to the imaging ingest
service (:func:`xietong.imaging.service.ingest`) in its own transaction; success (0x0000)
is answered only after the commit. Calling AEs are the directory's active DICOM peers
(:mod:`xietong.interop.dimse.peers`): an unknown AE title gets A-ASSOCIATE-RJ (calling
AE title not recognised), a known title from another address is aborted once associated;
stored instances belong to the peer's institution. Query/retrieve: :mod:`.qr`.

pynetdicom reads a PDU of any announced length (up to 4 GiB, its issue #1086): our socket
closes the connection on a PDU longer than ``XIETONG_DIMSE_MAX_PDU_BYTES`` instead.
"""

from __future__ import annotations

import copy
import logging
import socket
import struct
from io import BytesIO
from typing import Any, cast

from pydicom import Dataset
from pydicom.uid import (
    JPEG2000,
    DeflatedExplicitVRLittleEndian,
    ExplicitVRBigEndian,
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEGLossless,
    JPEGLosslessSV1,
    RLELossless,
)
from pynetdicom import (
    AE,
    PYNETDICOM_IMPLEMENTATION_UID,
    PYNETDICOM_IMPLEMENTATION_VERSION,
    evt,
)
from pynetdicom.dimse_primitives import C_STORE
from pynetdicom.events import Event
from pynetdicom.presentation import AllStoragePresentationContexts, PresentationContext
from pynetdicom.sop_class import (  # type: ignore[attr-defined]
    PatientRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelGet,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelMove,
    Verification,
)
from pynetdicom.transport import (
    AssociationSocket,
    RequestHandler,
    ThreadedAssociationServer,
)
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, sessionmaker

from xietong.config import DimseSettings, Settings
from xietong.core.db import session_scope
from xietong.core.errors import Conflict, Invalid, PayloadTooLarge, XietongError
from xietong.core.pii import PiiProtector
from xietong.core.storage import BlobStore
from xietong.imaging import service as imaging
from xietong.imaging.dicom import is_valid_uid
from xietong.interop.dimse.peers import KnownPeer, PeerRegistry
from xietong.interop.dimse.qr import QueryRetrieve

LOG = logging.getLogger(__name__)

# Accepted as they are: stored byte for byte, never decoded. pynetdicom picks, within one
# proposed context, the first of ours that is proposed: uncompressed first, so that an SCU
# combining syntaxes in one context (dcmtk storescu +C) is never asked to compress (lossy
# JPEG or JPEG 2000 would change the pixels). Compressed files go on contexts proposing
# their own syntax (dcmtk's default: a context per transfer syntax, with -xw, -xr, ...).
TRANSFER_SYNTAXES = [
    ExplicitVRLittleEndian,
    ImplicitVRLittleEndian,
    ExplicitVRBigEndian,
    DeflatedExplicitVRLittleEndian,
    RLELossless,
    JPEGLosslessSV1,
    JPEGLossless,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGExtended12Bit,
    JPEG2000,
]

SUCCESS = 0x0000
NOT_AUTHORIZED = 0x0124  # PS3.7 C.5.x general status: refused, not authorized
OUT_OF_RESOURCES = 0xA700
DOES_NOT_MATCH = 0xA900
CANNOT_UNDERSTAND = 0xC000
# Our own extra slack over the PDU length for the PDU header read by pynetdicom.
_PDU_HEADER = 6


QUERY_RETRIEVE = (
    PatientRootQueryRetrieveInformationModelFind,
    StudyRootQueryRetrieveInformationModelFind,
    PatientRootQueryRetrieveInformationModelMove,
    StudyRootQueryRetrieveInformationModelMove,
    PatientRootQueryRetrieveInformationModelGet,
    StudyRootQueryRetrieveInformationModelGet,
)
# A title no peer can have (over 16 characters): with no peer registered, nobody calls.
_NOBODY = "XIETONG-NO-PEERS"


class _AE(AE):
    """pynetdicom's AE with the required calling AE titles read from the peer registry at
    each association request (peers change in the directory while the SCP runs)."""

    registry: PeerRegistry | None = None

    @property
    def require_calling_aet(self) -> list[str]:
        if self.registry is None or self.registry.allow_unknown:
            return []
        return sorted(self.registry.peers()) or [_NOBODY]

    @require_calling_aet.setter
    def require_calling_aet(self, ae_titles: list[str]) -> None:
        raise AttributeError("the peer registry sets the calling AE titles")


class _LimitedSocket(AssociationSocket):
    """Refuses to read a PDU longer than the limit (pynetdicom would read up to 4 GiB)."""

    limit: int = 65_536

    def recv(self, nr_bytes: int) -> bytearray:
        if nr_bytes > self.limit + _PDU_HEADER:
            LOG.warning("DIMSE: PDU of %d bytes over the limit; closing", nr_bytes)
            raise OSError(f"PDU of {nr_bytes} bytes exceeds the limit")
        return super().recv(nr_bytes)


class _Server(ThreadedAssociationServer):
    """TCP_NODELAY on accepted sockets (small DIMSE messages go out at once)."""

    def get_request(self) -> tuple[socket.socket, tuple[str, int]]:
        client, address = super().get_request()
        client.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return client, address


def _handler_class(limit: int) -> type[RequestHandler]:
    class _Handler(RequestHandler):
        def _create_association(self) -> Any:
            assoc = super()._create_association()
            sock = assoc.dul.socket
            if isinstance(sock, AssociationSocket):
                sock.__class__ = _LimitedSocket  # the same socket, with the PDU limit
                cast(_LimitedSocket, sock).limit = limit
            return assoc

    return _Handler


class Contexts(list[PresentationContext]):
    """The server's supported contexts. pynetdicom deep-copies them for every association
    (26 ms for our storage and query classes, each with eleven transfer syntaxes: most of
    a C-FIND's time). A context holds immutable values and its own list of transfer
    syntaxes, so a copy of each context with a copy of that list is the same deep copy."""

    def __deepcopy__(self, memo: dict[int, Any]) -> list[PresentationContext]:
        copies = []
        for context in self:
            twin = copy.copy(context)
            twin._transfer_syntax = list(context._transfer_syntax)
            copies.append(twin)
        return copies


def _meta_element(element: int, vr: bytes, value: bytes) -> bytes:
    if vr == b"OB":
        return struct.pack("<HH2s2xI", 0x0002, element, vr, len(value)) + value
    return struct.pack("<HH2sH", 0x0002, element, vr, len(value)) + value


def _even(value: str, pad: bytes) -> bytes:
    raw = value.encode("ascii")
    return raw + pad if len(raw) % 2 else raw


def part10(event: Event) -> bytes:
    """``event.encoded_dataset(include_meta=True)`` byte for byte (so a resend still hashes
    the same), without building a pydicom file meta dataset for every instance: that took
    a fifth of the SCP's time on a CT slice. UIDs off the DICOM grammar take pynetdicom's
    own path."""
    request = cast(C_STORE, event.request)
    sop_class = str(request.AffectedSOPClassUID or "")
    sop_instance = str(request.AffectedSOPInstanceUID or "")
    syntax = str(event.context.transfer_syntax or "")
    if not all(is_valid_uid(uid) for uid in (sop_class, sop_instance, syntax)):
        return event.encoded_dataset(include_meta=True)
    elements = b"".join(
        (
            _meta_element(0x0001, b"OB", b"\x00\x01"),
            _meta_element(0x0002, b"UI", _even(sop_class, b"\x00")),
            _meta_element(0x0003, b"UI", _even(sop_instance, b"\x00")),
            _meta_element(0x0010, b"UI", _even(syntax, b"\x00")),
            _meta_element(0x0012, b"UI", _even(PYNETDICOM_IMPLEMENTATION_UID, b"\x00")),
            _meta_element(0x0013, b"SH", _even(PYNETDICOM_IMPLEMENTATION_VERSION, b" ")),
        )
    )
    group_length = _meta_element(0x0000, b"UL", struct.pack("<I", len(elements)))
    dataset = cast(BytesIO, request.DataSet).getvalue()
    return b"".join((b"\x00" * 128, b"DICM", group_length, elements, dataset))


def _status(code: int, comment: str = "") -> Dataset:
    ds = Dataset()
    ds.Status = code
    if comment:
        ds.ErrorComment = comment[:64]
    return ds


class StoreScp:
    """The application entity and its handlers; :meth:`start` binds and serves."""

    def __init__(
        self,
        settings: Settings,
        session_factory: sessionmaker[Session],
        blobs: BlobStore,
        pii: PiiProtector,
    ) -> None:
        self.settings = settings
        self.config: DimseSettings = settings.dimse
        self.session_factory = session_factory
        self.blobs = blobs
        self.pii = pii
        self.peers = PeerRegistry(session_factory, allow_unknown=self.config.allow_unknown)
        self.query_retrieve = QueryRetrieve(
            session_factory,
            blobs,
            self.peers,
            ae_title=self.config.ae_title,
            max_results=self.config.max_find_results,
            peer_of=self._peer,
        )
        self.ae = self._make_ae()
        self.server: _Server | None = None

    def _make_ae(self) -> AE:
        ae = _AE(ae_title=self.config.ae_title)
        ae.registry = self.peers
        ae.maximum_pdu_size = self.config.max_pdu_bytes
        ae.maximum_associations = self.config.max_associations
        ae.network_timeout = self.config.network_timeout
        ae.acse_timeout = self.config.acse_timeout
        ae.dimse_timeout = self.config.dimse_timeout
        ae.require_called_aet = True
        ae.add_supported_context(Verification)
        for sop_class in QUERY_RETRIEVE:
            ae.add_supported_context(sop_class)
        for context in AllStoragePresentationContexts:
            if context.abstract_syntax is not None:
                # Either role: the peer stores to us (SCU), or takes C-GET results (SCP).
                ae.add_supported_context(
                    context.abstract_syntax, TRANSFER_SYNTAXES, scu_role=True, scp_role=True
                )
        return ae

    def handlers(self) -> list[evt.EventHandlerType]:
        return [
            (evt.EVT_ACCEPTED, self._on_accepted),
            (evt.EVT_C_ECHO, self._on_echo),
            (evt.EVT_C_STORE, self._on_store),
            (evt.EVT_C_FIND, self.query_retrieve.on_find),
            (evt.EVT_C_MOVE, self.query_retrieve.on_move),
            (evt.EVT_C_GET, self.query_retrieve.on_get),
        ]

    def start(self, host: str, port: int, *, block: bool) -> _Server:
        """Bind and serve; ``block=False`` serves in a daemon thread (tests)."""
        server = self.ae.make_server(
            (host, port),
            evt_handlers=self.handlers(),
            server_class=_Server,
            request_handler=_handler_class(self.config.max_pdu_bytes),
        )
        assert isinstance(server, _Server)  # noqa: S101 - the class we asked for
        server.contexts = Contexts(server.contexts)
        self.server = server
        self.ae._servers.append(server)  # as AE.start_server does: AE.shutdown() stops it
        if block:
            try:
                server.serve_forever()
            except KeyboardInterrupt:
                server.shutdown()
        else:
            import threading

            threading.Thread(target=server.serve_forever, name="dimse-scp", daemon=True).start()
        return server

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()  # closes the socket too
            self.server = None

    # Handlers --------------------------------------------------------------------------

    def _peer(self, event: Event) -> KnownPeer | None:
        requestor = event.assoc.requestor
        return self.peers.find(str(requestor.ae_title), str(requestor.address))

    def _on_accepted(self, event: Event) -> None:
        if self.peers.allow_unknown:
            return
        if self._peer(event) is None:
            # A known title from another address: not this peer.
            LOG.warning(
                "DIMSE: %s called from unexpected address %s; aborting",
                event.assoc.requestor.ae_title,
                event.assoc.requestor.address,
            )
            event.assoc.abort()

    def _on_echo(self, event: Event) -> int:
        return SUCCESS

    def _on_store(self, event: Event) -> Dataset | int:
        peer = self._peer(event)
        if peer is None:
            return _status(NOT_AUTHORIZED, "Calling AE is not a known peer")
        request = event.request
        assert isinstance(request, C_STORE)  # noqa: S101 - the C-STORE event
        data = part10(event)
        if len(data) > self.settings.imaging.max_instance_bytes:
            return _status(OUT_OF_RESOURCES, "Instance too large")
        try:
            with session_scope(self.session_factory) as session:
                institution_id = peer.institution_id
                result = imaging.ingest(
                    session,
                    self.blobs,
                    self.pii,
                    data,
                    sender_institution_id=institution_id,
                    actor=imaging.node_principal(
                        peer.ae_title, institution_id, str(event.assoc.requestor.address)
                    ),
                    duplicate=self.settings.imaging.duplicate,
                    max_bytes=self.settings.imaging.max_instance_bytes,
                )
                instance = result.instance
                if instance.sop_class_uid != str(request.AffectedSOPClassUID):
                    raise _Refused(DOES_NOT_MATCH, "SOP Class UID differs from the request")
                if instance.sop_instance_uid != str(request.AffectedSOPInstanceUID):
                    raise _Refused(DOES_NOT_MATCH, "SOP Instance UID differs from the request")
        except _Refused as refused:
            return _status(refused.code, refused.comment)
        except Conflict as exc:
            return _status(DOES_NOT_MATCH, f"Refused: {exc.code}")
        except PayloadTooLarge:
            return _status(OUT_OF_RESOURCES, "Instance too large")
        except Invalid as exc:
            return _status(CANNOT_UNDERSTAND, f"Invalid: {exc.code}")
        except XietongError as exc:
            return _status(CANNOT_UNDERSTAND, f"Refused: {exc.code}")
        except (OSError, SQLAlchemyError):
            LOG.exception("DIMSE: storage failed")
            return _status(OUT_OF_RESOURCES, "Storage failure")
        return SUCCESS


class _Refused(Exception):
    def __init__(self, code: int, comment: str) -> None:
        super().__init__(comment)
        self.code = code
        self.comment = comment

"""The known peers as the DICOM service sees them: the directory's ``dicom_peer`` rows,
re-read at most every few seconds (a change in the admin page applies within the TTL)."""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass

from sqlalchemy.orm import Session, sessionmaker

from xietong.directory import service as directory

TTL_SECONDS = 5.0


@dataclass(frozen=True)
class KnownPeer:
    ae_title: str
    host: str
    port: int
    institution_id: int
    institution_code: str
    may_query: bool
    may_retrieve: bool
    # The addresses the host name resolves to (the host itself for an IP address).
    addresses: frozenset[str]


def _addresses(host: str) -> frozenset[str]:
    try:
        infos = socket.getaddrinfo(host, None, type=socket.SOCK_STREAM)
    except OSError:
        return frozenset({host})
    return frozenset({host, *(str(info[4][0]) for info in infos)})


class PeerRegistry:
    """Thread-safe, cached view of the active peers, by AE title."""

    def __init__(
        self,
        session_factory: sessionmaker[Session],
        *,
        allow_unknown: bool,
        ttl: float = TTL_SECONDS,
    ) -> None:
        self.session_factory = session_factory
        self.allow_unknown = allow_unknown
        self.ttl = ttl
        self._lock = threading.Lock()
        self._loaded_at = -1e9
        self._by_title: dict[str, KnownPeer] = {}

    def _load(self) -> dict[str, KnownPeer]:
        with self.session_factory() as session:
            return {
                peer.ae_title: KnownPeer(
                    ae_title=peer.ae_title,
                    host=peer.host,
                    port=peer.port,
                    institution_id=institution.id,
                    institution_code=institution.code,
                    may_query=peer.may_query,
                    may_retrieve=peer.may_retrieve,
                    addresses=_addresses(peer.host),
                )
                for peer, institution in directory.active_peers(session)
            }

    def peers(self) -> dict[str, KnownPeer]:
        with self._lock:
            if time.monotonic() - self._loaded_at > self.ttl:
                self._by_title = self._load()
                self._loaded_at = time.monotonic()
            return self._by_title

    def invalidate(self) -> None:
        with self._lock:
            self._loaded_at = -1e9

    def titled(self, ae_title: str) -> KnownPeer | None:
        """The active peer with this title, wherever it calls from (a move destination)."""
        return self.peers().get(ae_title.strip())

    def find(self, ae_title: str, host: str) -> KnownPeer | None:
        """The peer with this title calling from its registered host."""
        peer = self.titled(ae_title)
        if peer is None or host not in peer.addresses:
            return None
        return peer

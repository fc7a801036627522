"""Per-application services (settings, database, blob store) handed to routes."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Engine
from sqlalchemy.orm import Session, sessionmaker

from xietong.config import Settings
from xietong.core.pii import PiiProtector
from xietong.core.storage import BlobStore


@dataclass
class AppServices:
    settings: Settings
    engine: Engine
    session_factory: sessionmaker[Session]
    blobs: BlobStore
    pii: PiiProtector

"""A running DICOM SCP on a database of its own, and dcmtk to drive it.

The SCP commits in its own threads, so it runs on a database of its own (a SQLite file,
or a PostgreSQL schema of its own), never on the rolled-back test transaction. Its peers
are rows of the directory's ``dicom_peer`` table, as in production.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from alembic import command
from pydicom.data import get_testdata_file
from sqlalchemy import Engine, func, select, text
from sqlalchemy.orm import Session, sessionmaker

from tests import factories
from xietong.cli import alembic_config
from xietong.config import DatabaseSettings, DimseSettings, SecuritySettings, Settings
from xietong.core.db import make_engine
from xietong.core.pii import PiiProtector
from xietong.core.storage import LocalBlobStore
from xietong.directory import service as directory
from xietong.directory.models import Institution
from xietong.directory.peer_schemas import DicomPeerCreateIn
from xietong.directory.regions import load_regions
from xietong.imaging.models import ImagingInstance
from xietong.interop.dimse.scp import StoreScp

TOOLS = {
    name: shutil.which(name)
    for name in ("echoscu", "storescu", "findscu", "movescu", "getscu", "storescp")
}
needs_dcmtk = pytest.mark.skipif(
    not all(TOOLS.values()), reason="dcmtk (echoscu, storescu, findscu, ...) is not installed"
)
DCMTK_ENV = {**os.environ, "TCP_NODELAY": "1"}
COUNTY_CODE = "HN-X410323"
OTHER_CODE = "HN-OTHER"


def sample_file(name: str) -> str:
    path = get_testdata_file(name)
    assert path is not None, name
    return str(path)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclass
class Running:
    port: int
    factory: sessionmaker[Session]
    county_id: int
    other_id: int
    server: StoreScp
    settings: Settings

    def count(self, model: type) -> int:
        with self.factory() as session:
            return int(session.execute(select(func.count()).select_from(model)).scalar_one())

    def sender_of(self, sop_uid: str) -> int | None:
        with self.factory() as session:
            return session.execute(
                select(ImagingInstance.sender_institution_id).where(
                    ImagingInstance.sop_instance_uid == sop_uid
                )
            ).scalar_one_or_none()

    def add_peer(
        self, institution_id: int, ae_title: str, port: int = 104, **extra: object
    ) -> None:
        with self.factory() as session:
            institution = session.get(Institution, institution_id)
            assert institution is not None
            data = DicomPeerCreateIn(ae_title=ae_title, host="127.0.0.1", port=port, **extra)  # type: ignore[arg-type]
            directory.create_peer(session, institution, data)
            session.commit()
        self.server.peers.invalidate()


def own_db_url(tmp_path: Path, worker_id: str, name: str = "dimse") -> str:
    url = os.environ.get("XIETONG_DATABASE_URL", "")
    if url.startswith(("postgresql", "postgres")):
        schema = f"xt_{name}_{worker_id}".replace("-", "_")
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        joiner = "&" if "?" in url else "?"
        return f"{url}{joiner}options=-csearch_path%3D{schema}"
    return f"sqlite:///{tmp_path / f'{name}.sqlite3'}"


def migrated(url: str) -> Engine:
    engine = make_engine(url)
    config = alembic_config(url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with Session(engine) as session:
        load_regions(session)
        session.commit()
    return engine


def seed_network(factory: sessionmaker[Session]) -> tuple[int, int]:
    """The county hospital with its CT DEMO_CT, and another institution with OTHER_CT."""
    with factory() as session:
        county = factories.institution(session, name="新安县人民医院", region_code="410323")
        county.code = COUNTY_CODE
        other = factories.institution(session)
        other.code = OTHER_CODE
        session.flush()
        for institution, title in ((county, "DEMO_CT"), (other, "OTHER_CT")):
            directory.create_peer(
                session,
                institution,
                DicomPeerCreateIn(ae_title=title, host="127.0.0.1", port=11113),
            )
        session.commit()
        return county.id, other.id


def scp_settings(tmp_path: Path, url: str, **dimse: object) -> Settings:
    return Settings(
        env="test",
        data_dir=tmp_path,
        database=DatabaseSettings(url=url),
        security=SecuritySettings(secret_key="test-secret-key-0123456789abcdef"),
        dimse=DimseSettings(**dimse),  # type: ignore[arg-type]
    )


def start(tmp_path: Path, worker_id: str, **dimse: object) -> Iterator[Running]:
    url = own_db_url(tmp_path, worker_id)
    engine = migrated(url)
    factory = sessionmaker(bind=engine, expire_on_commit=False)
    county_id, other_id = seed_network(factory)
    settings = scp_settings(tmp_path, url, **dimse)
    server = StoreScp(
        settings,
        factory,
        LocalBlobStore(settings.blob_root),
        PiiProtector(settings.security.pii_key, settings.security.pii_cipher),
    )
    port = free_port()
    server.start("127.0.0.1", port, block=False)
    try:
        yield Running(port, factory, county_id, other_id, server, settings)
    finally:
        server.stop()
        engine.dispose()


def dcmtk(
    tool: str, port: int, *args: str, aet: str = "DEMO_CT"
) -> subprocess.CompletedProcess[str]:
    """Run a dcmtk SCU against the SCP (TCP_NODELAY=1: Nagle off on its side too)."""
    path = TOOLS[tool]
    assert path is not None
    done = subprocess.run(  # noqa: S603 - dcmtk with fixed arguments
        [path, "-v", "-aet", aet, "-aec", "XIETONG", "-to", "10", "127.0.0.1", str(port), *args],
        env=DCMTK_ENV,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if done.returncode:
        print(done.stdout, done.stderr)  # shown when a test fails
    return done

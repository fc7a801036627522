"""Test database on real migrations, one rolled-back transaction per test.

SQLite by default (a file per test worker); PostgreSQL when XIETONG_DATABASE_URL names it,
each xdist worker in its own schema so that workers never see each other's rows.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import Connection, Engine, text
from sqlalchemy.orm import Session, sessionmaker

from xietong.cli import alembic_config
from xietong.config import DatabaseSettings, SecuritySettings, Settings
from xietong.core import clock
from xietong.core.db import make_engine
from xietong.directory.regions import load_regions
from xietong.main import create_app

PG_PREFIX = ("postgresql", "postgres")
# Fixtures shared by the slot tests (tests/referral/test_slots*.py).
pytest_plugins = ["tests.referral.slot_fixtures"]


def _is_pg(url: str) -> bool:
    return url.startswith(PG_PREFIX)


@pytest.fixture(scope="session")
def db_url(tmp_path_factory: pytest.TempPathFactory, worker_id: str) -> str:
    url = os.environ.get("XIETONG_DATABASE_URL", "")
    if _is_pg(url):
        schema = f"xt_test_{worker_id}".replace("-", "_")
        admin = make_engine(url)
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
            conn.execute(text(f'CREATE SCHEMA "{schema}"'))
        admin.dispose()
        joiner = "&" if "?" in url else "?"
        return f"{url}{joiner}options=-csearch_path%3D{schema}"
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.sqlite3'}"


@pytest.fixture(scope="session")
def engine(db_url: str) -> Iterator[Engine]:
    eng = make_engine(db_url)
    config = alembic_config(db_url)
    with eng.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    with Session(eng) as session:
        load_regions(session)
        session.commit()
    yield eng
    eng.dispose()


@pytest.fixture
def connection(engine: Engine) -> Iterator[Connection]:
    conn = engine.connect()
    outer = conn.begin()
    yield conn
    outer.rollback()
    conn.close()


@pytest.fixture
def session_factory(connection: Connection) -> sessionmaker[Session]:
    return sessionmaker(
        bind=connection, join_transaction_mode="create_savepoint", expire_on_commit=False
    )


@pytest.fixture
def db(session_factory: sessionmaker[Session]) -> Iterator[Session]:
    session = session_factory()
    yield session
    session.close()


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return Settings(
        env="test",
        data_dir=tmp_path,
        database=DatabaseSettings(url=db_url),
        security=SecuritySettings(secret_key="test-secret-key-0123456789abcdef"),
    )


@pytest.fixture
def app(settings: Settings, session_factory: sessionmaker[Session]) -> FastAPI:
    return create_app(settings, session_factory=session_factory)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, base_url="http://testserver", raise_server_exceptions=False) as c:
        yield c


@pytest.fixture(autouse=True)
def _restore_clock() -> Iterator[None]:
    yield
    clock.set_clock(None)


@pytest.fixture(scope="session")
def worker_id(request: pytest.FixtureRequest) -> str:
    """Defined here too so the suite runs without pytest-xdist."""
    workerinput = getattr(request.config, "workerinput", None)
    return str(workerinput["workerid"]) if workerinput else "main"

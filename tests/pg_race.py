"""Race tests on PostgreSQL: each thread has its own connection and commits for real, so a
test module works in a schema of its own (per xdist worker), migrated to head and dropped
afterwards. SQLite serialises writers (BEGIN IMMEDIATE): there is no race to test there."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, text

from xietong.cli import alembic_config
from xietong.core.db import make_engine

URL = os.environ.get("XIETONG_DATABASE_URL", "")
needs_postgres = pytest.mark.skipif(
    not URL.startswith(("postgresql", "postgres")),
    reason="race tests need PostgreSQL; SQLite serialises writers (BEGIN IMMEDIATE)",
)


@contextmanager
def schema_engine(prefix: str, worker_id: str, pool_size: int) -> Iterator[Engine]:
    """An engine on a fresh schema ``{prefix}_{worker_id}``, migrated to head."""
    schema = f"{prefix}_{worker_id}".replace("-", "_")
    admin = make_engine(URL)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    url = f"{URL}{'&' if '?' in URL else '?'}options=-csearch_path%3D{schema}"
    engine = make_engine(url, pool_size=pool_size)
    try:
        with engine.begin() as conn:
            config = alembic_config(url)
            config.attributes["connection"] = conn
            command.upgrade(config, "head")
        yield engine
    finally:
        engine.dispose()
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        admin.dispose()


def together(*jobs: Callable[[], Any]) -> list[Any]:
    """Run the jobs in threads released at the same moment; results or exceptions."""
    barrier = threading.Barrier(len(jobs))
    results: list[Any] = [None] * len(jobs)

    def run(index: int, job: Callable[[], Any]) -> None:
        barrier.wait()
        try:
            results[index] = job()
        except Exception as exc:  # reported to the test
            results[index] = exc

    threads = [threading.Thread(target=run, args=(i, j)) for i, j in enumerate(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results

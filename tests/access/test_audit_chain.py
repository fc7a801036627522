"""The hash chain finds an edited row, a deleted row and a removed tail; so does
`xietong audit verify`, run on a committed file database."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import delete, update
from sqlalchemy.orm import Session
from typer.testing import CliRunner

from xietong.access import audit
from xietong.access.models import AuditEvent
from xietong.access.principal import system_principal
from xietong.cli import app as cli_app
from xietong.cli import run_migrations
from xietong.config import DatabaseSettings, Settings
from xietong.core.db import make_engine, make_session_factory, session_scope


def _write(db: Session, n: int) -> None:
    who = system_principal("test")
    for i in range(n):
        audit.record(db, who, "test.row", object_id=i, detail={"i": i, "text": "患者 <b>"})
    db.flush()


def test_intact_chain(db: Session) -> None:
    _write(db, 5)
    result = audit.verify_chain(db)
    assert result.ok
    assert result.checked == 5


def test_edited_row(db: Session) -> None:
    _write(db, 5)
    db.execute(update(AuditEvent).where(AuditEvent.seq == 3).values(outcome="denied"))
    result = audit.verify_chain(db)
    assert (result.ok, result.first_bad_seq) == (False, 3)
    assert "changed" in result.problem


def test_edited_row_with_recomputed_hash_breaks_the_next_link(db: Session) -> None:
    _write(db, 5)
    row = db.query(AuditEvent).filter_by(seq=3).one()
    row.detail = '{"i": 99}'
    row.hash = audit.chain_hash(row.prev_hash, row)
    db.flush()
    result = audit.verify_chain(db)
    assert (result.ok, result.first_bad_seq) == (False, 4)
    assert "link" in result.problem


def test_deleted_row(db: Session) -> None:
    _write(db, 5)
    db.execute(delete(AuditEvent).where(AuditEvent.seq == 2))
    result = audit.verify_chain(db)
    assert (result.ok, result.first_bad_seq, result.checked) == (False, 2, 1)
    assert "missing" in result.problem


def test_removed_tail(db: Session) -> None:
    _write(db, 5)
    db.execute(delete(AuditEvent).where(AuditEvent.seq >= 4))
    result = audit.verify_chain(db)
    assert (result.ok, result.checked) == (False, 3)
    assert "end" in result.problem


@pytest.fixture
def file_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'audit.sqlite3'}"
    monkeypatch.setenv("XIETONG_DATABASE_URL", url)
    run_migrations(Settings(data_dir=tmp_path, database=DatabaseSettings(url=url)))
    engine = make_engine(url)
    with session_scope(make_session_factory(engine)) as session:
        _write(session, 4)
    engine.dispose()
    return url


def _tamper(url: str, statement: object) -> None:
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(statement)  # type: ignore[call-overload]
    engine.dispose()


def test_cli_verify(file_db: str) -> None:
    runner = CliRunner()
    ok = runner.invoke(cli_app, ["audit", "verify"])
    assert ok.exit_code == 0, ok.output
    assert "intact" in ok.output
    assert "4 rows" in ok.output

    _tamper(file_db, update(AuditEvent).where(AuditEvent.seq == 2).values(actor_username="x"))
    edited = runner.invoke(cli_app, ["audit", "verify"])
    assert edited.exit_code == 1
    assert "seq 2" in edited.output
    assert "changed" in edited.output


def test_cli_verify_deleted_and_tail(file_db: str) -> None:
    runner = CliRunner()
    _tamper(file_db, delete(AuditEvent).where(AuditEvent.seq == 4))
    tail = runner.invoke(cli_app, ["audit", "verify"])
    assert tail.exit_code == 1
    assert "end" in tail.output
    _tamper(file_db, delete(AuditEvent).where(AuditEvent.seq == 2))
    gap = runner.invoke(cli_app, ["audit", "verify"])
    assert gap.exit_code == 1
    assert "seq 2" in gap.output
    assert "missing" in gap.output

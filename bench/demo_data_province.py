"""Benchmark: load the province-scale demo network into a fresh PostgreSQL schema.

    .venv/bin/python bench/demo_data_province.py [--url postgresql+psycopg://…] [--keep]

Prints the seconds taken (migrations excluded) and the rows per table. The target is
well under ten minutes on a two-core machine. Reference: XIETONG_BENCH_DATABASE_URL or
postgresql+psycopg://postgres@127.0.0.1:5432/test.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

from alembic import command
from rich.console import Console
from rich.table import Table
from sqlalchemy import func, select, text

from xietong.cli import alembic_config
from xietong.config import DatabaseSettings, Settings
from xietong.core.db import make_engine
from xietong.demo import load_demo
from xietong.models import Base

DEFAULT_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
SCHEMA = "xt_bench_demo"
TARGET_SECONDS = 600


def _schema_url(url: str, schema: str) -> str:
    joiner = "&" if "?" in url else "?"
    return f"{url}{joiner}options=-csearch_path%3D{schema}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default=os.environ.get("XIETONG_BENCH_DATABASE_URL", DEFAULT_URL))
    parser.add_argument("--keep", action="store_true", help="keep the schema afterwards")
    args = parser.parse_args()
    console = Console()
    admin = make_engine(args.url)
    with admin.begin() as conn:
        conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
        conn.execute(text(f'CREATE SCHEMA "{SCHEMA}"'))
    url = _schema_url(args.url, SCHEMA)
    engine = make_engine(url)
    config = alembic_config(args.url)
    with engine.begin() as conn:
        config.attributes["connection"] = conn
        command.upgrade(config, "head")
    settings = Settings(
        env="test",
        data_dir=Path(tempfile.mkdtemp(prefix="xt-bench-")),
        database=DatabaseSettings(url=url),
    )
    started = time.perf_counter()
    load_demo(settings, scale="province", console=console)
    elapsed = time.perf_counter() - started
    table = Table(title="rows per table")
    table.add_column("table")
    table.add_column("rows", justify="right")
    with engine.connect() as conn:
        for name, model_table in sorted(Base.metadata.tables.items()):
            rows = conn.execute(select(func.count()).select_from(model_table)).scalar_one()
            table.add_row(name, f"{rows:,}")
    engine.dispose()
    console.print(table)
    verdict = "within" if elapsed < TARGET_SECONDS else "OVER"
    console.print(f"province demo data: {elapsed:.1f} s ({verdict} the {TARGET_SECONDS} s target)")
    if not args.keep:
        with admin.begin() as conn:
            conn.execute(text(f'DROP SCHEMA IF EXISTS "{SCHEMA}" CASCADE'))
    admin.dispose()
    return 0 if elapsed < TARGET_SECONDS else 1


if __name__ == "__main__":
    raise SystemExit(main())

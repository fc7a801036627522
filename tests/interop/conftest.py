"""Fixtures of the DIMSE tests: a running SCP (see dimse_support.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.interop.dimse_support import Running, start


@pytest.fixture
def scp(tmp_path: Path, worker_id: str) -> Iterator[Running]:
    yield from start(tmp_path, worker_id)


@pytest.fixture
def open_scp(tmp_path: Path, worker_id: str) -> Iterator[Running]:
    """Unknown callers allowed (XIETONG_DIMSE_ALLOW_UNKNOWN)."""
    yield from start(tmp_path, worker_id, allow_unknown=True)

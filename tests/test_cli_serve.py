"""``xietong serve`` is sized for live clients: the connection limit (WebSockets count in
it) comes from XIETONG_HTTP_MAX_CONNECTIONS and the soft file limit is raised to match."""

from __future__ import annotations

import resource
from typing import Any

import pytest

from xietong import cli
from xietong.config import HttpSettings


def test_the_connection_limit_is_a_setting_well_above_a_thousand_sockets(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    seen: dict[str, Any] = {}
    monkeypatch.setattr("uvicorn.run", lambda *_args, **kwargs: seen.update(kwargs))
    monkeypatch.setattr(cli, "_raise_file_limit", lambda wanted: seen.update(files=wanted))
    monkeypatch.setenv("XIETONG_HTTP_MAX_CONNECTIONS", "2500")
    cli.serve(host="127.0.0.1", port=8001, workers=1, reload=False, dicom=False)
    assert seen["limit_concurrency"] == 2500
    assert seen["files"] == 3500
    assert HttpSettings().max_connections >= 1000 * 2


def test_the_soft_file_limit_is_raised_within_the_hard_one(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    calls: list[tuple[int, int]] = []
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (1024, 4096))
    monkeypatch.setattr(resource, "setrlimit", lambda _which, limits: calls.append(limits))
    cli._raise_file_limit(11_000)
    assert calls == [(4096, 4096)]
    calls.clear()
    monkeypatch.setattr(resource, "getrlimit", lambda _which: (20_000, 20_000))
    cli._raise_file_limit(11_000)
    assert calls == []  # never lowered

"""The real server for the live tests (aiortc peers, the browser): uvicorn in a subprocess
on a fresh SQLite file, the e2e accounts and the video consultation seeded."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

from tests.e2e.conftest import _run, _server_env, _start_server, _stop
from tests.e2e.seed import PASSWORD
from tests.live.seed_live import SEED_FILE

APP = "xietong.main:create_app"


@dataclass(frozen=True)
class VideoServer:
    url: str
    data_dir: Path
    log: Path
    consultation_id: int

    @property
    def ws_url(self) -> str:
        return "ws" + self.url.removeprefix("http") + "/ws"

    def token(self, username: str) -> str:
        answer = requests.post(
            f"{self.url}/api/v1/auth/token",
            data={"username": username, "password": PASSWORD},
            timeout=30,
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])


def video_server(
    tmp_path_factory: pytest.TempPathFactory, extra_env: dict[str, str] | None = None
) -> Iterator[VideoServer]:
    data_dir = tmp_path_factory.mktemp("live-server")
    env = {**_server_env(data_dir), **(extra_env or {})}
    _run([sys.executable, "-m", "xietong.cli", "migrate"], env, "xietong migrate")
    _run([sys.executable, "-m", "tests.e2e.seed"], env, "seeding the e2e accounts")
    _run([sys.executable, "-m", "tests.live.seed_live"], env, "seeding the video consultation")
    seeded = json.loads((data_dir / SEED_FILE).read_text())
    log = data_dir / "server.log"
    proc, url = _start_server(env, log, APP)
    try:
        yield VideoServer(url, data_dir, log, int(seeded["consultation"]))
    finally:
        _stop(proc)

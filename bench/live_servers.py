"""The processes of ``bench/live.py``: Xietong (``xietong serve``, as deployed) or the
reference app on free ports, their seed, their CPU time, Redis and a throwaway PostgreSQL
database."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/0")
PG_ADMIN = os.environ.get("BENCH_PG_ADMIN", "postgresql://postgres@127.0.0.1:5432/postgres")
PG_NAME = "bench_live"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def xietong_env(data: Path, database_url: str, redis: bool) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIETONG_")}
    env.update(
        XIETONG_DATA_DIR=str(data),
        XIETONG_DATABASE_URL=database_url,
        XIETONG_SECURITY_SECRET_KEY="bench-secret-key-0123456789abcdef0123",  # noqa: S106
        XIETONG_DIMSE_ENABLED="false",
        PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH", "")])),
    )
    if redis:
        env["XIETONG_REDIS_URL"] = REDIS_URL
    return env


def seed(env: dict[str, str], data: Path, rooms: int) -> dict[str, Any]:
    for command in (
        [str(BIN / "xietong"), "migrate"],
        [sys.executable, str(REPO / "bench" / "live_seed.py"), str(data / "seed.json"), str(rooms)],
    ):
        subprocess.run(command, env=env, cwd=REPO, check=True, capture_output=True)  # noqa: S603
    result: dict[str, Any] = json.loads((data / "seed.json").read_text())
    return result


@dataclass
class Server:
    proc: subprocess.Popen[bytes]
    url: str

    @property
    def ws(self) -> str:
        return self.url.replace("http://", "ws://") + "/ws"


def _wait(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and proc.poll() is None:
        with suppress(OSError), urllib.request.urlopen(f"{url}/healthz", timeout=2) as answer:  # noqa: S310
            if answer.status == 200:
                return
        time.sleep(0.1)
    raise SystemExit(f"server at {url} did not start; log {log}:\n{log.read_text()[-3000:]}")


@contextmanager
def servers(kind: str, count: int, env: dict[str, str], root: Path) -> Iterator[list[Server]]:
    """``count`` processes of Xietong (``xietong serve``, as deployed) or the reference."""
    started: list[Server] = []
    try:
        for number in range(count):
            port = free_port()
            log = root / f"{kind}-{number}.log"
            if kind == "xietong":
                args = [str(BIN / "xietong"), "serve", "--host", "127.0.0.1"]
                args += ["--port", str(port), "--no-dicom"]
            else:
                args = [sys.executable, "-m", "uvicorn", "live_reference:app", "--app-dir"]
                args += [str(REPO / "bench"), "--host", "127.0.0.1", "--port", str(port)]
            with log.open("ab") as out:
                proc = subprocess.Popen(  # noqa: S603
                    args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT
                )
            started.append(Server(proc, f"http://127.0.0.1:{port}"))
            _wait(started[-1].url, proc, log)
        yield started
    finally:
        for server in started:
            server.proc.terminate()
        for server in started:
            try:
                server.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.proc.kill()
                server.proc.wait()


def http_status(ws_url: str) -> int | str:
    url = ws_url.replace("ws://", "http://").removesuffix("/ws") + "/healthz"
    try:
        with urllib.request.urlopen(url, timeout=10) as answer:  # noqa: S310
            return int(answer.status)
    except urllib.error.HTTPError as error:
        return int(error.code)
    except OSError as error:
        return repr(error)[:80]


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (/proc), 0 when it cannot be read."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def redis_pid() -> int | None:
    found = subprocess.run(["pidof", "redis-server"], capture_output=True, text=True, check=False)  # noqa: S607
    pids = found.stdout.split()
    return int(pids[0]) if pids else None


def redis_up() -> bool:
    try:
        import redis

        return bool(redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping())
    except Exception:
        return False


@contextmanager
def postgres() -> Iterator[str]:
    def psql(sql: str) -> None:
        subprocess.run(["psql", PG_ADMIN, "-qc", sql], check=True, capture_output=True)  # noqa: S603, S607

    psql(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")
    psql(f"CREATE DATABASE {PG_NAME}")
    try:
        base = PG_ADMIN.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
        yield f"{base}/{PG_NAME}"
    finally:
        psql(f"DROP DATABASE IF EXISTS {PG_NAME} WITH (FORCE)")

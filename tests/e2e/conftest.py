"""Browser tests: the real server in a subprocess, driven by Debian's chromium.

The server always runs on a fresh SQLite file in a temporary data folder, whatever
XIETONG_DATABASE_URL says, so that it never touches the per-worker schemas of the rest of
the suite. Each pytest-xdist worker that collects browser tests starts its own server on a
free port. Without /usr/bin/chromium the tests are skipped locally and fail under CI=true.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect, sync_playwright

from tests.e2e.helpers import ROOT, TIMEOUT_MS, Browsing, LiveServer

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
STARTUP_SECONDS = 60

# Assertions wait as long as actions do: a loaded 2-core CI machine is slow.
expect.set_options(timeout=TIMEOUT_MS)


def _in_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _server_env(data_dir: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("XIETONG_")}
    env.update(
        XIETONG_ENV="test",
        XIETONG_DATA_DIR=str(data_dir),
        XIETONG_DATABASE_URL=f"sqlite:///{(data_dir / 'xietong.sqlite3').as_posix()}",
        XIETONG_SECURITY_SECRET_KEY="e2e-secret-key-0123456789abcdef0123",
        PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
    )
    return env


def _run(args: list[str], env: dict[str, str], what: str) -> None:
    done = subprocess.run(  # noqa: S603 (our own interpreter, fixed arguments)
        args, env=env, cwd=ROOT, capture_output=True, text=True, timeout=300, check=False
    )
    if done.returncode != 0:
        pytest.fail(f"{what} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/healthz", timeout=2) as response:  # noqa: S310
            return bool(response.status == 200)
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return False


def _start_server(
    env: dict[str, str], log: Path, app: str = "xietong.main:create_app"
) -> tuple[subprocess.Popen[bytes], str]:
    """Start uvicorn on a free port; retry on a new port if another process took it."""
    for _attempt in range(3):
        port = _free_port()
        url = f"http://127.0.0.1:{port}"
        with log.open("ab") as out:
            proc = subprocess.Popen(  # noqa: S603
                [
                    sys.executable,
                    "-m",
                    "uvicorn",
                    app,
                    "--factory",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(port),
                ],
                env=env,
                cwd=ROOT,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while time.monotonic() < deadline and proc.poll() is None:
            if _healthy(url):
                return proc, url
            time.sleep(0.1)
        _stop(proc)
    pytest.fail(f"the server did not become healthy; log:\n{log.read_text(errors='replace')}")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    data_dir = tmp_path_factory.mktemp("e2e")
    env = _server_env(data_dir)
    _run([sys.executable, "-m", "xietong.cli", "migrate"], env, "xietong migrate")
    _run([sys.executable, "-m", "tests.e2e.seed"], env, "seeding the e2e accounts")
    log = data_dir / "server.log"
    proc, url = _start_server(env, log)
    try:
        yield LiveServer(url=url, data_dir=data_dir, log=log)
    finally:
        _stop(proc)


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        if _in_ci():
            pytest.fail(f"CI is set but {CHROMIUM} is missing: apt-get install -y chromium")
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium fonts-noto-cjk)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        try:
            yield launched
        finally:
            launched.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> object:
    """Remember each phase's outcome so that the page fixture can keep a screenshot."""
    report = yield
    setattr(item, f"report_{call.when}", report)
    return report


@pytest.fixture
def browsing(
    browser: Browser, live_server: LiveServer, request: pytest.FixtureRequest
) -> Iterator[Browsing]:
    session = Browsing(browser, live_server, request)
    try:
        yield session
    finally:
        session.close()


@pytest.fixture
def page(browsing: Browsing) -> Page:
    """A desktop page (1280x800) of a Chinese-speaking browser, signed out."""
    return browsing.new_page(viewport={"width": 1280, "height": 800})

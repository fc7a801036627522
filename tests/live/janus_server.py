"""A Janus for the tests: the Debian package's binary with a minimal configuration in a
temporary folder (the HTTP transport on a free port, the VideoRoom plugin only)."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

JANUS = shutil.which("janus")
LIB = Path("/usr/lib/x86_64-linux-gnu/janus")
PLUGINS = [p.name for p in (LIB / "plugins").glob("libjanus_*.so")] if LIB.exists() else []
TRANSPORTS = [p.name for p in (LIB / "transports").glob("libjanus_*.so")] if LIB.exists() else []


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _config(folder: Path, port: int) -> None:
    disabled_plugins = ",".join(p for p in PLUGINS if "videoroom" not in p)
    disabled_transports = ",".join(t for t in TRANSPORTS if "http" not in t)
    (folder / "janus.jcfg").write_text(
        "general: {\n"
        f'  configs_folder = "{folder}"\n'
        f'  plugins_folder = "{LIB / "plugins"}"\n'
        f'  transports_folder = "{LIB / "transports"}"\n'
        f'  events_folder = "{LIB / "events"}"\n'
        f'  loggers_folder = "{LIB / "loggers"}"\n'
        "  debug_level = 3\n"
        "}\n"
        f'plugins: {{ disable = "{disabled_plugins}" }}\n'
        f'transports: {{ disable = "{disabled_transports}" }}\n'
        "events: { broadcast = false }\n"
        # Media on this machine: RTP from a fixed range; ICE gathers host candidates on
        # every interface but the ignored ones (aiortc, like browsers, offers no loopback).
        'media: { rtp_port_range = "20000-40000" }\n'
        'nat: { nice_debug = false ice_ignore_list = "vmnet" }\n'
    )
    (folder / "janus.transport.http.jcfg").write_text(
        "general: {\n"
        '  base_path = "/janus"\n  http = true\n'
        f"  port = {port}\n"
        '  ip = "127.0.0.1"\n  https = false\n}\n'
        "admin: { admin_http = false admin_https = false }\n"
    )
    (folder / "janus.plugin.videoroom.jcfg").write_text("general: { }\n")


def running_janus(tmp: Path) -> Iterator[str]:
    if JANUS is None or not PLUGINS:
        pytest.skip("janus is not installed (apt-get install janus)")
    port = _free_port()
    _config(tmp, port)
    log = (tmp / "janus.log").open("wb")
    proc = subprocess.Popen(  # noqa: S603 - the packaged binary, fixed arguments
        [JANUS, "-F", str(tmp), "-C", str(tmp / "janus.jcfg")], stdout=log, stderr=subprocess.STDOUT
    )
    url = f"http://127.0.0.1:{port}/janus"
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"janus exited: {(tmp / 'janus.log').read_text(errors='replace')}")
            try:
                with urllib.request.urlopen(f"{url}/info", timeout=2):  # noqa: S310
                    break
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                time.sleep(0.2)
        else:
            pytest.fail(f"janus did not start: {(tmp / 'janus.log').read_text(errors='replace')}")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()

"""`xietong serve` runs the DICOM SCP beside the web application (as `make run` does):
both ports answer, one Ctrl-C (SIGINT) stops both; `--no-dicom` leaves the SCP out."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

from tests.interop.dimse_support import free_port

XIETONG = str(Path(sys.executable).with_name("xietong"))


def _listening(port: int) -> bool:
    try:
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
    except OSError:
        return False
    return True


def _serve(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[bytes], int, int]:
    http, dicom = free_port(), free_port()
    env = {
        **os.environ,
        "XIETONG_ENV": "test",
        "XIETONG_DATA_DIR": str(tmp_path),
        "XIETONG_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.sqlite3'}",
        "XIETONG_HTTP_PORT": str(http),
        "XIETONG_DIMSE_PORT": str(dicom),
    }
    subprocess.run([XIETONG, "migrate"], env=env, check=True, capture_output=True)  # noqa: S603
    process = subprocess.Popen(  # noqa: S603 - our own command
        [XIETONG, "serve", *args], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 60
    while not _listening(http) and time.monotonic() < deadline:
        time.sleep(0.2)
    return process, http, dicom


def test_serve_runs_the_scp_and_ctrl_c_stops_both(tmp_path: Path) -> None:
    process, http, dicom = _serve(tmp_path)
    try:
        assert _listening(http)
        assert _listening(dicom)
        process.send_signal(signal.SIGINT)
        assert process.wait(timeout=30) == 0
        assert not _listening(http)
        assert not _listening(dicom)
    finally:
        if process.poll() is None:
            process.kill()


def test_serve_without_dicom(tmp_path: Path) -> None:
    process, http, dicom = _serve(tmp_path, "--no-dicom")
    try:
        assert _listening(http)
        assert not _listening(dicom)
    finally:
        process.send_signal(signal.SIGINT)
        process.wait(timeout=30)

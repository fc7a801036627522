"""``make bench-live`` still runs: its quick mode at the smallest scale (two rooms of ten
sockets, one app process, no reference, no search for the maximum). Only that it works and
that every socket got every message once is checked here; the figures belong to the
benchmark (bench/live.py), not to the tests."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]


def test_bench_live_quick_runs_and_loses_nothing(tmp_path: Path) -> None:
    out = tmp_path / "live.json"
    done = subprocess.run(  # noqa: S603 (our interpreter, our script, fixed arguments)
        [
            sys.executable,
            str(ROOT / "bench" / "live.py"),
            "--quick",
            "--rooms=2",
            "--seconds=1",
            "--no-max",
            "--no-redis",
            "--no-reference",
            f"--json={out}",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    report = json.loads(out.read_text())
    (scenario,) = report["scenarios"].values()
    assert scenario["opened"]["sockets"] == 20
    fixed = scenario["fixed"]
    assert fixed["posted"] > 0
    assert fixed["acked"] == fixed["posted"]
    assert fixed["delivered"] == fixed["expected"] == fixed["posted"] * 10
    assert (fixed["missing"], fixed["doubled"], fixed["out_of_order"]) == (0, 0, 0)

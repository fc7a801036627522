"""The figures of ``bench/live.py``: one measured phase (:class:`Result`), a scenario's
fixed-rate phase and its ladder of rates (:class:`Scenario`), and the report that sets
Xietong beside the reference measured in the same run."""

from __future__ import annotations

import math
import os
import platform
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

POSTERS = 2  # sockets per room that post


def percentile(values: list[float], fraction: float) -> float:
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(fraction * len(ordered)) - 1))]


@dataclass
class Result:
    rate: float  # offered posts/s, all rooms
    posted_per_s: float
    delivered_per_s: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    posted: int
    acked: int
    delivered: int
    expected: int
    missing: int
    doubled: int
    out_of_order: int
    errors: int
    closed_sockets: int
    send_lag_p99_ms: float  # how late the client sent against its schedule
    client_cpu: float  # share of one core, summed over client processes
    server_cpu: float  # share of one core, summed over app processes
    redis_cpu: float
    load: float
    samples: list[str] = field(default_factory=list)

    def sustainable(self, slo_ms: float) -> bool:
        return (
            self.missing == 0
            and self.doubled == 0
            and self.errors == 0
            and self.closed_sockets == 0
            and self.p99_ms <= slo_ms
            and self.acked == self.posted
            and self.send_lag_p99_ms <= SEND_LAG_MS
        )


@dataclass
class Scenario:
    name: str
    opened: dict[str, Any]
    fixed: Result | None = None
    ladder: list[Result] = field(default_factory=list)

    @property
    def best(self) -> Result | None:
        return max(
            (r for r in self.ladder if r.sustainable(SLO_MS)),
            key=lambda r: r.rate,
            default=None,
        )


SLO_MS = 500.0
SEND_LAG_MS = 50.0


@dataclass
class Row:
    name: str
    unit: str
    better: str  # "higher" or "lower"
    ours: float | None
    theirs: float | None
    note: str = ""

    @property
    def ratio(self) -> float | None:
        if self.ours is None or not self.theirs or math.isnan(self.ours):
            return None
        return self.ours / self.theirs


def comparison(scenarios: dict[str, Scenario]) -> list[Row]:
    rows: list[Row] = []
    for name, ours in scenarios.items():
        if not name.startswith("Xietong"):
            continue
        mode = "Redis ×2" if "Redis" in name else "in-process"
        theirs = scenarios.get(f"reference {mode}")
        label = name.removeprefix("Xietong ")
        a, b = ours.fixed, theirs.fixed if theirs else None
        if a is not None:
            at = f"at {a.rate:.0f} posts/s"
            for figure, unit, better, key in (
                ("fan-out p50", "ms", "lower", "p50_ms"),
                ("fan-out p99", "ms", "lower", "p99_ms"),
                ("fan-out max", "ms", "lower", "max_ms"),
                ("delivered", "msg/s", "higher", "delivered_per_s"),
            ):
                theirs_value = getattr(b, key) if b else None
                rows.append(
                    Row(f"{label}: {figure} {at}", unit, better, getattr(a, key), theirs_value)
                )
        best, ref_best = ours.best, theirs.best if theirs else None
        rows.append(
            Row(
                f"{label}: max sustainable posts",
                "post/s",
                "higher",
                best.posted_per_s if best else None,
                ref_best.posted_per_s if ref_best else None,
            )
        )
        rows.append(
            Row(
                f"{label}: delivered at max sustainable",
                "msg/s",
                "higher",
                best.delivered_per_s if best else None,
                ref_best.delivered_per_s if ref_best else None,
                f"p99 {_ms(best)} / {_ms(ref_best)} ms",
            )
        )
    return rows


def _ms(result: Result | None) -> str:
    return "n/a" if result is None else f"{result.p99_ms:.0f}"


def _figure(value: float | None) -> str:
    return "n/a" if value is None or math.isnan(value) else f"{value:,.1f}"


def print_report(scenarios: dict[str, Scenario], args: Any) -> list[Row]:
    print(
        f"\n{'scenario':34} {'sockets':>7} {'fixed: post/s':>13} {'msg/s':>8} {'p50':>7} "
        f"{'p99':>7} {'max':>7} {'lost':>4} {'dup':>3} | {'max: post/s':>11} {'msg/s':>8} "
        f"{'p50':>7} {'p99':>7}"
    )
    for name, s in scenarios.items():
        f, b = s.fixed, s.best
        assert f is not None
        line = (
            f"{name:34} {s.opened['sockets']:>7} {f.posted_per_s:>13.1f} {f.delivered_per_s:>8.0f} "
            f"{f.p50_ms:>7.1f} {f.p99_ms:>7.1f} {f.max_ms:>7.1f} {f.missing:>4} {f.doubled:>3} | "
        )
        if b is None:
            line += f"{'n/a':>11}"
        else:
            line += (
                f"{b.posted_per_s:>11.1f} {b.delivered_per_s:>8.0f} {b.p50_ms:>7.1f} "
                f"{b.p99_ms:>7.1f}"
            )
        print(line)
    rows = comparison(scenarios)
    print(
        f"\n{'figure (Xietong over reference)':58} {'unit':6} {'Xietong':>10} "
        f"{'reference':>10} {'ratio':>6}  note"
    )
    for row in rows:
        ratio = "n/a" if row.ratio is None else f"{row.ratio:.2f}"
        print(
            f"{row.name:58} {row.unit:6} {_figure(row.ours):>10} {_figure(row.theirs):>10} "
            f"{ratio:>6}  {row.note}"
        )
    return rows


def machine() -> dict[str, Any]:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        "",
    )
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "kernel": platform.release(),
        "python": platform.python_version(),
    }


def plain(result: Result | None) -> dict[str, Any] | None:
    if result is None:
        return None
    return {
        k: (None if isinstance(v, float) and math.isnan(v) else v)
        for k, v in asdict(result).items()
    }
